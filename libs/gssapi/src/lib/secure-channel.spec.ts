import { AcceptorContext, acquireServiceCredential, Credential, GssUsageError, InitiatorContext, MAX_SEALED_PACKET_BYTES } from '../index';
import { handshake, RealmEnv, useRealm, userCredential } from '../testing/realm';

// The protocol-level claims (PostgreSQL reports the link encrypted, tampering is detected) are in
// libs/pg-gssapi's gssenc.spec.ts against the real server; this covers the binding's contract.
describe('SecureChannel (gss_wrap / gss_unwrap over an established context)', () => {
  let realm: RealmEnv;
  let service: Credential;

  beforeAll(async () => {
    realm = useRealm('db2');
    service = await acquireServiceCredential({ keytab: realm.httpKeytab, principal: 'HTTP@localhost', usage: 'accept' });
  });
  afterAll(() => service?.dispose());

  async function established(confidentiality: boolean) {
    const u = await userCredential(realm, 'alice');
    const client = new InitiatorContext({ credential: u.cred, target: 'HTTP@localhost', confidentiality });
    const acceptor = new AcceptorContext(service);
    await handshake(client, acceptor);
    acceptor.dispose();
    return { client, dispose: () => u.dispose() };
  }

  it('refuses a context that is not established yet, and spends the one it takes', async () => {
    const u = await userCredential(realm, 'alice');
    const client = new InitiatorContext({ credential: u.cred, target: 'HTTP@localhost', confidentiality: true });
    try {
      let err: unknown;
      try {
        client.secureChannel();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(GssUsageError);
      expect((err as GssUsageError).code).toBe('ERR_GSS_CONTEXT_INCOMPLETE');
    } finally {
      client.dispose();
      u.dispose();
    }
    const ok = await established(true);
    const channel = ok.client.secureChannel();
    try {
      expect(ok.client.disposed).toBe(true);
      expect(() => ok.client.secureChannel()).toThrow(/disposed/);
    } finally {
      channel.dispose();
      ok.dispose();
    }
  });

  it('seals into length-prefixed packets within the size limit, in call order, inline and on the pool alike', async () => {
    const ok = await established(true);
    const channel = ok.client.secureChannel();
    try {
      const maxPlain = channel.wrapSizeLimit(MAX_SEALED_PACKET_BYTES - 4);
      expect(maxPlain).toBeGreaterThan(16000);
      expect(maxPlain).toBeLessThan(MAX_SEALED_PACKET_BYTES - 4);
      const small = Buffer.from('hello');
      const large = Buffer.alloc(1024 * 1024, 7); // on the libuv pool
      const [a, b, c] = await Promise.all([channel.seal(small, maxPlain), channel.seal(large, maxPlain), channel.seal(small, maxPlain)]);
      const sizes = (buf: Buffer) => {
        const out: number[] = [];
        for (let off = 0; off < buf.length; ) {
          const len = buf.readUInt32BE(off);
          out.push(len);
          off += 4 + len;
          expect(off).toBeLessThanOrEqual(buf.length);
        }
        return out;
      };
      expect(sizes(a)).toHaveLength(1);
      expect(sizes(b)).toHaveLength(Math.ceil(large.length / maxPlain));
      expect(Math.max(...sizes(b))).toBeLessThanOrEqual(MAX_SEALED_PACKET_BYTES - 4);
      expect(b.indexOf(Buffer.alloc(64, 7))).toBe(-1); // encrypted, not merely signed
      // Same plaintext, different packets: sequence numbers and confounders differ.
      expect(a.equals(c)).toBe(false);
      // A token from this side is not accepted back by this side (direction is part of the token).
      await expect(channel.unseal(a)).rejects.toMatchObject({ routine: 'gss_unwrap' });
      await expect(channel.seal(small, maxPlain)).rejects.toMatchObject({ code: 'ERR_GSS_CONTEXT_FAILED' });
    } finally {
      channel.dispose();
      ok.dispose();
    }
  });

  it('a disposed channel refuses further use', async () => {
    const ok = await established(true);
    const channel = ok.client.secureChannel();
    channel.dispose();
    ok.dispose();
    await expect(channel.seal(Buffer.from('x'), 100)).rejects.toMatchObject({ code: 'ERR_GSS_DISPOSED' });
  });
});
