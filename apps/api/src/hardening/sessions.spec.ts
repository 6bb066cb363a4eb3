/**
 * Replay, cross-service tokens, dead cookies and session ids, against the real API on the db2
 * realm. What `auth.e2e.spec.ts` already proves (one replay, a token for `other/localhost`, the
 * cookie after logout, cookie flags) is not repeated here; this adds the cases around it.
 */
import { CredentialVault, MemorySessionStore, SessionService, UserDataSources } from '@forwardable/nest';
import { ensureRealm, kinit, RealmEnv, superuserSql, TicketCache } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import { CSRF_HEADER, CSRF_VALUE, SESSION_COOKIE } from '@forwardable/shared/contracts';
import { Api, call, configFor, fetchJson, migrateAsDbadmin, passwordSession, startApi, tokenFor } from '../testing/api-harness';
import { secretLeaks } from './support';

/** Sign in with a fresh Negotiate token (and optionally a cookie the client already had). */
async function negotiate(api: Api, cc: TicketCache, cookie?: string): Promise<{ status: number; id: string; body: Record<string, unknown>; token: string }> {
  const token = await tokenFor(cc);
  const res = await fetch(`${api.url}/api/auth/me`, {
    headers: { authorization: `Negotiate ${token}`, ...(cookie ? { cookie: `${SESSION_COOKIE}=${cookie}` } : {}) },
  });
  const set = res.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`)) ?? '';
  return { status: res.status, id: set.split(';')[0].slice(SESSION_COOKIE.length + 1), body: (await res.json()) as Record<string, unknown>, token };
}

/** A small per-user session cap, so bounding is visible in a few sign-ins. */
const MAX_SESSIONS = 4;

describe('hardening: replay, cross-service tokens, dead cookies, session ids', () => {
  let realm: RealmEnv;
  let api: Api;
  let alice: TicketCache;
  let bob: TicketCache;
  const secrets: string[] = [];
  const earlierLogs: string[] = [];

  beforeAll(async () => {
    realm = ensureRealm('db2');
    useRealm(realm);
    await migrateAsDbadmin(realm);
    api = await startApi(configFor(realm, { FORWARDABLE_MAX_SESSIONS_PER_USER: String(MAX_SESSIONS) }));
    alice = kinit(realm, 'alice');
    bob = kinit(realm, 'bob');
    secrets.push(realm.passwords.alice, realm.passwords.bob);
  });
  afterAll(async () => {
    await api?.close();
    alice?.destroy();
    bob?.destroy();
  });

  it('session ids are 256 random bits: distinct, full length, no fixed bits or shared prefixes over 128 sign-ins', async () => {
    const ids: Buffer[] = [];
    for (let i = 0; i < 128; i++) {
      const r = await negotiate(api, i % 2 ? alice : bob);
      expect(r.status).toBe(200);
      secrets.push(r.id, r.token);
      // The id is only ever in Set-Cookie (HttpOnly), never in a body the page can read.
      expect(JSON.stringify(r.body)).not.toContain(r.id);
      ids.push(Buffer.from(r.id, 'base64url'));
    }
    expect(ids.every((b) => b.length === 32)).toBe(true);
    expect(new Set(ids.map((b) => b.toString('hex'))).size).toBe(ids.length);
    expect(new Set(ids.map((b) => b.subarray(0, 6).toString('hex'))).size).toBe(ids.length);
    // Each of the 256 bit positions is set in about half of the ids. For random ids the count is
    // Binomial(128, 1/2): mean 64, sd 5.7; [24, 104] is 7 sd wide on each side.
    for (let bit = 0; bit < 256; bit++) {
      const ones = ids.filter((b) => (b[bit >> 3] >> (bit & 7)) & 1).length;
      expect({ bit, ones, ok: ones >= 24 && ones <= 104 }).toEqual({ bit, ones, ok: true });
    }
    // And across all ids, every byte value shows up (4096 bytes: each value expected 16 times).
    const seen = new Set<number>();
    for (const b of ids) for (const x of b) seen.add(x);
    expect(seen.size).toBe(256);
  });

  it('a Negotiate sign-in never adopts the id the client offered (no fixation), whatever the cookie', async () => {
    const planted = 'attacker-chosen-session-id-0123456789abcdef';
    const r = await negotiate(api, alice, planted);
    expect(r.status).toBe(200);
    expect(r.id).not.toBe('');
    expect(r.id).not.toBe(planted);
    secrets.push(r.id);
    expect((await call(`${api.url}/api/auth/me`, 'GET', { cookie: planted })).status).toBe(401);

    // A logged-out session's id is not revived by signing in again with it.
    const old = r.id;
    expect((await call(`${api.url}/api/auth/logout`, 'POST', { cookie: old })).status).toBe(204);
    const again = await negotiate(api, alice, old);
    expect(again.status).toBe(200);
    expect(again.id).not.toBe(old);
    secrets.push(again.id);
    const dead = await fetchJson(`${api.url}/api/auth/me`, { headers: { cookie: `${SESSION_COOKIE}=${old}` } });
    expect(dead.status).toBe(401);
    expect(dead.headers.get('www-authenticate')).toBe('Negotiate');
    expect(dead.body.code).toBe('SESSION_EXPIRED');
  });

  it('a password sign-in rotates the session id: the previous one is dead at once', async () => {
    const first = await passwordSession(api, 'alice', realm.passwords.alice);
    secrets.push(first);
    const res = await fetch(`${api.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [CSRF_HEADER]: CSRF_VALUE, cookie: `${SESSION_COOKIE}=${first}` },
      body: JSON.stringify({ username: 'alice', password: realm.passwords.alice }),
    });
    expect(res.status).toBe(200);
    const second = (res.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`)) ?? '').split(';')[0].slice(SESSION_COOKIE.length + 1);
    secrets.push(second);
    expect(second).not.toBe('');
    expect(second).not.toBe(first);
    expect((await call(`${api.url}/api/auth/me`, 'GET', { cookie: first })).status).toBe(401);
    expect((await call(`${api.url}/api/auth/me`, 'GET', { cookie: second })).body.user).toBe('alice');
    // The first session's credential was destroyed with it, not left in the vault.
    expect(api.app.get(CredentialVault).get(first)).toBeNull();
  });

  it('a captured token is refused on replay: after its session ended, and by a restarted API', async () => {
    const r = await negotiate(api, bob);
    expect(r.status).toBe(200);
    secrets.push(r.id);
    expect((await call(`${api.url}/api/auth/logout`, 'POST', { cookie: r.id })).status).toBe(204);
    const replay = await fetchJson(`${api.url}/api/auth/me`, { headers: { authorization: `Negotiate ${r.token}` } });
    expect(replay.status).toBe(401);
    expect(replay.body.code).toBe('TOKEN_REPLAYED');
    // The replay cache is on disk (KRB5RCACHEDIR): the API restarted on it still refuses.
    // (Close first: Passport's strategy registry is process-wide, one API per process.)
    earlierLogs.push(...api.logs.lines);
    await api.close();
    api = await startApi(configFor(realm, { FORWARDABLE_MAX_SESSIONS_PER_USER: String(MAX_SESSIONS) }));
    const again = await fetchJson(`${api.url}/api/auth/me`, { headers: { authorization: `Negotiate ${r.token}` } });
    expect(again.status).toBe(401);
    expect(again.body.code).toBe('TOKEN_REPLAYED');
    expect(again.headers.get('www-authenticate')).toBe('Negotiate');
  });

  it('a token for another real service of the realm (PostgreSQL\'s) is refused with 401', async () => {
    const token = await tokenFor(alice, 'postgres@localhost');
    secrets.push(token);
    const r = await fetchJson(`${api.url}/api/auth/me`, { headers: { authorization: `Negotiate ${token}` } });
    expect(r.status).toBe(401);
    expect(r.body.code).toBe('WRONG_SERVICE');
    expect(r.headers.get('www-authenticate')).toBe('Negotiate');
  });

  it('a cookie for a session this API never issued, or one cut short, gets 401 Negotiate and no session', async () => {
    const vault = api.app.get(CredentialVault);
    const live = await negotiate(api, alice);
    secrets.push(live.id);
    const before = vault.size;
    for (const c of [live.id.slice(0, -1), `${live.id}A`, live.id.toUpperCase(), Buffer.alloc(32).toString('base64url')]) {
      const r = await fetchJson(`${api.url}/api/auth/me`, { headers: { cookie: `${SESSION_COOKIE}=${c}` } });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Negotiate');
    }
    expect(vault.size).toBe(before);
  });

  it('bounds what one user can hold: 30 successful sign-ins leave 4 sessions, 4 credentials and one pool; the oldest sessions are ended', async () => {
    const vault = api.app.get(CredentialVault);
    const pools = api.app.get(UserDataSources);
    const store = api.app.get(SessionService).store as MemorySessionStore;
    const principal = `bob@${realm.realm}`;
    const heldBefore = vault.size;
    const storedBefore = store.size;
    const ids: string[] = [];
    const held = [];
    for (let i = 0; i < 30; i++) {
      const r = await negotiate(api, bob);
      expect(r.status).toBe(200);
      secrets.push(r.id, r.token);
      ids.push(r.id);
      held.push(vault.get(r.id)?.credential);
      // Each session queries, so each would have had a pool of its own.
      expect((await call(`${api.url}/api/files/tree`, 'GET', { cookie: r.id })).status).toBe(200);
    }
    // Regression: every sign-in kept a session, a credential and a pool keyed by session id.
    expect(await store.idsOf(principal)).toEqual(ids.slice(-MAX_SESSIONS));
    expect(vault.leasesOf(principal).map((l) => l.sessionId)).toEqual(ids.slice(-MAX_SESSIONS));
    expect(vault.size - heldBefore).toBeLessThanOrEqual(MAX_SESSIONS);
    expect(store.size - storedBefore).toBeLessThanOrEqual(MAX_SESSIONS);
    expect(pools.poolOf(principal)).not.toBeNull();
    const bobBackends = Number(superuserSql(realm, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'forwardable' AND usename = 'bob'")[0]);
    expect(bobBackends).toBeGreaterThan(0);
    expect(bobBackends).toBeLessThanOrEqual(2); // one pool of FORWARDABLE_PG_CONNECTIONS_PER_USER (2)
    // The ended sessions are dead and their credentials destroyed; the newest still work.
    expect(held.slice(0, -MAX_SESSIONS).every((c) => c?.disposed === true)).toBe(true);
    expect(held.slice(-MAX_SESSIONS).every((c) => c?.disposed === false)).toBe(true);
    for (const id of [ids[0], ids[25]]) expect((await call(`${api.url}/api/auth/me`, 'GET', { cookie: id })).status).toBe(401);
    expect((await call(`${api.url}/api/auth/me`, 'GET', { cookie: ids[29] })).body.user).toBe('bob');
  });

  it('re-authenticating with a live session\'s cookie rotates the id, refreshes groups and ends the old session', async () => {
    const vault = api.app.get(CredentialVault);
    const store = api.app.get(SessionService).store;
    const first = await negotiate(api, alice);
    secrets.push(first.id, first.token);
    expect(first.body).toMatchObject({ user: 'alice', isAdmin: false });
    // The session went stale (as if alice left the admin group since, the other way round) and this
    // replica lost its credential (as a second replica never had it): the browser negotiates again.
    const data = await store.get(first.id);
    if (!data) throw new Error('the session is not in the store');
    await store.set(first.id, { ...data, groups: ['forwardable-admins'], isAdmin: true });
    await vault.end(first.id);
    const second = await negotiate(api, alice, first.id);
    secrets.push(second.id, second.token);
    expect(second.status).toBe(200);
    // Regression: the old id, groups and admin flag were kept.
    expect(second.id).not.toBe('');
    expect(second.id).not.toBe(first.id);
    expect(second.body).toMatchObject({ user: 'alice', isAdmin: false });
    expect(second.body.groups).not.toContain('forwardable-admins');
    expect(await store.get(first.id)).toBeNull();
    expect((await call(`${api.url}/api/auth/me`, 'GET', { cookie: first.id })).status).toBe(401);
    expect((await call(`${api.url}/api/auth/me`, 'GET', { cookie: second.id })).body.user).toBe('alice');
  });

  it('a session whose stored principal is not its credential\'s is ended, not served', async () => {
    const vault = api.app.get(CredentialVault);
    const store = api.app.get(SessionService).store;
    const r = await negotiate(api, alice);
    secrets.push(r.id, r.token);
    const data = await store.get(r.id);
    if (!data) throw new Error('the session is not in the store');
    // A store entry that says bob while the vault holds alice's credential (a tampered or
    // confused shared store): neither is trusted.
    await store.set(r.id, { ...data, principal: `bob@${realm.realm}`, user: 'bob' });
    const credential = vault.get(r.id)?.credential;
    const me = await call(`${api.url}/api/auth/me`, 'GET', { cookie: r.id });
    expect(me.status).toBe(401);
    expect(me.body.user).toBeUndefined();
    expect(vault.get(r.id)).toBeNull();
    expect(credential?.disposed).toBe(true);
    expect(await store.get(r.id)).toBeNull();
  });

  it('counts password attempts against the canonical principal: case, realm suffix and Unicode variants share one bucket', async () => {
    const attempt = (username: string) =>
      fetchJson(`${api.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [CSRF_HEADER]: CSRF_VALUE },
        body: JSON.stringify({ username, password: 'not-carols-password' }),
      });
    const variants = ['carol', 'CAROL', `carol@${realm.realm}`, `Carol@${realm.realm.toLowerCase()}`, '\uff43\uff41\uff52\uff4f\uff4c'];
    const statuses: number[] = [];
    for (const v of variants) statuses.push((await attempt(v)).status);
    // Regression: each spelling was a bucket of its own, so 5 per minute became 5 per spelling.
    expect(statuses.every((s) => s !== 429)).toBe(true);
    const sixth = await attempt('carol');
    expect(sixth.status).toBe(429);
    expect(sixth.body.code).toBe('RATE_LIMITED');
  });

  it('does not believe X-Forwarded-For from a client it was not told to trust (FORWARDABLE_TRUSTED_PROXIES is empty by default)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 25; i++) {
      const r = await fetchJson(`${api.url}/api/auth/login`, {
        method: 'POST',
        // A new claimed address and user name each time: only the real address can limit this.
        headers: { 'content-type': 'application/json', [CSRF_HEADER]: CSRF_VALUE, 'x-forwarded-for': `203.0.113.${i + 1}` },
        body: JSON.stringify({ username: `nobody${i}`, password: 'x' }),
      });
      statuses.push(r.status);
    }
    // Regression: every loopback client was a trusted proxy, so each claimed address had a bucket.
    expect(statuses).toContain(429);
  });

  it('logged no token, password or session id', () => {
    expect(secretLeaks([...earlierLogs, ...api.logs.lines], secrets)).toEqual([]);
  });
});
