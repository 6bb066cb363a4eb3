import type { ClientConfig } from 'pg';
import type { Credential } from '@forwardable/gssapi';
import { gssapiStream, type GssEncMode } from './gssapi-stream';

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
  /** GSSAPI transport encryption (libpq's `gssencmode`): `disable`, `prefer` (default) or `require`. */
  gssencmode?: GssEncMode;
}

/**
 * The database role for a principal: `alice@EXAMPLE.COM` → `alice`, as pg_hba's `include_realm=0`
 * maps it. A principal with an instance (`svc/host@R`) has no such role and is refused.
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
  return name;
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
    stream: gssapiStream({ credential, hostaddr: target.hostaddr, serviceName: target.serviceName, gssencmode: target.gssencmode }) as unknown as ClientConfig['stream'],
  };
}
