import type { DelegationMode } from '../contract';
import type { KerberosConfig } from '@forwardable/gssapi';
import { USERNAME_CASES, type UsernameCase } from '@forwardable/pg-gssapi';
import type { SessionStore } from './session-store';

/** Password fallback settings (as django-auth-kerberos offers them, with safer defaults). */
export interface PasswordLoginOptions {
  /** Offer `POST /api/auth/login`. Default true. */
  enabled?: boolean;
  /**
   * Prove the KDC by obtaining and accepting a ticket for our own service principal with our
   * keytab (what `krb5_verify_init_creds` does). Default true. Turning it off lets a rogue KDC log
   * anyone in; it is logged loudly at start-up.
   */
  verifyKdc?: boolean;
  /**
   * Lower-case the user name before building the principal (`Alice` → `alice@REALM`); when the
   * KDC has no such principal, the name as typed is tried (`Alice@REALM`). Default true.
   */
  caseInsensitive?: boolean;
  /**
   * Where the SPA goes after a password sign-in when the request names no page to return to.
   * A path on this site (`/files`); anything else is refused at start-up. Default `/`.
   */
  redirectTo?: string;
}

/** Sign-on settings: the part of `ForwardableModule.forRoot` options that is not `database`. */
export interface AuthOptions {
  /** Keytab holding the key of {@link AuthOptions.servicePrincipal}. */
  keytab: string;
  /** Our service principal, e.g. `HTTP/app.example.com@EXAMPLE.COM`. */
  servicePrincipal: string;
  /**
   * `unconstrained`: the browser must forward its TGT (a request without one is refused with a
   * message on how to enable delegation). `constrained`: S4U2proxy with a both-usage service
   * credential; browsers need no delegation settings. Default `constrained`.
   */
  delegation?: DelegationMode;
  /**
   * Realms whose users may sign in; the first is the home realm. Default: the service principal's
   * realm only. A user of the home realm maps to the database role `name`, a user of another listed
   * realm to `name@REALM` (two realms' `dbadmin` never become one role).
   */
  allowedRealms?: string[];
  /**
   * How a principal's name becomes the user's database role and the name the API shows
   * (`FORWARDABLE_USERNAME_CASE`): `exact` (default) keeps it, `lower` lower-cases it, so that
   * `Alice@AD.EXAMPLE` and `alice@AD.EXAMPLE` (one Active Directory account, whichever case the
   * user typed) are the role `alice`. Applied to sessions, `/api/auth/me`, per-user pools, the
   * group names of a session and the grantees a user types. With `lower`, PostgreSQL must have
   * `krb_caseins_users = on` (its principal-vs-role check is case-sensitive otherwise), and two
   * principals that differ only in case become one role: use it only where the KDC treats them
   * as one account. Any other value is refused at start-up.
   */
  usernameCase?: UsernameCase;
  /** Longest session, whatever the credential says. Default 8 h. */
  sessionMaxAgeMs?: number;
  /**
   * Most live sessions one principal may hold (every Negotiate without a cookie and every password
   * sign-in makes one): a new session beyond it ends the user's oldest (its credential destroyed,
   * on every replica). Default 10.
   */
  maxSessionsPerUser?: number;
  /**
   * How often a replica checks that the sessions it holds credentials for are still in the store,
   * ending those that are not (an ended-session announcement it missed while cut off from Redis).
   * Default 60 000 ms.
   */
  sessionCheckIntervalMs?: number;
  /** `Secure` cookies: `auto` (when the request came over TLS), or always / never. Default `auto`. */
  secureCookies?: 'auto' | boolean;
  /** Keep credentials in process memory (default) or in FILE caches in {@link AuthOptions.fileCacheDir}. */
  credentialStore?: 'memory' | 'file';
  /** Private directory (0700) for FILE caches; created when missing. */
  fileCacheDir?: string;
  /** Users (database role names) in the admin group without a directory lookup. */
  admins?: string[];
  /** Name of the admin group (from LDAP). Default `forwardable-admins`. */
  adminGroup?: string;
  /**
   * Group lookup in LDAP; without it, groups come from {@link AuthOptions.admins} only. Binds with
   * SASL/GSSAPI as the service's own keytab identity (no LDAP password; needs ldaps:// or a
   * loopback URL) or with a simple bind (use ldaps:// or a loopback URL).
   */
  ldap?: {
    url: string;
    baseDn: string;
    /**
     * `gssapi`: SASL/GSSAPI (RFC 4752) as {@link AuthOptions.servicePrincipal} from
     * {@link AuthOptions.keytab}, no security layer (so ldaps:// or loopback only). `simple`:
     * `bindDn` + `bindPassword`. Default: `simple` when `bindDn` is set, otherwise `gssapi`.
     */
    bind?: 'simple' | 'gssapi';
    /** Simple bind only: the DN to bind as. */
    bindDn?: string;
    /** Simple bind only: its password. */
    bindPassword?: string;
    /** GSSAPI only: the directory's service, `ldap@host` or `ldap/host@REALM`. Default `ldap@<host of url>`. */
    saslService?: string;
    /**
     * ldaps:// only: a PEM file with the CA certificate(s) that signed the directory's TLS
     * certificate, trusted in addition to the system's store (e.g. an AD enterprise CA). Read at
     * each connection, so a renewed file needs no restart.
     */
    caFile?: string;
    /** Where groups (groupOfNames) live. Default: baseDn. */
    groupsBaseDn?: string;
    /** DN of a principal's entry, with `{principal}`, `{realm}`, `{base}`. Default: MIT's LDAP KDB layout. */
    memberDn?: string;
  };
  passwordLogin?: PasswordLoginOptions;
  /** Session store; default in memory (one replica). */
  sessionStore?: SessionStore;
  /**
   * Point the Kerberos library at a krb5.conf and a replay-cache directory before the service
   * credential is acquired (see `configureKerberos` in `@forwardable/gssapi`). Default: the
   * process environment (`KRB5_CONFIG`, `KRB5RCACHEDIR`) or the system defaults.
   */
  kerberos?: KerberosConfig;
}

/** Injection token of the {@link AuthOptions} in effect (the options given to `ForwardableModule.forRoot`). */
export const AUTH_OPTIONS = 'FORWARDABLE_AUTH_OPTIONS';

/** The realm of a principal name (`a/b@R` → `R`). */
export function realmOf(principal: string): string {
  const at = principal.lastIndexOf('@');
  if (at < 0) throw new RangeError(`"${principal}" has no realm: write it as service/host@REALM`);
  return principal.slice(at + 1);
}

/**
 * The {@link AuthOptions.usernameCase} in effect (default `exact`).
 * @throws RangeError for any other value, naming the allowed ones.
 */
export function usernameCaseOf(options: Pick<AuthOptions, 'usernameCase'>): UsernameCase {
  const c = options.usernameCase ?? 'exact';
  if (!USERNAME_CASES.includes(c)) {
    throw new RangeError(`usernameCase (FORWARDABLE_USERNAME_CASE) must be one of ${USERNAME_CASES.join(', ')}, not "${String(c)}"`);
  }
  return c;
}
