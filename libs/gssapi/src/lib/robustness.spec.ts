import { randomBytes } from 'node:crypto';
import { AcceptorContext, acquireServiceCredential, Credential, decodeNegotiateToken, GssError, InitiatorContext, tokenMechanism } from '../index';
import { RealmEnv, useRealm, userCredential } from '../testing/realm';

/** Feed one token to a fresh acceptor; resolve with what happened, never throw. */
async function tryAccept(service: Credential, token: Buffer | string): Promise<{ ok: boolean; error?: unknown; complete?: boolean; principal?: string; reply?: boolean }> {
  const acceptor = new AcceptorContext(service);
  try {
    const r = await acceptor.step(token);
    r.delegated?.dispose();
    return { ok: true, complete: r.complete, principal: r.principal, reply: r.token !== null };
  } catch (error) {
    return { ok: false, error };
  } finally {
    acceptor.dispose();
  }
}

describe('hostile input and load', () => {
  let realm: RealmEnv;
  let service: Credential;
  let realToken: Buffer;

  beforeAll(async () => {
    realm = useRealm('db2');
    service = await acquireServiceCredential({ keytab: realm.httpKeytab, principal: `HTTP/localhost@${realm.realm}`, usage: 'accept' });
    const alice = await userCredential(realm, 'alice');
    const client = new InitiatorContext({ credential: alice.cred, target: 'HTTP@localhost', mech: 'spnego' });
    realToken = (await client.step(null)).token as Buffer;
    client.dispose();
    alice.dispose();
  });
  afterAll(() => service?.dispose());

  it('refuses malformed base64 with DefectiveTokenError', async () => {
    for (const bad of ['Negotiate', 'Negotiate !!!!', 'Negotiate YWJj=', 'Negotiate YW Jj', 'Basic YWJjZA==', 'Negotiate YWJjZA=', 'Negotiate YWJjZB==', '']) {
      expect(() => decodeNegotiateToken(bad)).toThrow(expect.objectContaining({ code: 'ERR_GSS_DEFECTIVE_TOKEN', name: 'DefectiveTokenError' }));
      const r = await tryAccept(service, bad.replace(/^Negotiate /, ''));
      expect(r.ok).toBe(false);
      expect(r.error).toBeInstanceOf(GssError);
    }
    expect(decodeNegotiateToken(`Negotiate ${realToken.toString('base64')}`)).toEqual(realToken);
    expect(() => decodeNegotiateToken(Buffer.alloc(70_000).toString('base64'))).toThrow(expect.objectContaining({ code: 'ERR_GSS_DEFECTIVE_TOKEN' }));
  });

  it('refuses an NTLMSSP token as a refused mechanism, raw or base64', async () => {
    // A real NTLMSSP NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1), as curl --ntlm sends it.
    const ntlm = Buffer.from('TlRMTVNTUAABAAAABoIIAAAAAAAAAAAAAAAAAAAAAAA=', 'base64');
    expect(tokenMechanism(ntlm)).toBe('ntlm');
    for (const token of [ntlm, ntlm.toString('base64')]) {
      const r = await tryAccept(service, token);
      expect(r.error).toMatchObject({ code: 'ERR_GSS_MECH_REFUSED', name: 'MechanismRefusedError' });
      expect((r.error as Error).message).toMatch(/NTLM is refused/);
    }
    // With krb5Only off the library itself still has no NTLM: a typed error, not a crash.
    const lax = new AcceptorContext(service, { krb5Only: false });
    await expect(lax.step(ntlm)).rejects.toBeInstanceOf(GssError);
    lax.dispose();
  });

  it('refuses every truncation of a real token with a typed error', async () => {
    expect(tokenMechanism(realToken)).toBe('spnego');
    const results = await Promise.all(
      Array.from({ length: realToken.length - 1 }, (_, i) => tryAccept(service, realToken.subarray(0, i + 1))),
    );
    expect(results.length).toBeGreaterThan(500);
    for (const r of results) {
      expect(r.ok).toBe(false);
      expect(r.error).toBeInstanceOf(GssError);
    }
  });

  it('refuses thousands of random and bit-flipped tokens with typed errors, never a crash', async () => {
    const inputs: Buffer[] = [];
    for (let i = 0; i < 2000; i++) inputs.push(randomBytes(1 + Math.floor(Math.random() * 3000)));
    // Random bodies behind a valid GSS header reach deeper into the parsers.
    for (let i = 0; i < 500; i++) inputs.push(Buffer.concat([realToken.subarray(0, 2 + Math.floor(Math.random() * 40)), randomBytes(Math.floor(Math.random() * 1500))]));
    for (let i = 0; i < 500; i++) {
      const t = Buffer.from(realToken);
      t[Math.floor(Math.random() * t.length)] ^= 1 << Math.floor(Math.random() * 8);
      inputs.push(t);
    }
    const results = await Promise.all(inputs.map((t) => tryAccept(service, t)));
    let refused = 0;
    for (const r of results) {
      // A flip in a part no checksum covers may leave the token usable: the only acceptable
      // successes are a context for the real client, or a SPNEGO counter-proposal (a flipped
      // mechanism list makes the acceptor ask for Kerberos in a reply token, RFC 4178 3.2).
      if (r.ok) {
        if (r.complete) expect(r.principal).toBe(`alice@${realm.realm}`);
        else expect(r.reply).toBe(true);
      } else {
        refused++;
        if (!(r.error instanceof GssError)) throw r.error;
      }
    }
    expect(refused).toBeGreaterThan(2900);
  });

  it('completes 200 concurrent accepts without blocking the event loop', async () => {
    const users = ['alice', 'bob', 'carol', 'dbadmin'] as const;
    const creds = await Promise.all(users.map((u) => userCredential(realm, u)));
    const makeTokens = async (n: number) => {
      const out: { user: string; token: Buffer }[] = [];
      for (let i = 0; i < n; i++) {
        const client = new InitiatorContext({ credential: creds[i % creds.length].cred, target: 'HTTP@localhost', mech: 'spnego' });
        out.push({ user: users[i % users.length], token: (await client.step(null)).token as Buffer });
        client.dispose();
      }
      return out;
    };
    const acceptAll = (batch: { token: Buffer }[]) =>
      Promise.all(
        batch.map(async ({ token }) => {
          const acceptor = new AcceptorContext(service);
          try {
            return await acceptor.step(token);
          } finally {
            acceptor.dispose();
          }
        }),
      );
    // Warm up (JIT, pool threads) so that the measurement is about the accepts.
    await acceptAll(await makeTokens(20));

    // The machine is shared (other suites, other processes): a scheduler hiccup can delay one
    // timer tick, a blocking design delays every attempt. Keep the best of three attempts.
    const runs: { gap: number; duration: number }[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      const tokens = await makeTokens(200);
      let maxGap = 0;
      let last = performance.now();
      const timer = setInterval(() => {
        const now = performance.now();
        maxGap = Math.max(maxGap, now - last);
        last = now;
      }, 1);
      const started = performance.now();
      const results = await acceptAll(tokens);
      const duration = performance.now() - started;
      clearInterval(timer);
      expect(results).toHaveLength(200);
      results.forEach((r, i) => {
        expect(r.complete).toBe(true);
        // No response carries another user's name.
        expect(r.principal).toBe(`${tokens[i].user}@${realm.realm}`);
      });
      runs.push({ gap: maxGap, duration });
      if (maxGap < duration / 4) break;
    }
    creds.forEach((c) => c.dispose());
    // A 1 ms timer kept firing throughout: the work ran on the libuv pool, not on the loop.
    // Had the accepts run on the loop, its longest pause would be close to the whole batch's
    // duration (one pause as long as the batch). Measured 3-6 ms of 30-60 ms in plain node; a
    // busy shared machine stretches both, so compare the two rather than with a fixed number
    // (timings themselves are bench/'s business).
    const best = runs.reduce((a, b) => (b.gap / b.duration < a.gap / a.duration ? b : a));
    expect(best.gap).toBeLessThan(best.duration / 2);
  });
});
