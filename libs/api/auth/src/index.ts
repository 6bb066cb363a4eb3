/** Kerberos (HTTP Negotiate) sign-on for Nest: strategy, guard, sessions, credential vault, password fallback. */
export { ForwardableAuthModule, LOGIN_LIMITS } from './lib/auth.module';
export { type AuthOptions, type PasswordLoginOptions, AUTH_OPTIONS } from './lib/options';
export { Public, CurrentUser } from './lib/decorators';
export { type AuthUser, SessionService } from './lib/session.service';
export { MemorySessionStore, type SessionStore, type SessionData } from './lib/session-store';
export { RedisSessionStore } from './lib/redis-session-store';
export { CredentialVault } from './lib/credential-vault';
export { NegotiateService } from './lib/negotiate.service';
export { UserDb } from './lib/user-db.service';
export { ApiException, NegotiateChallenge } from './lib/errors';
export { ApiExceptionFilter } from './lib/api-exception.filter';
export { toMe } from './lib/auth.controller';
export { AuthMetrics } from './lib/auth-metrics';
