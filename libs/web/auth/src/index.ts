/**
 * Who the user is, as the API sees them: the session state (signals), sign-in by password,
 * sign-out, the HTTP interceptors (CSRF header, typed API errors) and the route guards.
 * @packageDocumentation
 */
export { AuthService, type AuthStatus } from './lib/auth.service';
export { ApiRequestError, toApiRequestError, type UiErrorCode } from './lib/api-error';
export { csrfInterceptor, apiErrorInterceptor } from './lib/interceptors';
export { signedInGuard, adminGuard } from './lib/guards';
export { delegationLabel } from './lib/delegation-label';
