import { isIP } from 'node:net';
import type { ClientConfig } from 'pg';
import type { Credential } from '@forwardable/gssapi';
import { GssapiStream, gssapiStream, GSSENC_MODES, SSL_MODES, type GssEncMode, type SslMode } from './gssapi-stream';

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
  /**
   * GSSAPI transport encryption (libpq's `gssencmode`): `disable`, `prefer` or `require`. Default:
   * `prefer` when PostgreSQL is on loopback, `require` otherwise (see {@link linkProtectionPolicy}).
   */
  gssencmode?: GssEncMode;
  /**
   * TLS (libpq's `sslmode`), tried when GSSAPI encryption is off or refused. Default `prefer`.
   * A remote server is accepted with `require`, `verify-ca` or `verify-full` instead of
   * `gssencmode` `require` (see {@link linkProtectionPolicy}).
   */
  sslmode?: SslMode;
  /** PEM file of the CA for the server's certificate (libpq's `sslrootcert`). */
  sslrootcert?: string;
  /**
   * How the principal's name becomes the role name (see {@link roleFromPrincipal}): `exact`
   * (default) or `lower`. With `lower`, PostgreSQL needs `krb_caseins_users = on` for a principal
   * whose name is not already lower case.
   */
  usernameCase?: UsernameCase;
}

/**
 * How a principal's name becomes a database role name: `exact` keeps it (`Alice@R` → `Alice`),
 * `lower` lower-cases it (`Alice@R` → `alice`), for directories such as Active Directory where
 * `Alice` and `alice` are one account and the ticket carries whichever case the user typed.
 */
export type UsernameCase = 'exact' | 'lower';

/** The values {@link UsernameCase} may take, for validating configuration. */
export const USERNAME_CASES: readonly UsernameCase[] = ['exact', 'lower'];

/**
 * A user or group name as a role name under `usernameCase`: lower-cased in `lower` mode (only the
 * part before a trailing `@REALM`, which stays as written: realms are case-sensitive), unchanged
 * in `exact` mode. What a typed grantee, a directory member or a group name goes through, so
 * that they name the same role as {@link roleFromPrincipal} gives the user.
 * @throws RangeError for an unknown mode, saying which are allowed.
 */
export function roleNameCase(name: string, usernameCase: UsernameCase = 'exact'): string {
  if (usernameCase === 'exact') return name;
  if (usernameCase !== 'lower') throw new RangeError(`usernameCase must be one of ${USERNAME_CASES.join(', ')}, not "${String(usernameCase)}"`);
  const at = name.lastIndexOf('@');
  return at > 0 ? `${name.slice(0, at).toLowerCase()}${name.slice(at)}` : name.toLowerCase();
}

/**
 * Whether the connection stays on this machine: `hostaddr` (or else `host`) is a loopback address
 * (127.0.0.0/8, ::1) or `localhost`. Any other name counts as remote: it is not resolved, since
 * what a name resolves to can change under us.
 */
export function isLoopbackTarget(target: Pick<GssapiConnectionTarget, 'host' | 'hostaddr'>): boolean {
  const addr = (target.hostaddr ?? target.host).replace(/^\[|\]$/g, '').toLowerCase();
  if (addr === 'localhost') return true;
  if (isIP(addr) === 4) return addr.startsWith('127.');
  if (isIP(addr) === 6) return addr === '::1' || /^::ffff:127\./.test(addr);
  return false;
}

/** What {@link linkProtectionPolicy} decided for a target. */
export interface LinkProtectionPolicy {
  /** The GSSAPI encryption mode every connection to the target uses. */
  gssencmode: GssEncMode;
  /** The TLS mode every connection to the target uses. */
  sslmode: SslMode;
  /** Set when the link to a remote server may carry cleartext because the operator said `disable`. */
  warning?: string;
}

/**
 * The protection every connection to `target` gets. On loopback: the explicit modes, by default
 * `prefer` for both. To any other host the link must be encrypted: by GSSAPI (`gssencmode`
 * `require`, the default there) or by TLS (`sslmode` `require`, `verify-ca` or `verify-full`,
 * after which `gssencmode` defaults to `prefer`: GSSAPI encryption first, as libpq orders them,
 * TLS when the server refuses it). An explicit `gssencmode` `prefer` to a remote server without
 * such an `sslmode` is refused (it would silently fall back to cleartext); an explicit `disable`
 * is allowed, with a warning to log loudly.
 * @throws RangeError for an unknown mode, `verify-*` without `sslrootcert`, or `prefer` to a remote server, saying what to set.
 */
export function linkProtectionPolicy(
  target: Pick<GssapiConnectionTarget, 'host' | 'hostaddr' | 'gssencmode' | 'sslmode' | 'sslrootcert'>,
): LinkProtectionPolicy {
  const mode = target.gssencmode;
  if (mode !== undefined && !GSSENC_MODES.includes(mode)) {
    throw new RangeError(`gssencmode must be one of ${GSSENC_MODES.join(', ')}, not "${String(mode)}"`);
  }
  const ssl = target.sslmode;
  if (ssl !== undefined && !SSL_MODES.includes(ssl)) {
    throw new RangeError(`sslmode must be one of ${SSL_MODES.join(', ')}, not "${String(ssl)}"`);
  }
  if ((ssl === 'verify-ca' || ssl === 'verify-full') && !target.sslrootcert) {
    throw new RangeError(`sslmode "${ssl}" needs sslrootcert (FORWARDABLE_PG_SSLROOTCERT): the PEM file of the CA that issued the server's certificate`);
  }
  const where = target.hostaddr ? `${target.host} (${target.hostaddr})` : target.host;
  if (isLoopbackTarget(target)) return { gssencmode: mode ?? 'prefer', sslmode: ssl ?? 'prefer' };
  const tlsRequired = ssl === 'require' || ssl === 'verify-ca' || ssl === 'verify-full';
  if (tlsRequired) return { gssencmode: mode ?? 'prefer', sslmode: ssl };
  if (mode === 'prefer') {
    throw new RangeError(
      `PostgreSQL at ${where} is not on loopback, and gssencmode "prefer" would fall back to an unencrypted link: ` +
        `use "require" (the default for a remote server) with a "hostgssenc" line in its pg_hba.conf, or sslmode ` +
        `"verify-full" with a "hostssl" line, or "disable" if the network path is otherwise protected`,
    );
  }
  if (mode === 'disable') {
    return {
      gssencmode: 'disable',
      sslmode: ssl ?? 'prefer',
      warning:
        `GSSAPI encryption to PostgreSQL at ${where} is DISABLED (gssencmode=disable) and TLS is not required ` +
        `(sslmode=${ssl ?? 'prefer'}): every query and every row may cross the network in cleartext and can be read ` +
        `or altered on the path. Use gssencmode=require, or sslmode=verify-full.`,
    };
  }
  return { gssencmode: 'require', sslmode: ssl ?? 'prefer' };
}
/**
 * The database role for a principal: `alice@EXAMPLE.COM` → `alice`, as pg_hba's `include_realm=0`
 * maps it. With `allowedRealms`, the first is the home realm: a principal of another allowed realm
 * maps to `name@REALM`, so two realms' `dbadmin` never become one role (PostgreSQL then refuses
 * it unless such a role and a pg_ident mapping were made on purpose). A principal with an instance
 * (`svc/host@R`) has no role and is refused. The one mapping: `@forwardable/nest` uses it too.
 * With `usernameCase` `lower` the name is lower-cased (`Alice@R` → `alice`); PostgreSQL then
 * accepts the ticket of `Alice@R` for the role `alice` only with `krb_caseins_users = on`.
 * @throws RangeError when the principal is malformed, its realm is not allowed, or the mode is unknown.
 */
export function roleFromPrincipal(principal: string, allowedRealms?: string[], usernameCase: UsernameCase = 'exact'): string {
  const at = principal.lastIndexOf('@');
  if (at <= 0 || at === principal.length - 1) throw new RangeError(`"${principal}" is not a Kerberos principal name (user@REALM)`);
  const name = principal.slice(0, at);
  const realm = principal.slice(at + 1);
  if (name.includes('/')) throw new RangeError(`"${principal}" is a service principal; only user principals map to database roles`);
  if (allowedRealms && !allowedRealms.includes(realm)) {
    throw new RangeError(`principals of realm ${realm} may not connect (allowed: ${allowedRealms.join(', ') || 'none'})`);
  }
  const role = roleNameCase(name, usernameCase);
  return allowedRealms?.length && realm !== allowedRealms[0] ? `${role}@${realm}` : role;
}

/**
 * The one way to get "a PostgreSQL connection as this credential": a complete node-postgres
 * config that connects as the credential's user with GSSAPI and no password, with the link
 * protection of {@link linkProtectionPolicy} for every connection it opens. Usable for
 * `new pg.Client(...)` and `new pg.Pool(...)`; see {@link gssapiTypeOrmOptions} for TypeORM.
 * @param overrides - `user`: connect as this role instead of the principal's (the doctor's probe);
 *   `onConnection`: called with each stream pg opens (to read its `protection`).
 */
export function gssapiClientConfig(
  credential: Credential,
  target: GssapiConnectionTarget,
  overrides: { user?: string; onConnection?: (stream: GssapiStream) => void } = {},
): ClientConfig {
  const user = overrides.user ?? roleFromPrincipal(credential.principal, target.allowedRealms, target.usernameCase);
  const { gssencmode, sslmode } = linkProtectionPolicy(target);
  const make = gssapiStream({ credential, hostaddr: target.hostaddr, serviceName: target.serviceName, gssencmode, sslmode, sslrootcert: target.sslrootcert });
  const onConnection = overrides.onConnection;
  const stream = onConnection
    ? () => {
        const s = make();
        onConnection(s);
        return s;
      }
    : make;
  return {
    host: target.host,
    port: target.port ?? 5432,
    database: target.database,
    user,
    stream: stream as unknown as ClientConfig['stream'],
  };
}

/**
 * The target from the `FORWARDABLE_PG_*` variables the command-line tools share (what
 * `source tmp/realms/<realm>/realm.env` sets): HOST (the host in postgres/<host>), HOSTADDR,
 * PORT, DATABASE, GSSENCMODE, SSLMODE and SSLROOTCERT; and `FORWARDABLE_USERNAME_CASE` (`exact`
 * or `lower`), so that a tool connects as the role the API would use for the same principal.
 * @throws Error naming the missing or invalid variable.
 */
export function gssapiTargetFromEnv(env: NodeJS.ProcessEnv = process.env): GssapiConnectionTarget {
  const need = (k: string) => {
    const v = env[k]?.trim();
    if (!v) throw new Error(`${k} is not set: source the realm's realm.env (or set it to your PostgreSQL's value)`);
    return v;
  };
  const port = Number(need('FORWARDABLE_PG_PORT'));
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`FORWARDABLE_PG_PORT=${env.FORWARDABLE_PG_PORT} must be a port number`);
  const mode = env.FORWARDABLE_PG_GSSENCMODE?.trim() || undefined;
  if (mode !== undefined && !GSSENC_MODES.includes(mode as GssEncMode)) {
    throw new Error(`FORWARDABLE_PG_GSSENCMODE=${mode} must be one of ${GSSENC_MODES.join(', ')}`);
  }
  const ssl = env.FORWARDABLE_PG_SSLMODE?.trim() || undefined;
  if (ssl !== undefined && !SSL_MODES.includes(ssl as SslMode)) {
    throw new Error(`FORWARDABLE_PG_SSLMODE=${ssl} must be one of ${SSL_MODES.join(', ')}`);
  }
  const usernameCase = env.FORWARDABLE_USERNAME_CASE?.trim() || undefined;
  if (usernameCase !== undefined && !USERNAME_CASES.includes(usernameCase as UsernameCase)) {
    throw new Error(`FORWARDABLE_USERNAME_CASE=${usernameCase} must be one of ${USERNAME_CASES.join(', ')}`);
  }
  const target: GssapiConnectionTarget = {
    host: need('FORWARDABLE_PG_HOST'),
    hostaddr: env.FORWARDABLE_PG_HOSTADDR?.trim() || undefined,
    port,
    database: need('FORWARDABLE_PG_DATABASE'),
    gssencmode: mode as GssEncMode | undefined,
    sslmode: ssl as SslMode | undefined,
    sslrootcert: env.FORWARDABLE_PG_SSLROOTCERT?.trim() || undefined,
    usernameCase: usernameCase as UsernameCase | undefined,
  };
  const policy = linkProtectionPolicy(target);
  if (policy.warning) process.emitWarning(policy.warning, { code: 'FORWARDABLE_PG_CLEARTEXT' });
  return target;
}

/** The connection part of TypeORM's `postgres` options, from {@link gssapiTypeOrmOptions}. */
export interface GssapiTypeOrmOptions {
  host: string;
  port: number;
  database: string;
  username: string;
  /** Passed to pg's Pool: the GSSAPI stream, plus whatever pool settings were given. */
  extra: Record<string, unknown> & { stream: unknown };
}

/**
 * {@link gssapiClientConfig} in TypeORM's shape: spread it into a `postgres` DataSource's options.
 * `extra` (pool size, timeouts) is merged into the result's `extra` next to the stream.
 */
export function gssapiTypeOrmOptions(credential: Credential, target: GssapiConnectionTarget, extra: Record<string, unknown> = {}): GssapiTypeOrmOptions {
  const c = gssapiClientConfig(credential, target);
  return { host: c.host as string, port: c.port as number, database: c.database as string, username: c.user as string, extra: { ...extra, stream: c.stream } };
}
