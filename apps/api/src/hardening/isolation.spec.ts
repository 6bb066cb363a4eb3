/**
 * Isolation under load: 200 concurrent sessions of 20 users (10 each, signed in with real
 * Negotiate tokens) do mixed reads, writes and shares against the real API for a bounded time
 * (FORWARDABLE_LOAD_SECONDS; 60 s when CI is set, 15 s otherwise). Every answer is checked
 * against a model of who may see which file, built from what the clients did (with the time
 * each grant started and each revoke ended, so a read racing a share is judged fairly). At the
 * end every session logs out, and no pool, connection or credential may remain.
 */
import { createHash, randomUUID } from 'node:crypto';
import { CredentialVault, UserDataSources } from '@forwardable/nest';
import { ensureRealm, kinit, RealmEnv, repoRoot, runWithRealm, superuserSql, TicketCache } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import { CSRF_HEADER, CSRF_VALUE, SESSION_COOKIE } from '@forwardable/shared/contracts';
import { Api, configFor, migrateAsDbadmin, startApi, tokenFor } from '../testing/api-harness';
import { eventually, prng, secretLeaks } from './support';

const USERS = Array.from({ length: 20 }, (_, i) => `load${String(i + 1).padStart(2, '0')}`);
const SESSIONS_PER_USER = 10;
const LOAD_SECONDS = Number(process.env.FORWARDABLE_LOAD_SECONDS ?? (process.env.CI ? 60 : 15));

interface ModelFile {
  id: string;
  owner: string;
  /** Grant intervals per grantee: from when the grant was sent to when its revoke answered. */
  grants: Map<string, { from: number; to: number | null }[]>;
  /** Grants and revokes of one file are not sent concurrently (a revoke racing a grant has no single truth). */
  busy: boolean;
}

interface Row {
  id: string;
  owner: string;
}

describe(`hardening: isolation under load (${USERS.length} users x ${SESSIONS_PER_USER} sessions, ${LOAD_SECONDS} s)`, () => {
  let realm: RealmEnv;
  let api: Api;
  const caches = new Map<string, TicketCache>();
  const sessions: { user: string; cookie: string }[] = [];
  const files = new Map<string, ModelFile>();
  const tag = `isol${randomUUID().slice(0, 8)}`;
  const secrets: string[] = [];
  let password = '';

  beforeAll(async () => {
    realm = ensureRealm('db2');
    useRealm(realm);
    await migrateAsDbadmin(realm);
    // add-users leaves existing principals alone: the password is derived from the realm's own
    // random secrets, so it is the same on every run against this realm and new with a new realm.
    password = `load-${createHash('sha256').update(realm.passwords.dbadmin).digest('base64url').slice(0, 20)}`;
    secrets.push(password);
    const add = runWithRealm(realm, 'bash', [`${repoRoot}/tools/realm/realm.sh`, 'add-users', '--quiet', '--dir', realm.dir, '--password', password, ...USERS]);
    if (add.status !== 0) throw new Error(`add-users failed: ${add.stderr}`);
    // A known start: nothing of the load users from an earlier run (the superuser bypasses RLS).
    superuserSql(realm, `DELETE FROM files WHERE owner LIKE 'load__'; DELETE FROM directories WHERE owner LIKE 'load__'`, realm.pg.database);
    // Room for every session's pool at once: this test is about isolation, not about eviction.
    api = await startApi(configFor(realm, { FORWARDABLE_PG_MAX_USERS: '220', FORWARDABLE_PG_CONNECTIONS_PER_USER: '1', FORWARDABLE_PG_MAX_CONNECTIONS: '220' }));
    for (const u of USERS) caches.set(u, kinit(realm, u as never, [], password));
    for (const u of USERS) {
      for (let i = 0; i < SESSIONS_PER_USER; i++) {
        const token = await tokenFor(caches.get(u) as TicketCache);
        const res = await fetch(`${api.url}/api/auth/me`, { headers: { authorization: `Negotiate ${token}` } });
        if (res.status !== 200) throw new Error(`sign-in of ${u} failed: ${res.status} ${await res.text()}`);
        const cookie = (res.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`)) ?? '').split(';')[0].slice(SESSION_COOKIE.length + 1);
        sessions.push({ user: u, cookie });
        secrets.push(cookie, token);
      }
    }
  });
  afterAll(async () => {
    await api?.close();
    for (const c of caches.values()) c.destroy();
  });

  /** May `user` see `f` in an answer to a request sent at `t0` and answered at `t1`? */
  function mayVisible(user: string, f: ModelFile, t0: number, t1: number): boolean {
    if (f.owner === user) return true;
    return (f.grants.get(user) ?? []).some((g) => g.from <= t1 && (g.to === null || g.to >= t0));
  }

  it('serves 200 concurrent sessions with zero leaked rows, zero errors, zero leaked connections', async () => {
    const vault = api.app.get(CredentialVault);
    const pools = api.app.get(UserDataSources);
    const leaks: string[] = [];
    const errors: string[] = [];
    const counts: Record<string, number> = {};
    let peakBackends = 0;
    const deadline = Date.now() + LOAD_SECONDS * 1000;

    const request = async (cookie: string, method: string, path: string, body?: unknown) => {
      const t0 = Date.now();
      const res = await fetch(`${api.url}/api${path}`, {
        method,
        headers: { cookie: `${SESSION_COOKIE}=${cookie}`, [CSRF_HEADER]: CSRF_VALUE, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : {}, t0, t1: Date.now() };
    };
    const unexpected = (what: string, r: { status: number; body: unknown }) => {
      errors.push(`${what}: ${r.status} ${JSON.stringify(r.body).slice(0, 160)}`);
    };
    /** Every file in an answer must be one the user may see, with its real owner. */
    const checkRows = (user: string, what: string, rows: Row[], t0: number, t1: number) => {
      for (const row of rows) {
        const f = files.get(row.id);
        // The user's own file may be answered before its creator's response reached the model.
        if (!f) {
          if (row.owner !== user) leaks.push(`${what} as ${user}: file ${row.id} of ${row.owner} is no file shared in this run`);
        }
        else if (f.owner !== row.owner) leaks.push(`${what} as ${user}: file ${row.id} says owner ${row.owner}, is ${f.owner}`);
        else if (!mayVisible(user, f, t0, t1)) leaks.push(`${what} as ${user}: sees ${f.owner}'s file ${row.id}`);
      }
    };

    const worker = async (s: { user: string; cookie: string }, seed: number) => {
      const rnd = prng(seed);
      const others = USERS.filter((u) => u !== s.user);
      while (Date.now() < deadline) {
        const all = [...files.values()];
        const mine = all.filter((f) => f.owner === s.user);
        const roll = rnd.next();
        const op = roll < 0.22 ? 'tree' : roll < 0.36 ? 'list' : roll < 0.5 ? 'search' : roll < 0.66 ? 'get' : roll < 0.78 || !mine.length ? 'create' : roll < 0.85 ? 'update' : roll < 0.94 ? 'grant' : 'revoke';
        counts[op] = (counts[op] ?? 0) + 1;
        if (op === 'tree') {
          const r = await request(s.cookie, 'GET', '/files/tree');
          if (r.status !== 200) unexpected('tree', r);
          else {
            checkRows(s.user, 'tree', r.body.files, r.t0, r.t1);
            if (r.body.directories.length) leaks.push(`tree as ${s.user}: sees directories ${JSON.stringify(r.body.directories).slice(0, 120)}`);
          }
        } else if (op === 'list') {
          const r = await request(s.cookie, 'GET', '/files?pageSize=500');
          if (r.status !== 200) unexpected('list', r);
          else checkRows(s.user, 'list', r.body.files, r.t0, r.t1);
        } else if (op === 'search') {
          const r = await request(s.cookie, 'GET', `/search?q=${tag}`);
          if (r.status !== 200) unexpected('search', r);
          else checkRows(s.user, 'search', r.body.files, r.t0, r.t1);
        } else if (op === 'get') {
          if (!all.length) continue;
          const f = rnd.pick(all);
          const r = await request(s.cookie, 'GET', `/files/${f.id}`);
          if (r.status === 200) {
            checkRows(s.user, 'get', [r.body], r.t0, r.t1);
            if (!String(r.body.content).startsWith(`${tag} by ${f.owner}`)) leaks.push(`get as ${s.user}: content of ${f.id} is not ${f.owner}'s`);
          } else if (r.status === 404) {
            if (f.owner === s.user) unexpected(`get own ${f.id}`, r);
          } else unexpected('get', r);
        } else if (op === 'create') {
          const r = await request(s.cookie, 'POST', '/files', { name: `${tag}-${randomUUID()}.txt`, content: `${tag} by ${s.user}` });
          if (r.status !== 201 || r.body.owner !== s.user) unexpected('create', r);
          else files.set(r.body.id, { id: r.body.id, owner: s.user, grants: new Map(), busy: false });
        } else if (op === 'update') {
          const f = rnd.pick(mine);
          const r = await request(s.cookie, 'PATCH', `/files/${f.id}`, { content: `${tag} by ${s.user}, edited ${Date.now()}` });
          if (r.status !== 200 || r.body.owner !== s.user) unexpected('update', r);
        } else {
          const f = rnd.pick(mine);
          if (f.busy) continue;
          f.busy = true;
          try {
            const grantee = rnd.pick(others);
            const open = (f.grants.get(grantee) ?? []).find((g) => g.to === null);
            if (op === 'grant' && !open) {
              const from = Date.now();
              const list = f.grants.get(grantee) ?? [];
              const interval = { from, to: null as number | null };
              list.push(interval);
              f.grants.set(grantee, list);
              const r = await request(s.cookie, 'POST', `/files/${f.id}/permissions`, { grantee });
              if (r.status !== 201) {
                interval.to = r.t1;
                unexpected('grant', r);
              }
            } else if (open) {
              const r = await request(s.cookie, 'DELETE', `/files/${f.id}/permissions/${grantee}`);
              if (r.status !== 204) unexpected('revoke', r);
              open.to = r.t1;
            }
          } finally {
            f.busy = false;
          }
        }
      }
    };

    const sampler = setInterval(() => {
      try {
        const n = Number(superuserSql(realm, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'forwardable' AND usename LIKE 'load__'")[0]);
        peakBackends = Math.max(peakBackends, n);
      } catch {
        /* a sample can fail under load; the final check below cannot */
      }
    }, 3000);
    try {
      await Promise.all(sessions.map((s, i) => worker(s, i + 1)));
    } finally {
      clearInterval(sampler);
    }

    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    expect(leaks.slice(0, 20)).toEqual([]);
    expect(errors.slice(0, 20)).toEqual([]);
    // It really was concurrent mixed work: every session ran, every kind of operation happened.
    expect(total).toBeGreaterThan(sessions.length * 3);
    expect(Math.min(...['tree', 'list', 'search', 'get', 'create', 'update', 'grant', 'revoke'].map((op) => counts[op] ?? 0))).toBeGreaterThan(0);
    expect(peakBackends).toBeGreaterThan(0);
    expect(peakBackends).toBeLessThanOrEqual(220);

    // Every session logs out: its credential, its pool and its backend go.
    const heldBefore = vault.size;
    await Promise.all(sessions.map(async (s) => expect((await request(s.cookie, 'POST', '/auth/logout')).status).toBe(204)));
    expect(heldBefore - vault.size).toBe(sessions.length);
    const stats = pools.stats();
    expect({ users: stats.users, connections: stats.connections }).toEqual({ users: 0, connections: 0 });
    expect(stats.counters.opens).toBe(stats.counters.released + stats.counters.evictions + stats.counters.idleClosed + stats.counters.expiredClosed);
    const backends = () => Number(superuserSql(realm, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'forwardable' AND usename LIKE 'load__'")[0]);
    expect(await eventually(() => backends() === 0 && pools.stats().closing === 0, 15_000, 250)).toBe(true);
    // A logged-out session is dead, not merely idle.
    expect((await request(sessions[0].cookie, 'GET', '/files/tree')).status).toBe(401);
  });

  it('logged no token, password or session id under load', () => {
    expect(secretLeaks(api.logs.lines, secrets)).toEqual([]);
  });
});
