/**
 * Faults, on a realm of this suite's own (tmp/realms/hardening-faults, ports testPortBase+400),
 * so stopping its KDC or restarting its PostgreSQL never disturbs the realms other suites share:
 * the KDC stops, PostgreSQL restarts under load and while idle, a backend is killed in the
 * middle of the wizard's transaction, and a credential expires in the middle of a session.
 * afterAll brings every daemon back and then removes the realm.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { UserDataSources } from '@forwardable/nest';
import { ensureRealm, kinit, processAlive, RealmEnv, repoRoot, runWithRealmAsync, stopRealm, superuserSql, testPortBase, TicketCache } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import { CSRF_HEADER, CSRF_VALUE, SESSION_COOKIE } from '@forwardable/shared/contracts';
import { Api, call, configFor, migrateAsDbadmin, parseHttp, passwordSession, startApi, tokenFor } from '../testing/api-harness';
import { eventually, secretLeaks } from './support';

const DIR = join(repoRoot, 'tmp/realms/hardening-faults');
const PORT_BASE = testPortBase + 400; // +300 is the Samba AD test realm (libs/testing/realm)

function faultRealm(): RealmEnv {
  return ensureRealm('db2', { dir: DIR, portBase: PORT_BASE });
}

/** Stop one daemon of the fault realm by its PID file; `ensureRealm` starts only what is stopped. */
async function stopDaemon(realm: RealmEnv, which: 'kdc' | 'postgres'): Promise<void> {
  const file = which === 'kdc' ? join(realm.dir, 'run/krb5kdc.pid') : join(realm.dir, 'pg/data/postmaster.pid');
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  // SIGINT is PostgreSQL's fast shutdown: sessions are terminated (57P01), as in a restart.
  process.kill(pid, which === 'postgres' ? 'SIGINT' : 'SIGTERM');
  if (!(await eventually(() => !processAlive(pid), 20_000))) throw new Error(`${which} (${pid}) did not stop`);
}

function forwardableBackends(realm: RealmEnv, role: string): number {
  return Number(superuserSql(realm, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'forwardable' AND usename = '${role}'`)[0]);
}

describe('hardening: faults (own realm: KDC stopped, PostgreSQL restarted, backend killed, credential expiry)', () => {
  let realm: RealmEnv;
  let api: Api;
  const secrets: string[] = [];
  const post = (path: string, cookie: string, body: unknown) => call(`${api.url}/api${path}`, 'POST', { cookie, body });
  const get = (path: string, cookie: string) => call(`${api.url}/api${path}`, 'GET', { cookie });

  beforeAll(async () => {
    realm = faultRealm();
    useRealm(realm);
    await migrateAsDbadmin(realm);
    api = await startApi(configFor(realm));
    secrets.push(...Object.values(realm.passwords));
  });
  afterAll(async () => {
    await api?.close();
    // Whatever a test stopped comes back first (so nothing is left half-down), then the realm goes.
    if (realm) {
      faultRealm();
      stopRealm(DIR);
    }
  });

  it('KDC stopped: password sign-in gets 503 with a clear message, signed-in users keep working, and it recovers', async () => {
    const alice = await passwordSession(api, 'alice', realm.passwords.alice);
    secrets.push(alice);
    expect((await get('/files/tree', alice)).status).toBe(200);
    // A browser got its ticket for us (and a TGT to forward) before the KDC went away.
    const carolTicket = kinit(realm, 'carol');
    const carolToken = await tokenFor(carolTicket);
    secrets.push(carolToken);
    await stopDaemon(realm, 'kdc');
    try {
      const login = await call(`${api.url}/api/auth/login`, 'POST', { body: { username: 'bob', password: realm.passwords.bob } });
      expect(login.status).toBe(503);
      expect(login.body).toMatchObject({ code: 'KDC_UNAVAILABLE', message: 'the Kerberos server (KDC) does not answer' });
      expect(String(login.body.hint)).toMatch(/try again/i);
      // A browser with a ticket from before can still sign in (the API needs no KDC to accept it),
      // but its first query needs a ticket for PostgreSQL: that is a clear 503 too, not a 500.
      const neg = await fetch(`${api.url}/api/auth/me`, { headers: { authorization: `Negotiate ${carolToken}` } });
      expect(neg.status).toBe(200);
      const carolCookie = cookieOf(neg);
      secrets.push(carolCookie);
      const carolTree = await get('/files/tree', carolCookie);
      expect(carolTree.status).toBe(503);
      expect(carolTree.body.code).toBe('KDC_UNAVAILABLE');
      expect(String(carolTree.body.message)).toMatch(/KDC/);
      // alice signed in before: her session, connection and credential need no KDC.
      expect((await get('/files/tree', alice)).status).toBe(200);
      const made = await post('/files', alice, { name: `kdc-down-${randomUUID()}.txt`, content: 'written while the KDC was down' });
      expect(made.status).toBe(201);
      expect((await get('/auth/me', alice)).body.user).toBe('alice');
    } finally {
      faultRealm(); // starts the KDC again, and only the KDC
      carolTicket.destroy();
    }
    const bob = await call(`${api.url}/api/auth/login`, 'POST', { body: { username: 'bob', password: realm.passwords.bob } });
    expect(bob.status).toBe(200);
    expect((await get('/files/tree', alice)).status).toBe(200);
  });

  it('PostgreSQL restarted under load: in-flight requests fail with a JSON 503, pools recover, nothing else', async () => {
    const alice = await passwordSession(api, 'alice', realm.passwords.alice);
    const bob = await passwordSession(api, 'bob', realm.passwords.bob);
    secrets.push(alice, bob);
    const statuses: Record<string, number> = {};
    const bad: string[] = [];
    let stop = false;
    const loop = async (cookie: string, i: number) => {
      while (!stop) {
        const r = i % 2 ? await get('/files/tree', cookie) : await post('/files', cookie, { name: `pg-restart-${randomUUID()}.txt`, content: 'x' });
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (r.status === 503 && r.body.code !== 'DATABASE_UNAVAILABLE') bad.push(JSON.stringify(r.body));
        if (![200, 201, 503].includes(r.status)) bad.push(`${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
        await new Promise((res) => setTimeout(res, 20));
      }
    };
    const loops = Array.from({ length: 8 }, (_, i) => loop(i % 2 ? alice : bob, i));
    await new Promise((r) => setTimeout(r, 500));
    await stopDaemon(realm, 'postgres');
    await new Promise((r) => setTimeout(r, 700));
    faultRealm(); // PostgreSQL starts again
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    await Promise.all(loops);
    expect([...bad, ...api.logs.lines.filter((l) => /INTERNAL/.test(l))]).toEqual([]);
    expect(statuses[503]).toBeGreaterThan(0); // the outage was seen...
    expect((statuses[200] ?? 0) + (statuses[201] ?? 0)).toBeGreaterThan(0);
    // ...and it is over: both users are served again, each on their own connection.
    expect((await get('/files/tree', alice)).status).toBe(200);
    expect((await get('/files/tree', bob)).status).toBe(200);
    const ds = api.app.get(UserDataSources).stats();
    expect(ds.connections).toBeLessThanOrEqual(ds.maxConnections);
    expect(forwardableBackends(realm, 'alice') + forwardableBackends(realm, 'bob')).toBeLessThanOrEqual(4);
  });

  it('PostgreSQL restarted while pools are idle: the next request gets a fresh connection, never a dead one', async () => {
    const alice = await passwordSession(api, 'alice', realm.passwords.alice);
    secrets.push(alice);
    // Two parallel queries: two pooled connections, both idle when PostgreSQL goes.
    expect((await get('/files/tree', alice)).status).toBe(200);
    const before = superuserSql(realm, "SELECT pid FROM pg_stat_activity WHERE application_name = 'forwardable' AND usename = 'alice'");
    expect(before.length).toBeGreaterThan(0);
    await stopDaemon(realm, 'postgres');
    faultRealm();
    const first = await get('/files/tree', alice);
    expect(first.status).toBe(200);
    const made = await post('/files', alice, { name: `after-restart-${randomUUID()}.txt`, content: 'fresh connection' });
    expect(made.status).toBe(201);
    const after = superuserSql(realm, "SELECT pid FROM pg_stat_activity WHERE application_name = 'forwardable' AND usename = 'alice'");
    expect(after.filter((p) => before.includes(p))).toEqual([]);
  });

  it('a backend killed in the middle of the wizard\'s transaction leaves nothing half-applied, and the next apply works', async () => {
    // Two tables the wizard secures in one transaction, a then b.
    superuserSql(
      realm,
      `DROP TABLE IF EXISTS hardening_a, hardening_b;
       CREATE TABLE hardening_a (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), owner text NOT NULL DEFAULT session_user);
       CREATE TABLE hardening_b (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), owner text NOT NULL DEFAULT session_user);
       ALTER TABLE hardening_a OWNER TO dbadmin; ALTER TABLE hardening_b OWNER TO dbadmin;`,
      realm.pg.database,
    );
    const admin = await passwordSession(api, 'dbadmin', realm.passwords.dbadmin);
    secrets.push(admin);
    const mapping = { tables: [{ table: 'hardening_a', ownerColumn: 'owner' }, { table: 'hardening_b', ownerColumn: 'owner' }] };
    const preview = await post('/rls/preview', admin, mapping);
    expect(preview.status).toBe(200);
    const sql = String(preview.body.sql);
    // The plan secures a completely before it touches b: a kill while waiting for b is mid-transaction.
    expect(sql.indexOf('ALTER TABLE "public"."hardening_a" ENABLE ROW LEVEL SECURITY')).toBeGreaterThan(0);
    expect(sql.indexOf('ALTER TABLE "public"."hardening_a" ENABLE ROW LEVEL SECURITY')).toBeLessThan(sql.indexOf('"hardening_b"'));

    // Hold b locked from another session, so the apply stops there, after all of a's statements.
    const locker = spawnSuperuserPsql(realm, 'BEGIN; LOCK TABLE hardening_b IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60);');
    try {
      expect(await eventually(() => superuserSql(realm, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'hardening_b' AND l.mode = 'AccessExclusiveLock' AND l.granted", realm.pg.database)[0] === '1', 10_000)).toBe(true);
      const applying = post('/rls/apply', admin, mapping);
      const waitingPid = async () => {
        const rows = superuserSql(realm, "SELECT pid || '|' || regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_activity WHERE usename = 'dbadmin' AND application_name = 'forwardable' AND wait_event_type = 'Lock'");
        return rows[0] ?? '';
      };
      let waiting = '';
      expect(await eventually(async () => (waiting = await waitingPid()) !== '', 15_000)).toBe(true);
      expect(waiting).toMatch(/hardening_b/);
      superuserSql(realm, `SELECT pg_terminate_backend(${Number(waiting.split('|')[0])})`);
      const r = await applying;
      expect(r.status).toBe(503);
      expect(r.body).toMatchObject({ code: 'DATABASE_UNAVAILABLE' });
    } finally {
      superuserSql(realm, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'hardening-locker'");
      await locker;
    }
    // Nothing of a's statements survived the kill: no policy, RLS off, as before.
    const state = () => superuserSql(realm, "SELECT relname || ':' || relrowsecurity || ':' || (SELECT count(*) FROM pg_policies p WHERE p.tablename = c.relname) FROM pg_class c WHERE relname IN ('hardening_a', 'hardening_b') ORDER BY relname", realm.pg.database);
    expect(state()).toEqual(['hardening_a:false:0', 'hardening_b:false:0']);
    // The admin's pool lost a connection; the next apply runs on a fresh one and completes.
    const again = await post('/rls/apply', admin, mapping);
    expect(again.status).toBe(200);
    expect(again.body.applied).toBe(true);
    expect(state()).toEqual(['hardening_a:true:4', 'hardening_b:true:4']);
  });

  it('a credential that expires mid-session is renewed by a silent re-negotiation: the client sees its data, not an error', async () => {
    const cc = kinit(realm, 'alice', ['-l', '6s']);
    const jar = join(realm.dir, 'run', `jar-${randomUUID()}`);
    try {
      const first = await browse(realm, cc, jar, `${api.url}/api/files/tree`);
      expect(first.final.status).toBe(200);
      const id1 = jarCookie(jar);
      secrets.push(id1);
      await new Promise((r) => setTimeout(r, 7000));
      // The session ended with the ticket: the API says so with a challenge (what a browser
      // answers by itself), not with an error page.
      const expired = await get('/files/tree', id1);
      expect(expired.status).toBe(401);
      expect(expired.headers.get('www-authenticate')).toBe('Negotiate');
      // The browser answers the challenge with a fresh ticket (the desktop renewed it) and the old
      // cookie, and gets the page's data and a new session at once.
      const renewed = kinit(realm, 'alice');
      try {
        const token = await tokenFor(renewed);
        secrets.push(token);
        const res = await fetch(`${api.url}/api/files/tree`, { headers: { authorization: `Negotiate ${token}`, cookie: `${SESSION_COOKIE}=${id1}` } });
        expect(res.status).toBe(200);
        expect(Array.isArray(((await res.json()) as { files: unknown }).files)).toBe(true);
        const id2 = cookieOf(res);
        secrets.push(id2);
        expect(id2).not.toBe('');
        expect(id2).not.toBe(id1);
        // And curl, as an independent browser with a cookie jar, just gets the page.
        const again = await browse(realm, renewed, jar, `${api.url}/api/files/tree`);
        expect(again.final.status).toBe(200);
        expect(again.statuses.filter((st) => st !== 401)).toEqual([200]);
      } finally {
        renewed.destroy();
      }
    } finally {
      cc.destroy();
    }
  });

  it('logged no token, password or session id through the faults: not the API, not the KDC, not PostgreSQL', () => {
    expect(secretLeaks(api.logs.lines, secrets)).toEqual([]);
    const logDir = join(realm.dir, 'log');
    const daemonLogs = readdirSync(logDir).map((f) => readFileSync(join(logDir, f), 'utf8'));
    expect(daemonLogs.join('\n')).toMatch(/AS_REQ/); // the KDC's log was really read
    expect(secretLeaks(daemonLogs.join('\n').split('\n'), secrets)).toEqual([]);
  });
});

/** psql as the cluster's superuser, in the background (for a session that holds a lock). */
function spawnSuperuserPsql(realm: RealmEnv, sql: string): Promise<number | null> {
  const args = ['-X', '-q', '-h', realm.pg.socketDir, '-p', String(realm.pg.port), '-d', realm.pg.database, '-c', sql];
  const env = { ...process.env, PGAPPNAME: 'hardening-locker', PGHOSTADDR: '' };
  const child =
    process.getuid?.() === 0
      ? spawn('runuser', ['-u', realm.pg.superuser, '--', 'env', '-u', 'PGHOSTADDR', 'PGAPPNAME=hardening-locker', 'psql', ...args], { stdio: 'ignore', env })
      : spawn('psql', args, { stdio: 'ignore', env });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** curl as a browser: cookie jar, answers Negotiate challenges with the user's ticket; every hop's status. */
async function browse(realm: RealmEnv, cc: TicketCache, jar: string, url: string) {
  const args = ['-s', '-i', '--negotiate', '-u', ':', '--delegation', 'always', '-c', jar, '-b', jar, '-H', `${CSRF_HEADER}: ${CSRF_VALUE}`, url];
  const out = (await runWithRealmAsync(realm, 'curl', args, { ccache: cc })).stdout;
  const statuses = [...out.matchAll(/^HTTP\/\S+ (\d{3})/gm)].map((m) => Number(m[1]));
  return { final: parseHttp(out), statuses };
}

function jarCookie(jar: string): string {
  const line = readFileSync(jar, 'utf8').split('\n').find((l) => l.includes('\tfw_session\t'));
  return line ? (line.split('\t').pop() ?? '').trim() : '';
}

function cookieOf(res: Response): string {
  return (res.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`)) ?? '').split(';')[0].slice(SESSION_COOKIE.length + 1);
}

describe('hardening: a database connection reset while opening (regression: ECONNRESET was a 500)', () => {
  it('answers 503 DATABASE_UNAVAILABLE when PostgreSQL resets the connection, as it does while shutting down', async () => {
    const realm = ensureRealm('db2');
    useRealm(realm);
    // A listener that accepts and resets every connection: what a server going down looks like.
    const resetter = createServer((socket) => socket.resetAndDestroy());
    await new Promise<void>((resolve) => resetter.listen(testPortBase + 410, '127.0.0.1', resolve));
    const api = await startApi(configFor(realm, { FORWARDABLE_PG_PORT: String(testPortBase + 410) }));
    try {
      const alice = await passwordSession(api, 'alice', realm.passwords.alice);
      const r = await call(`${api.url}/api/files/tree`, 'GET', { cookie: alice });
      expect(r.status).toBe(503);
      expect(r.body).toMatchObject({ code: 'DATABASE_UNAVAILABLE', message: 'the database is not available' });
      expect(api.logs.lines.filter((l) => /INTERNAL/.test(l))).toEqual([]);
    } finally {
      await api.close();
      await new Promise((resolve) => resetter.close(resolve));
    }
  });
});
