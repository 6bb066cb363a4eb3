/**
 * Secrets at rest: credential caches exist only while their session does (FILE mode: 0600 files
 * in a 0700 directory, removed at logout, expiry and shutdown; MEMORY mode: credentials disposed
 * and nothing written to disk), and an unsafe cache directory stops the API at boot. Logs are
 * scanned at the end of every hardening spec (support.ts, `secretLeaks`).
 */
import { Agent, get } from 'node:http';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Credential } from '@forwardable/gssapi';
import { CredentialLease, CredentialVault } from '@forwardable/nest';
import { ensureRealm, kinit, RealmEnv, repoRoot, runWithRealmAsync, testPortBase } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import { SESSION_COOKIE } from '@forwardable/shared/contracts';
import { Api, call, configFor, envFor, migrateAsDbadmin, passwordSession, startApi, startApiProcess, tokenFor } from '../testing/api-harness';
import { eventually, secretLeaks } from './support';

async function negotiated(api: Api, realm: RealmEnv, user: 'alice' | 'carol', flags: string[] = []): Promise<string> {
  const cc = kinit(realm, user, flags);
  try {
    const res = await fetch(`${api.url}/api/auth/me`, { headers: { authorization: `Negotiate ${await tokenFor(cc)}` } });
    if (res.status !== 200) throw new Error(`sign-in of ${user}: ${res.status}`);
    return (res.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`)) ?? '').split(';')[0].slice(SESSION_COOKIE.length + 1);
  } finally {
    cc.destroy();
  }
}

/** Files under the system temp directory that look like credential caches. */
function tmpCaches(): string[] {
  return readdirSync(tmpdir()).filter((f) => /^krb5cc|^fw-ccache-/.test(f));
}

describe('hardening: credential caches and secrets at rest', () => {
  let realm: RealmEnv;
  const secrets: string[] = [];
  const logs: string[] = [];
  const work = mkdtempSync(join(tmpdir(), 'fw-hardening-'));

  beforeAll(async () => {
    realm = ensureRealm('db2');
    useRealm(realm);
    await migrateAsDbadmin(realm);
    secrets.push(...Object.values(realm.passwords));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('FILE mode: one 0600 cache per session in a 0700 directory, gone at logout, at expiry and at shutdown', async () => {
    const dir = join(work, 'vault');
    const api = await startApi(configFor(realm, { FORWARDABLE_CREDENTIAL_STORE: 'file', FORWARDABLE_CREDENTIAL_DIR: dir }));
    try {
      const alice = await negotiated(api, realm, 'alice');
      const bob = await passwordSession(api, 'bob', realm.passwords.bob);
      const carol = await negotiated(api, realm, 'carol', ['-l', '5s']);
      secrets.push(alice, bob, carol);
      // Each session's credential reached PostgreSQL through its cache-backed credential.
      for (const c of [alice, bob, carol]) expect((await call(`${api.url}/api/files/tree`, 'GET', { cookie: c })).status).toBe(200);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      const files = readdirSync(dir);
      expect(files).toHaveLength(3);
      for (const f of files) {
        const st = statSync(join(dir, f));
        expect({ f, mode: st.mode & 0o777, uid: st.uid }).toEqual({ f, mode: 0o600, uid: process.getuid?.() ?? st.uid });
        // Random names: nothing about the user or the session id in them.
        expect(f).not.toMatch(/alice|bob|carol/);
        for (const id of [alice, bob, carol]) expect(f).not.toContain(id.slice(0, 12));
      }
      const vault = api.app.get(CredentialVault);
      const bobFile = String(vault.fileCache(bob)).replace(/^FILE:/, '');
      expect((await call(`${api.url}/api/auth/logout`, 'POST', { cookie: bob })).status).toBe(204);
      expect(readdirSync(dir)).not.toContain(bobFile.split('/').pop());
      expect(readdirSync(dir)).toHaveLength(2);
      // carol's ticket ran out: her cache goes with it, without any request.
      expect(await eventually(() => readdirSync(dir).length === 1, 10_000, 200)).toBe(true);
    } finally {
      logs.push(...api.logs.lines);
      await api.close();
    }
    // alice never logged out: shutdown destroyed her cache too.
    expect(readdirSync(dir)).toEqual([]);
  });

  it('MEMORY mode (the default): credentials are disposed at logout and shutdown, and no cache touches the disk', async () => {
    const before = new Set(tmpCaches());
    const api = await startApi(configFor(realm));
    const held: Credential[] = [];
    try {
      const alice = await negotiated(api, realm, 'alice');
      const bob = await passwordSession(api, 'bob', realm.passwords.bob);
      secrets.push(alice, bob);
      for (const c of [alice, bob]) expect((await call(`${api.url}/api/files/tree`, 'GET', { cookie: c })).status).toBe(200);
      const vault = api.app.get(CredentialVault);
      for (const c of [alice, bob]) held.push((vault.get(c) as CredentialLease).credential);
      expect(held.map((c) => c.disposed)).toEqual([false, false]);
      expect(vault.fileCache(alice)).toBeNull();
      // No cache file appeared anywhere we can see: in MEMORY mode nothing is written.
      expect(tmpCaches().filter((f) => !before.has(f))).toEqual([]);
      expect((await call(`${api.url}/api/auth/logout`, 'POST', { cookie: bob })).status).toBe(204);
      expect(held[1].disposed).toBe(true);
      expect(held[0].disposed).toBe(false);
    } finally {
      logs.push(...api.logs.lines);
      await api.close();
    }
    expect(held[0].disposed).toBe(true);
    expect(tmpCaches().filter((f) => !before.has(f))).toEqual([]);
  });

  it('a SIGTERM under steady keep-alive traffic ends the process, answers every request it took, and leaves no cache', async () => {
    // Clients that keep their connections busy (browsers, load balancers) used to hold
    // server.close() open, so shutdown never reached the credential caches (graceful-shutdown.ts).
    const dir = join(work, 'drain');
    mkdirSync(dir, { mode: 0o700 });
    const api = await startApiProcess(realm, testPortBase + 94, { FORWARDABLE_CREDENTIAL_STORE: 'file', FORWARDABLE_CREDENTIAL_DIR: dir });
    const base = api.url.replace('localhost', '127.0.0.1');
    const cookie = await passwordSession({ url: base } as Api, 'alice', realm.passwords.alice);
    secrets.push(cookie);
    expect(readdirSync(dir)).toHaveLength(1);
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const ask = () =>
      new Promise<number>((resolve, reject) => {
        get(`${base}/api/files`, { agent, headers: { cookie: `${SESSION_COOKIE}=${cookie}` } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('close', () => res.complete || reject(new Error('the answer was cut off')));
        }).on('error', reject);
      });
    const statuses: number[] = [];
    const until = Date.now() + 30_000;
    // Four clients, back to back on their kept-alive connections, until the server is gone.
    const clients = Array.from({ length: 4 }, async () => {
      while (Date.now() < until) {
        try {
          statuses.push(await ask());
        } catch {
          return; // refused, or reset on a connection the draining server closed: it has gone
        }
      }
    });
    try {
      expect(await eventually(() => statuses.length >= 40)).toBe(true);
      await api.stop(); // SIGTERM, then wait for the process to exit
      expect(Date.now()).toBeLessThan(until); // it did not wait for the clients to stop
    } finally {
      await Promise.all(clients);
      agent.destroy();
      await api.stop();
    }
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
  }, 180_000); // the API process may take up to 100 s to start (startApiProcess)

  it('refuses to start with a credential directory others can read, saying how to fix it', async () => {
    const open = join(work, 'open');
    mkdirSync(open, { mode: 0o755 });
    // The real binary: Nest stops the process when a provider fails to construct.
    const r = await runWithRealmAsync(realm, process.execPath, ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register', join(repoRoot, 'apps/api/src/main.ts')], {
      env: { TS_NODE_PROJECT: join(repoRoot, 'apps/api/tsconfig.app.json'), ...envFor(realm, { FORWARDABLE_CREDENTIAL_STORE: 'file', FORWARDABLE_CREDENTIAL_DIR: open, FORWARDABLE_PORT: String(testPortBase + 97) }) },
      timeoutMs: 150_000, // ts-node transpiles the whole API first: slow on a busy 2-core machine
    });
    expect(r.status).toBe(1);
    expect(`${r.stdout}${r.stderr}`).toMatch(/accessible to others \(mode 755\): chmod 0700 it/);
  }, 180_000);

  it('logged no token, password or session id', () => {
    expect(logs.length).toBeGreaterThan(0);
    expect(secretLeaks(logs, secrets)).toEqual([]);
  });
});
