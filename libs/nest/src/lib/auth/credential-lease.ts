import type { Credential, StoredCache } from '@forwardable/gssapi';
import { roleFromPrincipal, type UsernameCase } from '@forwardable/pg-gssapi';
import { ApiException } from './errors';

/** Why a lease ended: what the pool closing it counts, and what a log line says. */
export type LeaseEndReason = 'logout' | 'expired' | 'replaced' | 'evicted' | 'ended-elsewhere' | 'shutdown';

/** Called once when a lease ends, before its credential is disposed (so a pool can close first). */
export type LeaseEndHook = (lease: CredentialLease, reason: LeaseEndReason) => void | Promise<void>;

/** What a lease is made of. The lease owns `credential` from then on. */
export interface CredentialLeaseInit {
  credential: Credential;
  /** The session the lease belongs to; any unique string outside the vault (tests, benchmarks). */
  sessionId: string;
  /**
   * Realms whose users may hold a lease; the first is the home realm (see {@link databaseRoleOf}).
   * Default: the principal's own realm (any realm: the KDC vouched for it), for use outside the vault.
   */
  realms?: readonly string[];
  /** How the principal's name becomes the role name: `exact` (default) or `lower` (see {@link databaseRoleOf}). */
  usernameCase?: UsernameCase;
  /** Epoch ms; never later than the credential's own end. Default: the credential's end. */
  expiresAt?: number;
  /** The credential's FILE cache, when the vault stored one: destroyed with the lease. */
  file?: StoredCache | null;
}

/** setTimeout's longest delay; a longer lease re-arms its timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * One signed-in session's Kerberos credential, with everything that hangs off it: the principal,
 * the database role it maps to, when it ends, and what must happen when it does. There is exactly
 * one timer per lease; when it fires, at logout, when the session is ended by another replica, or
 * at shutdown, {@link CredentialLease.end} runs the end hooks (the user's pool stops using the
 * credential), then destroys the FILE cache and disposes the credential. An ended lease is never
 * used again.
 */
export class CredentialLease {
  private id: string;
  /** The Kerberos principal of the credential (`alice@REALM`). */
  readonly principal: string;
  /** The database role (and display name) of the principal: {@link databaseRoleOf}. */
  readonly role: string;
  /** Epoch ms. */
  readonly createdAt = Date.now();
  /** Epoch ms. */
  readonly expiresAt: number;
  private readonly file: StoredCache | null;
  private readonly hooks = new Set<LeaseEndHook>();
  private readonly cred: Credential;
  private timer: NodeJS.Timeout | undefined;
  private ending: Promise<void> | null = null;

  /** @throws ApiException (403 REALM_REFUSED) when the principal maps to no role; the credential is then disposed. */
  constructor(init: CredentialLeaseInit) {
    this.cred = init.credential;
    try {
      this.principal = init.credential.principal;
      this.role = databaseRoleOf(this.principal, init.realms ?? [realmPart(this.principal)], init.usernameCase);
    } catch (err) {
      void init.file?.destroy(); // never rejects; the caller gets the refusal now
      init.credential.dispose();
      throw err;
    }
    this.id = init.sessionId;
    this.expiresAt = Math.min(init.expiresAt ?? Infinity, init.credential.expiresAt?.getTime() ?? Infinity);
    this.file = init.file ?? null;
    this.arm();
  }

  /** The session the lease belongs to (it follows the session when its id is rotated). */
  get sessionId(): string {
    return this.id;
  }

  /**
   * Follow the session to its new id (re-authentication rotated it); only the vault calls this.
   * @internal
   */
  moveTo(sessionId: string): void {
    this.id = sessionId;
  }

  /** The credential, for opening connections; check {@link CredentialLease.live} first. */
  get credential(): Credential {
    return this.cred;
  }

  /** The FILE cache name (`FILE:/...`), when the credential was stored in one. */
  get fileCache(): string | null {
    return this.ended ? null : (this.file?.name ?? null);
  }

  /** True from the moment {@link CredentialLease.end} is called. */
  get ended(): boolean {
    return this.ending !== null;
  }

  /** Not ended, not past its end, and the credential not disposed. */
  get live(): boolean {
    return !this.ended && this.expiresAt > Date.now() && !this.cred.disposed;
  }

  /**
   * Run `hook` when the lease ends (at once when it already has). Returns a function that removes it.
   */
  onEnd(hook: LeaseEndHook): () => void {
    if (this.ended) {
      void Promise.resolve().then(() => hook(this, 'expired'));
      return () => undefined;
    }
    this.hooks.add(hook);
    return () => this.hooks.delete(hook);
  }

  /** End the lease: hooks first, then the FILE cache and the credential. Idempotent; resolves when done. */
  end(reason: LeaseEndReason): Promise<void> {
    this.ending ??= this.finish(reason);
    return this.ending;
  }

  private async finish(reason: LeaseEndReason): Promise<void> {
    clearTimeout(this.timer);
    const hooks = [...this.hooks];
    this.hooks.clear();
    try {
      await Promise.allSettled(hooks.map(async (h) => h(this, reason)));
    } finally {
      await this.file?.destroy();
      this.cred.dispose();
    }
  }

  private arm(): void {
    const ms = this.expiresAt - Date.now();
    if (ms === Infinity) return;
    this.timer = setTimeout(() => (this.expiresAt - Date.now() > 0 ? this.arm() : void this.end('expired')), Math.max(0, Math.min(ms, MAX_TIMER_MS)));
    this.timer.unref();
  }
}

function realmPart(principal: string): string {
  const at = principal.lastIndexOf('@');
  return at > 0 ? principal.slice(at + 1) : '';
}

/**
 * The one mapping from a Kerberos principal to a database role (and the name the API shows), with
 * the API's errors; the rule is `roleFromPrincipal` of `@forwardable/pg-gssapi`.
 * `name@HOME` (the first of `realms`) maps to `name`; `name@OTHER` for another allowed realm maps
 * to the role `name@OTHER`, so that two realms' `dbadmin` never fold into one role (PostgreSQL's
 * `include_realm=0` then refuses it unless an administrator created that role on purpose, with a
 * pg_ident map). Service principals, enterprise names and principals of other realms are refused.
 * With `usernameCase` `lower` the name part is lower-cased (`Alice@HOME` → `alice`), for
 * directories where case does not tell accounts apart (Active Directory).
 * @throws ApiException 403 `REALM_REFUSED`, saying what to do.
 */
export function databaseRoleOf(principal: string, realms: readonly string[], usernameCase: UsernameCase = 'exact'): string {
  const at = principal.lastIndexOf('@');
  const name = at > 0 ? principal.slice(0, at) : '';
  const realm = at > 0 ? principal.slice(at + 1) : '';
  // An enterprise name (RFC 6806: `alice\@ad.test@AD.TEST`) means the user signed in with their
  // userPrincipalName and the KDC was not asked to canonicalise it: neither the API nor
  // PostgreSQL can map it to a role, so say how to get a ticket in the account's own name.
  if (name.includes('@')) {
    const upn = name.replace(/\\@/g, '@');
    throw new ApiException(
      403,
      'REALM_REFUSED',
      `${principal} is an enterprise name (userPrincipalName ${upn}), not the account's own principal`,
      `Get a ticket in the account's name: kinit -C -E ${upn} (canonicalise; Windows always does) or kinit <account>@${realm}.`,
    );
  }
  if (!name || name.includes('/')) {
    throw new ApiException(403, 'REALM_REFUSED', `${principal} is not a user principal`, 'Sign in as a person, not as a service.');
  }
  if (!realms.includes(realm)) {
    throw new ApiException(403, 'REALM_REFUSED', `users of realm ${realm} may not sign in here`, `Allowed realms: ${realms.join(', ')}.`);
  }
  // The mapping itself is pg-gssapi's, so the API and the operator tools (migrations, CLIs) agree.
  return roleFromPrincipal(principal, [...realms], usernameCase);
}
