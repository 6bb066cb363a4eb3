import { Global, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import { ThrottlerModule } from '@nestjs/throttler';
import type { Request } from 'express';
import { ApiExceptionFilter } from './api-exception.filter';
import { AuthController } from './auth.controller';
import { ForwardableAuthGuard } from './auth.guard';
import { CredentialVault } from './credential-vault';
import { GroupsService } from './groups.service';
import { NegotiateService } from './negotiate.service';
import { NegotiateStrategy } from './negotiate.strategy';
import { ConfigurableModuleClass } from './options';
import { PasswordLoginService } from './password-login.service';
import { SessionService } from './session.service';
import { UserDb } from './user-db.service';
import { AuthMetrics } from './auth-metrics';

/**
 * The user name a login attempt counts against. Only a string is a name: anything else (a number,
 * an object whose `toString` is not a function) is validated, and refused, after the throttle,
 * so it must not throw here.
 */
function trackedName(body: unknown): string {
  const name = (body as { username?: unknown } | null | undefined)?.username;
  return typeof name === 'string' ? name.trim().toLowerCase() : '';
}

/** Password attempts: per user name and per client address, each per minute. */
export const LOGIN_LIMITS = { perUser: 5, perAddress: 20, windowMs: 60_000 };

/**
 * Kerberos sign-on for a Nest app: `ForwardableAuthModule.forRoot({ keytab, servicePrincipal, ... })`.
 * Installs a global deny-by-default guard (open routes with `@Public()`), the JSON error filter,
 * `GET /api/auth/me`, `POST /api/auth/logout` and `POST /api/auth/login`.
 */
@Global()
@Module({
  imports: [
    PassportModule,
    ThrottlerModule.forRoot({
      throttlers: [
        { name: 'address', ttl: LOGIN_LIMITS.windowMs, limit: LOGIN_LIMITS.perAddress },
        {
          name: 'username',
          ttl: LOGIN_LIMITS.windowMs,
          limit: LOGIN_LIMITS.perUser,
          getTracker: (req: Record<string, unknown>) => `user:${trackedName((req as unknown as Request).body)}`,
        },
      ],
    }),
  ],
  controllers: [AuthController],
  providers: [
    NegotiateService,
    SessionService,
    CredentialVault,
    GroupsService,
    PasswordLoginService,
    NegotiateStrategy,
    UserDb,
    AuthMetrics,
    { provide: APP_GUARD, useClass: ForwardableAuthGuard },
    { provide: APP_FILTER, useClass: ApiExceptionFilter },
  ],
  exports: [SessionService, CredentialVault, NegotiateService, UserDb, AuthMetrics],
})
export class ForwardableAuthModule extends ConfigurableModuleClass {}
