/**
 * GSSAPI transport encryption against the realm's real PostgreSQL (pg_hba `hostgssenc ... gss`):
 * the server reports the backends as encrypted, large traffic both ways survives the 16 KB
 * packets, a relay in the middle sees no plaintext and cannot flip a byte or cut a packet
 * unnoticed, and the gssencmode choices fail with messages that say what to change.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { Credential } from '@forwardable/gssapi';
import { ensureRealm, RealmEnv } from '@forwardable/testing/realm';
import { delegatedCredential, useRealm } from '@forwardable/testing/delegation';
import { GssapiStream, gssapiClientConfig, gssapiStream, PgAuthError } from '../index';
import type { GssEncMode, SslMode } from './gssapi-stream';
import { startRelay } from '../testing/relay';
import { failure } from '../testing/failure';

describe('GSSAPI transport encryption against the real PostgreSQL', () => {
  let realm: RealmEnv;
  let alice: Credential;
  const streams: GssapiStream[] = [];

  // Keep each stream, to read what protection it got.
  const config = (port: number, gssencmode?: GssEncMode, sslmode?: SslMode) =>
    gssapiClientConfig(alice, { host: 'localhost', hostaddr: '127.0.0.1', port, database: realm.pg.database, gssencmode, sslmode }, { onConnection: (s) => streams.push(s) });

  beforeAll(async () => {
    realm = ensureRealm('db2');
    useRealm(realm);
    alice = await delegatedCredential(realm, 'alice', 'forwarded');
  });
  afterAll(() => alice?.dispose());
  beforeEach(() => {
    useRealm(realm);
    streams.length = 0;
  });

  it.each(['prefer', 'require', undefined] as const)('gssencmode %s: the server reports the backend encrypted, and so does the stream', async (mode) => {
    const client = new Client(config(realm.pg.port, mode));
    await client.connect();
    try {
      const r = await client.query(
        'SELECT s.encrypted, s.principal, session_user AS u FROM pg_stat_gssapi s WHERE s.pid = pg_backend_pid()',
      );
      expect(r.rows).toEqual([{ encrypted: true, principal: `alice@${realm.realm}`, u: 'alice' }]);
      expect(streams.at(-1)?.protection).toBe('gssenc');
    } finally {
      await client.end();
    }
  });

  it('gssencmode disable against a hostgssenc-only server fails, saying to turn encryption on', async () => {
    const err = await failure(new Client(config(realm.pg.port, 'disable')).connect());
    expect(err.code).toBe('PG_NO_HBA_ENTRY');
    expect(err.message).toMatch(/unencrypted connection.*gssencmode/);
  });

  it('carries a 10 MB row down and a 10 MB parameter up intact (packets of at most 16 KB)', async () => {
    const relay = await startRelay(realm.pg.port);
    const client = new Client(config(relay.port));
    await client.connect();
    try {
      const down = await client.query(`SELECT repeat('0123456789abcdef', 655360) AS big`);
      expect(down.rows[0].big.length).toBe(10 * 1024 * 1024);
      expect(down.rows[0].big).toBe('0123456789abcdef'.repeat(655360));
      const up = randomBytes(5 * 1024 * 1024).toString('hex'); // 10 MB of text
      const r = await client.query('SELECT md5($1) AS h, length($1) AS n', [up]);
      expect(r.rows[0]).toEqual({ h: createHash('md5').update(up).digest('hex'), n: up.length });
      // COPY-sized traffic: 200 000 generated rows in one result.
      const many = await client.query('SELECT g, md5(g::text) AS m FROM generate_series(1, 200000) g');
      expect(many.rows).toHaveLength(200000);
      expect(many.rows[199999]).toEqual({ g: 200000, m: createHash('md5').update('200000').digest('hex') });
      expect(streams.at(-1)?.protection).toBe('gssenc');
      // Every packet after the set-up is length-prefixed and at most 16384 bytes, both ways.
      for (const from of ['client', 'server'] as const) {
        const sizes = framedPackets(Buffer.concat(relay.recorded.filter((r) => r.from === from).map((r) => r.data)), from === 'client' ? 8 : 1);
        expect(sizes.length).toBeGreaterThan(from === 'client' ? 600 : 640); // 10 MB / 16 KB
        expect(Math.max(...sizes)).toBeLessThanOrEqual(16384);
      }
    } finally {
      await client.end();
      await relay.close();
    }
  });

  it('a packet capture shows no plaintext of a secret that crossed both ways', async () => {
    const relay = await startRelay(realm.pg.port);
    const secret = `salary-of-alice-${randomBytes(8).toString('hex')}`;
    const client = new Client(config(relay.port));
    await client.connect();
    try {
      const r = await client.query('SELECT $1::text AS s, current_database() AS d', [secret]);
      expect(r.rows[0].s).toBe(secret);
      const wire = Buffer.concat(relay.recorded.map((r) => r.data));
      expect(wire.subarray(0, 8).equals(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]))).toBe(true); // GSSENCRequest
      expect(wire.length).toBeGreaterThan(secret.length);
      for (const plain of [secret, 'SELECT $1::text', realm.pg.database, 'session_authorization', 'alice']) {
        expect(wire.indexOf(Buffer.from(plain))).toBe(-1);
      }
    } finally {
      await client.end();
      await relay.close();
    }
  });

  it('a relay that flips one byte of a server packet is detected: the query fails with PG_GSSENC_BROKEN', async () => {
    const relay = await startRelay(realm.pg.port);
    const client = new Client(config(relay.port));
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    await client.connect();
    try {
      relay.onServerChunk = (chunk) => {
        chunk[Math.min(chunk.length - 1, 4 + Math.floor((chunk.readUInt32BE(0) || 1) / 2))] ^= 0x01;
        return chunk;
      };
      const err = await failure(client.query(`SELECT 'innocent' AS x`));
      expect(String(err.message)).toMatch(/closed|terminated|GSSAPI/i);
      const all = [err, ...errors].map((e) => `${(e as PgAuthError).code ?? ''} ${e.message}`).join('\n');
      expect(all).toContain('PG_GSSENC_BROKEN');
      expect(all).toMatch(/failed GSSAPI verification/);
    } finally {
      await client.end().catch(() => undefined);
      await relay.close();
    }
  });

  it('a connection cut in the middle of an encrypted packet fails with PG_GSSENC_BROKEN, not a parse error', async () => {
    const relay = await startRelay(realm.pg.port);
    const client = new Client(config(relay.port));
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    await client.connect();
    try {
      relay.onServerChunk = (chunk, sock) => {
        sock.end(chunk.subarray(0, Math.max(5, chunk.length - 3)));
        return null;
      };
      const err = await failure(client.query(`SELECT repeat('x', 100) AS x`));
      const all = [err, ...errors].map((e) => `${(e as PgAuthError).code ?? ''} ${e.message}`).join('\n');
      expect(all).toContain('PG_GSSENC_BROKEN');
      expect(all).toMatch(/ended in the middle of an encrypted packet/);
    } finally {
      await client.end().catch(() => undefined);
      await relay.close();
    }
  });

  it('gssencmode require through a server (or pooler) that answers "N" fails and says what to change', async () => {
    const relay = await startRelay(realm.pg.port);
    relay.refuseGssenc = true;
    try {
      const err = await failure(new Client(config(relay.port, 'require')).connect());
      expect(err.code).toBe('PG_GSSENC_REFUSED');
      expect(err.message).toMatch(/refused GSSAPI encryption.*hostgssenc.*gssencmode/);
      // prefer falls back to the unencrypted link, which this server's pg_hba then refuses.
      const plain = await failure(new Client(config(relay.port, 'prefer')).connect());
      expect(plain.code).toBe('PG_NO_HBA_ENTRY');
      expect(streams.at(-1)?.protection).toBe('none');
    } finally {
      await relay.close();
    }
  });

  it('rejects an unknown gssencmode at configuration time', () => {
    expect(() => gssapiStream({ credential: alice, gssencmode: 'allow' as never })).toThrow(/gssencmode must be one of disable, prefer, require/);
  });
});

/**
 * Sizes (length word included) of the packets of one direction, after its `skip` bytes of
 * negotiation (the 8-byte GSSENCRequest, or the server's "G"); throws when the framing is broken.
 */
function framedPackets(stream: Buffer, skip: number): number[] {
  const sizes: number[] = [];
  let off = skip;
  while (off < stream.length) {
    if (stream.length - off < 4) throw new Error(`a partial length word at ${off}`);
    const len = stream.readUInt32BE(off);
    if (off + 4 + len > stream.length) throw new Error(`a packet of ${len} bytes runs past the end at ${off}`);
    sizes.push(4 + len);
    off += 4 + len;
  }
  return sizes;
}
