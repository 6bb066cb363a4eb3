/**
 * GSSAPI (Kerberos) authentication for node-postgres, driven by a per-user credential from
 * `@forwardable/gssapi`. See the README for `pg.Pool` and TypeORM examples.
 * @packageDocumentation
 */
export { GssapiStream, gssapiStream, type GssapiStreamOptions } from './lib/gssapi-stream';
export { gssapiClientConfig, roleFromPrincipal, type GssapiConnectionTarget } from './lib/config';
export { PgAuthError, PgGssapiHandshakeError, pgAuthErrorFrom, type PgAuthErrorCode, type ServerErrorFields } from './lib/errors';
