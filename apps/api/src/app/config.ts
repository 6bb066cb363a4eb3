import { accessSync, constants, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { isSameOriginPath, type DelegationMode } from '@forwardable/shared/contracts';
import { ldapOptionsFromEnv, type LdapOptions, type ReadHostOptions } from '@forwardable/nest';
import { GSSENC_MODES, linkProtectionPolicy, SSL_MODES, USERNAME_CASES, type GssEncMode, type SslMode, type UsernameCase } from '@forwardable/pg-gssapi';

/** The API's validated configuration. There is no database user or password in it, by design. */
export interface ApiConfig {
  port: number;
  listen: string;
  /** krb5.conf for libkrb5 (KRB5_CONFIG); undefined: the system default. */
  krb5Config?: string;
  replayCacheDir?: string;
  keytab: string;
  servicePrincipal: string;
  delegation: DelegationMode;
  allowedRealms?: string[];
  /**
   * FORWARDABLE_USERNAME_CASE: `exact` (default) or `lower` (AD principals such as `Alice@REALM`
   * become the role `alice`; PostgreSQL then needs `krb_caseins_users = on`).
   */
  usernameCase: UsernameCase;
  sessionMaxAgeMs: number;
  /** Live sessions per principal; a new one beyond it ends the oldest. */
  maxSessionsPerUser: number;
  /** Proxies whose `X-Forwarded-For` is believed (Express `trust proxy`); empty: none. */
  trustedProxies: string[];
  secureCookies: 'auto' | boolean;
  credentialStore: 'memory' | 'file';
  credentialDir?: string;
  admins: string[];
  verifyKdc: boolean;
  passwordLogin: boolean;
  /** Where the SPA goes after a password sign-in that names no page to return to (a path on this site). */
  loginRedirect: string;
  pg: {
    host: string;
    hostaddr?: string;
    port: number;
    database: string;
    maxUsers: number;
    connectionsPerUser: number;
    maxConnections: number;
    /** Scheduler: time slice, per-user queue bound and queue deadline (FORWARDABLE_PG_SLICE_MS, _MAX_QUEUE_PER_USER, _QUEUE_TIMEOUT_MS). */
    sliceMs: number;
    maxQueuePerUser: number;
    queueTimeoutMs: number;
    /** GSSAPI transport encryption of every connection (FORWARDABLE_PG_GSSENCMODE, after the loopback policy). */
    gssencmode: GssEncMode;
    /** TLS when GSSAPI encryption is off or refused (FORWARDABLE_PG_SSLMODE, after the loopback policy). */
    sslmode: SslMode;
    /** CA file for the server's certificate (FORWARDABLE_PG_SSLROOTCERT). */
    sslrootcert?: string;
    /** Set when the operator disabled encryption to a remote server: log it loudly at start. */
    cleartextWarning?: string;
    /**
     * Hot standbys for reads (FORWARDABLE_PG_READ_HOSTS, `host[:port],...`), each with the link
     * protection its host gets and the primary's address when it has the primary's host name.
     */
    readHosts: ReadHostOptions[];
    /** The primary serves reads too, as one member of the read set (FORWARDABLE_PG_READ_PRIMARY, default true). */
    primaryServesReads: boolean;
  };
  /** Built SPA to serve on the same origin; undefined: API only. */
  webDir?: string;
  /** Group lookup (admins = members of the admin group); undefined: FORWARDABLE_ADMINS only. */
  ldap?: LdapOptions;
  adminGroup: string;
  /** Shared session store for several replicas (`redis://host:port`); undefined: in memory. */
  redisUrl?: string;
  /**
   * Serve Prometheus metrics at `/api/metrics` (FORWARDABLE_METRICS, default off). They are
   * unauthenticated (for a scraper): turn them on only where the proxy keeps that path internal.
   */
  metrics: boolean;
}

/** Configuration is wrong: the message lists every problem and how to fix it. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Forwardable API configuration is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Read and check the configuration from the environment (`FORWARDABLE_*`), failing fast with
 * messages that name the variable and say what to do. Checks that the keytab exists and is
 * readable; the principal's presence in it and the realm are checked when the service
 * credential is acquired at start-up.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  const problems: string[] = [];
  const str = (name: string, fallback?: string): string | undefined => {
    const v = env[name]?.trim();
    return v ? v : fallback;
  };
  const required = (name: string, what: string): string => {
    const v = str(name);
    if (!v) problems.push(`${name} is not set: ${what}`);
    return v ?? '';
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = str(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) problems.push(`${name}=${raw} must be a whole number from ${min} to ${max}`);
    return n;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = str(name);
    if (raw === undefined) return fallback;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    problems.push(`${name}=${raw} must be true or false`);
    return fallback;
  };
  const file = (name: string, path: string | undefined, what: string) => {
    if (!path) return;
    if (!isAbsolute(path)) return problems.push(`${name}=${path} must be an absolute path`);
    try {
      if (!statSync(path).isFile()) return problems.push(`${name}=${path} is not a file: ${what}`);
      accessSync(path, constants.R_OK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') problems.push(`${name}=${path} does not exist: ${what}`);
      else if (code === 'EACCES') {
        problems.push(`${name}=${path} is not readable by uid ${process.getuid?.()}: give this user read access (chown, or chmod 0640 with a shared group); never make it world-readable`);
      } else problems.push(`${name}=${path}: ${(e as Error).message}`);
    }
  };

  const keytab = required('FORWARDABLE_KEYTAB', 'the keytab of the HTTP service principal (export it once with kadmin ktadd, or ktpass/msktutil for AD)');
  file('FORWARDABLE_KEYTAB', keytab, 'export the service key into it once (kadmin ktadd -k <file> HTTP/<host>)');
  const servicePrincipal = required('FORWARDABLE_SERVICE_PRINCIPAL', 'the HTTP service principal, e.g. HTTP/app.example.com@EXAMPLE.COM');
  if (servicePrincipal && !/^HTTP\/[^@/\s]+@[^@\s]+$/.test(servicePrincipal)) {
    problems.push(`FORWARDABLE_SERVICE_PRINCIPAL=${servicePrincipal} must look like HTTP/<host name in the URL>@REALM`);
  }
  // Realm names are case-sensitive and, by convention (and always in Active Directory, where the
  // realm is the DNS domain in capitals), upper case: ad.test is not AD.TEST, and the keytab and
  // tickets say AD.TEST.
  const serviceRealm = servicePrincipal?.split('@')[1];
  if (serviceRealm && serviceRealm !== serviceRealm.toUpperCase()) {
    problems.push(`FORWARDABLE_SERVICE_PRINCIPAL=${servicePrincipal}: the realm must be written in upper case (${servicePrincipal.replace(/@[^@]*$/, `@${serviceRealm.toUpperCase()}`)}); Active Directory's realm is its DNS domain in capitals`);
  }
  for (const r of (str('FORWARDABLE_ALLOWED_REALMS') ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    if (r !== r.toUpperCase()) problems.push(`FORWARDABLE_ALLOWED_REALMS: realm ${r} must be written in upper case (${r.toUpperCase()})`);
  }
  const krb5Config = str('FORWARDABLE_KRB5_CONFIG', str('KRB5_CONFIG'));
  file('FORWARDABLE_KRB5_CONFIG', krb5Config, 'point it at the krb5.conf that names your realm and KDCs');
  const delegation = str('FORWARDABLE_DELEGATION', 'constrained');
  if (delegation !== 'constrained' && delegation !== 'unconstrained') {
    problems.push(`FORWARDABLE_DELEGATION=${delegation} must be constrained (S4U2proxy) or unconstrained (forwarded TGT)`);
  }
  const usernameCase = str('FORWARDABLE_USERNAME_CASE', 'exact') as string;
  if (!USERNAME_CASES.includes(usernameCase as UsernameCase)) {
    problems.push(
      `FORWARDABLE_USERNAME_CASE=${usernameCase} must be one of ${USERNAME_CASES.join(', ')}: exact keeps the principal's name ` +
        `as the role name, lower lower-cases it (Active Directory principals such as Alice@REALM; set krb_caseins_users = on in postgresql.conf)`,
    );
  }
  const credentialStore = str('FORWARDABLE_CREDENTIAL_STORE', 'memory');
  if (credentialStore !== 'memory' && credentialStore !== 'file') problems.push(`FORWARDABLE_CREDENTIAL_STORE=${credentialStore} must be memory or file`);
  const credentialDir = str('FORWARDABLE_CREDENTIAL_DIR');
  if (credentialStore === 'file' && !credentialDir) problems.push('FORWARDABLE_CREDENTIAL_DIR is required with FORWARDABLE_CREDENTIAL_STORE=file (a 0700 directory)');
  const secure = str('FORWARDABLE_SECURE_COOKIES', 'auto');
  const secureCookies = secure === 'auto' ? 'auto' : bool('FORWARDABLE_SECURE_COOKIES', false);
  const pgHost = required('FORWARDABLE_PG_HOST', 'the host name in PostgreSQL\'s service principal (postgres/<host>)');
  const database = required('FORWARDABLE_PG_DATABASE', 'the application database');
  if (str('FORWARDABLE_PG_PASSWORD') || str('PGPASSWORD')) {
    problems.push('a database password is set (FORWARDABLE_PG_PASSWORD or PGPASSWORD): Forwardable connects as each user with Kerberos and must hold no password; remove it');
  }
  // Only these proxies' X-Forwarded-For decides the client address (login throttle, logs); by
  // default none, so a client cannot pick its own address. Express's names (loopback, linklocal,
  // uniquelocal), addresses and CIDRs.
  const trustedProxies = (str('FORWARDABLE_TRUSTED_PROXIES', '') as string).split(',').map((p) => p.trim()).filter(Boolean);
  for (const p of trustedProxies) {
    if (!/^(loopback|linklocal|uniquelocal)$/.test(p) && !isIP(p.replace(/\/\d{1,3}$/, ''))) {
      problems.push(`FORWARDABLE_TRUSTED_PROXIES: ${p} is not an IP address, a CIDR (10.0.0.0/8) or one of loopback, linklocal, uniquelocal`);
    }
  }
  // A remote PostgreSQL gets an encrypted link or the API does not start (#17); see linkProtectionPolicy.
  const gssencRaw = str('FORWARDABLE_PG_GSSENCMODE');
  const sslRaw = str('FORWARDABLE_PG_SSLMODE');
  const sslrootcert = str('FORWARDABLE_PG_SSLROOTCERT');
  file('FORWARDABLE_PG_SSLROOTCERT', sslrootcert, "the PEM file of the CA that issued PostgreSQL's certificate");
  let pgLink: { gssencmode: GssEncMode; sslmode: SslMode; warning?: string } = { gssencmode: 'require', sslmode: 'prefer' };
  if (gssencRaw !== undefined && !GSSENC_MODES.includes(gssencRaw as GssEncMode)) {
    problems.push(`FORWARDABLE_PG_GSSENCMODE=${gssencRaw} must be one of ${GSSENC_MODES.join(', ')} (libpq's names)`);
  } else if (sslRaw !== undefined && !SSL_MODES.includes(sslRaw as SslMode)) {
    problems.push(`FORWARDABLE_PG_SSLMODE=${sslRaw} must be one of ${SSL_MODES.join(', ')} (libpq's names; "allow" is not supported)`);
  } else if (pgHost) {
    try {
      pgLink = linkProtectionPolicy({
        host: pgHost,
        hostaddr: str('FORWARDABLE_PG_HOSTADDR'),
        gssencmode: gssencRaw as GssEncMode | undefined,
        sslmode: sslRaw as SslMode | undefined,
        sslrootcert,
      });
    } catch (e) {
      problems.push(`FORWARDABLE_PG_GSSENCMODE=${gssencRaw ?? '(default)'}, FORWARDABLE_PG_SSLMODE=${sslRaw ?? '(default)'}: ${(e as Error).message}`);
    }
  }
  const readHosts: ReadHostOptions[] = [];
  for (const item of (str('FORWARDABLE_PG_READ_HOSTS', '') as string).split(',').map((h) => h.trim()).filter(Boolean)) {
    const m = /^([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(item);
    const port = m?.[2] === undefined ? undefined : Number(m[2]);
    if (!m || (port !== undefined && (port < 1 || port > 65535))) {
      problems.push(`FORWARDABLE_PG_READ_HOSTS: "${item}" is not host[:port] (the host name of the standby's postgres/<host> principal, e.g. db-standby1.example.com:5432)`);
      continue;
    }
    const host = m[1];
    // The primary's pinned address goes with its name: the same name resolves to the same host.
    const hostaddr = host === pgHost ? str('FORWARDABLE_PG_HOSTADDR') : undefined;
    try {
      const link = linkProtectionPolicy({ host, hostaddr, gssencmode: gssencRaw as GssEncMode | undefined, sslmode: sslRaw as SslMode | undefined, sslrootcert });
      readHosts.push({ host, hostaddr, port, gssencmode: link.gssencmode, sslmode: link.sslmode });
    } catch (e) {
      problems.push(`FORWARDABLE_PG_READ_HOSTS: ${item}: ${(e as Error).message}`);
    }
  }
  const config: ApiConfig = {
    port: int('FORWARDABLE_PORT', 3000, 1, 65535),
    listen: str('FORWARDABLE_LISTEN', '127.0.0.1') as string,
    krb5Config,
    replayCacheDir: str('FORWARDABLE_RCACHE_DIR', str('KRB5RCACHEDIR')),
    keytab,
    servicePrincipal,
    delegation: delegation as DelegationMode,
    allowedRealms: str('FORWARDABLE_ALLOWED_REALMS')?.split(',').map((r) => r.trim()).filter(Boolean),
    usernameCase: usernameCase as UsernameCase,
    sessionMaxAgeMs: int('FORWARDABLE_SESSION_MAX_AGE_SECONDS', 8 * 3600, 60, 7 * 24 * 3600) * 1000,
    maxSessionsPerUser: int('FORWARDABLE_MAX_SESSIONS_PER_USER', 10, 1, 1000),
    trustedProxies,
    secureCookies,
    credentialStore: credentialStore as 'memory' | 'file',
    credentialDir,
    admins: (str('FORWARDABLE_ADMINS', '') as string).split(',').map((a) => a.trim()).filter(Boolean),
    verifyKdc: bool('FORWARDABLE_VERIFY_KDC', true),
    passwordLogin: bool('FORWARDABLE_PASSWORD_LOGIN', true),
    loginRedirect: str('FORWARDABLE_LOGIN_REDIRECT', '/') as string,
    pg: {
      host: pgHost,
      hostaddr: str('FORWARDABLE_PG_HOSTADDR'),
      port: int('FORWARDABLE_PG_PORT', 5432, 1, 65535),
      database,
      maxUsers: int('FORWARDABLE_PG_MAX_USERS', 100, 1, 100_000),
      connectionsPerUser: int('FORWARDABLE_PG_CONNECTIONS_PER_USER', 2, 1, 100),
      maxConnections: int('FORWARDABLE_PG_MAX_CONNECTIONS', 200, 1, 100_000),
      sliceMs: int('FORWARDABLE_PG_SLICE_MS', 250, 1, 600_000),
      maxQueuePerUser: int('FORWARDABLE_PG_MAX_QUEUE_PER_USER', 64, 1, 100_000),
      queueTimeoutMs: int('FORWARDABLE_PG_QUEUE_TIMEOUT_MS', 10_000, 1, 600_000),
      gssencmode: pgLink.gssencmode,
      sslmode: pgLink.sslmode,
      sslrootcert,
      cleartextWarning: pgLink.warning,
      readHosts,
      primaryServesReads: bool('FORWARDABLE_PG_READ_PRIMARY', true),
    },
    webDir: str('FORWARDABLE_WEB_DIR'),
    adminGroup: str('FORWARDABLE_ADMIN_GROUP', 'forwardable-admins') as string,
    redisUrl: str('FORWARDABLE_REDIS_URL'),
    metrics: bool('FORWARDABLE_METRICS', false),
  };
  if (!isSameOriginPath(config.loginRedirect)) {
    problems.push(`FORWARDABLE_LOGIN_REDIRECT=${config.loginRedirect} must be a path on this site starting with a single / (such as /files), not a URL: an absolute or protocol-relative target would be an open redirect`);
  }
  if (config.redisUrl && !/^rediss?:\/\//.test(config.redisUrl)) problems.push(`FORWARDABLE_REDIS_URL=${config.redisUrl} must start with redis:// or rediss://`);
  // One reader of the FORWARDABLE_LDAP_* variables, shared with the role provisioning CLI.
  try {
    config.ldap = ldapOptionsFromEnv(env);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    problems.push(...e.message.split('\n').slice(1).map((l) => l.replace(/^\s*-\s*/, '')));
  }
  if (problems.length) throw new ConfigError(problems);
  return config;
}
