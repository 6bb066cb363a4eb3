/**
 * Test helpers for this library's specs: a real realm from tools/realm, real tickets from the
 * MIT tools, and a minimal PostgreSQL GSSAPI client to prove credentials against a real server.
 * Nothing here fakes Kerberos.
 */
import { execFile } from 'node:child_process';
import { Socket, connect } from 'node:net';
// The realm tool lives in a testing library; only specs and this helper use it (never src/lib).
import { ensureRealm, ensureRogueRealm, kadminLocal, kinit, RealmEnv, RealmKdb, RealmUser, realmProcessEnv, testPortBase, TicketCache } from '@forwardable/testing/realm';
import { AcceptorContext, AcceptResult, configureKerberos, Credential, InitiatorContext } from '../index';

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
 * Log in to PostgreSQL with GSSAPI using `client` (protocol 3.0: StartupMessage, then
 * AuthenticationGSS (R/7) -> 'p' token -> AuthenticationGSSContinue (R/8) ... -> AuthenticationOk).
 * Resolves 'ok' on AuthenticationOk, or the server's error message.
 */
export function pgGssLogin(port: number, user: string, database: string, client: InitiatorContext): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock: Socket = connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    let busy = false;
    const finish = (v: string | Error) => {
      sock.destroy();
      if (v instanceof Error) reject(v);
      else resolve(v);
    };
    const send = (type: string, body: Buffer) => {
      const head = Buffer.alloc(5);
      head.write(type, 0, 'latin1');
      head.writeInt32BE(body.length + 4, 1);
      sock.write(Buffer.concat([head, body]));
    };
    sock.on('connect', () => {
      const params = Buffer.from(`user\0${user}\0database\0${database}\0\0`, 'utf8');
      const len = Buffer.alloc(8);
      len.writeInt32BE(params.length + 8, 0);
      len.writeInt32BE(196608, 4);
      sock.write(Buffer.concat([len, params]));
    });
    sock.on('error', finish);
    const pump = async () => {
      if (busy) return;
      busy = true;
      try {
        while (buf.length >= 5) {
          const type = String.fromCharCode(buf[0]);
          const len = buf.readInt32BE(1);
          if (buf.length < 1 + len) break;
          const body = buf.subarray(5, 1 + len);
          buf = buf.subarray(1 + len);
          if (type === 'E') {
            const fields = body.toString('utf8').split('\0');
            return finish(fields.find((f) => f.startsWith('M'))?.slice(1) ?? 'error');
          }
          if (type !== 'R') continue;
          const code = body.readInt32BE(0);
          if (code === 0) return finish('ok');
          if (code === 7 || code === 8) {
            const r = await client.step(code === 8 ? Buffer.from(body.subarray(4)) : null);
            if (r.token) send('p', r.token);
          } else {
            return finish(new Error(`unexpected authentication request ${code}`));
          }
        }
      } catch (e) {
        finish(e as Error);
      } finally {
        busy = false;
      }
      if (buf.length >= 5 && !sock.destroyed) void pump();
    };
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      void pump();
    });
  });
}
