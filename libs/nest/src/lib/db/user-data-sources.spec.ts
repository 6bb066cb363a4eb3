/**
 * Per-user data sources against the real realm: every lease's queries run as its own user, one
 * pool per principal shared by that user's sessions, pools are bounded and closed when their
 * lease ends (checked in pg_stat_activity, as the database superuser sees it).
 */
import { Test } from '@nestjs/testing';
import { Controller, Get, INestApplicationContext, Param } from '@nestjs/common';
import { Credential } from '@forwardable/gssapi';
import { ensureRealm, kinit, RealmEnv, repoRoot, runWithRealm, superuserSql, superuserSqlAsync } from '@forwardable/testing/realm';
import { delegatedCredential, DelegationMode, useRealm } from '@forwardable/testing/delegation';
import { PgAuthError } from '@forwardable/pg-gssapi';
import { CredentialLease } from '../auth/credential-lease';
import { UserDataSourcesModule } from './user-data-sources.module';
import { CredentialExpiredError, PoolCapacityError, UserDataSources } from './user-data-sources';
import { ApiExceptionFilter } from '../auth/api-exception.filter';
import type { UserDataSourcesOptions } from './options';

/** Backends of our application (`application_name = forwardable`) per role, as the superuser sees them. */
function connectionsByRole(realm: RealmEnv): Record<string, number> {
  const lines = superuserSql(
    realm,
    "SELECT usename || '=' || count(*) FROM pg_stat_activity WHERE application_name = 'forwardable' GROUP BY usename",
  );
  return Object.fromEntries(lines.map((l) => [l.split('=')[0], Number(l.split('=')[1])]));
}

async function eventually(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startModule(realm: RealmEnv, extra: Partial<UserDataSourcesOptions> = {}): Promise<INestApplicationContext> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      UserDataSourcesModule.forRoot({
        host: 'localhost',
        hostaddr: '127.0.0.1',
        port: realm.pg.port,
        database: realm.pg.database,
        ...extra,
      }),
    ],
  }).compile();
  // close() runs onApplicationShutdown, which must close every pool.
  await moduleRef.init();
  return moduleRef;
}

describe.each([
  ['db2', 'forwarded'],
  ['ldap', 'proxy'],
] as const)('UserDataSources (%s realm, %s credentials)', (kdb, mode: DelegationMode) => {
  let realm: RealmEnv;
  /** Leases made by a test; ended after it (which disposes their credentials). */
  const leases: CredentialLease[] = [];
  /** A lease of a fresh delegated credential of `user`, as the vault would hand it out. */
  const leaseOf = async (user: string, sessionId: string, password?: string): Promise<CredentialLease> => {
    const lease = new CredentialLease({ credential: await delegatedCredential(realm, user, mode, password), sessionId, realms: [realm.realm] });
    leases.push(lease);
    return lease;
  };

  beforeAll(() => {
    realm = ensureRealm(kdb);
    useRealm(realm);
  });
  beforeEach(() => useRealm(realm));
  afterEach(async () => {
    await Promise.allSettled(leases.splice(0).map((l) => l.end('shutdown')));
  });

  it('gives each user a data source connected as themselves, reused within the session', async () => {
    const app = await startModule(realm);
    const sources = app.get(UserDataSources);
    try {
      const alice = await leaseOf('alice', 'session-a');
      const bob = await leaseOf('bob', 'session-b');
      const a = await sources.get(alice);
      const b = await sources.get(bob);
      expect(await a.query('SELECT session_user AS u')).toEqual([{ u: 'alice' }]);
      expect(await b.query('SELECT session_user AS u')).toEqual([{ u: 'bob' }]);
      expect(await sources.get(alice)).toBe(a);
      expect(sources.stats().counters).toMatchObject({ opens: 2, reuses: 1 });
    } finally {
      await app.close();
    }
    expect(connectionsByRole(realm)).toEqual({});
  });

  it('creates one pool for two simultaneous first requests of a user', async () => {
    const app = await startModule(realm);
    const sources = app.get(UserDataSources);
    try {
      const alice = await leaseOf('alice', 's1');
      const [x, y] = await Promise.all([sources.get(alice), sources.get(alice)]);
      expect(x).toBe(y);
      expect(sources.stats().counters.opens).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('shares one pool between the sessions of one principal; when the lease it uses ends, the pool closes and the next one opens with a live lease', async () => {
    const app = await startModule(realm);
    const sources = app.get(UserDataSources);
    try {
      const first = await leaseOf('carol', 'carol-1');
      const second = await leaseOf('carol', 'carol-2');
      const third = await leaseOf('carol', 'carol-3');
      const pool = await sources.get(first);
      expect(await sources.get(second)).toBe(pool);
      expect(await sources.get(third)).toBe(pool);
      expect(sources.stats()).toMatchObject({ users: 1, counters: { opens: 1, reuses: 2 } });
      expect(sources.poolOf(first.principal)).toEqual({ sessionId: 'carol-1', size: 2 });
      await pool.query('SELECT 1');
      // A session that is not the pool's ends: the pool (opened with another credential) stays.
      await second.end('logout');
      expect(await sources.get(third)).toBe(pool);
      // The session whose credential opened the pool logs out: the pool is closed at once, its
      // backends go, the credential is disposed, and no connection it opened is handed out again.
      await first.end('logout');
      expect(first.credential.disposed).toBe(true);
      expect(sources.poolOf(first.principal)).toBeNull();
      await eventually(() => !connectionsByRole(realm).carol);
      await expect(sources.get(first)).rejects.toBeInstanceOf(CredentialExpiredError);
      // The user's other live session carries on with a pool of its own credential.
      const next = await sources.get(third);
      expect(next).not.toBe(pool);
      expect(sources.poolOf(third.principal)).toMatchObject({ sessionId: 'carol-3' });
      expect(await next.query('SELECT session_user AS u')).toEqual([{ u: 'carol' }]);
      expect(sources.stats().counters).toMatchObject({ opens: 2, released: 1 });
    } finally {
      await app.close();
    }
    expect(connectionsByRole(realm)).toEqual({});
  });

  it('keeps 50 users x 20 concurrent queries each on the right user', async () => {
    const names = Array.from({ length: 50 }, (_, i) => `dsload${kdb}${i}`);
    const pw = 'ds-load-password';
    const add = runWithRealm(realm, 'bash', [`${repoRoot}/tools/realm/realm.sh`, 'add-users', '--dir', realm.dir, '--password', pw, ...names]);
    expect(add.status).toBe(0);
    const ls = await Promise.all(names.map((n, i) => leaseOf(n, `load-${i}`, pw)));
    const app = await startModule(realm, { maxUsers: 100, maxConnections: 150 });
    const sources = app.get(UserDataSources);
    try {
      const results = await Promise.all(
        ls.flatMap((l, i) =>
          Array.from({ length: 20 }, async () => {
            const ds = await sources.get(l);
            const [row] = await ds.query('SELECT session_user AS u');
            return row.u === names[i];
          }),
        ),
      );
      expect(results.filter((ok) => !ok)).toHaveLength(0);
      expect(results).toHaveLength(1000);
      expect(sources.stats().counters.opens).toBe(50);
    } finally {
      await app.close();
    }
    expect(connectionsByRole(realm)).toEqual({});
  });

  it('evicts the least recently used user when the user cap is reached', async () => {
    const app = await startModule(realm, { maxUsers: 1 });
    const sources = app.get(UserDataSources);
    try {
      await (await sources.get(await leaseOf('alice', 'a'))).query('SELECT 1');
      expect(connectionsByRole(realm).alice).toBeGreaterThan(0);
      await (await sources.get(await leaseOf('bob', 'b'))).query('SELECT 1');
      expect(sources.stats()).toMatchObject({ users: 1, counters: { evictions: 1 } });
      await eventually(() => !connectionsByRole(realm).alice);
      expect(connectionsByRole(realm).bob).toBeGreaterThan(0);
    } finally {
      await app.close();
    }
  });

  it('never opens past the user cap when many users arrive at once, and lets in-flight queries finish', async () => {
    // Regression (found by the benchmark): with every slot still opening, makeRoom gave up and
    // opened past the cap; and evicting a pool in use broke the query running on it.
    const names = Array.from({ length: 10 }, (_, i) => `capload${kdb}${i}`);
    const add = runWithRealm(realm, 'bash', [`${repoRoot}/tools/realm/realm.sh`, 'add-users', '--dir', realm.dir, '--password', 'cap-pw', ...names]);
    expect(add.status).toBe(0);
    const ls = await Promise.all(names.map((n, i) => leaseOf(n, `cap-${i}`, 'cap-pw')));
    const app = await startModule(realm, { maxUsers: 3 });
    const sources = app.get(UserDataSources);
    let peak = 0;
    // Pools being closed still hold connections: they count against the cap until gone.
    const sampler = setInterval(() => (peak = Math.max(peak, sources.stats().users + sources.stats().closing)), 5);
    try {
      const results = await Promise.all(
        ls.map(async (l, i) => {
          const ds = await sources.get(l);
          const [row] = await ds.query('SELECT session_user AS u, pg_sleep(0.05)');
          return row.u === names[i];
        }),
      );
      expect(results).toEqual(names.map(() => true));
      expect(peak).toBeLessThanOrEqual(3);
      expect(sources.stats()).toMatchObject({ counters: { opens: 10, evictions: 7 } });
    } finally {
      clearInterval(sampler);
      await app.close();
    }
  });

  it('closes idle pools', async () => {
    const app = await startModule(realm, { idleTimeoutMs: 200, sweepIntervalMs: 50 });
    const sources = app.get(UserDataSources);
    try {
      await (await sources.get(await leaseOf('alice', 'a'))).query('SELECT 1');
      expect(connectionsByRole(realm).alice).toBeGreaterThan(0);
      await eventually(() => sources.stats().counters.idleClosed === 1);
      await eventually(() => !connectionsByRole(realm).alice);
    } finally {
      await app.close();
    }
  });

  it('closes the pool when its lease ends (logout) and refuses the ended lease', async () => {
    const app = await startModule(realm);
    const sources = app.get(UserDataSources);
    try {
      const own = await leaseOf('carol', 'c');
      await (await sources.get(own)).query('SELECT 1');
      await own.end('logout');
      await eventually(() => !connectionsByRole(realm).carol);
      expect(own.credential.disposed).toBe(true);
      await expect(sources.get(own)).rejects.toBeInstanceOf(CredentialExpiredError);
      expect(sources.stats().counters.released).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('closes the pool of a lease whose credential expires (the lease\'s one timer)', async () => {
    // A short-lived ticket: the KDC issues it for 10 s, and the pool must not outlive it.
    const tgt = kinit(realm, 'carol', ['-l', '10s']);
    const short = new CredentialLease({ credential: await Credential.fromCache(tgt.name, 'password'), sessionId: 'short', realms: [realm.realm] });
    leases.push(short);
    // No sweeps during the test: the lease's timer alone must close the pool.
    const app = await startModule(realm, { sweepIntervalMs: 3600_000 });
    const sources = app.get(UserDataSources);
    try {
      expect(short.expiresAt - Date.now()).toBeLessThanOrEqual(11_000);
      await (await sources.get(short)).query('SELECT 1');
      expect(connectionsByRole(realm).carol).toBeGreaterThan(0);
      await eventually(() => sources.stats().counters.expiredClosed === 1, 15_000);
      await eventually(() => !connectionsByRole(realm).carol);
      expect(short.ended).toBe(true);
      expect(short.credential.disposed).toBe(true);
      await expect(sources.get(short)).rejects.toBeInstanceOf(CredentialExpiredError);
    } finally {
      await app.close();
      tgt.destroy();
    }
  });

  it('a user with no database role gets a clear error, and no pool is kept', async () => {
    runWithRealm(realm, 'bash', [`${repoRoot}/tools/realm/realm.sh`, 'add-users', '--dir', realm.dir, '--password', 'frank-pw', '--no-role', 'frank']);
    const app = await startModule(realm);
    const sources = app.get(UserDataSources);
    try {
      const err = await sources.get(await leaseOf('frank', 'f', 'frank-pw')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PgAuthError);
      expect((err as PgAuthError).code).toBe('PG_ROLE_MISSING');
      expect(sources.stats().users).toBe(0);
    } finally {
      await app.close();
    }
  });
});

describe('the API has no database identity of its own', () => {
  it('no password gets anyone in: without a Kerberos credential PostgreSQL refuses even its owner', () => {
    const realm = ensureRealm('db2');
    const r = runWithRealm(realm, 'psql', ['-X', '-w', '-h', 'localhost', '-p', String(realm.pg.port), '-U', 'dbadmin', '-d', 'forwardable', '-c', 'SELECT 1'], {
      env: { KRB5CCNAME: `FILE:${realm.dir}/run/no-such-cache`, PGPASSWORD: 'any-password-at-all', PGHOSTADDR: '127.0.0.1' },
    });
    expect(r.status).not.toBe(0);
    // Without a ticket libpq cannot set up GSSAPI encryption, and pg_hba (hostgssenc only) has no
    // line for an unencrypted connection: refused before any password could be asked for.
    expect(r.stderr).toMatch(/GSSAPI|no pg_hba\.conf entry for host .* no encryption/);
    expect(r.stderr).not.toMatch(/password authentication failed/);
  });
});

/** Answers `GET /probe/:user` with the session user, through the scheduler and the API's exception filter. */
@Controller('probe')
class ProbeController {
  static leases = new Map<string, CredentialLease>();
  constructor(private readonly sources: UserDataSources) {}
  @Get(':user')
  async probe(@Param('user') user: string): Promise<{ u: string }> {
    const lease = ProbeController.leases.get(user);
    if (!lease) throw new Error(`no lease for ${user}`);
    const [row] = await (await this.sources.get(lease)).query('SELECT session_user AS u');
    return row;
  }
}

describe('UserDataSources scheduler (db2 realm, small caps)', () => {
  let realm: RealmEnv;
  const leases: CredentialLease[] = [];
  const pw = 'sched-pw';
  const names = Array.from({ length: 12 }, (_, i) => `sched${i}`);
  const leaseOf = async (user: string, sessionId = `s-${user}`): Promise<CredentialLease> => {
    const lease = new CredentialLease({ credential: await delegatedCredential(realm, user, 'forwarded', pw), sessionId, realms: [realm.realm] });
    leases.push(lease);
    return lease;
  };
  /**
   * Backends of application_name forwardable of this block's users, as the superuser sees them
   * (without blocking the loop; other suites on the same realm have other users).
   */
  const backends = async (): Promise<number> =>
    Number((await superuserSqlAsync(realm, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'forwardable' AND usename LIKE 'sched%'"))[0]);
  /** Settles to the error a promise rejects with (or 'ok'), without leaving it unhandled. */
  const outcome = (p: Promise<unknown>): Promise<unknown> => p.then(() => 'ok', (e: unknown) => e);

  beforeAll(() => {
    realm = ensureRealm('db2');
    useRealm(realm);
    const add = runWithRealm(realm, 'bash', [`${repoRoot}/tools/realm/realm.sh`, 'add-users', '--dir', realm.dir, '--password', pw, ...names]);
    expect(add.status).toBe(0);
  });
  beforeEach(() => useRealm(realm));
  afterEach(async () => {
    await Promise.allSettled(leases.splice(0).map((l) => l.end('shutdown')));
  });

  it('12 users hammering caps of 3 users / 4 connections: the caps hold in pg_stat_activity and in its counters, every request completes as its user, pools shrink to 1', async () => {
    const ls = await Promise.all(names.map((n) => leaseOf(n)));
    const app = await startModule(realm, { maxUsers: 3, maxConnections: 4, connectionsPerUser: 2, sliceMs: 100, queueTimeoutMs: 120_000 });
    const sources = app.get(UserDataSources);
    let peakBackends = 0;
    let peakSlots = 0;
    let samples = 0;
    let done = false;
    // Sampled while the load runs (psql in a child process: the scheduler keeps running).
    const sampler = (async () => {
      while (!done) {
        peakBackends = Math.max(peakBackends, await backends());
        const s = sources.stats();
        peakSlots = Math.max(peakSlots, s.users + s.opening + s.closing);
        samples++;
        await new Promise((r) => setTimeout(r, 30));
      }
    })();
    try {
      const answered = await Promise.all(
        ls.map(async (l, i) => {
          const seen: string[] = [];
          // Closed loop: each user sends 5 requests, one after another.
          for (let k = 0; k < 5; k++) {
            const ds = await sources.get(l);
            const [row] = await ds.query('SELECT session_user AS u, pg_sleep(0.02)');
            seen.push(row.u);
          }
          return seen.every((u) => u === names[i]) ? seen.length : -1;
        }),
      );
      expect(answered).toEqual(names.map(() => 5));
    } finally {
      done = true;
      await sampler;
      await app.close();
    }
    const c = sources.stats().counters;
    expect(samples).toBeGreaterThan(3);
    expect(peakBackends).toBeGreaterThan(0);
    expect(peakBackends).toBeLessThanOrEqual(4);
    expect(peakSlots).toBeLessThanOrEqual(3);
    expect(c.peakUsers).toBeLessThanOrEqual(3);
    expect(c.peakConnections).toBeLessThanOrEqual(4);
    // The scheduler had to work: users waited, pools were evicted after their slices, and pools
    // opened while others waited got one connection.
    expect(c.queued).toBeGreaterThan(0);
    expect(c.evictions).toBeGreaterThan(0);
    expect(c.shrunk).toBeGreaterThan(0);
    expect(c).toMatchObject({ queueFull: 0, deadlineExceeded: 0, failures: 0 });
    expect(c.connectMs).toBeGreaterThan(0);
    // The slice follows the measured connect time: never shorter than 10 connects, never longer
    // than a quarter of the queue deadline (120 s here).
    const { sliceMs, connectAvgMs } = sources.stats();
    expect(connectAvgMs).toBeGreaterThan(0);
    expect(sliceMs).toBe(Math.max(100, Math.min(10 * connectAvgMs, 30_000)));
    expect(connectionsByRole(realm)).toEqual({});
  }, 300_000);

  it('caps the adaptive slice at a quarter of the queue deadline, however slow connects are', async () => {
    const [lease] = await Promise.all(names.slice(0, 1).map((n) => leaseOf(n)));
    // A 40 ms deadline: 10x any real connect (a TGS plus a GSSAPI connect) is far above 40 / 4.
    const app = await startModule(realm, { maxUsers: 1, sliceMs: 1, queueTimeoutMs: 40 });
    const sources = app.get(UserDataSources);
    try {
      await (await sources.get(lease)).query('SELECT 1');
      const { sliceMs, connectAvgMs } = sources.stats();
      expect(connectAvgMs).toBeGreaterThan(1);
      expect(sliceMs).toBe(10);
    } finally {
      await app.close();
    }
  });

  it('admits waiting users in arrival (FIFO) order', async () => {
    const [holder, ...waiting] = await Promise.all(names.slice(0, 6).map((n) => leaseOf(n)));
    const app = await startModule(realm, { maxUsers: 1, sliceMs: 50, queueTimeoutMs: 60_000 });
    const sources = app.get(UserDataSources);
    try {
      await (await sources.get(holder)).query('SELECT 1');
      const order: string[] = [];
      const all: Promise<void>[] = [];
      for (const l of waiting) {
        all.push(
          sources.get(l).then(async (ds) => {
            order.push(l.principal);
            await ds.query('SELECT 1');
          }),
        );
        // Each arrives strictly after the previous one joined the queue.
        await new Promise((r) => setImmediate(r));
      }
      expect(sources.stats().waitingUsers).toBeGreaterThan(0);
      await Promise.all(all);
      expect(order).toEqual(waiting.map((l) => l.principal));
      expect(sources.stats().counters.opens).toBe(6);
    } finally {
      await app.close();
    }
  });

  it('answers 503 with Retry-After through the exception filter when a user\'s queue is full, and when the deadline passes', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        UserDataSourcesModule.forRoot({
          host: 'localhost', hostaddr: '127.0.0.1', port: realm.pg.port, database: realm.pg.database,
          maxUsers: 1, sliceMs: 60_000, maxQueuePerUser: 3, queueTimeoutMs: 1500,
        }),
      ],
      controllers: [ProbeController],
    }).compile();
    const http = moduleRef.createNestApplication({ logger: false });
    http.useGlobalFilters(new ApiExceptionFilter());
    await http.listen(0, '127.0.0.1');
    const base = await http.getUrl();
    try {
      ProbeController.leases.set('a', await leaseOf(names[0]));
      ProbeController.leases.set('b', await leaseOf(names[1]));
      const first = await fetch(`${base}/probe/a`);
      expect(await first.json()).toEqual({ u: names[0] });
      // names[0] holds the only slot for its (long) slice: names[1] queues, 3 requests at most.
      const queued = [1, 2, 3].map(() => fetch(`${base}/probe/b`));
      await eventually(() => http.get(UserDataSources).stats().waiting === 3);
      const full = await fetch(`${base}/probe/b`);
      expect(full.status).toBe(503);
      expect(Number(full.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await full.json()).toMatchObject({ statusCode: 503, code: 'DATABASE_UNAVAILABLE', message: expect.stringMatching(/3 requests waiting.*try again/) });
      // The queued ones are not admitted before the deadline: 503, not an endless wait.
      for (const r of await Promise.all(queued)) {
        expect(r.status).toBe(503);
        expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect(await r.json()).toMatchObject({ code: 'DATABASE_UNAVAILABLE', message: expect.stringMatching(/no database connection became free within 1500 ms: try again/) });
      }
      const s = http.get(UserDataSources).stats();
      expect(s.counters).toMatchObject({ queueFull: 1, deadlineExceeded: 3 });
      expect(s.waiting).toBe(0);
      // names[1] never got a connection.
      expect(connectionsByRole(realm)[names[1]]).toBeUndefined();
    } finally {
      ProbeController.leases.clear();
      await http.close();
    }
    expect(connectionsByRole(realm)).toEqual({});
  });

  it('a queued user who logs out leaves the queue at once (waiters rejected, never connected), and the users behind them are served', async () => {
    const [holder, quitter, next] = await Promise.all(names.slice(0, 3).map((n) => leaseOf(n)));
    const app = await startModule(realm, { maxUsers: 1, sliceMs: 300, queueTimeoutMs: 60_000 });
    const sources = app.get(UserDataSources);
    try {
      await (await sources.get(holder)).query('SELECT 1');
      const q1 = outcome(sources.get(quitter));
      const q2 = outcome(sources.get(quitter));
      const n = sources.get(next);
      expect(sources.stats()).toMatchObject({ waiting: 3, waitingUsers: 2 });
      await quitter.end('logout');
      expect(await q1).toBeInstanceOf(CredentialExpiredError);
      expect(await q2).toBeInstanceOf(CredentialExpiredError);
      expect(sources.stats()).toMatchObject({ waiting: 1, waitingUsers: 1 });
      expect(await (await n).query('SELECT session_user AS u')).toEqual([{ u: names[2] }]);
      expect(sources.stats().counters).toMatchObject({ dropped: 2, opens: 2 });
      expect(sources.poolOf(quitter.principal)).toBeNull();
      expect(connectionsByRole(realm)[names[1]]).toBeUndefined();
    } finally {
      await app.close();
    }
  });

  it('shutdown rejects every waiter with a 503 error and closes every pool', async () => {
    const [holder, a, b] = await Promise.all(names.slice(0, 3).map((n) => leaseOf(n)));
    const app = await startModule(realm, { maxUsers: 1, sliceMs: 60_000, queueTimeoutMs: 60_000 });
    const sources = app.get(UserDataSources);
    await (await sources.get(holder)).query('SELECT 1');
    const waiting = [outcome(sources.get(a)), outcome(sources.get(a)), outcome(sources.get(b))];
    expect(sources.stats().waiting).toBe(3);
    await app.close();
    for (const err of await Promise.all(waiting)) {
      expect(err).toBeInstanceOf(PoolCapacityError);
      expect((err as PoolCapacityError).reason).toBe('shutdown');
    }
    expect(sources.stats()).toMatchObject({ users: 0, waiting: 0 });
    await expect(sources.get(a)).rejects.toBeInstanceOf(PoolCapacityError);
    await eventually(() => Object.keys(connectionsByRole(realm)).length === 0);
  });
});
