import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { Credential } from '@forwardable/gssapi';
import { gssapiTypeOrmOptions, roleFromPrincipal } from '@forwardable/pg-gssapi';
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
  expiredClosed: number;
  /** Closed by {@link UserDataSources.release} (logout). */
  released: number;
  failures: number;
}

interface Entry {
  key: string;
  principal: string;
  credential: Credential;
  dataSource: DataSource;
  lastUsed: number;
  expiryTimer?: NodeJS.Timeout;
}

/**
 * One small TypeORM `DataSource` (a pg pool) per signed-in user, connected **as that user** with
 * their own Kerberos credential. The API has no database identity of its own: without a user's
 * credential it cannot query at all.
 *
 * Pools are created on first use and reused for the session; bounded by a cap on users (least
 * recently used closed first) and on total connections; closed when idle, when the credential
 * expires, on {@link UserDataSources.release} (logout) and at shutdown. Two simultaneous first requests of one
 * session create one pool, and no two sessions ever share one.
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
   * The data source of a session, connected as the credential's user.
   * @param key - the session's id: pools are never shared between keys.
   * @param credential - the session's Kerberos credential; it stays owned by the caller.
   * @throws CredentialExpiredError when the credential is expired or disposed.
   */
  async get(key: string, credential: Credential): Promise<DataSource> {
    if (this.closed) throw new Error('UserDataSources is shut down');
    const existing = this.entries.get(key);
    if (existing && existing.credential === credential && usable(credential)) {
      this.counters.reuses++;
      this.touch(existing);
      return existing.dataSource;
    }
    if (existing) await this.close(existing, existing.credential === credential ? 'expired' : 'released');
    if (!usable(credential)) throw new CredentialExpiredError(safePrincipal(credential));
    let opening = this.opening.get(key);
    if (!opening) {
      opening = this.open(key, credential).finally(() => this.opening.delete(key));
      this.opening.set(key, opening);
    } else {
      this.counters.reuses++;
    }
    const entry = await opening;
    if (entry.credential !== credential) return this.get(key, credential);
    return entry.dataSource;
  }

  /** Close the pool of a session (logout). Safe to call for a key with no pool. */
  async release(key: string): Promise<void> {
    const pending = this.opening.get(key);
    if (pending) await pending.catch(() => undefined);
    const entry = this.entries.get(key);
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

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    await Promise.allSettled([...this.opening.values()]);
    await Promise.allSettled([...this.entries.values()].map((e) => this.close(e, 'shutdown')));
  }

  private async open(key: string, credential: Credential): Promise<Entry> {
    const o = this.options;
    const principal = credential.principal;
    const role = roleFromPrincipal(principal, o.allowedRealms);
    await this.makeRoom(key);
    try {
      return await this.connect(key, credential, principal, role);
    } finally {
      this.admitted.delete(key);
    }
  }

  private async connect(key: string, credential: Credential, principal: string, role: string): Promise<Entry> {
    const o = this.options;
    const dataSource = new DataSource({
      type: 'postgres',
      // The one factory for "a connection as this credential" (same protection for every connection).
      ...gssapiTypeOrmOptions(credential, o, {
        max: this.perUser,
        idleTimeoutMillis: Math.min(this.idleTimeoutMs, 60_000),
        connectionTimeoutMillis: o.connectTimeoutMs ?? 10_000,
      }),
      username: role,
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
    const entry: Entry = { key, principal, credential, dataSource, lastUsed: Date.now() };
    const expiresAt = credential.expiresAt?.getTime();
    if (expiresAt !== undefined) {
      // setTimeout's limit is 2^31-1 ms; longer lifetimes are rechecked by the sweeper.
      const ms = Math.max(0, expiresAt - Date.now());
      if (ms < 2 ** 31 - 1) {
        entry.expiryTimer = setTimeout(() => void this.close(entry, 'expired'), ms);
        entry.expiryTimer.unref();
      }
    }
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
      if (!usable(entry.credential)) await this.close(entry, 'expired');
      else if (now - entry.lastUsed >= this.idleTimeoutMs) await this.close(entry, 'idle');
    }
  }

  private async close(entry: Entry, why: 'evicted' | 'idle' | 'expired' | 'released' | 'shutdown'): Promise<void> {
    if (this.entries.get(entry.key) !== entry) return;
    this.entries.delete(entry.key);
    clearTimeout(entry.expiryTimer);
    if (why === 'evicted') this.counters.evictions++;
    else if (why === 'idle') this.counters.idleClosed++;
    else if (why === 'expired') this.counters.expiredClosed++;
    else if (why === 'released') this.counters.released++;
    this.closing++;
    try {
      // Evicted or idle pools may still be serving a request: let it finish, then close. A
      // logout, an expired credential or shutdown closes at once (no new query can start anyway:
      // the pool is no longer handed out).
      if (why === 'evicted' || why === 'idle') await drained(entry.dataSource);
      await entry.dataSource.destroy();
    } catch (err) {
      this.log.warn(`closing the pool of ${entry.principal} (${why}) failed: ${(err as Error).message}`);
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

function usable(c: Credential): boolean {
  if (c.disposed) return false;
  const end = c.expiresAt?.getTime();
  return end === undefined || end > Date.now();
}

function safePrincipal(c: Credential): string {
  try {
    return c.principal;
  } catch {
    return 'the user';
  }
}
