/**
 * Reads on a PostgreSQL hot standby (issue #19), against the real realm with a streaming standby
 * (`realm up --pg-standby`): which server served a query is asked of the server itself
 * (`pg_is_in_recovery()`, `inet_server_port()`), and what exists there of the superuser on each.
 */
import { Test } from '@nestjs/testing';
import type { INestApplicationContext } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureStandbyRealm, RealmEnv, repoRoot, runWithRealm, standbyView, superuserSql, superuserSqlAsync } from '@forwardable/testing/realm';
import { delegatedCredential, useRealm } from '@forwardable/testing/delegation';
import { CredentialLease } from '../auth/credential-lease';
import { UserDataSourcesModule } from './user-data-sources.module';
import { UserDataSources } from './user-data-sources';
import type { UserDataSourcesOptions } from './options';

/** Which server answered, as that server says. */
const WHERE = 'SELECT pg_is_in_recovery() AS standby, inet_server_port() AS port, session_user AS u';
type Where = { standby: boolean; port: number; u: string };

/**
 * Wait until `check` holds. A check that throws counts as "not yet" until the time is up (then its
 * error is thrown): a standby that has not replayed a table's creation yet answers "relation does
 * not exist", which is replication lag, not a failure.
 */
async function eventually(check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    let error: unknown;
    try {
      if (await check()) return;
    } catch (e) {
      error = e;
    }
    if (Date.now() > end) throw error ?? new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('UserDataSources with a hot standby (db2 realm --pg-standby)', () => {
  let realm: RealmEnv;
  let standby: RealmEnv;
  const leases: CredentialLease[] = [];
  const apps: INestApplicationContext[] = [];
  const pw = 'standby-pw';
  const names = Array.from({ length: 10 }, (_, i) => `rep${i}`);

  const leaseOf = async (user: string, password?: string): Promise<CredentialLease> => {
    const lease = new CredentialLease({ credential: await delegatedCredential(realm, user, 'forwarded', password), sessionId: `s-${user}-${leases.length}`, realms: [realm.realm] });
    leases.push(lease);
    return lease;
  };
  const start = async (extra: Partial<UserDataSourcesOptions> = {}): Promise<UserDataSources> => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        UserDataSourcesModule.forRoot({
          host: 'localhost',
          hostaddr: '127.0.0.1',
          port: realm.pg.port,
          database: realm.pg.database,
          readHosts: [{ host: 'localhost', hostaddr: '127.0.0.1', port: realm.pgStandbyPort }],
          // Every read the standby's (when usable), so that each test knows where a read should go.
          primaryServesReads: false,
          ...extra,
        }),
      ],
    }).compile();
    await moduleRef.init();
    apps.push(moduleRef);
    return moduleRef.get(UserDataSources);
  };
  /** Rows of the notes table as the superuser sees them on the standby (past RLS). */
  const standbyNotes = (owner: string) => superuserSql(standby, `SELECT body FROM standby_notes WHERE owner = '${owner}' ORDER BY id`, realm.pg.database);
  const standbyPid = () => Number(readFileSync(join(realm.dir, 'pg/standby/postmaster.pid'), 'utf8').split('\n')[0]);

  beforeAll(() => {
    realm = ensureStandbyRealm();
    standby = standbyView(realm);
    useRealm(realm);
    const add = runWithRealm(realm, 'bash', [`${repoRoot}/tools/realm/realm.sh`, 'add-users', '--dir', realm.dir, '--password', pw, ...names]);
    expect(add.status).toBe(0);
    // A table of the suite's own with the usual owner policy (FORCE: even its owner is bound),
    // made on the primary by the cluster superuser; the standby gets it by replication.
    superuserSql(
      realm,
      `CREATE TABLE IF NOT EXISTS standby_notes (id serial PRIMARY KEY, owner name NOT NULL DEFAULT session_user, body text NOT NULL);
       ALTER TABLE standby_notes ENABLE ROW LEVEL SECURITY; ALTER TABLE standby_notes FORCE ROW LEVEL SECURITY;
       DROP POLICY IF EXISTS own ON standby_notes;
       CREATE POLICY own ON standby_notes USING (owner = session_user) WITH CHECK (owner = session_user);
       GRANT SELECT, INSERT ON standby_notes TO forwardable_users; GRANT USAGE ON SEQUENCE standby_notes_id_seq TO forwardable_users;`,
      realm.pg.database,
    );
  });
  beforeEach(() => useRealm(realm));
  afterEach(async () => {
    await Promise.allSettled(apps.splice(0).map((a) => a.close()));
    await Promise.allSettled(leases.splice(0).map((l) => l.end('shutdown')));
  });

  it('serves a read from the standby, as the user, and RLS hides another user\'s rows there exactly as on the primary, raw SQL included', async () => {
    const sources = await start();
    const alice = await leaseOf('alice');
    const bob = await leaseOf('bob');
    const secret = `bob-secret-${Date.now()}`;
    const mine = `alice-${Date.now()}`;
    await sources.write(alice, (ds) => ds.query('INSERT INTO standby_notes (body) VALUES ($1)', [mine]));
    await sources.write(bob, (ds) => ds.query('INSERT INTO standby_notes (body) VALUES ($1)', [secret]));
    // The standby has bob's row (the superuser sees it there): what alice does not see is RLS's doing.
    await eventually(() => standbyNotes('bob').includes(secret) && standbyNotes('alice').includes(mine));

    const where = (await sources.read(alice, (ds) => ds.query(WHERE))) as Where[];
    expect(where).toEqual([{ standby: true, port: realm.pgStandbyPort, u: 'alice' }]);
    const seen = (await sources.read(alice, (ds) => ds.query('SELECT owner, body FROM standby_notes'))) as { owner: string; body: string }[];
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((r) => r.owner === 'alice')).toBe(true);
    // An "injected" predicate cannot widen it: the policy is ANDed to whatever the query says.
    const injected = (await sources.read(alice, (ds) => ds.query(`SELECT body FROM standby_notes WHERE owner = 'bob' OR true`))) as unknown[];
    expect(injected.length).toBe(seen.length);
    expect(JSON.stringify(injected)).not.toContain(secret);
    // Switching RLS off is refused on the standby as on the primary (42501), and the role cannot bypass it.
    const refused = await sources.read(alice, async (ds) => {
      const runner = ds.createQueryRunner();
      try {
        await runner.query('SET row_security = off');
        return await runner.query('SELECT body FROM standby_notes');
      } finally {
        await runner.query('RESET row_security').catch(() => undefined);
        await runner.release();
      }
    }).then(() => 'no error', (e: { code?: string }) => e.code);
    expect(refused).toBe('42501');
    // Every one of these reads was the standby's.
    expect(sources.stats().reads).toMatchObject({ standby: 3, fallbacks: 0 });
    expect(sources.stats().standbys).toEqual([expect.objectContaining({ host: `localhost:${realm.pgStandbyPort}`, down: null, users: 1 })]);
  }, 120_000);

  it('sends every write to the primary, never the standby; the standby path is read-only', async () => {
    const sources = await start();
    const carol = await leaseOf('carol');
    const body = `carol-${Date.now()}`;
    const [landed] = (await sources.write(carol, (ds) => ds.query(`INSERT INTO standby_notes (body) VALUES ($1) RETURNING pg_is_in_recovery() AS standby, inet_server_port() AS port`, [body]))) as { standby: boolean; port: number }[];
    expect(landed).toEqual({ standby: false, port: realm.pg.port });
    // The raw handout (get) is the primary too.
    expect(await (await sources.get(carol)).query(WHERE)).toEqual([{ standby: false, port: realm.pg.port, u: 'carol' }]);
    // A write attempted through the read path (by a user with no write pending, so the read goes
    // to the standby) fails there, the standby refusing writes (25006), and is not retried on the
    // primary: it never lands anywhere.
    const alice = await leaseOf('alice');
    const attempt = await sources.read(alice, (ds) => ds.query(`INSERT INTO standby_notes (body) VALUES ('via-read') RETURNING id`)).then(() => 'inserted', (e: { code?: string }) => e.code);
    expect(attempt).toBe('25006');
    expect(superuserSql(realm, `SELECT count(*) FROM standby_notes WHERE body = 'via-read'`, realm.pg.database)).toEqual(['0']);
    // No backend of ours on the standby ever wrote: its WAL is the primary's, received.
    expect(superuserSql(standby, 'SELECT pg_is_in_recovery()')).toEqual(['t']);
  }, 120_000);

  it('read-after-write: a user\'s read right after their own write sees it (primary until the standby has replayed it), 20 times in a row', async () => {
    const sources = await start();
    const alice = await leaseOf('alice');
    for (let i = 0; i < 20; i++) {
      const body = `raw-${Date.now()}-${i}`;
      await sources.write(alice, (ds) => ds.query('INSERT INTO standby_notes (body) VALUES ($1)', [body]));
      const rows = (await sources.read(alice, (ds) => ds.query('SELECT body FROM standby_notes WHERE body = $1', [body]))) as unknown[];
      expect(rows).toEqual([{ body }]);
    }
    const { reads } = sources.stats();
    expect(reads.standby + reads.afterWrite).toBe(20);
    // Once the standby has replayed the last write, reads go back to it.
    await eventually(async () => ((await sources.read(alice, (ds) => ds.query(WHERE))) as Where[])[0].standby);
  }, 120_000);

  it('keeps answering reads from the primary while the standby is down, with one warning, and uses the standby again when it is back', async () => {
    const sources = await start({ standbyRetryMs: 500, standbyCheckIntervalMs: 200 });
    const bob = await leaseOf('bob');
    expect(((await sources.read(bob, (ds) => ds.query(WHERE))) as Where[])[0]).toMatchObject({ standby: true });
    const warnings: string[] = [];
    const logger = (sources as unknown as { log: { warn: (m: string) => void } }).log;
    const warn = logger.warn.bind(logger);
    logger.warn = (m: string) => {
      warnings.push(m);
      warn(m);
    };
    try {
      // Fast shutdown of the standby's postmaster (SIGINT): its open connections are cut too.
      process.kill(standbyPid(), 'SIGINT');
      await eventually(() => superuserSqlAsync(standby, 'SELECT 1').then(() => false, () => true));
      for (let i = 0; i < 5; i++) {
        expect(((await sources.read(bob, (ds) => ds.query(WHERE))) as Where[])[0]).toEqual({ standby: false, port: realm.pg.port, u: 'bob' });
      }
      expect(sources.stats().standbys[0].down).toEqual(expect.any(String));
      expect(sources.stats().reads.fallbacks).toBeGreaterThan(0);
      expect(warnings.filter((w) => w.includes(`standby localhost:${realm.pgStandbyPort}`))).toHaveLength(1);
    } finally {
      logger.warn = warn;
      ensureStandbyRealm(); // restarts the stopped standby
    }
    await eventually(async () => ((await sources.read(bob, (ds) => ds.query(WHERE))) as Where[])[0].standby);
    expect(sources.stats().standbys[0].down).toBeNull();
  }, 120_000);

  it('spreads users over the primary and the standby by default (primaryServesReads), each user always on the same one', async () => {
    const sources = await start({ primaryServesReads: true });
    const ls = await Promise.all(names.map((n) => leaseOf(n, pw)));
    const first = await Promise.all(ls.map(async (l) => ((await sources.read(l, (ds) => ds.query(WHERE))) as Where[])[0]));
    const again = await Promise.all(ls.map(async (l) => ((await sources.read(l, (ds) => ds.query(WHERE))) as Where[])[0]));
    expect(again).toEqual(first);
    expect(first.map((w) => w.u)).toEqual(names);
    expect(first.filter((w) => w.standby).length).toBeGreaterThan(0);
    expect(first.filter((w) => !w.standby).length).toBeGreaterThan(0);
    expect(first.every((w) => w.port === (w.standby ? realm.pgStandbyPort : realm.pg.port))).toBe(true);
  }, 120_000);

  it('closes the standby pool too when the lease ends (logout)', async () => {
    const sources = await start();
    const carol = await leaseOf('carol');
    await sources.read(carol, (ds) => ds.query(WHERE));
    await sources.get(carol);
    const onStandby = () => Number(superuserSql(standby, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'forwardable' AND usename = 'carol'")[0]);
    expect(onStandby()).toBeGreaterThan(0);
    await carol.end('logout');
    await eventually(() => onStandby() === 0);
    expect(sources.stats().standbys[0].users).toBe(0);
    expect(sources.stats().users).toBe(0);
  }, 60_000);

  it('10 users reading and writing under caps of 3 users / 4 connections: the caps hold on each host, every answer is its own user\'s', async () => {
    const ls = await Promise.all(names.map((n) => leaseOf(n, pw)));
    const sources = await start({ maxUsers: 3, maxConnections: 4, connectionsPerUser: 2, sliceMs: 100, queueTimeoutMs: 120_000 });
    const count = async (on: RealmEnv) =>
      Number((await superuserSqlAsync(on, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'forwardable' AND usename LIKE 'rep%'"))[0]);
    const peak = { primary: 0, standby: 0 };
    let samples = 0;
    let done = false;
    const sampler = (async () => {
      while (!done) {
        const [p, s] = await Promise.all([count(realm), count(standby)]);
        peak.primary = Math.max(peak.primary, p);
        peak.standby = Math.max(peak.standby, s);
        samples++;
        await new Promise((r) => setTimeout(r, 30));
      }
    })();
    try {
      const answered = await Promise.all(
        ls.map(async (l, i) => {
          let ok = 0;
          for (let k = 0; k < 6; k++) {
            // Mostly reads, a write now and then (which sends that user's next read to the primary).
            const [row] = (k === 3
              ? await sources.write(l, (ds) => ds.query('SELECT session_user AS u, pg_sleep(0.02)'))
              : await sources.read(l, (ds) => ds.query('SELECT session_user AS u, pg_sleep(0.02)'))) as { u: string }[];
            if (row.u === names[i]) ok++;
          }
          return ok;
        }),
      );
      expect(answered).toEqual(names.map(() => 6));
    } finally {
      done = true;
      await sampler;
    }
    const stats = sources.stats();
    expect(samples).toBeGreaterThan(3);
    expect(peak.standby).toBeGreaterThan(0);
    expect(peak.primary).toBeGreaterThan(0);
    expect(peak.primary).toBeLessThanOrEqual(4);
    expect(peak.standby).toBeLessThanOrEqual(4);
    expect(stats.counters.peakConnections).toBeLessThanOrEqual(4);
    expect(stats.counters.peakUsers).toBeLessThanOrEqual(3);
    expect(stats.standbys[0].counters.peakConnections).toBeLessThanOrEqual(4);
    expect(stats.standbys[0].counters.peakUsers).toBeLessThanOrEqual(3);
    // Both schedulers had to queue: each host's budget was really the limit.
    expect(stats.standbys[0].counters.queued).toBeGreaterThan(0);
    expect(stats.reads.standby).toBeGreaterThan(0);
  }, 300_000);
});
