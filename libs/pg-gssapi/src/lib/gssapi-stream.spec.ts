/**
 * node-postgres as the user, over real GSSAPI, against the realm's PostgreSQL: plain pg.Client,
 * pg.Pool, TypeORM, the error mapping, and concurrency across many users' credentials.
 */
import { Client, Pool } from 'pg';
import { DataSource } from 'typeorm';
import { Credential } from '@forwardable/gssapi';
import { ensureRealm, kinit, RealmEnv, runWithRealm } from '@forwardable/testing/realm';
import { delegatedCredential, useRealm } from '@forwardable/testing/delegation';
import { gssapiClientConfig, gssapiStream, gssapiTargetFromEnv, PgAuthError, roleFromPrincipal, roleNameCase } from '../index';

function target(realm: RealmEnv) {
  return { host: 'localhost', hostaddr: '127.0.0.1', port: realm.pg.port, database: realm.pg.database };
}

async function sessionUser(realm: RealmEnv, cred: Credential): Promise<string> {
  const client = new Client(gssapiClientConfig(cred, target(realm)));
  await client.connect();
  try {
    const r = await client.query('SELECT session_user AS u');
    return r.rows[0].u;
  } finally {
    await client.end();
  }
}

async function connectError(p: Promise<unknown>): Promise<PgAuthError> {
  try {
    await p;
  } catch (err) {
    return err as PgAuthError;
  }
  throw new Error('expected the connection to fail');
}

describe.each([
  ['db2', 'forwarded'],
  ['ldap', 'forwarded'],
  ['ldap', 'proxy'],
] as const)('PostgreSQL as the user (%s realm, %s credential)', (kdb, mode) => {
  let realm: RealmEnv;
  let alice: Credential;
  let bob: Credential;

  beforeAll(async () => {
    realm = ensureRealm(kdb);
    useRealm(realm);
    alice = await delegatedCredential(realm, 'alice', mode);
    bob = await delegatedCredential(realm, 'bob', mode);
  });
  afterAll(() => {
    alice?.dispose();
    bob?.dispose();
  });
  beforeEach(() => useRealm(realm));

  it('receives the delegated credential of the right kind', () => {
    expect(alice.kind).toBe(mode);
    expect(alice.principal).toBe(`alice@${realm.realm}`);
  });

  it('connects a plain pg.Client as alice and as bob, each with their own credential', async () => {
    expect(await sessionUser(realm, alice)).toBe('alice');
    expect(await sessionUser(realm, bob)).toBe('bob');
  });

  it('works with pg.Pool, reusing and adding connections', async () => {
    const pool = new Pool({ ...gssapiClientConfig(alice, target(realm)), max: 3 });
    try {
      const rows = await Promise.all(
        Array.from({ length: 6 }, () => pool.query('SELECT session_user AS u, pg_backend_pid() AS pid')),
      );
      expect(new Set(rows.map((r) => r.rows[0].u))).toEqual(new Set(['alice']));
      expect(new Set(rows.map((r) => r.rows[0].pid)).size).toBeLessThanOrEqual(3);
    } finally {
      await pool.end();
    }
  });

  it('works with TypeORM\'s postgres driver through `extra`', async () => {
    const ds = new DataSource({
      type: 'postgres',
      host: 'localhost',
      port: realm.pg.port,
      database: realm.pg.database,
      username: roleFromPrincipal(alice.principal),
      installExtensions: false,
      extra: { stream: gssapiStream({ credential: alice, hostaddr: '127.0.0.1' }), max: 2 },
    });
    await ds.initialize();
    try {
      expect(await ds.query('SELECT session_user AS u')).toEqual([{ u: 'alice' }]);
    } finally {
      await ds.destroy();
    }
  });

  it('refuses alice\'s credential for the role bob, with a clear error', async () => {
    const cfg = { ...gssapiClientConfig(alice, target(realm)), user: 'bob' };
    const err = await connectError(new Client(cfg).connect());
    expect(err).toBeInstanceOf(PgAuthError);
    expect(err.code).toBe('PG_GSSAPI_REJECTED');
    expect(err.sqlState).toBe('28000');
    expect(err.message).toContain('role "bob"');
  });

  it('runs 50 users x 20 interleaved queries concurrently, each on its own user\'s connection', async () => {
    const names = Array.from({ length: 50 }, (_, i) => `pgload${kdb}${mode[0]}${i}`);
    const pw = 'load-test-password';
    const add = runWithRealm(realm, 'bash', [`${__dirname}/../../../../tools/realm/realm.sh`, 'add-users', '--dir', realm.dir, '--password', pw, ...names]);
    expect(add.status).toBe(0);
    const creds = await Promise.all(names.map((n) => delegatedCredential(realm, n, mode, pw)));
    const pools = creds.map((c) => new Pool({ ...gssapiClientConfig(c, target(realm)), max: 2 }));
    try {
      const results = await Promise.all(
        pools.flatMap((pool, i) =>
          Array.from({ length: 20 }, async (_, j) => {
            const r = await pool.query('SELECT session_user AS u, $1::int AS j', [j]);
            return { expected: names[i], got: r.rows[0].u as string };
          }),
        ),
      );
      expect(results).toHaveLength(1000);
      expect(results.filter((r) => r.got !== r.expected)).toEqual([]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
      creds.forEach((c) => c.dispose());
    }
  });
});

describe('errors that say what to fix', () => {
  let realm: RealmEnv;
  beforeAll(() => {
    realm = ensureRealm('db2');
    useRealm(realm);
  });

  it('a principal with no database role gets PG_ROLE_MISSING', async () => {
    const add = runWithRealm(realm, 'bash', [`${__dirname}/../../../../tools/realm/realm.sh`, 'add-users', '--dir', realm.dir, '--password', 'erin-pw', '--no-role', 'erin']);
    expect(add.status).toBe(0);
    const erin = await delegatedCredential(realm, 'erin', 'forwarded', 'erin-pw');
    try {
      const err = await connectError(new Client(gssapiClientConfig(erin, target(realm))).connect());
      expect(err.code).toBe('PG_ROLE_MISSING');
      expect(err.message).toContain('CREATE ROLE "erin" LOGIN');
    } finally {
      erin.dispose();
    }
  });

  it('a service principal never maps to a role, and a foreign realm can be refused', () => {
    expect(() => roleFromPrincipal('HTTP/localhost@FORWARDABLE.TEST')).toThrow(/service principal/);
    expect(() => roleFromPrincipal('alice@EVIL.TEST', ['FORWARDABLE.TEST'])).toThrow(/realm EVIL.TEST/);
    expect(roleFromPrincipal('alice@FORWARDABLE.TEST', ['FORWARDABLE.TEST'])).toBe('alice');
    // Two allowed realms: the first is home; the other's dbadmin is not the home realm's dbadmin.
    expect(roleFromPrincipal('dbadmin@B.TEST', ['FORWARDABLE.TEST', 'B.TEST'])).toBe('dbadmin@B.TEST');
    expect(() => roleFromPrincipal('nobody')).toThrow(RangeError);
  });

  it('usernameCase lower maps Alice@R to alice (the name only), the same rule a typed or directory name follows', () => {
    expect(roleFromPrincipal('Alice@FORWARDABLE.TEST', undefined, 'lower')).toBe('alice');
    expect(roleFromPrincipal('Alice@FORWARDABLE.TEST')).toBe('Alice');
    expect(roleFromPrincipal('DbAdmin@B.TEST', ['FORWARDABLE.TEST', 'B.TEST'], 'lower')).toBe('dbadmin@B.TEST');
    expect(roleNameCase('Engineering', 'lower')).toBe('engineering');
    expect(roleNameCase('DbAdmin@B.TEST', 'lower')).toBe('dbadmin@B.TEST');
    expect(roleNameCase('Engineering', 'exact')).toBe('Engineering');
    expect(() => roleNameCase('x', 'upper' as never)).toThrow(/must be one of exact, lower/);
    expect(gssapiTargetFromEnv({ FORWARDABLE_PG_HOST: 'localhost', FORWARDABLE_PG_PORT: '5432', FORWARDABLE_PG_DATABASE: 'd', FORWARDABLE_USERNAME_CASE: 'lower' }).usernameCase).toBe('lower');
    expect(() => gssapiTargetFromEnv({ FORWARDABLE_PG_HOST: 'localhost', FORWARDABLE_PG_PORT: '5432', FORWARDABLE_PG_DATABASE: 'd', FORWARDABLE_USERNAME_CASE: 'Lower' })).toThrow(
      /FORWARDABLE_USERNAME_CASE=Lower must be one of exact, lower/,
    );
  });

  it('a Unix-socket host is refused: GSSAPI needs the host in the SPN', async () => {
    const tgt = kinit(realm, 'alice');
    const cred = await Credential.fromCache(tgt.name, 'password');
    try {
      const err = await connectError(
        new Client({ host: realm.pg.socketDir, port: realm.pg.port, user: 'alice', database: 'forwardable', stream: gssapiStream({ credential: cred }) as never }).connect(),
      );
      expect(err.message).toMatch(/needs a TCP connection/);
    } finally {
      cred.dispose();
      tgt.destroy();
    }
  });

  it('a disposed credential fails the handshake instead of crashing', async () => {
    const cred = await delegatedCredential(realm, 'alice', 'forwarded');
    const cfg = gssapiClientConfig(cred, target(realm));
    cred.dispose();
    const err = await connectError(new Client(cfg).connect());
    expect(err.code).toBe('PG_GSSAPI_HANDSHAKE');
  });

  it('sends what pg corks (one extended query) in one socket write, bytes in order', async () => {
    const net = await import('node:net');
    const received: Buffer[] = [];
    const server = net.createServer((sock) => sock.on('data', (d: Buffer) => received.push(d)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as import('node:net').AddressInfo).port;
    const tgt = kinit(realm, 'alice');
    const cred = await Credential.fromCache(tgt.name, 'password');
    const writes = jest.spyOn(net.Socket.prototype, 'write');
    // Unencrypted, so that the bytes on the wire are pg's own (encryption is covered in gssenc.spec.ts and tls.spec.ts).
    const stream = gssapiStream({ credential: cred, hostaddr: '127.0.0.1', gssencmode: 'disable', sslmode: 'disable' })();
    try {
      await new Promise<void>((resolve, reject) => {
        stream.once('error', reject);
        stream.once('connect', () => resolve());
        stream.connect(port, 'localhost');
      });
      const messages = ['P', 'B', 'D', 'E', 'S'].map((c) => Buffer.from(`${c}message`));
      writes.mockClear();
      stream.cork();
      for (const m of messages) stream.write(m);
      stream.uncork();
      const all = Buffer.concat(messages);
      await new Promise<void>((resolve) => {
        const check = () => (Buffer.concat(received).length >= all.length ? resolve() : setTimeout(check, 5));
        check();
      });
      expect(writes).toHaveBeenCalledTimes(1);
      expect(Buffer.concat(received).equals(all)).toBe(true);
    } finally {
      writes.mockRestore();
      stream.destroy();
      cred.dispose();
      tgt.destroy();
      server.close();
    }
  });

  /**
   * A tiny fake server on loopback: answers "N" to the GSSENCRequest and the SSLRequest (as a
   * server without GSSAPI encryption or TLS does), then answers pg's start-up message with `reply`.
   */
  async function fakeServer(reply: Buffer): Promise<{ port: number; close(): void }> {
    const net = await import('node:net');
    const server = net.createServer((sock) => {
      sock.on('error', () => undefined);
      const onData = (d: Buffer) => {
        if (d.length === 8 && (d.readUInt32BE(4) === 80877104 || d.readUInt32BE(4) === 80877103)) {
          sock.write('N');
          sock.once('data', onData);
        } else sock.write(reply);
      };
      sock.once('data', onData);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { port: (server.address() as import('node:net').AddressInfo).port, close: () => server.close() };
  }

  function authRequest(body: Buffer): Buffer {
    const m = Buffer.alloc(5);
    m.write('R', 0, 'latin1');
    m.writeInt32BE(4 + body.length, 1);
    return Buffer.concat([m, body]);
  }

  it('a server asking for a password is refused: there is no password to give', async () => {
    // AuthenticationCleartextPassword (R/3).
    const code = Buffer.alloc(4);
    code.writeInt32BE(3, 0);
    const server = await fakeServer(authRequest(code));
    const tgt = kinit(realm, 'alice');
    const cred = await Credential.fromCache(tgt.name, 'password');
    try {
      const err = await connectError(
        new Client({ ...gssapiClientConfig(cred, { host: 'localhost', hostaddr: '127.0.0.1', port: server.port, database: 'x' }) }).connect(),
      );
      expect(err.code).toBe('PG_GSSAPI_HANDSHAKE');
      expect(err.message).toMatch(/asked for password instead of GSSAPI/);
    } finally {
      cred.dispose();
      tgt.destroy();
      server.close();
    }
  });

  it.each([0, 2])('a short authentication request (R with %i bytes) fails the connection instead of crashing (#22)', async (n) => {
    const server = await fakeServer(authRequest(Buffer.alloc(n)));
    const tgt = kinit(realm, 'alice');
    const cred = await Credential.fromCache(tgt.name, 'password');
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      const err = await connectError(
        new Client({ ...gssapiClientConfig(cred, { host: 'localhost', hostaddr: '127.0.0.1', port: server.port, database: 'x' }) }).connect(),
      );
      expect(err.code).toBe('PG_PROTOCOL');
      expect(err.message).toContain(`authentication request of ${n} bytes`);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      cred.dispose();
      tgt.destroy();
      server.close();
    }
  });

  it('a server that stuffs bytes after its "N" answer is refused (CVE-2021-23222)', async () => {
    const net = await import('node:net');
    const server = net.createServer((sock) => sock.once('data', () => sock.write('NR\0\0\0\x08\0\0\0\0')));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as import('node:net').AddressInfo).port;
    const tgt = kinit(realm, 'alice');
    const cred = await Credential.fromCache(tgt.name, 'password');
    try {
      const err = await connectError(
        new Client({ ...gssapiClientConfig(cred, { host: 'localhost', hostaddr: '127.0.0.1', port, database: 'x' }) }).connect(),
      );
      expect(err.code).toBe('PG_PROTOCOL');
      expect(err.message).toMatch(/unencrypted data right after its answer/);
    } finally {
      cred.dispose();
      tgt.destroy();
      server.close();
    }
  });
});
