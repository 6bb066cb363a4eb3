/**
 * Two API replicas behind no load balancer at all (requests alternate between them by hand),
 * sharing a Redis started by this test on its own port: the user stays signed in, sees only their
 * rows, a logout on either replica destroys the other's credential and pool at once (pub/sub, no
 * request to it needed), and a Redis outage gives a clear 503 and recovers. Credentials never
 * leave the replica that accepted them.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CredentialVault, SessionService, UserDataSources } from '@forwardable/nest';
import { ensureRealm, kinit, RealmEnv, runWithRealmAsync, superuserSql, testPortBase, TicketCache } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import { CSRF_HEADER, CSRF_VALUE, SESSION_COOKIE } from '@forwardable/shared/contracts';
import { Api, call, configFor, migrateAsDbadmin, parseHttp, passwordSession, startApi, startApiProcess } from '../testing/api-harness';

const REDIS_PORT = testPortBase + 96;

function startRedis(dir: string): Promise<ChildProcess> {
  const proc = spawn('redis-server', ['--port', String(REDIS_PORT), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: 'ignore',
  });
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const probe = () =>
      fetch(`http://127.0.0.1:${REDIS_PORT}/`).then(
        () => resolve(proc),
        (e: Error & { cause?: { code?: string } }) => {
          // Redis answers HTTP with a closed connection: anything but "refused" means it listens.
          if (e.cause?.code !== 'ECONNREFUSED') return resolve(proc);
          if (Date.now() - t0 > 10_000) return reject(new Error('redis-server did not start'));
          setTimeout(probe, 100);
        },
      );
    proc.once('error', reject);
    probe();
  });
}

function stopRedis(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  });
}

/** curl with a cookie jar, answering Negotiate challenges with the user's ticket, like a browser. */
async function browse(realm: RealmEnv, cc: TicketCache, jar: string, url: string, method = 'GET') {
  const args = ['-s', '-i', '--negotiate', '-u', ':', '--delegation', 'always', '-c', jar, '-b', jar, '-X', method, '-H', `${CSRF_HEADER}: ${CSRF_VALUE}`, url];
  return parseHttp((await runWithRealmAsync(realm, 'curl', args, { ccache: cc })).stdout);
}

/** Wait until `f` holds, checking every 50 ms; false when `ms` passed first. */
async function eventually(f: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** Our application's backends of one role, as the database superuser sees them. */
function backendsOf(realm: RealmEnv, role: string): number {
  return Number(superuserSql(realm, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'forwardable' AND usename = '${role}'`)[0]);
}

function jarCookie(jar: string): string {
  const line = readFileSync(jar, 'utf8').split('\n').find((l) => l.includes(`\t${SESSION_COOKIE}\t`));
  return line ? (line.split('\t').pop() ?? '').trim() : '';
}

describe('two API replicas sharing Redis sessions (db2 realm)', () => {
  let realm: RealmEnv;
  let redis: ChildProcess | undefined;
  let a: Api;
  /** The second replica is a process of its own, as in production. */
  let b: { url: string; stop(): Promise<void> };
  let alice: TicketCache;
  let bob: TicketCache;
  const dir = mkdtempSync(join(tmpdir(), 'fw-replicas-'));
  /** Replica b keeps credentials in FILE caches here: a test can see them go without asking b. */
  const bCaches = join(dir, 'b-caches');

  beforeAll(async () => {
    realm = ensureRealm('db2');
    useRealm(realm);
    await migrateAsDbadmin(realm);
    redis = await startRedis(dir);
    const shared = { FORWARDABLE_REDIS_URL: `redis://127.0.0.1:${REDIS_PORT}` };
    a = await startApi(configFor(realm, shared));
    mkdirSync(bCaches, { mode: 0o700 });
    b = await startApiProcess(realm, testPortBase + 95, { ...shared, FORWARDABLE_CREDENTIAL_STORE: 'file', FORWARDABLE_CREDENTIAL_DIR: bCaches });
    alice = kinit(realm, 'alice');
    bob = kinit(realm, 'bob');
  }, 240_000); // an API in this process, one in a child process (ts-node start: see startApiProcess) and a Redis
  afterAll(async () => {
    await a?.close();
    await b?.stop();
    await stopRedis(redis);
    alice?.destroy();
    bob?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps alice signed in across replicas, seeing only her rows; the re-authentication on the second replica rotates the id once', async () => {
    const carol = await passwordSession(a, 'carol', realm.passwords.carol);
    const secret = await call(`${a.url}/api/files`, 'POST', { cookie: carol, body: { name: `carol-${Date.now()}.txt`, content: 'carol only' } });
    expect(secret.status).toBe(201);

    const jar = join(dir, 'alice.jar');
    const first = await browse(realm, alice, jar, `${a.url}/api/auth/me`);
    expect(first.status).toBe(200);
    const id = jarCookie(jar);
    expect(id).not.toBe('');
    // Replica b has the session (Redis) but not the credential: the browser negotiates once more
    // there, and gets a new session id (groups looked up again). The old id is dead everywhere;
    // replica a keeps the credential it holds for the session under the new id (pub/sub), so
    // moving between replicas costs no further negotiation.
    const second = await browse(realm, alice, jar, `${b.url}/api/auth/me`);
    expect(second.status).toBe(200);
    expect(second.body.user).toBe('alice');
    const now = jarCookie(jar);
    expect(now).not.toBe('');
    expect(now).not.toBe(id);
    expect(await eventually(() => a.app.get(CredentialVault).get(now) !== null)).toBe(true);
    expect(a.app.get(CredentialVault).get(id)).toBeNull();
    expect((await call(`${a.url}/api/auth/me`, 'GET', { cookie: id })).status).toBe(401);
    for (let i = 0; i < 6; i++) {
      const api = i % 2 ? a : b;
      // A plain request with the cookie: no negotiation on either replica any more.
      const tree = await call(`${api.url}/api/files/tree`, 'GET', { cookie: now });
      expect(tree.status).toBe(200);
      const owners = new Set((tree.body.files as { owner: string; id: string }[]).map((f) => f.owner));
      expect(owners.has('carol')).toBe(false);
      expect((tree.body.files as { id: string }[]).some((f) => f.id === secret.body.id)).toBe(false);
    }
    // Each replica holds its own credential for the session: no credential was shipped between
    // them (b is another process, and Redis holds no secret).
    const stored = (await runWithRealmAsync(realm, 'redis-cli', ['-p', String(REDIS_PORT), 'get', `forwardable:session:${now}`])).stdout;
    expect(JSON.parse(stored)).toMatchObject({ principal: `alice@${realm.realm}`, user: 'alice' });
    expect(stored).not.toMatch(/ccache|MEMORY:|FILE:|"credential"/);
  });

  it('a logout on a replica without the credential destroys the other replica\'s credential and pool at once, without any request to it', async () => {
    // bob signs in on replica b only, and queries there: b holds his credential (a FILE cache)
    // and a pool with backends in PostgreSQL; replica a has only the session in Redis.
    const before = new Set(readdirSync(bCaches));
    const jar = join(dir, 'bob.jar');
    expect((await browse(realm, bob, jar, `${b.url}/api/files/tree`)).status).toBe(200);
    const id = jarCookie(jar);
    const caches = readdirSync(bCaches).filter((f) => !before.has(f));
    expect(caches).toHaveLength(1);
    expect(backendsOf(realm, 'bob')).toBeGreaterThan(0);
    expect(a.app.get(CredentialVault).get(id)).toBeNull();
    // Regression: logout needed a session this replica could resolve (a 401 here), and b kept
    // the credential and the pool until expiry.
    const out = await call(`${a.url}/api/auth/logout`, 'POST', { cookie: id });
    expect(out.status).toBe(204);
    // Nothing is asked of b: its cache file and bob's backends disappear by themselves.
    expect(await eventually(() => !readdirSync(bCaches).includes(caches[0]))).toBe(true);
    expect(await eventually(() => backendsOf(realm, 'bob') === 0)).toBe(true);
    const onB = await call(`${b.url}/api/auth/me`, 'GET', { cookie: id });
    expect(onB.status).toBe(401);
    expect(onB.headers.get('www-authenticate')).toBe('Negotiate');
  });

  it('a password user logs out on the replica that never saw them, and the other replica\'s credential and pool end', async () => {
    const id = await passwordSession(a, 'dbadmin', realm.passwords.dbadmin);
    expect((await call(`${a.url}/api/files/tree`, 'GET', { cookie: id })).status).toBe(200);
    const lease = a.app.get(CredentialVault).get(id);
    if (!lease) throw new Error('replica a holds no credential for the password session');
    const pools = a.app.get(UserDataSources);
    expect(pools.poolOf(lease.principal)).toMatchObject({ sessionId: id });
    const out = await call(`${b.url}/api/auth/logout`, 'POST', { cookie: id });
    expect(out.status).toBe(204);
    expect(await eventually(() => a.app.get(CredentialVault).get(id) === null)).toBe(true);
    expect(await eventually(() => lease.credential.disposed && pools.poolOf(lease.principal) === null)).toBe(true);
    const onA = await call(`${a.url}/api/auth/me`, 'GET', { cookie: id });
    expect(onA.status).toBe(401);
  });

  it('a replica that missed the logout announcement ends the credential at its next store check', async () => {
    const id = await passwordSession(a, 'carol', realm.passwords.carol);
    const lease = a.app.get(CredentialVault).get(id);
    if (!lease) throw new Error('replica a holds no credential for the password session');
    // The session leaves Redis without an announcement (as if replica a had been cut off from
    // the channel when another replica logged the user out).
    await runWithRealmAsync(realm, 'redis-cli', ['-p', String(REDIS_PORT), 'del', `forwardable:session:${id}`]);
    expect(a.app.get(CredentialVault).get(id)).not.toBeNull();
    // A lease younger than the grace is left alone (its session may not be in the store yet).
    expect(await a.app.get(SessionService).reconcile(60_000)).toBe(0);
    expect(a.app.get(CredentialVault).get(id)).not.toBeNull();
    expect(await a.app.get(SessionService).reconcile(0)).toBeGreaterThanOrEqual(1);
    expect(a.app.get(CredentialVault).get(id)).toBeNull();
    expect(lease.credential.disposed).toBe(true);
    // Sessions that are still in the store keep their credentials.
    const live = await passwordSession(a, 'carol', realm.passwords.carol);
    expect(await a.app.get(SessionService).reconcile(0)).toBe(0);
    expect(a.app.get(CredentialVault).get(live)).not.toBeNull();
  });

  it('answers 503 while Redis is down, and works again when it is back', async () => {
    const jar = join(dir, 'alice-outage.jar');
    expect((await browse(realm, alice, jar, `${a.url}/api/auth/me`)).status).toBe(200);
    const id = jarCookie(jar);
    await stopRedis(redis);
    const down = await call(`${a.url}/api/auth/me`, 'GET', { cookie: id });
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ code: 'SESSION_STORE_UNAVAILABLE' });
    redis = await startRedis(dir);
    // The store reconnects by itself; the (empty) new Redis means signing in again, silently.
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await browse(realm, alice, jar, `${b.url}/api/auth/me`)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
  });
});
