/**
 * Negotiate sign-on end to end over real HTTP: the real API wiring (createApp) against the real
 * realm, with curl and the `kerberos` npm package as independent clients. Nothing is mocked.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CredentialVault } from '@forwardable/nest';
import { ensureRealm, ensureRogueRealm, kinit, RealmEnv, realmProcessEnv, repoRoot, runWithRealmAsync, testPortBase, TicketCache } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import { CSRF_HEADER, CSRF_VALUE } from '@forwardable/shared/contracts';
import { Api, configFor, curl, fetchJson, sessionCookie, startApi, tokenFor } from '../testing/api-harness';
import { createApp } from './bootstrap';
import { ConfigError, loadConfig } from './config';
import { runDoctor } from './doctor';

describe('Negotiate sign-on, unconstrained delegation (db2 realm)', () => {
  let realm: RealmEnv;
  let api: Api;
  let alice: TicketCache;
  const secrets: string[] = [];

  beforeAll(async () => {
    realm = ensureRealm('db2');
    useRealm(realm);
    api = await startApi(configFor(realm, { FORWARDABLE_METRICS: 'true' }));
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

  it('exposes Prometheus metrics: sign-ins, failures by reason, sessions, pools; no names', async () => {
    const scrape = async () => {
      const res = await fetch(`${api.url}/api/metrics`);
      expect(res.status).toBe(200);
      const text = await res.text();
      const value = (line: RegExp) => Number((text.match(line) ?? [])[1] ?? 0);
      return {
        text,
        negotiations: value(/^forwardable_negotiations_total (\d+)$/m),
        ntlm: value(/^forwardable_auth_failures_total\{reason="NTLM_OFFERED"\} (\d+)$/m),
        logins: value(/^forwardable_password_logins_total (\d+)$/m),
        sessions: value(/^forwardable_sessions (\d+)$/m),
      };
    };
    const before = await scrape();
    expect((await curl(realm, `${api.url}/api/auth/me`, { cc: alice, delegate: true })).status).toBe(200);
    const ntlm = Buffer.concat([Buffer.from('NTLMSSP\0', 'latin1'), Buffer.alloc(32)]).toString('base64');
    expect((await fetchJson(`${api.url}/api/auth/me`, { headers: { Authorization: `Negotiate ${ntlm}` } })).status).toBe(401);
    const after = await scrape();
    expect(after.negotiations - before.negotiations).toBe(1);
    expect(after.ntlm - before.ntlm).toBe(1);
    expect(after.sessions - before.sessions).toBe(1);
    expect(after.logins).toBeGreaterThanOrEqual(before.logins);
    expect(after.text).toMatch(/^forwardable_user_pools \d+$/m);
    expect(after.text).toMatch(/^forwardable_db_connections \d+$/m);
    expect(after.text).not.toMatch(/alice|bob|carol/);
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

  it('takes groups from LDAP: dbadmin is in forwardable-admins, alice is not', async () => {
    const admin = kinit(realm, 'dbadmin');
    const alice = kinit(realm, 'alice');
    try {
      const r = await curl(realm, `${api.url}/api/auth/me`, { cc: admin });
      expect(r.body).toMatchObject({ user: 'dbadmin', isAdmin: true });
      expect(r.body.groups).toEqual(['forwardable-admins', 'forwardable-users']);
      const a = await curl(realm, `${api.url}/api/auth/me`, { cc: alice });
      expect(a.body).toMatchObject({ user: 'alice', isAdmin: false, groups: ['forwardable-users'] });
    } finally {
      admin.destroy();
      alice.destroy();
    }
  });

  it('still signs people in when LDAP is down, but makes nobody an admin (fail closed)', async () => {
    const down = await startApi(configFor(realm, { FORWARDABLE_LDAP_URL: `ldap://127.0.0.1:${testPortBase + 98}/` }));
    const admin = kinit(realm, 'dbadmin');
    try {
      const r = await curl(realm, `${down.url}/api/auth/me`, { cc: admin });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ user: 'dbadmin', isAdmin: false, groups: [] });
      expect(down.logs.lines.join('\n')).toMatch(/LDAP group lookup for dbadmin@FORWARDABLE.TEST failed/);
    } finally {
      admin.destroy();
      await down.close();
    }
  });
});

describe('FILE credential caches, for operators who want libpq tools on the same ticket', () => {
  it('keeps the credential in a 0600 file in a 0700 directory that psql can use, and removes it at logout', async () => {
    const realm = ensureRealm('db2');
    useRealm(realm);
    const dir = join(realm.dir, 'run', `vault-${process.pid}`);
    const api = await startApi(configFor(realm, { FORWARDABLE_CREDENTIAL_STORE: 'file', FORWARDABLE_CREDENTIAL_DIR: dir }));
    const alice = kinit(realm, 'alice');
    try {
      const r = await curl(realm, `${api.url}/api/auth/me`, { cc: alice, delegate: true });
      expect(r.status).toBe(200);
      const { value } = sessionCookie(r);
      const cache = api.app.get(CredentialVault).fileCache(value);
      expect(cache).toMatch(/^FILE:/);
      const path = String(cache).slice('FILE:'.length);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(dirname(path)).mode & 0o777).toBe(0o700);
      // libpq (psql) connects as alice with the delegated TGT in that cache.
      const psql = await runWithRealmAsync(realm, 'psql', ['-X', '-A', '-t', '-h', 'localhost', '-p', String(realm.pg.port), '-U', 'alice', '-d', 'forwardable', '-c', 'SELECT session_user'], {
        env: { KRB5CCNAME: String(cache), PGHOSTADDR: '127.0.0.1' },
      });
      expect(psql.stdout.trim()).toBe('alice');
      const out = await curl(realm, `${api.url}/api/auth/logout`, { cookie: value, method: 'POST', headers: { [CSRF_HEADER]: CSRF_VALUE } });
      expect(out.status).toBe(204);
      expect(existsSync(path)).toBe(false);
    } finally {
      alice.destroy();
      await api.close();
    }
  });
});

describe('password fallback against a rogue KDC', () => {
  it('refuses a login whose KDC cannot issue a ticket for our keytab', async () => {
    const real = ensureRealm('db2');
    // Same realm name, same user names, other keys: a KDC that answers for the realm but is not it.
    const rogue = ensureRogueRealm();
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
      loadConfig({ FORWARDABLE_KEYTAB: '/nonexistent/http.keytab', FORWARDABLE_SERVICE_PRINCIPAL: 'alice@X', FORWARDABLE_DELEGATION: 'sometimes', PGPASSWORD: 'x', FORWARDABLE_TRUSTED_PROXIES: '10.0.0.0/8, proxy.example' });
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
    expect(msg).toMatch(/FORWARDABLE_TRUSTED_PROXIES: proxy.example is not an IP address, a CIDR/);
    expect(msg).not.toMatch(/10\.0\.0\.0\/8 is not/);
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

  it('doctor reports keytab, KDC and PostgreSQL as fine on a good set-up', async () => {
    const realm = ensureRealm('db2');
    useRealm(realm);
    const checks = await runDoctor(configFor(realm));
    expect(checks.map((c) => [c.name, c.ok])).toEqual([['keytab', true], ['kdc', true], ['postgresql', true], ['postgresql-link', true]]);
    expect(checks[2].detail).toMatch(/accepts Kerberos/);
    // The realm's pg_hba is hostgssenc only: the doctor's link, like every user's, is encrypted (#17).
    expect(checks[3].detail).toMatch(/^GSSAPI-encrypted .*gssencmode=prefer/);
  });

  it('doctor names the broken part: a keytab without our key, a database that does not answer', async () => {
    const realm = ensureRealm('db2');
    useRealm(realm);
    const wrongKeytab = await runDoctor(configFor(realm, { FORWARDABLE_KEYTAB: realm.postgresKeytab }));
    expect(wrongKeytab.map((c) => [c.name, c.ok])).toEqual([['keytab', false], ['kdc', false], ['postgresql', false]]);
    expect(wrongKeytab[0].detail).toMatch(/HTTP\/localhost/);
    const noDb = await runDoctor(configFor(realm, { FORWARDABLE_PG_PORT: String(testPortBase + 99) }));
    expect(noDb.find((c) => c.name === 'postgresql')?.ok).toBe(false);
  });

  it('doctor runs as a command and exits 0 on a good set-up', async () => {
    const realm = ensureRealm('db2');
    const r = await runWithRealmAsync(realm, process.execPath, ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register', join(repoRoot, 'apps/api/src/doctor.ts')], {
      env: {
        TS_NODE_PROJECT: join(repoRoot, 'apps/api/tsconfig.app.json'),
        FORWARDABLE_KEYTAB: realm.httpKeytab,
        FORWARDABLE_SERVICE_PRINCIPAL: realm.servicePrincipal,
        FORWARDABLE_KRB5_CONFIG: realm.krb5Config,
        FORWARDABLE_PG_HOST: 'localhost',
        FORWARDABLE_PG_HOSTADDR: '127.0.0.1',
        FORWARDABLE_PG_PORT: String(realm.pg.port),
        FORWARDABLE_PG_DATABASE: 'forwardable',
      },
    });
    expect(r.stdout).toMatch(/^ok {3}configuration/m);
    expect(r.stdout).toMatch(/^ok {3}postgresql:/m);
    expect(r.stdout).toMatch(/^ok {3}postgresql-link: GSSAPI-encrypted/m);
    expect(r.status).toBe(0);
  });
});
