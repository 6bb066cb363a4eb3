/**
 * `@forwardable/nest`: Kerberos (HTTP Negotiate) sign-on and per-user PostgreSQL access for Nest.
 *
 * - {@link ForwardableModule}: `forRoot` / `forRootAsync` with the service keytab and principal and
 *   where PostgreSQL is; a global deny-by-default guard, sessions, the credential vault, the password
 *   fallback, JSON errors.
 * - {@link Public} opens a route; {@link CurrentUser} is the signed-in user.
 * - {@link CredentialLease}: one session's credential, principal, role and end; the vault owns it.
 * - {@link UserDb}: the user's own TypeORM `DataSource`, connected as the user with their delegated
 *   credential, so PostgreSQL row-level security decides which rows they see.
 *
 * See README.md for a runnable example.
 * @packageDocumentation
 */
export {
  ForwardableModule,
  LOGIN_LIMITS,
  loginThrottleKey,
  FORWARDABLE_OPTIONS,
  ForwardableConfigurableModule,
  type ForwardableModuleOptions,
} from './lib/forwardable.module';
export { type AuthOptions, type PasswordLoginOptions, AUTH_OPTIONS } from './lib/auth/options';
// The name-case rule of FORWARDABLE_USERNAME_CASE, for apps that take user or group names as input.
export { roleNameCase, USERNAME_CASES, type UsernameCase } from '@forwardable/pg-gssapi';
export { Public, CurrentUser, IS_PUBLIC } from './lib/auth/decorators';
export { type AuthUser, SessionService } from './lib/auth/session.service';
export { GroupsService } from './lib/auth/groups.service';
export { MemorySessionStore, type SessionStore, type SessionData, type EndedSession } from './lib/auth/session-store';
export {
  CredentialLease,
  databaseRoleOf,
  type CredentialLeaseInit,
  type LeaseEndHook,
  type LeaseEndReason,
} from './lib/auth/credential-lease';
export { RedisSessionStore } from './lib/auth/redis-session-store';
export { CredentialVault } from './lib/auth/credential-vault';
export { NegotiateService, type Negotiated, type NegotiationContinues } from './lib/auth/negotiate.service';
export { UserDb } from './lib/auth/user-db.service';
export { ApiException, NegotiateChallenge } from './lib/auth/errors';
export { ApiExceptionFilter } from './lib/auth/api-exception.filter';
export { toMe } from './lib/auth/auth.controller';
export { AuthMetrics } from './lib/auth/auth-metrics';
export {
  UserDataSources,
  CredentialExpiredError,
  PoolCapacityError,
  type PoolCapacityReason,
  type UserDataSourceCounters,
  type ReadRoutingCounters,
  type StandbyStats,
  RAW_HANDOUT_WINDOW_MS,
} from './lib/db/user-data-sources';
export { UserDataSourcesModule } from './lib/db/user-data-sources.module';
export {
  type UserDataSourcesOptions,
  type ReadHostOptions,
  MODULE_OPTIONS_TOKEN as USER_DATA_SOURCES_OPTIONS,
  ConfigurableModuleClass as UserDataSourcesConfigurableModule,
} from './lib/db/options';
export {
  CSRF_HEADER,
  CSRF_VALUE,
  SESSION_COOKIE,
  isSameOriginPath,
  type ApiError,
  type ApiErrorCode,
  type DelegationKind,
  type DelegationMode,
  type LoginRequest,
  type LoginResponse,
  type MeResponse,
} from './lib/contract';
export { type LdapOptions, ldapOptionsFromEnv, ldapBindOf } from './lib/directory/ldap';
export { LdapGssapiBindError, assertGssapiTransport } from './lib/directory/sasl-gssapi';
export { readDirectory, type DirectoryReadOptions, type DirectorySnapshot } from './lib/roles/directory';
export {
  MANAGED_ROLE,
  planRoles,
  readDatabaseRoles,
  renderRolePlan,
  applyRolePlan,
  type DatabaseRoles,
  type RolePlan,
  type RolePlanOptions,
  type RoleQueryable,
  type RoleState,
  type RoleStep,
} from './lib/roles/plan';
export { syncRoles, type RoleSyncOptions, type RoleSyncResult } from './lib/roles/sync';
