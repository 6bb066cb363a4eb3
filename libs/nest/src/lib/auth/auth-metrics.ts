import { Injectable } from '@nestjs/common';

/**
 * Counters of sign-on activity, for a metrics endpoint: negotiations that succeeded, failures by
 * reason (the API error code), password sign-ins. Plain numbers: the app decides how to expose them.
 */
@Injectable()
export class AuthMetrics {
  negotiations = 0;
  passwordLogins = 0;
  readonly failures = new Map<string, number>();

  failure(reason: string): void {
    this.failures.set(reason, (this.failures.get(reason) ?? 0) + 1);
  }
}
