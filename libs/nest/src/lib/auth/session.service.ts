import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import type { Credential } from '@forwardable/gssapi';
import { roleNameCase } from '@forwardable/pg-gssapi';
import type { DelegationKind } from '../contract';
import { databaseRoleOf } from './credential-lease';
import { CredentialVault } from './credential-vault';
import { GroupsService } from './groups.service';
import { AUTH_OPTIONS, AuthOptions } from './options';
import { MemorySessionStore, SessionData, SessionStore } from './session-store';

/** The signed-in user of a request (`@CurrentUser()`). Holds no credential. */
export interface AuthUser extends SessionData {
  sessionId: string;
}

const DEFAULT_MAX_AGE = 8 * 3600_000;
const DEFAULT_MAX_SESSIONS_PER_USER = 10;

/**
 * Sessions: created after a successful negotiation or password sign-in, always with a fresh
 * 256-bit random id (no fixation, also when the browser re-authenticates a live session), ending
 * no later than the credential and the configured maximum. A principal holds at most
 * {@link AuthOptions.maxSessionsPerUser} sessions: a new one ends the oldest. Ending a session
 * ends it on every replica (through the store's ended-session channel).
 */
@Injectable()
export class SessionService implements OnModuleInit, OnApplicationShutdown {
  private readonly log = new Logger(SessionService.name);
  readonly store: SessionStore;
  readonly maxAgeMs: number;
  readonly maxSessionsPerUser: number;
  private readonly checker: NodeJS.Timeout;

  constructor(
    @Inject(AUTH_OPTIONS) private readonly options: AuthOptions,
    private readonly vault: CredentialVault,
    private readonly groups: GroupsService,
  ) {
    this.store = options.sessionStore ?? new MemorySessionStore();
    this.maxAgeMs = options.sessionMaxAgeMs ?? DEFAULT_MAX_AGE;
    this.maxSessionsPerUser = options.maxSessionsPerUser ?? DEFAULT_MAX_SESSIONS_PER_USER;
    if (!Number.isInteger(this.maxSessionsPerUser) || this.maxSessionsPerUser < 1) {
      throw new RangeError(`maxSessionsPerUser must be a whole number of at least 1, not ${this.maxSessionsPerUser}`);
    }
    const every = options.sessionCheckIntervalMs ?? 60_000;
    if (!Number.isFinite(every) || every <= 0) throw new RangeError(`sessionCheckIntervalMs must be a positive number, not ${every}`);
    this.checker = setInterval(() => void this.reconcile().catch(() => undefined), every);
    this.checker.unref();
  }

  onModuleInit(): void {
    // Another replica ended a session (logout, cap): end our lease for it now, not at expiry. A
    // session replaced by a re-authentication keeps our credential under its new id.
    this.store.onEnded?.((ended) =>
      void (ended.successor ? this.vault.move(ended.id, ended.successor, ended.principal) : this.vault.end(ended.id, 'ended-elsewhere')),
    );
  }

  /**
   * The database role / display name of a principal of an allowed realm; refuses others.
   * @throws ApiException 403 `REALM_REFUSED`.
   */
  userOf(principal: string): string {
    return databaseRoleOf(principal, this.vault.realms, this.vault.usernameCase);
  }

  /**
   * The role a name typed by a user (a grantee: `Carol`, `carol`, a group such as `Engineering`)
   * refers to, under {@link AuthOptions.usernameCase}: lower-cased in `lower` mode, as is in
   * `exact` mode. So a share to `Carol` reaches the user whose session says `carol`.
   */
  roleName(typed: string): string {
    return roleNameCase(typed, this.vault.usernameCase);
  }

  /**
   * Start a session for `credential`, which the session (its lease in the vault) owns from now on.
   * When the principal then has more than {@link SessionService.maxSessionsPerUser} sessions, the
   * oldest end (everywhere).
   * @param groupSids - group SIDs from the ticket's PAC, when it had one: group names come from them.
   * @throws ApiException when the principal's realm is not allowed (the credential is then disposed).
   */
  async create(credential: Credential, delegation: DelegationKind, groupSids?: string[]): Promise<AuthUser> {
    return this.start(credential, delegation, undefined, groupSids);
  }

  /** {@link SessionService.create}, not counting `replacing` (about to end) against the cap. */
  private async start(credential: Credential, delegation: DelegationKind, replacing?: string, groupSids?: string[]): Promise<AuthUser> {
    const now = Date.now();
    const id = randomBytes(32).toString('base64url');
    const lease = await this.vault.lease(id, credential, now + this.maxAgeMs);
    try {
      // Group names are role names too (shares name them, forwardable-roles creates them): in
      // `lower` mode they follow the same case rule as the user's own role.
      const groups = [...new Set((await this.groups.groupsOf(lease.principal, lease.role, groupSids)).map((g) => this.roleName(g)))].sort();
      const data: SessionData = {
        principal: lease.principal,
        user: lease.role,
        delegation,
        mode: this.options.delegation ?? 'constrained',
        groups,
        isAdmin: groups.includes(this.roleName(this.groups.adminGroup)),
        createdAt: now,
        expiresAt: lease.expiresAt,
      };
      await this.store.set(id, data);
      await this.enforceCap(data.principal, [id, replacing]);
      return { ...data, sessionId: id };
    } catch (err) {
      await this.vault.end(id, 'logout');
      throw err;
    }
  }

  /**
   * The browser authenticated again while holding the cookie of a live session (`previousId`),
   * on a replica without its credential: a new session with a new id and freshly looked-up groups
   * replaces it. The previous id is dead everywhere at once; other replicas keep the credential
   * they hold for it under the new id (same principal), so moving between replicas rotates the id
   * without a negotiation on each move. The id is never kept across an authentication.
   */
  async reauthenticate(previousId: string, credential: Credential, delegation: DelegationKind, groupSids?: string[]): Promise<AuthUser> {
    const previous = await this.store.get(previousId);
    const user = await this.start(credential, delegation, previous ? previousId : undefined, groupSids);
    if (!previous || previous.principal !== user.principal) {
      // Someone else's (or a dead) session in this browser: end it, do not hand it over.
      await this.destroy(previousId);
      return user;
    }
    await Promise.allSettled([this.store.delete(previousId), this.vault.end(previousId, 'replaced')]);
    await this.store.publishEnded?.({ id: previousId, principal: user.principal, successor: user.sessionId });
    return user;
  }

  /** A live session's data, whether or not this replica holds its credential. */
  async peek(id: string): Promise<SessionData | null> {
    const data = await this.store.get(id);
    return data && data.expiresAt > Date.now() ? data : null;
  }

  /**
   * The session of `id` if it is live and this replica holds its credential, of the same
   * principal as the session; null otherwise.
   */
  async resolve(id: string): Promise<AuthUser | null> {
    const data = await this.store.get(id);
    if (!data) {
      await this.vault.end(id, 'expired');
      return null;
    }
    if (data.expiresAt <= Date.now()) {
      await this.destroy(id);
      return null;
    }
    // Another replica may have accepted this session: then we have no credential, and the
    // browser must negotiate again here (ARCHITECTURE.md, scale-out).
    const lease = this.vault.get(id);
    if (!lease) return null;
    if (lease.principal !== data.principal) {
      // The store and the vault disagree about who this session is: trust neither.
      this.log.warn('a session\'s stored principal differs from its credential\'s: the session is ended');
      await this.destroy(id);
      return null;
    }
    return { ...data, sessionId: id };
  }

  /**
   * End a session everywhere: its data, and on every replica its credential lease (so its
   * database pool stops using the credential). Works whether or not this replica holds the
   * credential. Idempotent.
   */
  async destroy(id: string): Promise<void> {
    const data = await this.store.get(id).catch(() => null);
    const principal = data?.principal ?? this.vault.get(id)?.principal ?? '';
    const results = await Promise.allSettled([this.store.delete(id), this.vault.end(id, 'logout')]);
    // Other replicas end their lease for it now; the memory store has none.
    await this.store.publishEnded?.({ id, principal });
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * End the leases this replica holds for sessions the store no longer has: the safety net for an
   * ended-session announcement this replica missed (pub/sub does not replay what a disconnected
   * subscriber did not hear). Runs every {@link AuthOptions.sessionCheckIntervalMs}; a store that
   * does not answer ends nothing. Returns how many leases it ended.
   * @param graceMs - leases younger than this are left alone: a lease is made just before its
   *   session is written to the store (after the group lookup), so a young one may not be there yet.
   */
  async reconcile(graceMs = 30_000): Promise<number> {
    const ids = this.vault.sessionIds(Date.now() - graceMs);
    let ended = 0;
    for (let i = 0; i < ids.length; i += 100) {
      const batch = ids.slice(i, i + 100);
      const found = await Promise.all(batch.map((id) => this.store.get(id)));
      for (const [k, data] of found.entries()) {
        if (data && data.expiresAt > Date.now()) continue;
        await this.vault.end(batch[k], 'ended-elsewhere');
        ended++;
      }
    }
    return ended;
  }

  /** End the oldest sessions of `principal` beyond the cap (never `skip`: the one just made, one about to go). */
  private async enforceCap(principal: string, skip: (string | undefined)[]): Promise<void> {
    const ids = (await this.store.idsOf(principal)).filter((id) => !skip.includes(id));
    const excess = ids.length + 1 - this.maxSessionsPerUser;
    for (const id of ids.slice(0, Math.max(0, excess))) await this.destroy(id);
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.checker);
    await this.store.close?.();
  }
}
