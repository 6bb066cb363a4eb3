/**
 * What every answer tells the browser (no framing, no sniffing, no caching of per-user data),
 * that metrics are not public unless asked for, that password sign-in failures are one answer
 * whatever the account's state, that the session cookie is Secure behind a TLS proxy, and that
 * idle keep-alive connections outlive the client's.
 * The real API wiring (createApp) against the real db2 realm and its PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import { Agent as HttpAgent, get as httpGet } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureRealm, kadminLocal, RealmEnv } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import { CSRF_HEADER, CSRF_VALUE, SESSION_COOKIE } from '@forwardable/shared/contracts';
import { Api, call, configFor, migrateAsDbadmin, passwordSession, startApi } from '../testing/api-harness';
import { KEEP_ALIVE_TIMEOUT_MS } from './http-limits';

/** POST /api/auth/login as a browser would; the raw answer. */
async function login(api: Api, username: string, password: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${api.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', [CSRF_HEADER]: CSRF_VALUE, ...headers },
    body: JSON.stringify({ username, password }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

describe('response headers, metrics and password sign-in answers (db2 realm)', () => {
  let realm: RealmEnv;
  let api: Api;
  let webDir: string;
  const secrets: string[] = [];

  beforeAll(async () => {
    realm = ensureRealm('db2');
    useRealm(realm);
    await migrateAsDbadmin(realm);
    webDir = mkdtempSync(join(tmpdir(), 'fw-web-'));
    writeFileSync(join(webDir, 'index.html'), '<!doctype html><title>Forwardable</title><fw-root></fw-root>');
    api = await startApi(configFor(realm, { FORWARDABLE_WEB_DIR: webDir }));
    secrets.push(...Object.values(realm.passwords));
  });
  afterAll(async () => {
    await api?.close();
    rmSync(webDir, { recursive: true, force: true });
  });

  function expectProtected(headers: Headers, what: string): void {
    const csp = headers.get('content-security-policy') ?? '';
    expect({ what, csp }).toEqual({ what, csp: expect.stringContaining("frame-ancestors 'none'") });
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    expect({ what, xfo: headers.get('x-frame-options') }).toEqual({ what, xfo: 'DENY' });
    expect({ what, nosniff: headers.get('x-content-type-options') }).toEqual({ what, nosniff: 'nosniff' });
  }

  it('every answer forbids framing and sniffing; API answers (file contents too) are never cached', async () => {
    const cookie = await passwordSession(api, 'alice', realm.passwords.alice);
    secrets.push(cookie);
    const name = `headers-${randomBytes(4).toString('hex')}.txt`;
    const created = await call(`${api.url}/api/files`, 'POST', { cookie, body: { name, content: '<script>alert(1)</script>' } });
    expect(created.status).toBe(201);
    const id = String(created.body.id);

    const answers: Array<[string, Response]> = [
      ['health', await fetch(`${api.url}/api/health`)],
      ['401', await fetch(`${api.url}/api/auth/me`)],
      ['404', await fetch(`${api.url}/api/no-such-route`)],
      ['file', await fetch(`${api.url}/api/files/${id}`, { headers: { cookie: `${SESSION_COOKIE}=${cookie}` } })],
    ];
    expect(answers.map(([w, r]) => [w, r.status])).toEqual([['health', 200], ['401', 401], ['404', 404], ['file', 200]]);
    for (const [what, res] of answers) {
      expectProtected(res.headers, what);
      expect({ what, cache: res.headers.get('cache-control') }).toEqual({ what, cache: 'no-store' });
    }
    const file = answers[3][1];
    expect(file.headers.get('content-type')).toMatch(/^application\/json/);

    // The SPA's own files: same protection, and cacheable (no per-user data in them).
    const spa = await fetch(`${api.url}/`);
    expect(spa.status).toBe(200);
    expect(await spa.text()).toContain('<fw-root>');
    expectProtected(spa.headers, 'spa');
    expect(spa.headers.get('cache-control') ?? '').not.toContain('no-store');
    await call(`${api.url}/api/files/${id}`, 'DELETE', { cookie });
  });

  it('wrong password, unknown user, expired password and locked account get one identical answer; the log says which, without the password', async () => {
    const tag = randomBytes(4).toString('hex');
    const expired = `edgeexp${tag}`;
    kadminLocal(realm, `addprinc +requires_preauth -pwexpire "2001-01-01 00:00:00 UTC" -pw Expired-pw-${tag} ${expired}`);
    const policy = `edgelock${tag}`;
    kadminLocal(realm, `addpol -maxfailure 1 -lockoutduration "1 hour" -failurecountinterval "1 hour" ${policy}`);
    const locked = `edgelocked${tag}`;
    kadminLocal(realm, `addprinc +requires_preauth -policy ${policy} -pw Locked-pw-${tag} ${locked}`);
    secrets.push(`Expired-pw-${tag}`, `Locked-pw-${tag}`, 'not-the-password');

    const wrong = await login(api, 'bob', 'not-the-password');
    const unknown = await login(api, `nobody${tag}`, 'not-the-password');
    const expiredAnswer = await login(api, expired, `Expired-pw-${tag}`);
    const lockedFirst = await login(api, locked, 'not-the-password'); // the one failure the policy allows
    const lockedAnswer = await login(api, locked, `Locked-pw-${tag}`); // right password, locked account
    const answers = { wrong, unknown, expiredAnswer, lockedFirst, lockedAnswer };
    for (const [what, a] of Object.entries(answers)) {
      expect({ what, status: a.status, body: a.body }).toEqual({
        what,
        status: 401,
        body: { statusCode: 401, code: 'LOGIN_FAILED', message: 'wrong user name or password' },
      });
    }
    const log = api.logs.lines.join('\n');
    expect(log).toMatch(new RegExp(`refused for bob@${realm.realm}: wrong password`));
    expect(log).toMatch(new RegExp(`refused for nobody${tag}@${realm.realm}: no such principal`));
    expect(log).toMatch(new RegExp(`refused for ${expired}@${realm.realm}: the password has expired`));
    expect(log).toMatch(new RegExp(`refused for ${locked}@${realm.realm}: the account is locked out`));
    for (const s of secrets) expect(log).not.toContain(s);
  });

  it('the session cookie is Secure behind a trusted TLS-terminating proxy, and not on plain HTTP or from an untrusted client', async () => {
    const cookieOf = (h: Headers) => h.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`)) ?? '';
    const plain = await login(api, 'carol', realm.passwords.carol);
    // No FORWARDABLE_TRUSTED_PROXIES: anybody could send this header, so it must change nothing.
    const spoofed = await login(api, 'carol', realm.passwords.carol, { 'x-forwarded-proto': 'https' });
    const behindProxy = await startApi(configFor(realm, { FORWARDABLE_TRUSTED_PROXIES: 'loopback' }));
    try {
      const viaTls = await login(behindProxy, 'carol', realm.passwords.carol, { 'x-forwarded-proto': 'https' });
      for (const a of [plain, spoofed, viaTls]) expect(a.status).toBe(200);
      expect(cookieOf(plain.headers)).not.toMatch(/;\s*Secure/i);
      expect(cookieOf(spoofed.headers)).not.toMatch(/;\s*Secure/i);
      expect(cookieOf(viaTls.headers)).toMatch(/;\s*Secure/i);
      expect(cookieOf(viaTls.headers)).toMatch(/HttpOnly/);
    } finally {
      await behindProxy.close();
    }
  });

  it('keeps an idle keep-alive connection longer than clients do, so no request races its close', async () => {
    // Node's default closes idle connections after 5 s, racing a client's next request on them
    // (a reset, ECONNRESET); the API keeps them 65 s, past undici's 4 s and typical proxies' 60 s.
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    const get = () =>
      new Promise<{ port: number; keepAlive: string }>((resolve, reject) => {
        const req = httpGet(`${api.url}/api/health`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve({ port: req.socket?.localPort ?? -1, keepAlive: String(res.headers['keep-alive']) }));
        });
        req.on('error', reject);
      });
    try {
      const first = await get();
      expect(first.keepAlive).toBe(`timeout=${KEEP_ALIVE_TIMEOUT_MS / 1000}`);
      await new Promise((r) => setTimeout(r, 6_000));
      const second = await get();
      expect(second.port).toBe(first.port); // the same connection: the server did not close it
    } finally {
      agent.destroy();
    }
  });

  // Last: a second app in this process takes over Nest's global logger.
  it('/api/metrics is not served unless FORWARDABLE_METRICS is on', async () => {
    const off = await fetch(`${api.url}/api/metrics`);
    expect(off.status).toBe(404);
    expect(await off.text()).not.toMatch(/forwardable_/);
    const withMetrics = await startApi(configFor(realm, { FORWARDABLE_METRICS: 'true' }));
    try {
      const on = await fetch(`${withMetrics.url}/api/metrics`);
      expect(on.status).toBe(200);
      expect(await on.text()).toMatch(/^forwardable_sessions \d+$/m);
    } finally {
      await withMetrics.close();
    }
  });
});
