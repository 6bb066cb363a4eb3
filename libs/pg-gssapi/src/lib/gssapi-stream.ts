import { Duplex } from 'node:stream';
import { Socket, isIP } from 'node:net';
import { Credential, InitiatorContext } from '@forwardable/gssapi';
import { PgAuthError, PgGssapiHandshakeError, pgAuthErrorFrom, ServerErrorFields } from './errors';

/** Options of {@link GssapiStream}; see {@link gssapiStream}. */
export interface GssapiStreamOptions {
  /** The user's credential (delegated, proxy or password); it is used, never disposed, here. */
  credential: Credential;
  /**
   * The host name in the server's service principal (`postgres/<host>`); defaults to the `host`
   * pg connects to. PostgreSQL's SPN has a name, so connect to `localhost`, not `127.0.0.1`.
   */
  spnHost?: string;
  /** The service name in the SPN (`krb_srvname`, default `postgres`). */
  serviceName?: string;
  /** Connect to this address instead of resolving `host` (libpq's `hostaddr`). */
  hostaddr?: string;
}

const AUTH_OK = 0;
const AUTH_GSS = 7;
const AUTH_GSS_CONTINUE = 8;
const PASSWORD_METHODS: Record<number, string> = { 3: 'password', 5: 'md5', 10: 'SASL (scram-sha-256)' };

/**
 * A socket for node-postgres that performs PostgreSQL's GSSAPI authentication itself.
 *
 * node-postgres has no GSSAPI: its parser throws on AuthenticationGSS (`R` code 7). Instead of
 * forking it, this Duplex sits between pg and the TCP socket. During start-up it reads the
 * server's messages; on AuthenticationGSS and AuthenticationGSSContinue (`R` 7 / 8) it runs
 * `gss_init_sec_context` with the user's own credential and answers with `p` messages
 * (PostgreSQL protocol, "Message Flow: Start-up"), so pg never sees them. When the server
 * sends AuthenticationOk the context must be complete (mutual authentication), and from then on
 * bytes pass through untouched. Each connection has its own credential: unlike libpq, nothing
 * process-wide (`KRB5CCNAME`) is consulted.
 *
 * A server error during start-up (unknown role, ticket refused, bad server keytab) becomes a
 * {@link PgAuthError} with a message that says what to fix.
 */
export class GssapiStream extends Duplex {
  private readonly socket = new Socket();
  /**
   * startup: until AuthenticationOk, GSS messages are ours; authenticated: until ReadyForQuery,
   * messages pass but a FATAL (e.g. the role does not exist, checked after authentication) is
   * translated; passthrough: bytes only.
   */
  private phase: 'startup' | 'authenticated' | 'passthrough' | 'failed' = 'startup';
  private pending: Buffer = Buffer.alloc(0);
  private busy = false;
  private context: InitiatorContext | null = null;
  private contextComplete = false;
  private user = '';

  constructor(private readonly opts: GssapiStreamOptions) {
    super();
    this.socket.on('connect', () => this.emit('connect'));
    this.socket.on('data', (chunk: Buffer) => this.onServerData(chunk));
    // During start-up the server's last words (an ErrorResponse) may still wait behind a GSS step
    // when it hangs up: let drainStartup read them first, so the caller gets the real reason.
    this.socket.on('end', () => {
      if (this.phase === 'passthrough') this.push(null);
      else this.serverClosed();
    });
    this.socket.on('error', (err) => this.destroy(err));
    this.socket.on('close', () => {
      if (this.phase === 'passthrough' || this.phase === 'failed') {
        this.disposeContext();
        if (!this.destroyed) this.destroy();
      } else this.serverClosed();
    });
  }

  /** Called by pg: `connect(port, host)`, or `connect(socketPath)` for a Unix socket. */
  connect(port: number | string, host?: string): this {
    if (typeof port === 'string' || !host || host.startsWith('/')) {
      // A Unix socket has no host name for the SPN, and pg_hba's gss applies to TCP ("host") lines.
      this.destroy(new TypeError('GSSAPI needs a TCP connection: set host to the name in the postgres/<host> principal'));
      return this;
    }
    this.spnHost = this.opts.spnHost ?? host;
    const addr = this.opts.hostaddr ?? host;
    this.socket.connect(port, addr);
    return this;
  }

  private spnHost = '';

  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, delay?: number): this {
    this.socket.setKeepAlive(enable, delay);
    return this;
  }

  ref(): this {
    this.socket.ref();
    return this;
  }

  unref(): this {
    this.socket.unref();
    return this;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.phase === 'startup' && this.user === '') this.user = startupUser(chunk) ?? '';
    this.socket.write(chunk, cb);
  }

  /**
   * pg corks the stream around an extended query (Parse, Bind, Describe, Execute, Sync). Without
   * this, Writable would hand those messages to `_write` one at a time, each waiting for the
   * previous write's callback: one system call and one event-loop turn per message (the
   * benchmark's CPU profile showed socket writes as the API's largest cost). One write per batch,
   * as pg gets from a plain net.Socket.
   */
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    if (this.phase === 'startup' && this.user === '' && chunks.length) this.user = startupUser(chunks[0].chunk) ?? '';
    this.socket.write(chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk)), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.socket.end(cb);
  }

  override _read(): void {
    this.socket.resume();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.disposeContext();
    this.socket.destroy();
    cb(err);
  }

  private forward(buf: Buffer): void {
    if (buf.length && !this.push(buf)) this.socket.pause();
  }

  private onServerData(chunk: Buffer): void {
    if (this.phase === 'passthrough') return this.forward(chunk);
    if (this.phase === 'failed') return;
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.drainStartup();
  }

  private closedByServer = false;

  private serverClosed(): void {
    this.closedByServer = true;
    this.drainStartup();
  }

  /** Handle complete start-up messages in order; a GSS step is async, so stop while one runs. */
  private drainStartup(): void {
    this.drainMessages();
    if (this.closedByServer && !this.busy && (this.phase === 'startup' || this.phase === 'authenticated')) {
      this.fail(new PgGssapiHandshakeError('the server closed the connection during authentication'));
    }
  }

  private drainMessages(): void {
    while (!this.busy && (this.phase === 'startup' || this.phase === 'authenticated') && this.pending.length >= 5) {
      const type = String.fromCharCode(this.pending[0]);
      const len = this.pending.readInt32BE(1);
      if (len < 4) return this.fail(new PgGssapiHandshakeError(`malformed message from the server (length ${len})`));
      if (this.pending.length < 1 + len) return;
      const msg = this.pending.subarray(0, 1 + len);
      const rest = this.pending.subarray(1 + len);
      if (this.phase === 'authenticated') {
        if (type === 'E') return this.fail(pgAuthErrorFrom(parseErrorFields(msg.subarray(5)), this.user));
        this.pending = rest;
        this.forward(msg);
        if (type === 'Z') {
          this.phase = 'passthrough';
          this.pending = Buffer.alloc(0);
          this.forward(rest);
          return;
        }
        continue;
      }
      if (type === 'R') {
        const code = msg.readInt32BE(5);
        if (code === AUTH_GSS || code === AUTH_GSS_CONTINUE) {
          this.pending = rest;
          this.gssStep(code === AUTH_GSS ? null : msg.subarray(9));
          continue;
        }
        if (code === AUTH_OK) {
          if (!this.contextComplete) {
            return this.fail(
              new PgGssapiHandshakeError(
                'the server accepted the connection without completing GSSAPI mutual authentication; refusing it ' +
                  '(is pg_hba.conf using gss for this host and user?)',
              ),
            );
          }
          this.phase = 'authenticated';
          this.disposeContext();
          this.pending = rest;
          this.forward(msg);
          continue;
        }
        const method = PASSWORD_METHODS[code] ?? `authentication request ${code}`;
        return this.fail(
          new PgGssapiHandshakeError(
            `the server asked for ${method} instead of GSSAPI; Forwardable has no database password by design: ` +
              `make pg_hba.conf use "gss" for this host and user`,
          ),
        );
      }
      if (type === 'E') {
        return this.fail(pgAuthErrorFrom(parseErrorFields(msg.subarray(5)), this.user));
      }
      // NoticeResponse, NegotiateProtocolVersion and the like are pg's business.
      this.pending = rest;
      this.forward(msg);
    }
  }

  private gssStep(input: Buffer | null): void {
    const target = `${this.opts.serviceName ?? 'postgres'}@${this.spnHost}`;
    let context: InitiatorContext;
    try {
      // Throws at once for a disposed credential: a failed connection, not a crash.
      context = this.context ??= new InitiatorContext({ credential: this.opts.credential, target, mutual: true, delegate: false, mech: 'krb5' });
    } catch (err) {
      return this.fail(new PgGssapiHandshakeError(`GSSAPI could not start a context to ${target}: ${(err as Error).message}`, err));
    }
    this.busy = true;
    context.step(input ? Buffer.from(input) : null).then(
      ({ token, complete }) => {
        if (this.phase !== 'startup') return;
        this.contextComplete = complete;
        if (token && token.length) {
          const header = Buffer.alloc(5);
          header.write('p', 0, 'latin1');
          header.writeInt32BE(4 + token.length, 1);
          this.socket.write(Buffer.concat([header, token]));
        }
        this.busy = false;
        this.drainStartup();
      },
      (err: Error) => {
        this.busy = false;
        this.fail(
          new PgGssapiHandshakeError(
            `GSSAPI could not build a token for ${this.opts.serviceName ?? 'postgres'}@${this.spnHost}: ${err.message}`,
            err,
          ),
        );
      },
    );
  }

  private fail(err: PgAuthError): void {
    this.phase = 'failed';
    this.pending = Buffer.alloc(0);
    this.destroy(err);
  }

  private disposeContext(): void {
    this.context?.dispose();
    this.context = null;
  }
}

/** The `user` parameter of a StartupMessage (no type byte; length, protocol 3.0, key/value pairs). */
function startupUser(buf: Buffer): string | undefined {
  if (buf.length < 8 || buf.readInt32BE(4) !== 196608) return undefined;
  const parts = buf.subarray(8).toString('utf8').split('\0');
  const i = parts.indexOf('user');
  return i >= 0 ? parts[i + 1] : undefined;
}

function parseErrorFields(body: Buffer): ServerErrorFields {
  const fields: ServerErrorFields = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const key = String.fromCharCode(body[i]);
    const end = body.indexOf(0, i + 1);
    if (end < 0) break;
    const value = body.subarray(i + 1, end).toString('utf8');
    if (key === 'S') fields.severity = value;
    else if (key === 'C') fields.code = value;
    else if (key === 'M') fields.message = value;
    else if (key === 'D') fields.detail = value;
    else if (key === 'H') fields.hint = value;
    i = end + 1;
  }
  return fields;
}

/**
 * A `stream` factory for node-postgres: pass it as `stream` in a `pg.Client`/`pg.Pool` config
 * (or TypeORM's `extra`). Every connection pg opens gets its own {@link GssapiStream} that
 * authenticates with `credential`.
 *
 * @example
 * ```ts
 * const pool = new pg.Pool({ host: 'localhost', port: 5432, database: 'app', user: 'alice',
 *   stream: gssapiStream({ credential }) });
 * ```
 */
export function gssapiStream(opts: GssapiStreamOptions): () => GssapiStream {
  if (!opts || !opts.credential) throw new TypeError('gssapiStream needs { credential }: the user\'s Kerberos credential');
  if (opts.hostaddr !== undefined && isIP(opts.hostaddr) === 0) {
    throw new TypeError(`hostaddr must be an IP address, not "${opts.hostaddr}"`);
  }
  return () => new GssapiStream(opts);
}
