import { ChangeDetectionStrategy, Component, DOCUMENT, computed, inject, signal } from '@angular/core';
import { FormControl, FormGroup, ReactiveFormsModule, Validators } from '@angular/forms';
import { ActivatedRoute, Router, RouterLink } from '@angular/router';
import { type ApiRequestError, AuthService, toApiRequestError } from '@forwardable/web/auth';
import { isSameOriginPath, type ApiErrorCode } from '@forwardable/shared/contracts';
import { ErrorBanner, Loading } from '@forwardable/web/ui';

const REASONS: Partial<Record<ApiErrorCode, string>> = {
  NEGOTIATE_REQUIRED: 'Your browser did not offer a Kerberos ticket.',
  NTLM_OFFERED: 'Your browser offered NTLM instead of Kerberos.',
  NO_DELEGATION: 'Your Kerberos ticket cannot be delegated, so the database cannot be reached as you.',
  SESSION_EXPIRED: 'Your session has expired.',
};

/**
 * Shown when the browser signed nobody in: why (the API's reason), a password form, and how to
 * make the browser use Kerberos next time.
 */
@Component({
  selector: 'fw-sign-in-page',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [ReactiveFormsModule, RouterLink, ErrorBanner, Loading],
  templateUrl: './sign-in-page.html',
  styleUrl: './sign-in-page.css',
})
export class SignInPage {
  protected readonly auth = inject(AuthService);
  private readonly router = inject(Router);
  /** The page first asked for (set by the route guards), if it is a path on this site. */
  private readonly returnTo = (() => {
    const target = inject(ActivatedRoute).snapshot.queryParamMap.get('returnTo');
    return isSameOriginPath(target) ? target : undefined;
  })();
  /** This site's host name: what the browser must trust for Negotiate. */
  protected readonly host = inject(DOCUMENT).location?.hostname || 'this site';

  protected readonly form = new FormGroup({
    username: new FormControl('', { nonNullable: true, validators: [Validators.required] }),
    password: new FormControl('', { nonNullable: true, validators: [Validators.required] }),
  });
  protected readonly busy = signal(false);
  protected readonly loginError = signal<ApiRequestError | null>(null);
  protected readonly reason = computed(() => {
    const error = this.auth.error();
    return error ? (REASONS[error.code as ApiErrorCode] ?? null) : null;
  });

  protected async submit(): Promise<void> {
    if (this.form.invalid || this.busy()) {
      this.form.markAllAsTouched();
      return;
    }
    this.busy.set(true);
    this.loginError.set(null);
    try {
      await this.auth.login({ ...this.form.getRawValue(), ...(this.returnTo ? { returnTo: this.returnTo } : {}) });
    } catch (e) {
      this.loginError.set(toApiRequestError(e));
      this.form.controls.password.reset();
    } finally {
      this.busy.set(false);
    }
  }

  /** Asks again (after `kinit` or a browser setting change): the browser retries Negotiate. */
  protected async retry(): Promise<void> {
    if ((await this.auth.reload()) === 'signed-in') await this.router.navigateByUrl(this.returnTo ?? '/');
  }
}
