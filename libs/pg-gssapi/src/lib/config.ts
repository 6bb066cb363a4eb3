import type { ClientConfig } from 'pg';
import type { Credential } from '@forwardable/gssapi';
import { gssapiStream } from './gssapi-stream';

/** Where PostgreSQL is: the host name must be the one in its `postgres/<host>` principal. */
export interface GssapiConnectionTarget {
  /** Host name in the server's SPN, e.g. `localhost` or `db.example.com`. */
  host: string;
  /** Connect to this IP instead of resolving `host` (libpq's `hostaddr`). */
  hostaddr?: string;
  port?: number;
  database: string;
  /** Service name of the server's principal (libpq `krbsrvname`), default `postgres`. */
  serviceName?: string;
  /**
   * Realms whose principals may connect (the database role is the principal without the realm,
   * as with pg_hba's `include_realm=0`); default: any realm is refused but the credential's own.
   */
  allowedRealms?: string[];
}

/**
 * The database role for a principal: `alice@EXAMPLE.COM` → `alice`, as pg_hba's `include_realm=0`
 * maps it. With `allowedRealms`, the first is the home realm: a principal of another allowed realm
 * maps to `name@REALM`, so two realms' `dbadmin` never become one role (PostgreSQL then refuses
 * it unless such a role and a pg_ident mapping were made on purpose). A principal with an instance
 * (`svc/host@R`) has no role and is refused. The one mapping: `@forwardable/nest` uses it too.
 * @throws RangeError when the principal is malformed or its realm is not allowed.
 */
export function roleFromPrincipal(principal: string, allowedRealms?: string[]): string {
  const at = principal.lastIndexOf('@');
  if (at <= 0 || at === principal.length - 1) throw new RangeError(`"${principal}" is not a Kerberos principal name (user@REALM)`);
  const name = principal.slice(0, at);
  const realm = principal.slice(at + 1);
  if (name.includes('/')) throw new RangeError(`"${principal}" is a service principal; only user principals map to database roles`);
  if (allowedRealms && !allowedRealms.includes(realm)) {
    throw new RangeError(`principals of realm ${realm} may not connect (allowed: ${allowedRealms.join(', ') || 'none'})`);
  }
  return allowedRealms?.length && realm !== allowedRealms[0] ? `${name}@${realm}` : name;
}

/**
 * A complete node-postgres config that connects as the credential's user with GSSAPI, and no
 * password: usable for `new pg.Client(...)`, `new pg.Pool(...)` or TypeORM's `extra`.
 */
export function gssapiClientConfig(credential: Credential, target: GssapiConnectionTarget): ClientConfig {
  const user = roleFromPrincipal(credential.principal, target.allowedRealms);
  return {
    host: target.host,
    port: target.port ?? 5432,
    database: target.database,
    user,
    stream: gssapiStream({ credential, hostaddr: target.hostaddr, serviceName: target.serviceName }) as unknown as ClientConfig['stream'],
  };
}
