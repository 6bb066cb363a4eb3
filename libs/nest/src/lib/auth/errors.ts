import type { ApiErrorCode } from '../contract';

/**
 * An error the API answers with a given status and code. `hint` says what to do; nothing in it
 * ever contains a token, key or credential.
 */
export class ApiException extends Error {
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ApiException';
  }
}

/** 401 that asks the browser to (re)negotiate: the filter adds `WWW-Authenticate: Negotiate`. */
export class NegotiateChallenge extends ApiException {
  constructor(code: ApiErrorCode, message: string, hint?: string, options?: { cause?: unknown }) {
    super(401, code, message, hint, options);
    this.name = 'NegotiateChallenge';
  }
}

export const HINT_NO_TICKET =
  'Sign in to Kerberos (kinit, or your desktop login), and allow this site for Negotiate: Chrome/Edge policy ' +
  'AuthServerAllowlist, Firefox network.negotiate-auth.trusted-uris. Or sign in with your password.';

export const HINT_NTLM =
  'The browser offered NTLM, not Kerberos: it had no Kerberos ticket for this site. Check that you have a ticket (klist), ' +
  'that the site is in AuthServerAllowlist / network.negotiate-auth.trusted-uris, and that you use the host name of the ' +
  'HTTP service principal (not an IP address).';

export const HINT_DELEGATION =
  'This server runs with unconstrained delegation and your browser did not forward your ticket. Allow delegation for this ' +
  'site (Chrome/Edge policy AuthNegotiateDelegateAllowlist, Firefox network.negotiate-auth.delegation-uris), make sure your ' +
  'ticket is forwardable (kinit -f), or sign in with your password.';
