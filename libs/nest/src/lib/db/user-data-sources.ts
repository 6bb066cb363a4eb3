import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { gssapiTypeOrmOptions, PgAuthError } from '@forwardable/pg-gssapi';
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

/**
 * Why a request was turned away by the scheduler: `queue-full` (the user already has
 * `maxQueuePerUser` requests waiting), `deadline` (not admitted within `queueTimeoutMs`),
 * `shutdown` (the API is stopping).
 */
export type PoolCapacityReason = 'queue-full' | 'deadline' | 'shutdown';

/** The database connections are all busy serving other users: the caller should retry after {@link PoolCapacityError.retryAfterSeconds}. */
export class PoolCapacityError extends Error {
  readonly code = 'POOL_CAPACITY';
  constructor(
    readonly reason: PoolCapacityReason,
    /** When to try again (the `Retry-After` header of the 503). */
    readonly retryAfterSeconds: number,
    detail: string,
  ) {
    super(`${detail}: try again in ${retryAfterSeconds} s`);
    this.name = 'PoolCapacityError';
  }
}

/** Counters for metrics: how pools are opened, reused and closed, and how requests were queued. */
export interface UserDataSourceCounters {
  opens: number;
  reuses: number;
  /** Closed to make room for a waiting user, after their time slice. */
  evictions: number;
  idleClosed: number;
  /** Closed because the lease of its credential expired. */
  expiredClosed: number;
  /** Closed because the lease of its credential ended (logout, cap, another replica) or by {@link UserDataSources.release}. */
  released: number;
  failures: number;
  /** Requests that had to wait for a pool slot. */
  queued: number;
  /** Pools opened with one connection because other users were waiting. */
  shrunk: number;
  /** Requests turned away with 503: their user's queue was full. */
  queueFull: number;
  /** Requests turned away with 503: not admitted before the deadline. */
  deadlineExceeded: number;
  /** Waiting requests dropped because their lease ended (logout, expiry) or at shutdown. */
  dropped: number;
  /** Most users holding a slot at once (open, opening or closing), as the scheduler counts them. */
  peakUsers: number;
  /** Most connection slots held at once (each pool counts its maximum size). */
  peakConnections: number;
  /** Time spent opening pools (Kerberos ticket + GSSAPI connect + startup), in ms: divided by `opens`, the connect cost the slice is sized against. */
  connectMs: number;
}

interface Entry {
  /**
   * The database role (the lease's `role`): one pool per user, whatever the number of their
   * sessions. In `exact` mode one role is one principal; in `lower` mode `Alice@R` and `alice@R`
   * (one directory account) share the pool of `alice`, as they share the role.
   */
  key: string;
  /** The lease whose credential this pool's connections were opened with. */
  lease: CredentialLease;
  dataSource: DataSource;
  /** Connections this pool may hold (`connectionsPerUser`, or 1 when opened under pressure). */
  size: number;
  /** When the pool opened: it is not evicted before `openedAt + sliceMs`. */
  openedAt: number;
  lastUsed: number;
  /** Removes this pool's end hook from its lease. */
  unhook: () => void;
}

interface Waiter {
  lease: CredentialLease;
  resolve: (ds: DataSource) => void;
  reject: (err: unknown) => void;
  timer?: NodeJS.Timeout;
  unhook: () => void;
}

/** Where {@link UserDataSources.read} sent reads: counters for metrics and tests. */
export interface ReadRoutingCounters {
  /** Reads served by a standby. */
  standby: number;
  /** Reads served by the primary because no standby is configured or usable. */
  primary: number;
  /** Reads served by the primary because the user's own write was not yet replayed on the standby. */
  afterWrite: number;
  /** Reads moved to the primary because their standby failed (unreachable, shutting down, recovery conflict) while serving them. */
  fallbacks: number;
}

/** A standby's state, as {@link UserDataSources.stats} reports it. */
export interface StandbyStats {
  /** `host:port`. */
  host: string;
  /** Why reads avoid it now (`null`: it serves reads). */
  down: string | null;
  /** Users with an open pool on it. */
  users: number;
  /** Connections those pools hold. */
  connections: number;
  /** Its scheduler's counters (opens, queueing, peaks: the caps hold per host). */
  counters: UserDataSourceCounters;
}

/** One hot standby: its own scheduler (its own budget) and whether it may serve reads now. */
interface Standby {
  label: string;
  pools: UserDataSources;
  /** Reads avoid it until then (epoch ms). */
  downUntil: number;
  /** Why it was taken out of service; null while it serves. */
  down: string | null;
  /** When its state was last checked (epoch ms). */
  checkedAt: number;
}

/**
 * A user's write the standbys may not have replayed yet: the primary's WAL position after it, or
 * `null` when the primary was handed out raw ({@link UserDataSources.get}) and the position is
 * asked for at the next read.
 */
interface PendingWrite {
  lsn: bigint | null;
  at: number;
}

/** The requests of one user waiting for (or watching the opening of) that user's pool. */
interface Group {
  key: string;
  state: 'queued' | 'opening';
  waiters: Set<Waiter>;
  /** Settles when the admitted open has finished and its waiters were answered. */
  done?: Promise<void>;
}

/**
 * One small TypeORM `DataSource` (a pg pool) per signed-in user (principal), connected **as that
 * user** with their own Kerberos credential, handed out by a connection scheduler. The API has no
 * database identity of its own: without a user's credential it cannot query at all.
 *
 * **Leases.** A pool is opened with the credential of the {@link CredentialLease} it was asked
 * with, and shared by every session of that principal while that lease lives. When the lease
 * ends (logout, expiry, the session pushed out by the per-user cap, ended on another replica),
 * the pool is taken out of service at once and closed: idle connections are closed, a query in
 * flight finishes and its connection closes; the next request of another live session of the
 * user opens a new pool with that session's own credential. So an ended credential never opens a
 * connection again and no connection it opened outlives its last query. Two simultaneous first
 * requests of one user create one pool, and no two roles ever share one (the pool is keyed by the
 * database role it connects as, so principals that map to one role, such as `Alice@R` and `alice@R`
 * with `usernameCase` `lower`, share it).
 *
 * **Scheduling** (when the caps `maxUsers` / `maxConnections` are reached). Opening a pool costs
 * a Kerberos service ticket plus a GSSAPI-encrypted PostgreSQL connect (measured 8-30 ms on the
 * test realm, see bench/README.md); plain LRU thrashed because it closed the pool that was about
 * to be used next, so every request paid that cost. Instead:
 * - a user without a pool joins a FIFO queue of users (one place per user; their further requests
 *   wait with them); the head is admitted as soon as it fits under both caps;
 * - a pool, once opened, serves its user for a time slice (`sliceMs`, default 250 ms, about 10-30x
 *   the connect cost measured on a quiet machine, so connecting is at most ~10% of a slot's time
 *   under full contention; and never less than 10x the connect time measured here, a moving
 *   average of this process's own opens, because on a loaded host a connect took seconds and a
 *   fixed slice shorter than a connect only thrashed; but at most a quarter of `queueTimeoutMs`, so
 *   a saturated server's multi-second connects cannot stretch slices past the deadline) and is
 *   never evicted before its slice ends; after it, it is evicted (least recently used first) only
 *   when a user is waiting, and only once its in-flight queries have finished and 100 ms have
 *   passed since it was last handed out (its caller may be between two queries). Without waiters
 *   pools stay open until idle (`idleTimeoutMs`), as before;
 * - a pool opened while others are waiting gets one connection instead of `connectionsPerUser`,
 *   so more users fit under `maxConnections`;
 * - a user may have at most `maxQueuePerUser` requests waiting (for admission, or for a connection
 *   of their open pool), and a request not admitted within `queueTimeoutMs` is turned away: both
 *   are a {@link PoolCapacityError} (503 with `Retry-After`), never an unbounded wait;
 * - a waiting request whose lease ends is rejected with {@link CredentialExpiredError} and leaves
 *   the queue; shutdown rejects every waiter with a `shutdown` {@link PoolCapacityError}.
 * Pools being closed count against both caps until their connections are gone, so the caps hold
 * for the backends PostgreSQL sees, not only for the pools in the map.
 *
 * **Hot standbys** (`readHosts`). Each standby has a scheduler of its own (the same caps, per host)
 * whose pools are connected as the user exactly like the primary's, so row-level security applies
 * there unchanged. Only {@link UserDataSources.read} uses them; {@link UserDataSources.get} and
 * {@link UserDataSources.write} are the primary. See {@link UserDataSources.read} for
 * read-after-write and what happens when a standby is down or behind.
 */
@Injectable()
export class UserDataSources implements OnApplicationShutdown {
  private readonly log = new Logger(UserDataSources.name);
  /** Map order is recency order: a used entry is moved to the end, so the first is the LRU. */
  private readonly entries = new Map<string, Entry>();
  /** Users waiting for a slot or opening, in arrival order (the FIFO of the scheduler). */
  private readonly groups = new Map<string, Group>();
  /** Slots held by pools being opened (admitted) and being closed. */
  private admittedUsers = 0;
  private admittedConnections = 0;
  private closingUsers = 0;
  private closingConnections = 0;
  private wake?: NodeJS.Timeout;
  /** Moving average of the time to open a pool here (ms); 0 until the first open. */
  private connectAvgMs = 0;
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;
  readonly counters: UserDataSourceCounters = {
    opens: 0, reuses: 0, evictions: 0, idleClosed: 0, expiredClosed: 0, released: 0, failures: 0,
    queued: 0, shrunk: 0, queueFull: 0, deadlineExceeded: 0, dropped: 0, peakUsers: 0, peakConnections: 0, connectMs: 0,
  };

  private readonly maxUsers: number;
  private readonly perUser: number;
  private readonly maxConnections: number;
  private readonly idleTimeoutMs: number;
  private readonly sliceMs: number;
  private readonly maxQueuePerUser: number;
  private readonly queueTimeoutMs: number;
  private readonly standbys: Standby[];
  /** Users whose last write the standbys may not have replayed yet (principal → position). */
  private readonly pendingWrites = new Map<string, PendingWrite>();
  private readonly maxReplayLagBytes: number;
  private readonly standbyCheckIntervalMs: number;
  private readonly standbyRetryMs: number;
  private readonly primaryServesReads: boolean;
  /** Where reads went (all zero without standbys but `primary`). */
  readonly reads: ReadRoutingCounters = { standby: 0, primary: 0, afterWrite: 0, fallbacks: 0 };

  constructor(@Inject(MODULE_OPTIONS_TOKEN) private readonly options: UserDataSourcesOptions) {
    this.maxUsers = positive('maxUsers', options.maxUsers ?? 100);
    this.perUser = positive('connectionsPerUser', options.connectionsPerUser ?? 2);
    this.maxConnections = positive('maxConnections', options.maxConnections ?? 200);
    this.idleTimeoutMs = positive('idleTimeoutMs', options.idleTimeoutMs ?? 300_000);
    this.sliceMs = positive('sliceMs', options.sliceMs ?? 250);
    this.maxQueuePerUser = positive('maxQueuePerUser', options.maxQueuePerUser ?? 64);
    this.queueTimeoutMs = positive('queueTimeoutMs', options.queueTimeoutMs ?? 10_000);
    if (this.perUser > this.maxConnections) throw new RangeError('connectionsPerUser cannot exceed maxConnections');
    this.maxReplayLagBytes = positive('maxReplayLagBytes', options.maxReplayLagBytes ?? 16 * 1024 * 1024);
    this.standbyCheckIntervalMs = positive('standbyCheckIntervalMs', options.standbyCheckIntervalMs ?? 1000);
    this.standbyRetryMs = positive('standbyRetryMs', options.standbyRetryMs ?? 5000);
    this.primaryServesReads = options.primaryServesReads ?? true;
    // A standby is this same scheduler pointed at another host (its own caps, lease hooks, idle
    // sweep and shutdown), with no standbys of its own.
    this.standbys = (options.readHosts ?? []).map((h) => {
      const port = h.port ?? options.port;
      return {
        label: `${h.host}:${port}`,
        pools: new UserDataSources({
          ...options,
          host: h.host,
          hostaddr: h.hostaddr,
          port,
          gssencmode: h.gssencmode ?? options.gssencmode,
          sslmode: h.sslmode ?? options.sslmode,
          readHosts: [],
        }),
        downUntil: 0,
        down: null,
        checkedAt: 0,
      };
    });
    this.sweeper = setInterval(() => void this.sweepIdle(), positive('sweepIntervalMs', options.sweepIntervalMs ?? 10_000));
    this.sweeper.unref();
  }

  /**
   * The data source of the lease's user, connected as that user; waits (bounded) for a slot when
   * the caps are reached.
   * @param lease - a live lease of the user; the pool is shared with the user's other sessions.
   * @throws CredentialExpiredError when the lease has ended or its credential expired (also while waiting).
   * @throws PoolCapacityError when the user's queue is full, the deadline passed, or at shutdown (503, retry).
   */
  async get(lease: CredentialLease): Promise<DataSource> {
    const ds = await this.primary(lease);
    // Handed out raw: the caller may write with it at any time, so this user's reads stay on the
    // primary for a while and then wait for the standby to pass the primary's position (read()).
    if (this.standbys.length) this.noteWrite(lease.role, null);
    return ds;
  }

  /**
   * Run `fn` on the user's primary data source: writes and transactions. Afterwards the primary's
   * WAL position is noted, and this user's reads stay on the primary until a standby has replayed
   * past it (read-after-write).
   * @throws as {@link UserDataSources.get}, or what `fn` throws.
   */
  async write<T>(lease: CredentialLease, fn: (dataSource: DataSource) => Promise<T>): Promise<T> {
    const ds = await this.primary(lease);
    if (!this.standbys.length) return fn(ds);
    let result: T;
    try {
      result = await fn(ds);
    } catch (err) {
      // Part of it may have committed: treat it as a write of unknown position.
      this.noteWrite(lease.role, null);
      throw err;
    }
    try {
      // The insert position, not pg_current_wal_lsn(): with synchronous_commit off the commit
      // record may be inserted but not yet written, and the standby must replay past it.
      const [row] = (await ds.query('SELECT pg_current_wal_insert_lsn()::text AS lsn')) as { lsn: string }[];
      this.noteWrite(lease.role, parseLsn(row.lsn));
    } catch {
      this.noteWrite(lease.role, null);
    }
    return result;
  }

  /**
   * Run `fn` (reads only) on a hot standby when one is configured and usable, else on the primary.
   * Each user reads from one member of the read set, chosen by a hash of the principal (so a user
   * holds one read pool, not one per host): the standbys, and the primary too unless
   * `primaryServesReads` is false.
   * - **Read-after-write**: after this user's write ({@link UserDataSources.write}, or a raw
   *   {@link UserDataSources.get}), their reads go to the primary until the standby's
   *   `pg_last_wal_replay_lsn()` has passed the primary's WAL insert position taken after the write:
   *   exact, and costs one query on the standby only while a write is pending. (A raw handout's end
   *   is unknown: its user's reads stay on the primary for {@link RAW_HANDOUT_WINDOW_MS}, then the
   *   primary's position at that read is the target.)
   * - **Down, lagging, promoted**: every `standbyCheckIntervalMs` a reader's standby connection checks
   *   that the server is still in recovery, streaming from its primary and at most
   *   `maxReplayLagBytes` behind what it received. A standby that fails this, cannot be reached, or
   *   fails a read with a connection error (or cancels it for a recovery conflict) serves no reads for
   *   `standbyRetryMs`: the read is answered by the primary and one warning is logged per outage.
   * - Capacity is per host: a full standby answers {@link PoolCapacityError} (503) like the primary;
   *   its users are not pushed onto the primary's budget.
   * `fn` may run twice (on the standby, then on the primary), so it must only read.
   * @throws as {@link UserDataSources.get}, or what `fn` throws (SQL errors are never retried).
   */
  async read<T>(lease: CredentialLease, fn: (dataSource: DataSource) => Promise<T>): Promise<T> {
    const standby = this.standbyFor(lease.role);
    if (!standby) {
      this.reads.primary++;
      return fn(await this.primary(lease));
    }
    let failed: unknown = null;
    let verdict: 'serve' | 'after-write' | 'unhealthy' = 'serve';
    try {
      const ds = await standby.pools.get(lease);
      verdict = await this.check(standby, ds, lease);
      if (verdict === 'serve') {
        const result = await fn(ds);
        this.reads.standby++;
        return result;
      }
    } catch (err) {
      if (!standbyFailure(err)) throw err;
      failed = err;
    }
    if (failed) {
      this.takeOut(standby, `failed: ${(failed as Error).message}`);
      this.reads.fallbacks++;
    } else if (verdict === 'after-write') this.reads.afterWrite++;
    else this.reads.primary++;
    return fn(await this.primary(lease));
  }

  /** The primary's data source of the lease's user (see {@link UserDataSources.get}). */
  private async primary(lease: CredentialLease): Promise<DataSource> {
    if (this.closed) throw this.shutdownError();
    if (!lease.live) throw new CredentialExpiredError(lease.principal);
    const key = lease.role;
    const existing = this.entries.get(key);
    if (existing && existing.lease.live) {
      if (waitingCount(existing.dataSource) >= this.maxQueuePerUser) {
        this.counters.queueFull++;
        throw this.capacityError('queue-full', `${key} already has ${this.maxQueuePerUser} requests waiting for the database`);
      }
      this.counters.reuses++;
      this.touch(existing);
      return existing.dataSource;
    }
    if (existing) await this.close(existing, 'expired');
    return this.enqueue(key, lease);
  }

  /**
   * Close the pool of a user (all their sessions), named by database role or by principal, on the
   * primary and on every standby. Safe to call for a user with no pool.
   */
  async release(user: string): Promise<void> {
    this.pendingWrites.delete(this.keyOf(user));
    await Promise.all(this.standbys.map((s) => s.pools.release(user)));
    // Let an open in progress finish (its waiters get it), then close it.
    const key = this.keyOf(user);
    await this.groups.get(key)?.done;
    const entry = this.entries.get(key);
    if (entry) await this.close(entry, 'released');
  }

  /** Note a write of the role `role` at WAL position `lsn` (`null`: unknown yet); keeps the later one. */
  private noteWrite(role: string, lsn: bigint | null): void {
    const prev = this.pendingWrites.get(role);
    const merged = lsn === null || (prev && prev.lsn === null) ? null : prev?.lsn && prev.lsn > lsn ? prev.lsn : lsn;
    this.pendingWrites.set(role, { lsn: merged, at: Date.now() });
  }

  /**
   * The standby that serves the role `role`'s reads now (`null`: the primary). The user's member of the
   * read set by hash (the primary is the last member when `primaryServesReads`); a standby out of
   * service passes its users to the next standby in service, else to the primary.
   */
  private standbyFor(role: string): Standby | null {
    const n = this.standbys.length;
    if (!n || this.closed) return null;
    const first = fnv1a(role) % (n + (this.primaryServesReads ? 1 : 0));
    if (first === n) return null;
    const now = Date.now();
    for (let i = 0; i < n; i++) {
      const s = this.standbys[(first + i) % n];
      if (s.downUntil <= now) return s;
    }
    return null;
  }

  /**
   * Whether `ds` (the user's pool on `standby`) may serve this read: the standby's periodic state
   * check, then the user's pending write against its replay position. One query on the standby,
   * and only when a check is due or a write is pending.
   */
  private async check(standby: Standby, ds: DataSource, lease: CredentialLease): Promise<'serve' | 'after-write' | 'unhealthy'> {
    const now = Date.now();
    // By database role, like the pools: the sessions of one role share what they wrote.
    const key = lease.role;
    const pending = this.pendingWrites.get(key);
    const due = now - standby.checkedAt >= this.standbyCheckIntervalMs;
    if (!pending && !due) return 'serve';
    let target: bigint | null = null;
    if (pending) {
      if (pending.lsn === null) {
        if (now - pending.at < RAW_HANDOUT_WINDOW_MS) return 'after-write';
        const [row] = (await (await this.primary(lease)).query('SELECT pg_current_wal_insert_lsn()::text AS lsn')) as { lsn: string }[];
        // Taken after the window, this position is past whatever the raw handout committed by then.
        if (this.pendingWrites.get(key) === pending) pending.lsn = parseLsn(row.lsn);
        target = parseLsn(row.lsn);
      } else target = pending.lsn;
    }
    const [state] = (await ds.query(
      `SELECT pg_is_in_recovery() AS standby, EXISTS (SELECT FROM pg_stat_wal_receiver) AS streaming,
              pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8 AS behind,
              pg_last_wal_replay_lsn()::text AS replayed`,
    )) as { standby: boolean; streaming: boolean; behind: number | null; replayed: string | null }[];
    if (due) {
      standby.checkedAt = now;
      const problem = !state.standby
        ? 'is not in recovery (promoted, or not a standby): it may no longer follow the primary'
        : !state.streaming
          ? 'receives no WAL from its primary (replication link down): its data is getting old'
          : (state.behind ?? 0) > this.maxReplayLagBytes
            ? `has ${Math.round(state.behind ?? 0)} bytes of received WAL not replayed (more than maxReplayLagBytes ${this.maxReplayLagBytes})`
            : null;
      if (problem) {
        this.takeOut(standby, problem);
        return 'unhealthy';
      }
      if (standby.down) {
        this.log.log(`standby ${standby.label} serves reads again`);
        standby.down = null;
      }
    }
    if (target === null) return 'serve';
    if (state.replayed !== null && parseLsn(state.replayed) >= target) {
      if (this.pendingWrites.get(key) === pending) this.pendingWrites.delete(key);
      return 'serve';
    }
    return 'after-write';
  }

  /** Reads avoid `standby` for `standbyRetryMs`; one warning per outage, never with credentials. */
  private takeOut(standby: Standby, why: string): void {
    standby.downUntil = Date.now() + this.standbyRetryMs;
    // Checked again at once when it comes back.
    standby.checkedAt = 0;
    if (standby.down === null) {
      this.log.warn(`standby ${standby.label} ${why}: reads go to the primary (retrying it every ${this.standbyRetryMs} ms)`);
    }
    standby.down = why;
  }

  /** The pool key (database role) of a role or principal name: a principal is looked up among the open pools' leases. */
  private keyOf(user: string): string {
    if (this.entries.has(user) || this.groups.has(user)) return user;
    for (const e of this.entries.values()) if (e.lease.principal === user) return e.key;
    return user;
  }

  /** What is open now, for metrics and tests. `waiting` counts requests queued for a slot. */
  stats(): {
    users: number;
    closing: number;
    opening: number;
    waiting: number;
    waitingUsers: number;
    maxConnections: number;
    connections: number;
    /** The time slice in force (ms) and the moving average of the connect time it follows. */
    sliceMs: number;
    connectAvgMs: number;
    counters: UserDataSourceCounters;
    /** Where reads went. */
    reads: ReadRoutingCounters;
    /** Each standby's pools and state (empty without `readHosts`). */
    standbys: StandbyStats[];
  } {
    let connections = 0;
    let slots = 0;
    for (const e of this.entries.values()) {
      connections += poolOf(e.dataSource)?.totalCount ?? 0;
      slots += e.size;
    }
    let waiting = 0;
    let waitingUsers = 0;
    for (const g of this.groups.values()) {
      if (g.state !== 'queued') continue;
      waitingUsers++;
      waiting += g.waiters.size;
    }
    return {
      users: this.entries.size,
      closing: this.closingUsers,
      opening: this.admittedUsers,
      waiting,
      waitingUsers,
      maxConnections: slots,
      connections,
      sliceMs: this.slice(),
      connectAvgMs: this.connectAvgMs,
      counters: { ...this.counters },
      reads: { ...this.reads },
      standbys: this.standbys.map((s) => {
        const st = s.pools.stats();
        return { host: s.label, down: s.downUntil > Date.now() ? s.down : null, users: st.users, connections: st.connections, counters: st.counters };
      }),
    };
  }

  /** Whether a pool of `user` (a database role or a principal) is open now, and the session whose credential it uses (for tests). */
  poolOf(user: string): { sessionId: string; size: number } | null {
    const e = this.entries.get(this.keyOf(user));
    return e ? { sessionId: e.lease.sessionId, size: e.size } : null;
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    const standbys = Promise.allSettled(this.standbys.map((s) => s.pools.onApplicationShutdown()));
    clearInterval(this.sweeper);
    if (this.wake) clearTimeout(this.wake);
    const opening: Promise<void>[] = [];
    for (const g of [...this.groups.values()]) {
      // Waiters of a pool still opening are rejected too; the open itself finishes and is closed.
      for (const w of [...g.waiters]) this.drop(g, w, this.shutdownError());
      if (g.done) opening.push(g.done);
    }
    await Promise.allSettled(opening);
    await Promise.allSettled([...this.entries.values()].map((e) => this.close(e, 'shutdown')));
    await standbys;
  }

  /** Queue a request of a user without an open pool; resolves when the user's pool is open. */
  private enqueue(key: string, lease: CredentialLease): Promise<DataSource> {
    let group = this.groups.get(key);
    if (!group) {
      group = { key, state: 'queued', waiters: new Set() };
      this.groups.set(key, group);
    } else if (group.waiters.size >= this.maxQueuePerUser) {
      this.counters.queueFull++;
      throw this.capacityError('queue-full', `${key} already has ${this.maxQueuePerUser} requests waiting for the database`);
    }
    const g = group;
    return new Promise<DataSource>((resolve, reject) => {
      const w: Waiter = { lease, resolve, reject, unhook: () => undefined };
      w.unhook = lease.onEnd(() => this.drop(g, w, new CredentialExpiredError(lease.principal)));
      if (g.state === 'queued') {
        this.counters.queued++;
        w.timer = setTimeout(() => {
          this.counters.deadlineExceeded++;
          this.drop(g, w, this.capacityError('deadline', `no database connection became free within ${this.queueTimeoutMs} ms`));
        }, this.queueTimeoutMs);
      }
      g.waiters.add(w);
      this.pump();
    });
  }

  /** Take a waiter out of its group with an error; a queued group left empty leaves the queue. */
  private drop(group: Group, w: Waiter, err: unknown): void {
    if (!group.waiters.delete(w)) return;
    this.settle(w);
    if (!(err instanceof PoolCapacityError && err.reason === 'deadline')) this.counters.dropped++;
    w.reject(err);
    if (group.state === 'queued' && group.waiters.size === 0 && this.groups.get(group.key) === group) {
      this.groups.delete(group.key);
      this.pump();
    }
  }

  private settle(w: Waiter): void {
    if (w.timer) clearTimeout(w.timer);
    w.unhook();
  }

  /**
   * Admit the head of the queue while it fits; when it does not, evict pools whose slice ended to
   * make room for it (strict FIFO: nobody overtakes the head), or wake up when a slice ends.
   * Synchronous from check to admission, so two admissions never race past a cap.
   */
  private pump(): void {
    if (this.closed) return;
    for (const group of this.groups.values()) {
      if (group.state !== 'queued') continue;
      const first = [...group.waiters].find((w) => w.lease.live);
      if (!first) continue;
      // Others waiting behind this one, or no room at full size: open with one connection.
      const queuedUsers = [...this.groups.values()].filter((g) => g.state === 'queued').length;
      const size = queuedUsers > 1 || !this.fits(this.perUser, false) ? 1 : this.perUser;
      if (this.fits(size, false)) {
        this.admit(group, first.lease, size);
        continue;
      }
      this.makeRoom(size);
      return;
    }
  }

  /** Whether a pool of `size` fits under both caps (`afterClosing`: once closing pools are gone). */
  private fits(size: number, afterClosing: boolean): boolean {
    let slots = this.admittedConnections + (afterClosing ? 0 : this.closingConnections);
    for (const e of this.entries.values()) slots += e.size;
    const users = this.entries.size + this.admittedUsers + (afterClosing ? 0 : this.closingUsers) + 1;
    return users <= this.maxUsers && slots + size <= this.maxConnections;
  }

  /** Evict pools past their slice (LRU first) until one of `size` will fit; else wake at the next slice end. */
  private makeRoom(size: number): void {
    const now = Date.now();
    let nextSliceEnd = Infinity;
    for (const e of [...this.entries.values()]) {
      if (this.fits(size, true)) return;
      const end = e.openedAt + this.slice();
      if (end <= now) void this.close(e, 'evicted');
      else nextSliceEnd = Math.min(nextSliceEnd, end);
    }
    if (this.fits(size, true)) return;
    // Opens in progress and closes call pump() when they finish; a slice end needs a timer.
    if (nextSliceEnd < Infinity) {
      if (this.wake) clearTimeout(this.wake);
      this.wake = setTimeout(() => {
        this.wake = undefined;
        this.pump();
      }, Math.max(1, nextSliceEnd - now));
    }
  }

  private admit(group: Group, lease: CredentialLease, size: number): void {
    group.state = 'opening';
    this.admittedUsers++;
    this.admittedConnections += size;
    if (size < this.perUser) this.counters.shrunk++;
    this.notePeak();
    // Admitted: the deadline no longer applies (connecting is bounded by connectTimeoutMs).
    for (const w of group.waiters) if (w.timer) clearTimeout(w.timer);
    group.done = this.connect(group.key, lease, size)
      .then(
        (entry) => {
          for (const w of [...group.waiters]) {
            group.waiters.delete(w);
            this.settle(w);
            // The lease it opened with may have ended meanwhile: then queue again with ours.
            if (entry.lease.live) w.resolve(entry.dataSource);
            else this.get(w.lease).then(w.resolve, w.reject);
          }
        },
        (err: unknown) => {
          for (const w of [...group.waiters]) {
            group.waiters.delete(w);
            this.settle(w);
            w.reject(err);
          }
        },
      )
      .finally(() => {
        this.admittedUsers--;
        this.admittedConnections -= size;
        if (this.groups.get(group.key) === group) this.groups.delete(group.key);
        this.pump();
      });
  }

  private notePeak(): void {
    let slots = this.admittedConnections + this.closingConnections;
    for (const e of this.entries.values()) slots += e.size;
    this.counters.peakUsers = Math.max(this.counters.peakUsers, this.entries.size + this.admittedUsers + this.closingUsers);
    this.counters.peakConnections = Math.max(this.counters.peakConnections, slots);
  }

  private async connect(key: string, lease: CredentialLease, size: number): Promise<Entry> {
    const o = this.options;
    const credential = lease.credential;
    const dataSource = new DataSource({
      type: 'postgres',
      // The one factory for "a connection as this credential" (same protection for every connection).
      ...gssapiTypeOrmOptions(credential, o, {
        max: size,
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
    const started = performance.now();
    try {
      await dataSource.initialize();
      const took = performance.now() - started;
      this.counters.connectMs += took;
      this.connectAvgMs = this.connectAvgMs ? 0.8 * this.connectAvgMs + 0.2 * took : took;
    } catch (err) {
      this.counters.failures++;
      await dataSource.destroy().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await dataSource.destroy();
      throw this.shutdownError();
    }
    const now = Date.now();
    const entry: Entry = { key, lease, dataSource, size, openedAt: now, lastUsed: now, unhook: () => undefined };
    // The lease's one timer (and logout) closes the pool: it never outlives the credential.
    entry.unhook = lease.onEnd((_l, reason) => this.close(entry, reason === 'expired' ? 'expired' : 'released'));
    this.counters.opens++;
    this.entries.set(key, entry);
    return entry;
  }

  private touch(entry: Entry): void {
    entry.lastUsed = Date.now();
    this.entries.delete(entry.key);
    this.entries.set(entry.key, entry);
  }

  private async sweepIdle(): Promise<void> {
    const now = Date.now();
    // A write noted long ago is replayed by any standby in service (they are checked to stream
    // and keep up): forget it rather than keep an entry per user who ever wrote.
    for (const [key, w] of this.pendingWrites) if (now - w.at >= this.idleTimeoutMs) this.pendingWrites.delete(key);
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
    this.closingUsers++;
    this.closingConnections += entry.size;
    try {
      // Evicted or idle pools may still be serving a request, or have just been handed out to a
      // caller about to query: let those finish, then close. An ended lease or shutdown closes at
      // once: no new query can start (the pool is no longer handed out), idle connections close
      // now, and pg ends a busy one when its query returns.
      if (why === 'evicted' || why === 'idle') await drained(entry);
      await entry.dataSource.destroy();
    } catch (err) {
      this.log.warn(`closing the pool of ${entry.key} (${why}) failed: ${(err as Error).message}`);
    } finally {
      this.closingUsers--;
      this.closingConnections -= entry.size;
      this.pump();
    }
  }

  /**
   * The time slice in force: the configured one, or 10x the measured connect time when that is
   * longer, but never more than a quarter of the queue deadline. A connect that takes seconds means
   * PostgreSQL or the KDC is saturated (measured: 11.6 s average on a bench whose queries kept
   * PostgreSQL at 100% CPU); slices of 10x that held every slot for minutes and turned every
   * waiting user away at the deadline, so the cap keeps rotation within the deadline instead.
   */
  private slice(): number {
    return Math.max(this.sliceMs, Math.min(SLICE_PER_CONNECT * this.connectAvgMs, this.queueTimeoutMs / MAX_SLICES_PER_DEADLINE));
  }

  private capacityError(reason: PoolCapacityReason, detail: string): PoolCapacityError {
    // About one round of the queue: every waiting user served for one slice by the free slots.
    const waitingUsers = [...this.groups.values()].filter((g) => g.state === 'queued').length;
    const rounds = Math.ceil((waitingUsers + 1) / this.maxUsers);
    return new PoolCapacityError(reason, Math.max(1, Math.ceil((rounds * this.slice()) / 1000)), detail);
  }

  private shutdownError(): PoolCapacityError {
    return new PoolCapacityError('shutdown', 5, 'the API is shutting down');
  }
}

/**
 * After a raw handout of the primary ({@link UserDataSources.get}), its user's reads stay on the
 * primary at least this long: the caller's writes may still be running, and only after them does
 * the primary's current WAL position cover them. Callers that write through
 * {@link UserDataSources.write} get the exact position instead.
 */
export const RAW_HANDOUT_WINDOW_MS = 1000;

/** `X/Y` (pg_lsn as text) as a number, for comparing positions. */
function parseLsn(text: string): bigint {
  const [hi, lo] = text.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

/** FNV-1a over the principal: a stable choice of standby per user. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Connect failures of pg-gssapi that are the server's (down, misconfigured), not the user's. */
const HOST_AUTH_FAILURES = new Set(['PG_SERVER_KEYTAB', 'PG_NO_HBA_ENTRY', 'PG_DATABASE_MISSING', 'PG_CONNECT_REFUSED', 'PG_GSSENC_REFUSED', 'PG_GSSENC_BROKEN', 'PG_TLS_REFUSED', 'PG_TLS_FAILED', 'PG_PROTOCOL']);

/**
 * Whether an error of a standby read is the standby's failure (retry on the primary) rather than
 * the query's or the user's: connection errors (SQLSTATE class 08, sockets, pool timeouts),
 * shutdown and startup (57P01-57P03), too many connections (53300), a GSSAPI connect failure to
 * that host, and a recovery conflict cancelling the read (40001, hot standby only).
 */
function standbyFailure(err: unknown): boolean {
  if (err instanceof PoolCapacityError || err instanceof CredentialExpiredError) return false;
  // The user's own problems (no role, a credential the KDC refuses) are the same on the primary:
  // they are answered as such, and the standby stays in service.
  if (err instanceof PgAuthError && HOST_AUTH_FAILURES.has(err.code)) return true;
  const code = err instanceof PgAuthError ? err.sqlState : (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    // (also when TypeORM wrapped pg-gssapi's error: it copies `code` onto its QueryFailedError)
    if (HOST_AUTH_FAILURES.has(code) || code.startsWith('08') || ['57P01', '57P02', '57P03', '53300', '40001'].includes(code)) return true;
    if (/^E(CONNREFUSED|CONNRESET|PIPE|TIMEDOUT|HOSTUNREACH|NETUNREACH|NOTFOUND|AI_AGAIN)$/.test(code)) return true;
  }
  const message = (err as Error | null)?.message ?? '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connect ECONNREFUSED/.test(message);
}

/** A slice is at least this many times the measured connect time. */
const SLICE_PER_CONNECT = 10;
/** The adaptive slice is at most queueTimeoutMs / this. */
const MAX_SLICES_PER_DEADLINE = 4;

/** A pool handed out this recently is not closed: its caller is about to use it. */
const HANDOUT_GRACE_MS = 100;

type PgPool = { totalCount: number; idleCount: number; waitingCount: number };

function poolOf(ds: DataSource): PgPool | undefined {
  // TypeORM's postgres driver keeps its pg.Pool as `master`.
  return (ds.driver as unknown as { master?: PgPool }).master;
}

function waitingCount(ds: DataSource): number {
  return poolOf(ds)?.waitingCount ?? 0;
}

/** Wait (bounded) until no connection of the pool is checked out and its last handout is not fresh. */
async function drained(entry: Entry, graceMs = 30_000): Promise<void> {
  const pool = poolOf(entry.dataSource);
  const end = Date.now() + graceMs;
  while (Date.now() < end && (Date.now() - entry.lastUsed < HANDOUT_GRACE_MS || (pool && pool.totalCount - pool.idleCount + pool.waitingCount > 0))) {
    await new Promise((r) => setTimeout(r, 20));
  }
}

function positive(name: string, n: number): number {
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`${name} must be a positive number, not ${n}`);
  return n;
}
