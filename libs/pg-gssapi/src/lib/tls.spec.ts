/**
 * TLS for the PostgreSQL link against a real PostgreSQL with `ssl = on` (realm `--pg-tls`:
 * throwaway CA, server certificate for "localhost", pg_hba `hostgssenc` then `hostssl ... gss`):
 * GSSAPI authentication runs inside TLS, the certificate checks of each sslmode hold, a relay sees
 * no plaintext, and the refusals say what to change.
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { Credential } from '@forwardable/gssapi';
import { ensureTlsRealm, RealmEnv } from '@forwardable/testing/realm';
import { delegatedCredential, useRealm } from '@forwardable/testing/delegation';
import { GssapiStream, gssapiClientConfig, gssapiStream, gssapiTargetFromEnv, linkProtectionPolicy } from '../index';
import type { GssEncMode, SslMode } from './gssapi-stream';
import { startRelay } from '../testing/relay';
import { failure } from '../testing/failure';

describe('TLS to the real PostgreSQL, GSSAPI authentication inside it', () => {
  let realm: RealmEnv;
  let alice: Credential;
  let ca: string;
  let otherCa: string;
  const streams: GssapiStream[] = [];

  const config = (opts: { port?: number; host?: string; gssencmode?: GssEncMode; sslmode?: SslMode; sslrootcert?: string }) =>
    gssapiClientConfig(
      alice,
      {
        host: opts.host ?? 'localhost',
        hostaddr: '127.0.0.1',
        port: opts.port ?? realm.pg.port,
        database: realm.pg.database,
        gssencmode: opts.gssencmode ?? 'disable',
        sslmode: opts.sslmode,
        sslrootcert: opts.sslrootcert,
      },
      { onConnection: (s) => streams.push(s) },
    );

  beforeAll(async () => {
    realm = ensureTlsRealm();
    useRealm(realm);
    ca = realm.vars.FORWARDABLE_PG_SSLROOTCERT as string;
    otherCa = realm.vars.FORWARDABLE_PG_OTHER_CA as string;
    expect(ca).toMatch(/ca\.crt$/);
    alice = await delegatedCredential(realm, 'alice', 'forwarded');
  });
  afterAll(() => alice?.dispose());
  beforeEach(() => {
    useRealm(realm);
    streams.length = 0;
  });

  it.each([
    ['prefer', undefined],
    ['require', undefined],
    ['require', 'ca'],
    ['verify-ca', 'ca'],
    ['verify-full', 'ca'],
  ] as const)('sslmode %s (root cert: %s): the server reports TLS with GSSAPI authentication, unencrypted by GSSAPI', async (sslmode, root) => {
    const client = new Client(config({ sslmode, sslrootcert: root ? ca : undefined }));
    await client.connect();
    try {
      const r = await client.query(
        `SELECT l.ssl, l.version, g.gss_authenticated AS auth, g.encrypted, g.principal, session_user AS u
           FROM pg_stat_ssl l JOIN pg_stat_gssapi g USING (pid) WHERE pid = pg_backend_pid()`,
      );
      expect(r.rows).toEqual([{ ssl: true, version: expect.stringMatching(/^TLSv1\.[23]$/), auth: true, encrypted: false, principal: `alice@${realm.realm}`, u: 'alice' }]);
      const s = streams.at(-1) as GssapiStream;
      expect(s.protection).toBe('tls');
      expect(s.tlsInfo).toEqual({ protocol: r.rows[0].version, cipher: expect.any(String), verified: root !== undefined });
    } finally {
      await client.end();
    }
  });

  it('GSSAPI encryption comes first when both are possible (libpq order): no TLS then', async () => {
    const client = new Client(config({ gssencmode: 'prefer', sslmode: 'verify-full', sslrootcert: ca }));
    await client.connect();
    try {
      const r = await client.query('SELECT l.ssl, g.encrypted FROM pg_stat_ssl l JOIN pg_stat_gssapi g USING (pid) WHERE pid = pg_backend_pid()');
      expect(r.rows).toEqual([{ ssl: false, encrypted: true }]);
      expect(streams.at(-1)?.protection).toBe('gssenc');
    } finally {
      await client.end();
    }
  });

  it('verify-full to a name the certificate does not list fails before anything is sent, saying what to change', async () => {
    // The certificate names "localhost" only; the SPN stays postgres/localhost.
    const make = gssapiStream({ credential: alice, spnHost: 'localhost', gssencmode: 'disable', sslmode: 'verify-full', sslrootcert: ca });
    const relay = await startRelay(realm.pg.port);
    try {
      const err = await failure(new Client({ host: '127.0.0.1', port: relay.port, database: realm.pg.database, user: 'alice', stream: make as never }).connect());
      expect(err.code).toBe('PG_TLS_FAILED');
      expect(err.message).toMatch(/does not name "127\.0\.0\.1".*verify-full/);
      // Nothing but the SSLRequest and the TLS handshake left the client: no start-up message, no role.
      const sent = Buffer.concat(relay.recorded.filter((r) => r.from === 'client').map((r) => r.data));
      expect(sent.indexOf(Buffer.from('alice'))).toBe(-1);
      // verify-ca does not check the name: the same connection succeeds.
      const ok = new Client({
        host: '127.0.0.1',
        port: realm.pg.port,
        database: realm.pg.database,
        user: 'alice',
        stream: gssapiStream({ credential: alice, spnHost: 'localhost', gssencmode: 'disable', sslmode: 'verify-ca', sslrootcert: ca }) as never,
      });
      await ok.connect();
      expect((await ok.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows).toEqual([{ ssl: true }]);
      await ok.end();
    } finally {
      await relay.close();
    }
  });

  it.each(['verify-ca', 'verify-full', 'require'] as const)('%s with another CA fails, naming sslrootcert', async (sslmode) => {
    const err = await failure(new Client(config({ sslmode, sslrootcert: otherCa })).connect());
    expect(err.code).toBe('PG_TLS_FAILED');
    expect(err.message).toMatch(/not signed by a certificate authority in sslrootcert.*FORWARDABLE_PG_SSLROOTCERT/);
  });

  it('require (and verify-*) against a server that answers "N" fails saying what to change; prefer falls back', async () => {
    const relay = await startRelay(realm.pg.port);
    relay.refuseSsl = true;
    relay.refuseGssenc = true;
    try {
      for (const sslmode of ['require', 'verify-full'] as const) {
        const err = await failure(new Client(config({ port: relay.port, gssencmode: 'prefer', sslmode, sslrootcert: ca })).connect());
        expect(err.code).toBe('PG_TLS_REFUSED');
        expect(err.message).toMatch(/refused TLS.*ssl = on.*hostssl.*FORWARDABLE_PG_SSLMODE/);
      }
      // prefer continues unencrypted; this server has no line for a plain link and says so.
      const plain = await failure(new Client(config({ port: relay.port, gssencmode: 'prefer', sslmode: 'prefer' })).connect());
      expect(plain.code).toBe('PG_NO_HBA_ENTRY');
      expect(plain.message).toMatch(/unencrypted connection/);
      expect(streams.at(-1)?.protection).toBe('none');
    } finally {
      await relay.close();
    }
  });

  it('a packet capture of a TLS connection shows no plaintext of a secret that crossed both ways', async () => {
    const relay = await startRelay(realm.pg.port);
    const secret = `salary-of-alice-${randomBytes(8).toString('hex')}`;
    const client = new Client(config({ port: relay.port, sslmode: 'verify-full', sslrootcert: ca }));
    await client.connect();
    try {
      const r = await client.query('SELECT $1::text AS s, current_database() AS d', [secret]);
      expect(r.rows[0].s).toBe(secret);
      expect(streams.at(-1)?.protection).toBe('tls');
      const wire = Buffer.concat(relay.recorded.map((r) => r.data));
      expect(wire.subarray(0, 8).equals(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]))).toBe(true); // SSLRequest
      expect(wire.length).toBeGreaterThan(secret.length);
      for (const plain of [secret, 'SELECT $1::text', realm.pg.database, 'session_authorization', 'alice']) {
        expect(wire.indexOf(Buffer.from(plain))).toBe(-1);
      }
    } finally {
      await client.end();
      await relay.close();
    }
  });

  it('rejects bad TLS settings at configuration time with what to set', () => {
    expect(() => gssapiStream({ credential: alice, sslmode: 'allow' as never })).toThrow(/"allow" is not supported: use "prefer"/);
    expect(() => gssapiStream({ credential: alice, sslmode: 'verify-full' })).toThrow(/needs sslrootcert/);
    expect(() => gssapiStream({ credential: alice, sslmode: 'require', sslrootcert: '/nonexistent/ca.crt' })).toThrow(/sslrootcert \/nonexistent\/ca\.crt cannot be read/);
  });
});

describe('link protection policy with sslmode', () => {
  it('a remote server is accepted with TLS required instead of GSSAPI encryption, GSSAPI encryption still tried first', () => {
    expect(linkProtectionPolicy({ host: 'db.example.com', sslmode: 'verify-full', sslrootcert: '/ca.crt' })).toEqual({ gssencmode: 'prefer', sslmode: 'verify-full' });
    expect(linkProtectionPolicy({ host: 'db.example.com', sslmode: 'require' })).toEqual({ gssencmode: 'prefer', sslmode: 'require' });
    expect(linkProtectionPolicy({ host: 'db.example.com' })).toEqual({ gssencmode: 'require', sslmode: 'prefer' });
    expect(linkProtectionPolicy({ host: 'localhost' })).toEqual({ gssencmode: 'prefer', sslmode: 'prefer' });
  });

  it('a remote server with neither required is refused, or warned about under disable', () => {
    expect(() => linkProtectionPolicy({ host: 'db.example.com', gssencmode: 'prefer', sslmode: 'prefer' })).toThrow(/not on loopback.*sslmode "verify-full"/);
    const p = linkProtectionPolicy({ host: 'db.example.com', gssencmode: 'disable' });
    expect(p.warning).toMatch(/DISABLED.*TLS is not required.*cleartext/);
    expect(() => linkProtectionPolicy({ host: 'localhost', sslmode: 'verify-ca' })).toThrow(/needs sslrootcert/);
    expect(() => linkProtectionPolicy({ host: 'localhost', sslmode: 'bogus' as never })).toThrow(/sslmode must be one of disable, prefer, require, verify-ca, verify-full/);
  });

  it('the command-line tools read FORWARDABLE_PG_SSLMODE and FORWARDABLE_PG_SSLROOTCERT, and refuse an unknown mode', () => {
    const base = { FORWARDABLE_PG_HOST: 'db.example.com', FORWARDABLE_PG_PORT: '5432', FORWARDABLE_PG_DATABASE: 'app' };
    expect(gssapiTargetFromEnv({ ...base, FORWARDABLE_PG_SSLMODE: 'verify-full', FORWARDABLE_PG_SSLROOTCERT: '/etc/ca.crt' })).toMatchObject({
      host: 'db.example.com',
      sslmode: 'verify-full',
      sslrootcert: '/etc/ca.crt',
    });
    expect(() => gssapiTargetFromEnv({ ...base, FORWARDABLE_PG_SSLMODE: 'allow' })).toThrow(/FORWARDABLE_PG_SSLMODE=allow must be one of/);
    expect(() => gssapiTargetFromEnv({ ...base, FORWARDABLE_PG_SSLMODE: 'verify-ca' })).toThrow(/needs sslrootcert/);
  });
});
