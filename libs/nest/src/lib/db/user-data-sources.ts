import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { gssapiTypeOrmOptions } from '@forwardable/pg-gssapi';
import type { CredentialLease } from '../auth/credential-lease';
import { MODULE_OPTIONS_TOKEN, UserDataSourcesOptions } from './options';

/** The credential can no longer open connections: the caller should ask the user to sign in again. */
export class CredentialExpiredError extends Error {
  readonly code = 'CREDENTIAL_EXPIRED';
  constructor(principal: string) {
    super(`the Kerberos credential of ${principal} has expired or was destroyed: sign in again`);
    this.name = 'CredentialExpiredError';
  }
}

/** Every pool slot is taken by users whose pools are opening: the caller should retry shortly. */
export class PoolCapacityError extends Error {
  readonly code = 'POOL_CAPACITY';
  constructor(maxUsers: number, maxConnections: number) {
    super(`too many users are connecting at once (caps: ${maxUsers} users, ${maxConnections} connections): try again in a moment`);
    this.name = 'PoolCapacityError';
  }
}

/** Counters for metrics: how pools are opened, reused and closed. */
export interface UserDataSourceCounters {
  opens: number;
  reuses: number;
  /** Closed to make room (LRU over users, or the connection cap). */
  evictions: number;
  idleClosed: number;
  /** Closed because the lease of its credential expired. */
  expiredClosed: number;
  /** Closed because the lease of its credential ended (logout, cap, another replica) or by {@link UserDataSources.release}. */
  released: number;
  failures: number;
}

interface Entry {
  /** The principal: one pool per user, whatever the number of their sessions. */
  key: string;
  /** The lease whose credential this pool's connections were opened with. */
  lease: CredentialLease;
  dataSource: DataSource;
  lastUsed: number;
  /** Removes this pool's end hook from its lease. */
  unhook: () => void;
}

/**
 * One small TypeORM `DataSource` (a pg pool) per signed-in user (principal), connected **as that
 * user** with their own Kerberos credential. The API has no database identity of its own: without
 * a user's credential it cannot query at all.
 *
 * A pool is opened on first use with the credential of the {@link CredentialLease} it was asked
 * with, and shared by every session of that principal while that lease lives. When the lease
 * ends (logout, expiry, the session pushed out by the per-user cap, ended on another replica),
 * the pool is taken out of service at once and closed: idle connections are closed, a query in
 * flight finishes and its connection closes (it is not returned to a pool); the next request of
 * another live session of the user opens a new pool with that session's own credential. So an
 * ended credential never opens a connection again and no connection it opened outlives its last
 * query. Bounded by a cap on users (least recently used closed first) and on total connections;
 * closed when idle and at shutdown. Two simultaneous first requests of one user create one pool,
 * and no two principals ever share one.
 */
@Injectable()
export class UserDataSources implements OnApplicationShutdown {
  private readonly log = new Logger(UserDataSources.name);
  /** Map order is recency order: a used entry is moved to the end, so the first is the LRU. */
  private readonly entries = new Map<string, Entry>();
  private readonly opening = new Map<string, Promise<Entry>>();
  /** Opens that passed `makeRoom` and hold a slot while they connect. */
  private readonly admitted = new Set<string>();
  /** Pools being closed: their connections still count against the caps until they are gone. */
  private closing = 0;
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;
  readonly counters: UserDataSourceCounters = { opens: 0, reuses: 0, evictions: 0, idleClosed: 0, expiredClosed: 0, released: 0, failures: 0 };

  private readonly maxUsers: number;
  private readonly perUser: number;
  private readonly maxConnections: number;
  private readonly idleTimeoutMs: number;

  constructor(@Inject(MODULE_OPTIONS_TOKEN) private readonly options: UserDataSourcesOptions) {
    this.maxUsers = positive('maxUsers', options.maxUsers ?? 100);
    this.perUser = positive('connectionsPerUser', options.connectionsPerUser ?? 2);
    this.maxConnections = positive('maxConnections', options.maxConnections ?? 200);
    this.idleTimeoutMs = positive('idleTimeoutMs', options.idleTimeoutMs ?? 300_000);
    if (this.perUser > this.maxConnections) throw new RangeError('connectionsPerUser cannot exceed maxConnections');
    this.sweeper = setInterval(() => void this.sweepIdle(), positive('sweepIntervalMs', options.sweepIntervalMs ?? 10_000));
    this.sweeper.unref();
  }

  /**
   * The data source of the lease's user, connected as that user.
   * @param lease - a live lease of the user; the pool is shared with the user's other sessions.
   * @throws CredentialExpiredError when the lease has ended or its credential expired.
   */
  async get(lease: CredentialLease): Promise<DataSource> {
    if (this.closed) throw new Error('UserDataSources is shut down');
    if (!lease.live) throw new CredentialExpiredError(lease.principal);
    const key = lease.principal;
    const existing = this.entries.get(key);
    if (existing && existing.lease.live) {
      this.counters.reuses++;
      this.touch(existing);
      return existing.dataSource;
    }
    if (existing) await this.close(existing, 'expired');
    let opening = this.opening.get(key);
    if (!opening) {
      opening = this.open(key, lease).finally(() => this.opening.delete(key));
      this.opening.set(key, opening);
    } else {
      this.counters.reuses++;
    }
    const entry = await opening;
    // The lease it opened with may have ended meanwhile: then open again with ours.
    if (!entry.lease.live) return this.get(lease);
    return entry.dataSource;
  }

  /** Close the pool of a user (all their sessions). Safe to call for a user with no pool. */
  async release(principal: string): Promise<void> {
    const pending = this.opening.get(principal);
    if (pending) await pending.catch(() => undefined);
    const entry = this.entries.get(principal);
    if (entry) await this.close(entry, 'released');
  }

  /** What is open now, for metrics and tests. */
  stats(): { users: number; closing: number; maxConnections: number; connections: number; counters: UserDataSourceCounters } {
    let connections = 0;
    for (const e of this.entries.values()) {
      // TypeORM's postgres driver keeps its pg.Pool as `master`.
      connections += (e.dataSource.driver as unknown as { master?: { totalCount?: number } }).master?.totalCount ?? 0;
    }
    return { users: this.entries.size, closing: this.closing, maxConnections: this.entries.size * this.perUser, connections, counters: { ...this.counters } };
  }

  /** Whether a pool of `principal` is open now, and the session whose credential it uses (for tests). */
  poolOf(principal: string): { sessionId: string } | null {
    const e = this.entries.get(principal);
    return e ? { sessionId: e.lease.sessionId } : null;
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    await Promise.allSettled([...this.opening.values()]);
    await Promise.allSettled([...this.entries.values()].map((e) => this.close(e, 'shutdown')));
  }

  private async open(key: string, lease: CredentialLease): Promise<Entry> {
    await this.makeRoom(key);
    try {
      return await this.connect(key, lease);
    } finally {
      this.admitted.delete(key);
    }
  }

  private async connect(key: string, lease: CredentialLease): Promise<Entry> {
    const o = this.options;
    const credential = lease.credential;
    const dataSource = new DataSource({
      type: 'postgres',
      // The one factory for "a connection as this credential" (same protection for every connection).
      ...gssapiTypeOrmOptions(credential, o, {
        max: this.perUser,
        idleTimeoutMillis: Math.min(this.idleTimeoutMs, 60_000),
        connectionTimeoutMillis: o.connectTimeoutMs ?? 10_000,
      }),
      username: lease.role,
      entities: o.entities ?? [],
      synchronize: false,
      migrationsRun: false,
      installExtensions: false,
      applicationName: 'forwardable',
    });
    try {
      await dataSource.initialize();
    } catch (err) {
      this.counters.failures++;
      await dataSource.destroy().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await dataSource.destroy();
      throw new Error('UserDataSources is shut down');
    }
    const entry: Entry = { key, lease, dataSource, lastUsed: Date.now(), unhook: () => undefined };
    // The lease's one timer (and logout) closes the pool: it never outlives the credential.
    entry.unhook = lease.onEnd((_l, reason) => this.close(entry, reason === 'expired' ? 'expired' : 'released'));
    this.counters.opens++;
    this.entries.set(key, entry);
    return entry;
  }

/** Close least recently used pools until one more fits under both caps. */
  private async makeRoom(key: string): Promise<void> {
    // Open pools plus the ones admitted and connecting, plus this one; opens still waiting here
    // do not count (else they would wait for each other forever).
    const fits = () => {
      const users = this.entries.size + this.admitted.size + this.closing + 1;
      return users <= this.maxUsers && users * this.perUser <= this.maxConnections;
    };
    const deadline = Date.now() + (this.options.connectTimeoutMs ?? 10_000);
    while (!fits()) {
      // The least recently used pool not handed out in the last moment: one that was is about
      // to run its caller's query (a query in flight is waited for by close() anyway).
      const now = Date.now();
      const lru = [...this.entries.values()].find((e) => now - e.lastUsed >= HANDOUT_GRACE_MS);
      if (lru) {
        await this.close(lru, 'evicted');
        continue;
      }
      if ((this.entries.size || this.closing) && Date.now() <= deadline) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      // Every slot belongs to a pool still opening: wait for one to finish (then it can be
      // evicted) rather than open past the caps.
      const others = [...this.admitted].filter((k) => k !== key).map((k) => this.opening.get(k)).filter((p) => p !== undefined);
      if (!others.length || Date.now() > deadline) throw new PoolCapacityError(this.maxUsers, this.maxConnections);
      await Promise.race(others).catch(() => undefined);
    }
    // No await between the last check and this: admission is atomic.
    this.admitted.add(key);
  }

  private touch(entry: Entry): void {
    entry.lastUsed = Date.now();
    this.entries.delete(entry.key);
    this.entries.set(entry.key, entry);
  }

  private async sweepIdle(): Promise<void> {
    const now = Date.now();
    for (const entry of [...this.entries.values()]) {
      if (!entry.lease.live) await this.close(entry, 'expired');
      else if (now - entry.lastUsed >= this.idleTimeoutMs) await this.close(entry, 'idle');
    }
  }

  private async close(entry: Entry, why: 'evicted' | 'idle' | 'expired' | 'released' | 'shutdown'): Promise<void> {
    if (this.entries.get(entry.key) !== entry) return;
    this.entries.delete(entry.key);
    entry.unhook();
    if (why === 'evicted') this.counters.evictions++;
    else if (why === 'idle') this.counters.idleClosed++;
    else if (why === 'expired') this.counters.expiredClosed++;
    else if (why === 'released') this.counters.released++;
    this.closing++;
    try {
      // Evicted or idle pools may still be serving a request: let it finish, then close. An
      // ended lease or shutdown closes at once: no new query can start (the pool is no longer
      // handed out), idle connections close now, and pg ends a busy one when its query returns.
      if (why === 'evicted' || why === 'idle') await drained(entry.dataSource);
      await entry.dataSource.destroy();
    } catch (err) {
      this.log.warn(`closing the pool of ${entry.key} (${why}) failed: ${(err as Error).message}`);
    } finally {
      this.closing--;
    }
  }
}

/** A pool handed out this recently is not evicted: its caller is about to use it. */
const HANDOUT_GRACE_MS = 250;

/** Wait (bounded) until no connection of the data source's pool is checked out. */
async function drained(ds: DataSource, graceMs = 30_000): Promise<void> {
  const pool = (ds.driver as unknown as { master?: { totalCount: number; idleCount: number; waitingCount: number } }).master;
  const end = Date.now() + graceMs;
  while (pool && pool.totalCount - pool.idleCount + pool.waitingCount > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
  }
}

function positive(name: string, n: number): number {
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`${name} must be a positive number, not ${n}`);
  return n;
}
