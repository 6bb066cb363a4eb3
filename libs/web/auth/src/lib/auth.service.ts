import { HttpClient } from '@angular/common/http';
import { Injectable, computed, inject, signal } from '@angular/core';
import { Router } from '@angular/router';
import { isSameOriginPath, type ApiErrorCode, type LoginRequest, type LoginResponse, type MeResponse } from '@forwardable/shared/contracts';
import { firstValueFrom } from 'rxjs';
import { ApiRequestError, toApiRequestError } from './api-error';

/** Where the session stands. `no-ticket`: the browser offered no usable Kerberos ticket. */
export type AuthStatus = 'loading' | 'signed-in' | 'no-ticket' | 'error';

/** 401 reasons meaning "this browser gave us no usable ticket": the sign-in page explains. */
const NO_TICKET_CODES: ReadonlySet<string> = new Set<ApiErrorCode>([
  'NEGOTIATE_REQUIRED',
  'NTLM_OFFERED',
  'NO_DELEGATION',
  'SESSION_EXPIRED',
]);

/**
 * The signed-in user. `GET /api/auth/me` answers 401 + `WWW-Authenticate: Negotiate` when there
 * is no session; the browser performs the Negotiate handshake itself and retries, so the SPA
 * only sees the final answer: the user, or a 401 whose code says why no ticket was usable.
 */
@Injectable({ providedIn: 'root' })
export class AuthService {
  private readonly http = inject(HttpClient);
  private readonly router = inject(Router);

  private readonly state = signal<{
    status: AuthStatus;
    me: MeResponse | null;
    error: ApiRequestError | null;
    signedOut: boolean;
  }>({ status: 'loading', me: null, error: null, signedOut: false });
  private pending: Promise<AuthStatus> | null = null;

  readonly status = computed(() => this.state().status);
  readonly me = computed(() => this.state().me);
  readonly isAdmin = computed(() => this.state().me?.isAdmin === true);
  /** Why the user is not signed in (the 401's code or another failure), if known. */
  readonly error = computed(() => this.state().error);
  /** The user signed out in this tab (the sign-in page says so instead of "no ticket"). */
  readonly signedOut = computed(() => this.state().signedOut);

  /** Loads the session once; later calls share the answer. */
  ensureLoaded(): Promise<AuthStatus> {
    const status = this.state().status;
    if (status === 'signed-in' || status === 'no-ticket') return Promise.resolve(status);
    return this.pending ?? this.reload();
  }

  /** Asks the API again who the user is (e.g. after enabling Kerberos in the browser). */
  reload(): Promise<AuthStatus> {
    this.state.update((s) => ({ ...s, status: 'loading', error: null }));
    const request = firstValueFrom(this.http.get<MeResponse>('/api/auth/me')).then(
      (me) => this.set({ status: 'signed-in', me, error: null, signedOut: false }),
      (e: unknown) => {
        const error = toApiRequestError(e);
        const noTicket = error.status === 401 && NO_TICKET_CODES.has(error.code);
        return this.set({ status: noTicket ? 'no-ticket' : 'error', me: null, error, signedOut: false });
      },
    );
    this.pending = request.finally(() => (this.pending = null));
    return this.pending;
  }

  /**
   * Password sign-in (when the browser has no ticket). On success the session is set and the
   * router goes to the API's `redirectTo` (the request's `returnTo`, else the configured page;
   * anything but a path on this site is replaced by `/`); on failure the typed error is thrown to
   * the form. An off-site `returnTo` is not sent.
   */
  async login(request: LoginRequest): Promise<LoginResponse> {
    try {
      const { returnTo, ...credentials } = request;
      const body: LoginRequest = isSameOriginPath(returnTo) ? { ...credentials, returnTo } : credentials;
      const answer = await firstValueFrom(this.http.post<LoginResponse>('/api/auth/login', body));
      const { redirectTo, ...me } = answer;
      this.set({ status: 'signed-in', me, error: null, signedOut: false });
      await this.router.navigateByUrl(isSameOriginPath(redirectTo) ? redirectTo : '/');
      return answer;
    } catch (e) {
      throw toApiRequestError(e);
    }
  }

  /** Ends the session on the API, then shows the sign-in page. */
  async logout(): Promise<void> {
    try {
      await firstValueFrom(this.http.post<void>('/api/auth/logout', {}));
    } catch (e) {
      throw toApiRequestError(e);
    }
    this.set({ status: 'no-ticket', me: null, error: null, signedOut: true });
    await this.router.navigateByUrl('/sign-in');
  }

  private set(state: {
    status: AuthStatus;
    me: MeResponse | null;
    error: ApiRequestError | null;
    signedOut: boolean;
  }): AuthStatus {
    this.state.set(state);
    return state.status;
  }
}
