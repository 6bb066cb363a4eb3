/**
 * Negotiate sign-on end to end over real HTTP: the real API wiring (createApp) against the real
 * realm, with curl and the `kerberos` npm package as independent clients. Nothing is mocked.
 */
import { INestApplication, LoggerService } from '@nestjs/common';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Credential, InitiatorContext } from '@forwardable/gssapi';
import { CredentialVault } from '@forwardable/api/auth';
import { ensureRealm, kinit, RealmEnv, realmProcessEnv, repoRoot, runWithRealmAsync, testPortBase, TicketCache } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import { CSRF_HEADER, CSRF_VALUE, SESSION_COOKIE } from '@forwardable/shared/contracts';
import { createApp } from './bootstrap';
import { ApiConfig, ConfigError, loadConfig } from './config';

/** Every line the API logs, to prove no secret ever reaches a log. */
class CapturingLogger implements LoggerService {
  readonly lines: string[] = [];
  log(...m: unknown[]) { this.lines.push(m.map(String).join(' ')); }
  error(...m: unknown[]) { this.lines.push(m.map(String).join(' ')); }
  warn(...m: unknown[]) { this.lines.push(m.map(String).join(' ')); }
  debug(...m: unknown[]) { this.lines.push(m.map(String).join(' ')); }
  verbose(...m: unknown[]) { this.lines.push(m.map(String).join(' ')); }
}

function configFor(realm: RealmEnv, extra: Record<string, string> = {}): ApiConfig {
  return loadConfig({
    FORWARDABLE_KEYTAB: realm.httpKeytab,
    FORWARDABLE_SERVICE_PRINCIPAL: realm.servicePrincipal,
    FORWARDABLE_KRB5_CONFIG: realm.krb5Config,
    FORWARDABLE_RCACHE_DIR: realm.rcacheDir,
    FORWARDABLE_DELEGATION: realm.kdb === 'ldap' ? 'constrained' : 'unconstrained',
    FORWARDABLE_PG_HOST: 'localhost',
    FORWARDABLE_PG_HOSTADDR: '127.0.0.1',
    FORWARDABLE_PG_PORT: String(realm.pg.port),
    FORWARDABLE_PG_DATABASE: realm.pg.database,
    FORWARDABLE_ADMINS: 'dbadmin',
    ...extra,
  });
}

interface Api {
  app: INestApplication;
  url: string;
  logs: CapturingLogger;
  close(): Promise<void>;
}

async function startApi(config: ApiConfig): Promise<Api> {
  const logs = new CapturingLogger();
  const app = await createApp(config, { logger: logs });
  await app.listen(0, '127.0.0.1');
  const port = (app.getHttpServer().address() as AddressInfo).port;
  // The SPN has a host name: clients must use localhost, not 127.0.0.1 (KERBEROS-NOTES.md).
  return { app, url: `http://localhost:${port}`, logs, close: () => app.close() };
}

interface HttpResult {
  status: number;
  headers: Record<string, string[]>;
  body: Record<string, unknown>;
}

/** curl -i, parsed; with --negotiate when a ticket cache is given. */
async function curl(realm: RealmEnv, url: string, opts: { cc?: TicketCache; delegate?: boolean; cookie?: string; method?: string; headers?: Record<string, string>; json?: unknown } = {}): Promise<HttpResult> {
  const args = ['-s', '-i', '-X', opts.method ?? 'GET'];
  if (opts.cc) args.push('--negotiate', '-u', ':');
  if (opts.delegate) args.push('--delegation', 'always');
  if (opts.cookie) args.push('-H', `Cookie: ${SESSION_COOKIE}=${opts.cookie}`);
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  if (opts.json !== undefined) args.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(opts.json));
  args.push(url);
  const r = await runWithRealmAsync(realm, 'curl', args, { ccache: opts.cc ?? { name: `FILE:${realm.dir}/run/no-such-cache`, path: '', destroy: () => undefined } });
  return parseHttp(r.stdout);
}

/** The last response of a curl -i transcript (a Negotiate exchange prints the 401 first). */
function parseHttp(raw: string): HttpResult {
  const parts = raw.split(/\r?\n\r?\n/);
  let i = 0;
  while (i + 1 < parts.length && /^HTTP\/\S+ (401|100)\b/.test(parts[i]) && /^HTTP\//.test(parts[i + 1])) i++;
  const [statusLine, ...headerLines] = parts[i].split(/\r?\n/);
  const headers: Record<string, string[]> = {};
  for (const l of headerLines) {
    const c = l.indexOf(':');
    if (c > 0) (headers[l.slice(0, c).toLowerCase()] ??= []).push(l.slice(c + 1).trim());
  }
  const text = parts.slice(i + 1).join('\n\n');
  let body: Record<string, unknown> = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = { raw: text };
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

function sessionCookie(r: HttpResult): { value: string; attrs: string } {
  const line = (r.headers['set-cookie'] ?? []).find((c) => c.startsWith(`${SESSION_COOKIE}=`));
  if (!line) throw new Error(`no session cookie in ${JSON.stringify(r.headers)}`);
  const [pair, ...attrs] = line.split(';');
  return { value: pair.slice(SESSION_COOKIE.length + 1), attrs: attrs.join(';') };
}

/** A Negotiate token made by our own initiator from a user's ticket cache. */
async function tokenFor(cc: TicketCache, target = 'HTTP@localhost', delegate = true): Promise<string> {
  const cred = await Credential.fromCache(cc.name, 'password');
  const ctx = new InitiatorContext({ credential: cred, target, mech: 'spnego', delegate, mutual: true });
  try {
    const out = await ctx.step(null);
    return (out.token as Buffer).toString('base64');
  } finally {
    ctx.dispose();
    cred.dispose();
  }
}

async function fetchJson(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : {} };
}

describe('Negotiate sign-on, unconstrained delegation (db2 realm)', () => {
  let realm: RealmEnv;
  let api: Api;
  let alice: TicketCache;
  const secrets: string[] = [];

  beforeAll(async () => {
    realm = ensureRealm('db2');
    useRealm(realm);
    api = await startApi(configFor(realm));
    alice = kinit(realm, 'alice');
    secrets.push(realm.passwords.alice, realm.passwords.bob);
  });
  afterAll(async () => {
    await api?.close();
    alice?.destroy();
  });

  it('answers 401 with a Negotiate challenge and a JSON body without credentials', async () => {
    const r = await fetchJson(`${api.url}/api/auth/me`);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Negotiate');
    expect(r.body).toMatchObject({ statusCode: 401, code: 'NEGOTIATE_REQUIRED' });
    expect(String(r.body.hint)).toMatch(/kinit/);
  });

  it('keeps public routes open', async () => {
    expect((await fetchJson(`${api.url}/api/health`)).body).toEqual({ status: 'ok' });
  });

  it('signs alice in with curl --negotiate --delegation always, with mutual auth and a safe cookie', async () => {
    const r = await curl(realm, `${api.url}/api/auth/me`, { cc: alice, delegate: true });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ principal: `alice@${realm.realm}`, user: 'alice', delegation: 'forwarded', mode: 'unconstrained', isAdmin: false });
    expect(r.headers['www-authenticate']?.[0]).toMatch(/^Negotiate [A-Za-z0-9+/=]{20,}$/);
    const { value, attrs } = sessionCookie(r);
    expect(Buffer.from(value, 'base64url').length).toBeGreaterThanOrEqual(16);
    expect(attrs).toMatch(/HttpOnly/);
    expect(attrs).toMatch(/SameSite=Strict/);
    expect(attrs).toMatch(/Path=\//);
    expect(attrs).not.toMatch(/Secure/); // plain HTTP here; Secure is set over TLS
    secrets.push(value);
  });

  it('uses the cookie for later requests, and logout destroys the credential', async () => {
    const vault = api.app.get(CredentialVault);
    const first = await curl(realm, `${api.url}/api/auth/me`, { cc: alice, delegate: true });
    const { value } = sessionCookie(first);
    secrets.push(value);
    const held = vault.size;
    const again = await curl(realm, `${api.url}/api/auth/me`, { cookie: value });
    expect(again.status).toBe(200);
    expect(again.body.user).toBe('alice');
    // State-changing requests need the CSRF header too.
    const noCsrf = await curl(realm, `${api.url}/api/auth/logout`, { cookie: value, method: 'POST' });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.body.code).toBe('CSRF_REQUIRED');
    const out = await curl(realm, `${api.url}/api/auth/logout`, { cookie: value, method: 'POST', headers: { [CSRF_HEADER]: CSRF_VALUE } });
    expect(out.status).toBe(204);
    expect(vault.size).toBe(held - 1);
    const after = await curl(realm, `${api.url}/api/auth/me`, { cookie: value });
    expect(after.status).toBe(401);
    expect(after.body.code).toBe('SESSION_EXPIRED');
    expect(after.headers['www-authenticate']).toEqual(['Negotiate']);
  });

  it('refuses a browser that does not delegate, saying how to enable delegation', async () => {
    const r = await curl(realm, `${api.url}/api/auth/me`, { cc: alice });
    expect(r.status).toBe(401);
    expect(r.body.code).toBe('NO_DELEGATION');
    expect(String(r.body.hint)).toMatch(/AuthNegotiateDelegateAllowlist/);
  });

  it('accepts the kerberos npm package as a second independent client', async () => {
    const script = `const k = require('kerberos');
      k.initializeClient('HTTP@localhost', { flags: k.GSS_C_DELEG_FLAG | k.GSS_C_MUTUAL_FLAG | k.GSS_C_SEQUENCE_FLAG })
        .then((c) => c.step('')).then((t) => process.stdout.write(t), (e) => { console.error(e.message); process.exit(1); });`;
    const r = await runWithRealmAsync(realm, process.execPath, ['-e', script], { ccache: alice, env: { NODE_PATH: join(repoRoot, 'node_modules') } });
    expect(r.stderr).toBe('');
    const res = await fetchJson(`${api.url}/api/auth/me`, { headers: { Authorization: `Negotiate ${r.stdout}` } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ user: 'alice', delegation: 'forwarded' });
  });

  it('refuses NTLM, malformed, replayed and wrong-service tokens with 401, never 500', async () => {
    const ntlm = Buffer.concat([Buffer.from('NTLMSSP\0', 'latin1'), Buffer.from([1, 0, 0, 0, 0x07, 0x82, 0x08, 0xa2]), Buffer.alloc(24)]);
    const cases: [string, string][] = [
      [`Negotiate ${ntlm.toString('base64')}`, 'NTLM_OFFERED'],
      [`NTLM ${ntlm.toString('base64')}`, 'NTLM_OFFERED'],
      ['Negotiate !!!not-base64!!!', 'TOKEN_INVALID'],
      [`Negotiate ${Buffer.from('random garbage that is no token').toString('base64')}`, 'TOKEN_INVALID'],
      ['Basic YWxpY2U6c2VjcmV0', 'NEGOTIATE_REQUIRED'],
      ['Negotiate', 'NEGOTIATE_REQUIRED'],
    ];
    for (const [header, code] of cases) {
      const r = await fetchJson(`${api.url}/api/auth/me`, { headers: { Authorization: header } });
      expect({ header, status: r.status, code: r.body.code }).toEqual({ header, status: 401, code });
      expect(r.headers.get('www-authenticate')).toBe('Negotiate');
    }
    const token = await tokenFor(alice);
    expect((await fetchJson(`${api.url}/api/auth/me`, { headers: { Authorization: `Negotiate ${token}` } })).status).toBe(200);
    const replay = await fetchJson(`${api.url}/api/auth/me`, { headers: { Authorization: `Negotiate ${token}` } });
    expect(replay.status).toBe(401);
    expect(replay.body.code).toBe('TOKEN_REPLAYED');
    const other = await fetchJson(`${api.url}/api/auth/me`, { headers: { Authorization: `Negotiate ${await tokenFor(alice, 'other@localhost')}` } });
    expect(other.status).toBe(401);
    expect(other.body.code).toBe('WRONG_SERVICE');
  });

  it('signs in with a password (KDC verified), case-insensitively, and refuses a wrong one', async () => {
    const ok = await curl(realm, `${api.url}/api/auth/login`, {
      method: 'POST',
      headers: { [CSRF_HEADER]: CSRF_VALUE },
      json: { username: 'Bob', password: realm.passwords.bob },
    });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ user: 'bob', delegation: 'password', redirectTo: '/' });
    const { value } = sessionCookie(ok);
    secrets.push(value);
    expect((await curl(realm, `${api.url}/api/auth/me`, { cookie: value })).body.user).toBe('bob');
    const bad = await fetchJson(`${api.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [CSRF_HEADER]: CSRF_VALUE },
      body: JSON.stringify({ username: 'carol', password: 'not-her-password' }),
    });
    expect(bad.status).toBe(401);
    expect(bad.body).toMatchObject({ code: 'LOGIN_FAILED', message: 'wrong user name or password' });
    const invalid = await fetchJson(`${api.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [CSRF_HEADER]: CSRF_VALUE },
      body: JSON.stringify({ username: 42 }),
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body.code).toBe('INVALID_INPUT');
  });

  it('rate-limits password attempts per user name', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await fetchJson(`${api.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [CSRF_HEADER]: CSRF_VALUE },
        body: JSON.stringify({ username: 'dbadmin', password: `wrong-${i}` }),
      });
      statuses.push(r.status);
      if (r.status === 429) expect(r.body.code).toBe('RATE_LIMITED');
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5)).toEqual([429, 429]);
  });

  it('ends the session with the credential: an expired ticket gets a fresh challenge', async () => {
    const short = kinit(realm, 'carol', ['-l', '8s']);
    try {
      const r = await curl(realm, `${api.url}/api/auth/me`, { cc: short, delegate: true });
      expect(r.status).toBe(200);
      expect(Date.parse(String(r.body.expiresAt)) - Date.now()).toBeLessThanOrEqual(9000);
      const { value } = sessionCookie(r);
      secrets.push(value);
      await new Promise((res) => setTimeout(res, 9000));
      const later = await curl(realm, `${api.url}/api/auth/me`, { cookie: value });
      expect(later.status).toBe(401);
      expect(later.headers['www-authenticate']).toEqual(['Negotiate']);
    } finally {
      short.destroy();
    }
  });

  it('never writes a token, password or session id to its log', () => {
    const log = api.logs.lines.join('\n');
    expect(api.logs.lines.length).toBeGreaterThan(0);
    for (const s of secrets) expect(log).not.toContain(s);
    expect(log).not.toMatch(/YII[A-Za-z0-9+/]{20}/); // base64 of a GSS/SPNEGO token (0x60 0x82 ...)
    expect(log).not.toMatch(/Negotiate [A-Za-z0-9+/]{20}/);
  });
});

describe('Negotiate sign-on, constrained delegation (ldap realm, S4U2proxy)', () => {
  let realm: RealmEnv;
  let api: Api;

  beforeAll(async () => {
    realm = ensureRealm('ldap');
    useRealm(realm);
    api = await startApi(configFor(realm));
  });
  afterAll(() => api?.close());

  it('signs in a browser that does not delegate, holding a proxy credential', async () => {
    const alice = kinit(realm, 'alice');
    try {
      const r = await curl(realm, `${api.url}/api/auth/me`, { cc: alice });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ user: 'alice', delegation: 'proxy', mode: 'constrained' });
    } finally {
      alice.destroy();
    }
  });

  it('marks the admin from the configured admin list', async () => {
    const admin = kinit(realm, 'dbadmin');
    try {
      const r = await curl(realm, `${api.url}/api/auth/me`, { cc: admin });
      expect(r.body).toMatchObject({ user: 'dbadmin', isAdmin: true, groups: ['forwardable-admins'] });
    } finally {
      admin.destroy();
    }
  });
});

describe('password fallback against a rogue KDC', () => {
  it('refuses a login whose KDC cannot issue a ticket for our keytab', async () => {
    const real = ensureRealm('db2');
    // Same realm name, same user names, other keys: a KDC that answers for the realm but is not it.
    const rogue = ensureRealm('db2', { dir: join(repoRoot, 'tmp/realms/test-rogue'), portBase: testPortBase + 200 });
    useRealm(rogue);
    const api = await startApi({ ...configFor(real), krb5Config: rogue.krb5Config, delegation: 'unconstrained' });
    try {
      const r = await fetchJson(`${api.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [CSRF_HEADER]: CSRF_VALUE },
        body: JSON.stringify({ username: 'alice', password: rogue.passwords.alice }),
      });
      expect(r.status).toBe(401);
      expect(r.body.code).toBe('KDC_UNVERIFIED');
    } finally {
      await api.close();
      useRealm(real);
    }
  });
});

describe('configuration is checked at boot', () => {
  it('lists every problem with what to do', () => {
    let err: unknown;
    try {
      loadConfig({ FORWARDABLE_KEYTAB: '/nonexistent/http.keytab', FORWARDABLE_SERVICE_PRINCIPAL: 'alice@X', FORWARDABLE_DELEGATION: 'sometimes', PGPASSWORD: 'x' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/FORWARDABLE_KEYTAB=\/nonexistent\/http.keytab does not exist: export the service key/);
    expect(msg).toMatch(/FORWARDABLE_SERVICE_PRINCIPAL=alice@X must look like HTTP\/<host/);
    expect(msg).toMatch(/FORWARDABLE_DELEGATION=sometimes/);
    expect(msg).toMatch(/FORWARDABLE_PG_HOST is not set/);
    expect(msg).toMatch(/must hold no password/);
  });

  it('stops start-up when the keytab has no key for the service principal', async () => {
    const realm = ensureRealm('db2');
    useRealm(realm);
    const config = configFor(realm, { FORWARDABLE_KEYTAB: realm.postgresKeytab });
    await expect(createApp(config, { logger: false }).then((a) => a.init())).rejects.toThrow(/HTTP\/localhost@FORWARDABLE.TEST/);
  });

  it('runs the real binary: a bad configuration exits 1 with the message', async () => {
    const realm = ensureRealm('db2');
    const r = await runWithRealmAsync(realm, process.execPath, ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register', join(repoRoot, 'apps/api/src/main.ts')], {
      env: { ...realmProcessEnv(realm), TS_NODE_PROJECT: join(repoRoot, 'apps/api/tsconfig.app.json'), FORWARDABLE_KEYTAB: '', FORWARDABLE_PG_HOST: 'localhost', FORWARDABLE_PG_DATABASE: 'forwardable', FORWARDABLE_SERVICE_PRINCIPAL: realm.servicePrincipal },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/FORWARDABLE_KEYTAB is not set/);
  });
});
