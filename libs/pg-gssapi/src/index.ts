/**
 * GSSAPI (Kerberos) authentication for node-postgres, driven by a per-user credential from
 * `@forwardable/gssapi`. See the README for `pg.Pool` and TypeORM examples.
 * @packageDocumentation
 */
export {
  GSSENC_MODES,
  GssapiStream,
  gssapiStream,
  SSL_MODES,
  type GssEncMode,
  type GssapiStreamOptions,
  type PgLinkProtection,
  type PgTlsInfo,
  type SslMode,
} from './lib/gssapi-stream';
export {
  gssapiClientConfig,
  gssapiTargetFromEnv,
  gssapiTypeOrmOptions,
  isLoopbackTarget,
  linkProtectionPolicy,
  roleFromPrincipal,
  roleNameCase,
  USERNAME_CASES,
  type GssapiConnectionTarget,
  type UsernameCase,
  type GssapiTypeOrmOptions,
  type LinkProtectionPolicy,
} from './lib/config';
export { PgAuthError, PgGssapiHandshakeError, PgGssencBrokenError, PgGssencRefusedError, PgProtocolError, PgTlsError, PgTlsRefusedError, pgAuthErrorFrom, type PgAuthErrorCode, type ServerErrorFields } from './lib/errors';
