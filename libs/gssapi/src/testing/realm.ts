/**
 * Test helpers for this library's specs: a real realm from tools/realm, real tickets from the
 * MIT tools, and a minimal PostgreSQL GSSAPI client to prove credentials against a real server.
 * Nothing here fakes Kerberos.
 */
import { execFile } from 'node:child_process';
import { Socket, connect } from 'node:net';
// The realm tool lives in a testing library; only specs and this helper use it (never src/lib).
import { ensureRealm, ensureRogueRealm, kadminLocal, kinit, RealmEnv, RealmKdb, RealmUser, realmProcessEnv, testPortBase, TicketCache } from '@forwardable/testing/realm';
import { AcceptorContext, AcceptResult, configureKerberos, Credential, InitiatorContext, SecureChannel } from '../index';

export type { RealmEnv, RealmKdb, RealmUser, TicketCache };
export { ensureRealm, ensureRogueRealm, kadminLocal, kinit, realmProcessEnv, testPortBase };

/**
 * Start (or reuse) the realm and point libkrb5 at it. Jest gives each file a copy of
 * process.env, so the C environment is set through the addon.
 */
export function useRealm(kdb: RealmKdb, opts?: Parameters<typeof ensureRealm>[1]): RealmEnv {
  const realm = ensureRealm(kdb, opts);
  configureKerberos({ krb5Config: realm.krb5Config, replayCacheDir: realm.rcacheDir });
  return realm;
}

/** A user's credential from a real `kinit` (FILE cache) plus its cleanup. */
export async function userCredential(realm: RealmEnv, user: RealmUser, flags: string[] = []): Promise<{ cred: Credential; cache: TicketCache; dispose(): void }> {
  const cache = kinit(realm, user, flags);
  const cred = await Credential.fromCache(cache.name, 'password');
  return { cred, cache, dispose: () => { cred.dispose(); cache.destroy(); } };
}

/** Run a full client/acceptor exchange; returns the last accept result and the client's state. */
export async function handshake(client: InitiatorContext, acceptor: AcceptorContext): Promise<{ accepted: AcceptResult; clientComplete: boolean; firstToken: Buffer }> {
  let out = await client.step(null);
  const firstToken = out.token as Buffer;
  for (;;) {
    if (!out.token) throw new Error('the client produced no token');
    const accepted = await acceptor.step(out.token);
    if (accepted.complete) {
      // Mutual authentication: the client must accept the service's reply.
      let clientComplete = out.complete;
      if (accepted.token) clientComplete = (await client.step(accepted.token)).complete;
      return { accepted, clientComplete, firstToken };
    }
    out = await client.step(accepted.token);
  }
}

/** curl --negotiate as an independent client, asynchronously (the server runs in this process). */
export function curlNegotiate(realm: RealmEnv, cache: TicketCache, url: string, extra: string[] = []): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-s', '--negotiate', '-u', ':', ...extra, '-w', '\n%{http_code}', url],
      { env: realmProcessEnv(realm, { KRB5CCNAME: cache.name }), timeout: 30_000 },
      (err, stdout) => {
        if (err) return reject(err);
        const i = stdout.lastIndexOf('\n');
        resolve({ status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) });
      });
  });
}

/**
 * Log in to PostgreSQL with `client` over GSSAPI transport encryption, as the test realms'
 * pg_hba (`hostgssenc ... gss`) demands: GSSENCRequest, "G", length-prefixed context tokens until
 * `client` is complete, then the StartupMessage and the server's answers sealed in a
 * {@link SecureChannel} (the server authenticates by the encryption context itself).
 * Resolves 'ok' on AuthenticationOk, or the server's error message.
 */
export function pgGssLogin(port: number, user: string, database: string, client: InitiatorContext): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock: Socket = connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    let busy = false;
    let phase: 'answer' | 'tokens' | 'sealed' = 'answer';
    let channel: SecureChannel | null = null;
    let plain = Buffer.alloc(0);
    const finish = (v: string | Error) => {
      sock.destroy();
      channel?.dispose();
      if (v instanceof Error) reject(v);
      else resolve(v);
    };
    const framed = (body: Buffer) => {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(body.length, 0);
      return Buffer.concat([len, body]);
    };
    const step = async (input: Buffer | null) => {
      const r = await client.step(input);
      if (r.token) sock.write(framed(r.token));
      if (!r.complete) return;
      channel = client.secureChannel();
      phase = 'sealed';
      const params = Buffer.from(`user\0${user}\0database\0${database}\0\0`, 'utf8');
      const head = Buffer.alloc(8);
      head.writeInt32BE(params.length + 8, 0);
      head.writeInt32BE(196608, 4);
      sock.write(await channel.seal(Buffer.concat([head, params]), channel.wrapSizeLimit(16380)));
    };
    sock.on('connect', () => sock.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30])));
    sock.on('error', finish);
    const pump = async () => {
      if (busy) return;
      busy = true;
      try {
        if (phase === 'answer' && buf.length >= 1) {
          if (buf[0] !== 0x47 /* G */) return finish(new Error(`the server refused GSSAPI encryption (${String.fromCharCode(buf[0])})`));
          buf = buf.subarray(1);
          phase = 'tokens';
          await step(null);
        }
        while (phase === 'tokens' && buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
          const token = Buffer.from(buf.subarray(4, 4 + buf.readUInt32BE(0)));
          buf = buf.subarray(4 + token.length);
          await step(token);
        }
        while (phase === 'sealed' && channel && buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
          const n = 4 + buf.readUInt32BE(0);
          plain = Buffer.concat([plain, await (channel as SecureChannel).unseal(buf.subarray(0, n))]);
          buf = buf.subarray(n);
        }
        while (plain.length >= 5 && plain.length >= 1 + plain.readInt32BE(1)) {
          const type = String.fromCharCode(plain[0]);
          const len = plain.readInt32BE(1);
          const body = plain.subarray(5, 1 + len);
          plain = plain.subarray(1 + len);
          if (type === 'E') {
            const fields = body.toString('utf8').split('\0');
            return finish(fields.find((f) => f.startsWith('M'))?.slice(1) ?? 'error');
          }
          if (type !== 'R') continue;
          const code = body.readInt32BE(0);
          return finish(code === 0 ? 'ok' : new Error(`unexpected authentication request ${code} on an encrypted link`));
        }
      } catch (e) {
        finish(e as Error);
      } finally {
        busy = false;
      }
      // Data that arrived during an await: go again only when a whole packet is there.
      if (!sock.destroyed && buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) void pump();
    };
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      void pump();
    });
  });
}
