/**
 * Bad input on every entry point: thousands of generated `Authorization` headers and request
 * bodies against the real API (real KDC, real PostgreSQL, db2 realm). Every answer must be a
 * JSON error with a 4xx status (or a legitimate success), never a 5xx, never a crash; memory must
 * stay bounded; and a real sign-in and a real query still work afterwards.
 *
 * Cases come from a seeded generator: a failure prints the seed and the case, and
 * FORWARDABLE_FUZZ_SEED=<seed> replays it. FORWARDABLE_FUZZ_CASES scales the run.
 */
import { randomUUID } from 'node:crypto';
import { CredentialVault, UserDataSources } from '@forwardable/nest';
import { ensureRealm, kinit, RealmEnv, TicketCache } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import { CSRF_HEADER, CSRF_VALUE, SESSION_COOKIE } from '@forwardable/shared/contracts';
import { Api, call, configFor, curl, migrateAsDbadmin, passwordSession, sessionCookie, startApi, tokenFor } from '../testing/api-harness';
import { collectGarbage, prng, rawRequest, RawResponse, secretLeaks } from './support';

const SEED = Number(process.env.FORWARDABLE_FUZZ_SEED ?? Date.now() % 2 ** 31);
const CASES = Number(process.env.FORWARDABLE_FUZZ_CASES ?? 1200);

/** What a fuzzed answer may be: a JSON 4xx error (or a success where the input was valid). */
function problem(r: RawResponse, okStatuses: number[] = []): string | null {
  if (okStatuses.includes(r.status)) return null;
  if (r.status < 400 || r.status > 499) return `status ${r.status}: ${r.text.slice(0, 200)}`;
  if (!String(r.headers['content-type']?.[0] ?? '').startsWith('application/json')) return `${r.status} without a JSON content type: ${r.text.slice(0, 120)}`;
  if (!r.json || r.json.statusCode !== r.status || typeof r.json.code !== 'string' || typeof r.json.message !== 'string') return `${r.status} body is not an API error: ${r.text.slice(0, 200)}`;
  // A bare challenge, or the next leg of a SPNEGO exchange (RFC 4559 section 4.4).
  if (r.status === 401 && !/^Negotiate( [A-Za-z0-9+/]+=*)?$/.test(r.headers['www-authenticate']?.[0] ?? '')) return '401 without WWW-Authenticate: Negotiate';
  return null;
}

describe(`hardening: fuzzed input on every entry point (seed ${SEED})`, () => {
  let realm: RealmEnv;
  let api: Api;
  let port: number;
  let alice: TicketCache;
  let aliceSession: string;
  let adminSession: string;
  let fileId: string;
  const tokens: Buffer[] = [];
  const secrets: string[] = [];
  const failures: string[] = [];
  const rnd = prng(SEED);

  beforeAll(async () => {
    realm = ensureRealm('db2');
    useRealm(realm);
    await migrateAsDbadmin(realm);
    api = await startApi(configFor(realm, { FORWARDABLE_TRUSTED_PROXIES: 'loopback' }));
    port = Number(new URL(api.url).port);
    alice = kinit(realm, 'alice');
    aliceSession = await passwordSession(api, 'alice', realm.passwords.alice);
    adminSession = await passwordSession(api, 'dbadmin', realm.passwords.dbadmin);
    const f = await call(`${api.url}/api/files`, 'POST', { cookie: aliceSession, body: { name: `fuzz-${randomUUID()}.txt`, content: 'fuzz target' } });
    expect(f.status).toBe(201);
    fileId = String(f.body.id);
    // Real tokens to truncate and flip: never sent as they are, so none is consumed.
    for (let i = 0; i < 8; i++) tokens.push(Buffer.from(await tokenFor(alice), 'base64'));
    secrets.push(realm.passwords.alice, realm.passwords.dbadmin, aliceSession, adminSession, ...tokens.map((t) => t.toString('base64')));
  });
  afterAll(async () => {
    await api?.close();
    alice?.destroy();
  });
  beforeEach(() => {
    failures.length = 0;
  });

  /** Send, check, and remember any bad answer with its case, so one run reports every failure. */
  async function expectClean(what: string, head: string, body: Buffer | string = '', ok: number[] = []): Promise<RawResponse> {
    const r = await rawRequest(port, head, body);
    const p = problem(r, ok);
    if (p) failures.push(`${what}: ${p}`);
    return r;
  }

  // ------------------------------------------------------------------ Authorization headers
  function authorizationValues(n: number): { label: string; lines: string[] }[] {
    const b64 = (b: Buffer) => b.toString('base64');
    const ntlm = (type: number) => Buffer.concat([Buffer.from('NTLMSSP\0', 'latin1'), Buffer.from([type, 0, 0, 0]), rnd.bytes(rnd.int(64))]);
    const schemes = ['Negotiate', 'negotiate', 'NEGOTIATE', 'nEgOtIaTe', 'Kerberos', 'NTLM', 'Basic', 'Bearer', ''];
    const gens: [string, () => string[]][] = [
      ['empty', () => [rnd.pick(['', ' ', 'Negotiate', 'Negotiate ', 'negotiate\t', 'Negotiate  =', '=='])]],
      ['huge', () => [`${rnd.pick(schemes)} ${'A'.repeat(rnd.pick([4096, 12_000, 15_000]))}`]],
      ['huge-token', () => [`Negotiate ${b64(rnd.bytes(rnd.pick([9000, 11_000])))}`]],
      ['non-base64', () => [`Negotiate ${Array.from({ length: 1 + rnd.int(80) }, () => String.fromCharCode(33 + rnd.int(94))).join('')}`]],
      ['non-canonical', () => [`Negotiate ${b64(rnd.bytes(1 + rnd.int(40))).replace(/=+$/, '')}`]],
      ['truncated', () => {
        const t = rnd.pick(tokens);
        return [`Negotiate ${b64(t.subarray(0, 1 + rnd.int(t.length - 1)))}`];
      }],
      ['bit-flipped', () => {
        const t = Buffer.from(rnd.pick(tokens));
        for (let k = 1 + rnd.int(8); k > 0; k--) t[rnd.int(t.length)] ^= 1 << rnd.int(8);
        return [`${rnd.pick(['Negotiate', 'negotiate', 'NEGOTIATE'])} ${b64(t)}`];
      }],
      ['spliced', () => {
        const [a, b] = [rnd.pick(tokens), rnd.pick(tokens)];
        const cut = rnd.int(a.length);
        return [`Negotiate ${b64(Buffer.concat([a.subarray(0, cut), b.subarray(cut)]))}`];
      }],
      ['ntlmssp', () => [`${rnd.pick(['Negotiate', 'NTLM'])} ${b64(ntlm(1 + rnd.int(3)))}`]],
      ['basic', () => [`Basic ${b64(Buffer.from(`alice:${rnd.pick([realm.passwords.alice.slice(0, 3), "' OR 1=1 --", '', 'x'.repeat(500)])}`))}`]],
      ['random-bytes', () => [`Negotiate ${b64(rnd.bytes(1 + rnd.int(300)))}`]],
      ['der-shaped', () => [`Negotiate ${b64(Buffer.concat([Buffer.from([0x60, 0x82, rnd.int(256), rnd.int(256), 0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02]), rnd.bytes(rnd.int(200))]))}`]],
      ['repeated', () => [`Negotiate ${b64(rnd.pick(tokens).subarray(0, 40))}`, rnd.pick(['Basic YWxpY2U6eA==', 'Negotiate', `Negotiate ${b64(rnd.bytes(30))}`])]],
      ['two-tokens', () => [`Negotiate ${b64(rnd.bytes(20))} ${b64(rnd.bytes(20))}`]],
      ['wrong-scheme', () => [`${rnd.pick(schemes)} ${b64(rnd.pick(tokens).subarray(0, 100))}`]],
      ['control-chars', () => [`Negotiate ${b64(rnd.bytes(12))}${rnd.pick(['\x01', '\x7f', '\x0b', '\x00'])}${b64(rnd.bytes(12))}`]],
      ['latin1', () => [`Negotiate ${b64(rnd.bytes(12))}\xe9\xff`]],
    ];
    return Array.from({ length: n }, () => {
      const [label, g] = rnd.pick(gens);
      return { label, lines: g() };
    });
  }

  const protectedRoutes: [string, string, boolean][] = [
    ['GET', '/api/auth/me', false],
    ['GET', '/api/files/tree', false],
    ['GET', '/api/files?page=2', false],
    ['GET', '/api/rls/models', false],
    ['POST', '/api/auth/logout', true],
    ['POST', '/api/files', true],
  ];

  it('answers thousands of generated Authorization headers with a JSON 4xx, never a 5xx', async () => {
    const cases = authorizationValues(CASES);
    const accepted: string[] = [];
    const batch = 16;
    for (let i = 0; i < cases.length; i += batch) {
      await Promise.all(
        cases.slice(i, i + batch).map(async ({ label, lines }, j) => {
          const [method, path, csrf] = protectedRoutes[(i + j) % protectedRoutes.length];
          const head = [`${method} ${path} HTTP/1.1`, `Host: localhost:${port}`, ...(csrf ? [`${CSRF_HEADER}: ${CSRF_VALUE}`] : []), ...lines.map((l) => `Authorization: ${l}`)].join('\r\n');
          const body = method === 'POST' ? '{"name":"never-created.txt"}' : '';
          const ct = method === 'POST' ? '\r\nContent-Type: application/json' : '';
          // A mutated real token can still be valid Kerberos (the bits flipped were outside what
          // the ticket's checksums cover): then it is alice's own sign-in, nobody else's.
          const r = await expectClean(`#${i + j} ${label} ${method} ${path}`, head + ct, body, label === 'bit-flipped' || label === 'spliced' || label === 'wrong-scheme' ? [200, 201, 204] : []);
          if (r.status < 300) {
            accepted.push(label);
            if (path === '/api/auth/me' && r.json?.user !== 'alice') failures.push(`#${i + j} ${label}: a mutated token signed in as ${String(r.json?.user)}`);
          }
        }),
      );
    }
    expect(failures).toEqual([]);
    // Almost all were refused: an accepted mutation is rare (and then is alice's own ticket).
    expect(accepted.length).toBeLessThan(cases.length / 20);
  });

  it('answers a header larger than the server accepts, and malformed requests, with a JSON 4xx', async () => {
    const head = (extra: string) => `GET /api/auth/me HTTP/1.1\r\nHost: localhost\r\n${extra}`;
    await expectClean('64 KiB Authorization', head(`Authorization: Negotiate ${'A'.repeat(64 * 1024)}`));
    await expectClean('1 MiB of headers', head(Array.from({ length: 64 }, (_, i) => `X-Pad-${i}: ${'b'.repeat(16 * 1024)}`).join('\r\n')));
    await expectClean('NUL in a header', head('Authorization: Negotiate YWJj\x00ZA=='));
    await expectClean('bare LF header', 'GET /api/auth/me HTTP/1.1\nHost: localhost\nAuthorization: Negotiate\n');
    await expectClean('no Host', 'GET /api/auth/me HTTP/1.1\r\nAuthorization: Negotiate YWJjZA==');
    await expectClean('header without a colon', head('Authorization Negotiate YWJjZA=='));
    await expectClean('bad request line', 'GET /api/auth/me HTTP/9.9\r\nHost: localhost');
    await expectClean('bad percent-encoding', 'GET /api/files/%E0%A4%A HTTP/1.1\r\nHost: localhost');
    expect(failures).toEqual([]);
  });

  // ------------------------------------------------------------------ bodies
  function hostileValues(): unknown[] {
    const strings = [
      '', ' ', 'a'.repeat(256), 'b'.repeat(70_000), '\u0000', 'x\u0000y', '../../etc/passwd', '..', '.', 'a/b', 'C:\\Windows\\system32', '%2e%2e%2f',
      "'; DROP TABLE files; --", "' OR '1'='1", '"); SELECT pg_sleep(10); --', '$1', '\\', '%', '_', '%_\\', '*', '${jndi:ldap://x/a}', '{{7*7}}',
      '<script>alert(1)</script>', '\u202eevil.txt', '𝕗𝕚𝕝𝕖', '👩‍👩‍👧‍👦', '\ud800', '\udfff', 'ℌ𝔢𝔩𝔩𝔬', 'é'.normalize('NFD'), '\t\n\r', ' leading', 'trailing ',
      'alice', 'bob', 'ALICE', 'alice@FORWARDABLE.TEST', 'alice@EVIL.TEST', 'postgres', 'dbadmin', 'pg_read_server_files', 'public', 'forwardable_users',
    ];
    // JSON.parse makes __proto__ an own property, so it is really sent.
    const others: unknown[] = [0, -1, 1e308, -0, 3.14, Number.MAX_SAFE_INTEGER, true, false, null, [], ['a'], {}, { $ne: null }, { toString: 'x' }, JSON.parse('{"__proto__":{"isAdmin":true}}'), [[[[[]]]]]];
    return [...strings, ...others];
  }

  function bodyCases(): { label: string; method: string; path: string; cookie: string; body: string; ok: number[] }[] {
    const values = hostileValues();
    const out: { label: string; method: string; path: string; cookie: string; body: string; ok: number[] }[] = [];
    const add = (label: string, method: string, path: string, cookie: string, body: unknown, ok: number[] = []) =>
      out.push({ label, method, path, cookie, body: typeof body === 'string' ? body : JSON.stringify(body), ok });
    const uuid = randomUUID();
    for (const v of values) {
      add('login.username', 'POST', '/api/auth/login', '', { username: v, password: 'x' });
      add('login.password', 'POST', '/api/auth/login', '', { username: 'nobody-here', password: v });
      add('login.extra', 'POST', '/api/auth/login', '', { username: 'nobody-here', password: 'x', isAdmin: v });
      add('files.create', 'POST', '/api/files', aliceSession, { name: v, content: 'c' }, [201, 409]);
      add('files.content', 'POST', '/api/files', aliceSession, { name: `fz-${randomUUID()}`, content: v }, [201]);
      add('files.directory', 'POST', '/api/files', aliceSession, { name: `n-${randomUUID()}`, directoryId: v }, v === null ? [201] : []);
      add('files.update', 'PATCH', `/api/files/${fileId}`, aliceSession, { name: v }, [200, 409]);
      add('files.update-other', 'PATCH', `/api/files/${uuid}`, aliceSession, { content: v });
      add('directories.create', 'POST', '/api/directories', aliceSession, { name: v, parentId: null }, [201, 409]);
      add('directories.parent', 'POST', '/api/directories', aliceSession, { name: `p-${randomUUID()}`, parentId: v }, v === null ? [201] : []);
      add('directories.update', 'PATCH', `/api/directories/${uuid}`, aliceSession, { name: v, parentId: v });
      add('permissions.level', 'POST', `/api/files/${fileId}/permissions`, aliceSession, { grantee: 'bob', level: v }, [201]);
      add('sql.query', 'POST', '/api/sql', aliceSession, { sql: v }, [200]);
      add('permissions.grant', 'POST', `/api/files/${fileId}/permissions`, aliceSession, { grantee: v }, [201, 409]);
      add('permissions.directory', 'POST', `/api/directories/${uuid}/permissions`, aliceSession, { grantee: v });
      add('wizard.preview.table', 'POST', '/api/rls/preview', adminSession, { tables: [{ table: v, ownerColumn: 'owner' }] });
      add('wizard.preview.owner', 'POST', '/api/rls/preview', adminSession, { tables: [{ table: 'files', ownerColumn: v }] });
      add('wizard.preview.permission', 'POST', '/api/rls/preview', adminSession, { tables: [{ table: 'files', ownerColumn: 'owner', permission: { table: v, fkColumn: v, granteeColumn: v } }] });
      // Any existing role is a valid group role for a preview (it only renders SQL).
      add('wizard.preview.group', 'POST', '/api/rls/preview', adminSession, { tables: [{ table: 'files', ownerColumn: 'owner' }], groupRole: v }, [200]);
      add('wizard.tables', 'POST', '/api/rls/preview', adminSession, { tables: v });
      // apply with a table that cannot exist: always refused before anything runs.
      add('wizard.apply', 'POST', '/api/rls/apply', adminSession, { tables: [{ table: `no_such_${randomUUID().slice(0, 8)}`, ownerColumn: v }] });
    }
    const whole = ['', '{', '{"a":', 'null', '"string"', '42', 'true', '[]', '[{}]', '{"name":"a","name":"b"}', '\ufeff{}', '{"__proto__":{"isAdmin":true},"name":"p"}',
      `${'['.repeat(5000)}${']'.repeat(5000)}`, `{"name":${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}}`, JSON.stringify({ name: 'big', content: 'x'.repeat(2_200_000) }), Buffer.from([0xff, 0xfe, 0x00]).toString('latin1')];
    for (const body of whole) {
      for (const [method, path, cookie] of [['POST', '/api/auth/login', ''], ['POST', '/api/files', aliceSession], [ 'POST', `/api/files/${fileId}/permissions`, aliceSession], ['POST', '/api/rls/preview', adminSession], ['PATCH', `/api/files/${fileId}`, aliceSession]] as const) {
        // Duplicate keys (last wins) and an own __proto__ key are valid JSON with a valid name.
        const valid = method === 'POST' && path === '/api/files' && (body.startsWith('{"name":"a","name"') || body.startsWith('{"__proto__"'));
        add(`whole:${body.slice(0, 12)}`, method, path, cookie, body, valid ? [201, 409] : []);
      }
    }
    return out;
  }

  it('answers hostile bodies on login, files, permissions and the wizard with a JSON 4xx (or a clean success), never a 5xx', async () => {
    const cases = bodyCases();
    const batch = 8;
    for (let i = 0; i < cases.length; i += batch) {
      await Promise.all(
        cases.slice(i, i + batch).map(({ label, method, path, cookie, body, ok }, j) => {
          // Distinct client addresses (this API trusts a loopback proxy: FORWARDABLE_TRUSTED_PROXIES) keep the login throttle
          // from answering everything with 429: the validation behind it is what is fuzzed.
          const head = [`${method} ${path} HTTP/1.1`, 'Host: localhost', 'Content-Type: application/json', `${CSRF_HEADER}: ${CSRF_VALUE}`,
            `X-Forwarded-For: 10.${(i + j) >> 16 & 255}.${(i + j) >> 8 & 255}.${(i + j) & 255}`, ...(cookie ? [`Cookie: ${SESSION_COOKIE}=${cookie}`] : [])].join('\r\n');
          return expectClean(`${label} ${method} ${path}`, head, body, ok);
        }),
      );
    }
    expect(cases.length).toBeGreaterThan(800);
    expect(failures).toEqual([]);
  });

  it('answers hostile paths and query strings with a JSON 4xx, never a 5xx', async () => {
    const paths = [
      '/api/files/not-a-uuid', '/api/files/%00', '/api/files/..%2f..%2fetc%2fpasswd', `/api/files/${'a'.repeat(5000)}`, '/api/files/%ff%fe',
      '/api/files?page=0', '/api/files?page=-1', '/api/files?page=1e309', '/api/files?page=NaN', '/api/files?pageSize=100000', '/api/files?page[]=1',
      '/api/files?directoryId[]=x', '/api/files?directoryId=%27%20OR%201=1', '/api/files?page=99999&pageSize=500', '/api/files?__proto__[x]=1',
      '/api/search', '/api/search?q=', `/api/search?q=${'z'.repeat(201)}`, '/api/search?q[]=a&q[]=b', '/api/search?q[a]=b', '/api/search?q=%00',
      `/api/files/${fileId}/permissions/${encodeURIComponent("'; DROP TABLE files; --")}`, `/api/files/${fileId}/permissions/%ff`, `/api/directories/${randomUUID()}/permissions/x`,
    ];
    for (const p of paths) {
      for (const method of p.includes('/permissions/') ? ['DELETE'] : ['GET', 'DELETE']) {
        await expectClean(`${method} ${p.slice(0, 60)}`, [`${method} ${p} HTTP/1.1`, 'Host: localhost', `${CSRF_HEADER}: ${CSRF_VALUE}`, `Cookie: ${SESSION_COOKIE}=${aliceSession}`].join('\r\n'), '', method === 'GET' ? [200] : [204]);
      }
    }
    // Cookies: garbage, huge, repeated, another user's format.
    for (const c of ['', 'x', 'a'.repeat(8000), `${aliceSession}x`, `${aliceSession}; ${SESSION_COOKIE}=junk`, '%00', '..%2f', `${'A'.repeat(43)}`]) {
      await expectClean(`cookie ${c.slice(0, 20)}`, ['GET /api/files/tree HTTP/1.1', 'Host: localhost', `Cookie: ${SESSION_COOKIE}=${c}`].join('\r\n'), '', [200]);
    }
    expect(failures).toEqual([]);
  });

  it('keeps memory bounded: a second round of the same fuzz adds no heap, no native memory and no sessions', async () => {
    const vault = api.app.get(CredentialVault);
    const pools = api.app.get(UserDataSources);
    const round = async () => {
      const cases = authorizationValues(300);
      for (let i = 0; i < cases.length; i += 16) {
        await Promise.all(cases.slice(i, i + 16).map(({ lines }) => rawRequest(port, ['GET /api/auth/me HTTP/1.1', 'Host: localhost', ...lines.map((l) => `Authorization: ${l}`)].join('\r\n'))));
      }
      collectGarbage();
      await new Promise((r) => setTimeout(r, 200));
      collectGarbage();
      return process.memoryUsage();
    };
    await round(); // warm-up: caches, JIT, pools
    const sessionsBefore = vault.size;
    const first = await round();
    const second = await round();
    const mb = (n: number) => n / 2 ** 20;
    // A leak grows with every round; noise does not. Rounds of 300 requests each. (No absolute
    // bound: in `npm test` jest runs every suite in this one process, and its heap is theirs too.)
    expect(mb(second.heapUsed - first.heapUsed)).toBeLessThan(16);
    expect(mb(second.external - first.external)).toBeLessThan(16);
    expect(mb(second.rss - first.rss)).toBeLessThan(64);
    // Bit-flipped tokens that still verify would add alice sessions; nothing else may.
    expect(vault.size - sessionsBefore).toBeLessThanOrEqual(12);
    expect(pools.stats().users).toBeLessThanOrEqual(vault.size);
  });

  it('still signs a real user in and serves real queries after all of it', async () => {
    const r = await curl(realm, `${api.url}/api/auth/me`, { cc: alice, delegate: true });
    expect(r.status).toBe(200);
    expect(r.body.user).toBe('alice');
    const cookie = sessionCookie(r).value;
    secrets.push(cookie);
    const tree = await call(`${api.url}/api/files/tree`, 'GET', { cookie });
    expect(tree.status).toBe(200);
    expect((tree.body.files as { id: string }[]).some((f) => f.id === fileId)).toBe(true);
    const file = await call(`${api.url}/api/files/${fileId}`, 'GET', { cookie: aliceSession });
    expect(file.status).toBe(200);
    // The file was renamed by fuzzed PATCHes, maybe, but its owner and the database are intact.
    expect(file.body.owner).toBe('alice');
    const admin = await call(`${api.url}/api/rls/target`, 'GET', { cookie: adminSession });
    expect(admin.body).toEqual({ database: 'forwardable', schema: 'public', user: 'dbadmin' });
  });

  it('logged no token, password or session id while being fuzzed', () => {
    expect(api.logs.lines.length).toBeGreaterThan(0);
    expect(secretLeaks(api.logs.lines, secrets)).toEqual([]);
  });
});
