import { Duplex } from 'node:stream';
import { Socket, isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import { checkServerIdentity, connect as tlsConnect, TLSSocket, type PeerCertificate } from 'node:tls';
import { Credential, InitiatorContext, MAX_SEALED_PACKET_BYTES, SecureChannel } from '@forwardable/gssapi';
import {
  PgAuthError,
  PgGssapiHandshakeError,
  PgGssencBrokenError,
  PgGssencRefusedError,
  PgProtocolError,
  PgTlsError,
  PgTlsRefusedError,
  pgAuthErrorFrom,
  ServerErrorFields,
} from './errors';

/**
 * libpq's `gssencmode`: `disable` never asks for GSSAPI encryption; `prefer` (the default) asks and
 * falls back to an unencrypted link when the server answers "N"; `require` fails instead.
 */
export type GssEncMode = 'disable' | 'prefer' | 'require';

/**
 * libpq's `sslmode` (without `allow`): `disable` never asks for TLS; `prefer` (the default) asks and
 * continues unencrypted when the server answers "N", without verifying the server's certificate;
 * `require` fails on "N" and, like libpq, verifies the chain only when a root certificate file
 * (`sslrootcert`) is given; `verify-ca` verifies the chain against `sslrootcert`; `verify-full`
 * also checks that the certificate names the host connected to. GSSAPI authentication runs inside
 * the TLS stream (pg_hba `hostssl ... gss`).
 */
export type SslMode = 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

/** Values accepted for {@link SslMode}. */
export const SSL_MODES: readonly SslMode[] = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'];

/** What protects a connection's bytes on the wire, once connected. */
export type PgLinkProtection = 'gssenc' | 'tls' | 'none';

/** The TLS session of a connection protected by TLS. */
export interface PgTlsInfo {
  /** e.g. `TLSv1.3`. */
  protocol: string;
  /** OpenSSL's cipher name, e.g. `TLS_AES_256_GCM_SHA384`. */
  cipher: string;
  /** Whether the certificate chain was verified against `sslrootcert`. */
  verified: boolean;
}

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
  /** GSSAPI transport encryption, with libpq's names and semantics; default `prefer`. */
  gssencmode?: GssEncMode;
  /**
   * TLS, with libpq's names and semantics; default `prefer`. Tried only when GSSAPI encryption is
   * not in use (disabled, or refused by the server), as libpq orders them.
   */
  sslmode?: SslMode;
  /**
   * PEM file of the certificate authorities to trust for the server's certificate (libpq's
   * `sslrootcert`); needed by `verify-ca` and `verify-full`, and makes `require` verify the chain.
   * Read once, when the factory is made.
   */
  sslrootcert?: string;
}

/** Values accepted for {@link GssEncMode}. */
export const GSSENC_MODES: readonly GssEncMode[] = ['disable', 'prefer', 'require'];

/** GSSENCRequest: an 8-byte start-up packet, length 8 and code 80877104 (1234 << 16 | 5680). */
const GSSENC_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]);
/** SSLRequest: length 8 and code 80877103 (1234 << 16 | 5679). */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
/** The largest context token either side sends while setting up encryption (PostgreSQL 17's PQ_GSS_AUTH_BUFFER_SIZE). */
const MAX_HANDSHAKE_TOKEN = 65536 - 4;
const MAX_SEALED_TOKEN = MAX_SEALED_PACKET_BYTES - 4;

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
 *
 * GSSAPI transport encryption (PostgreSQL 12+, `gssencmode`): before pg's start-up message the
 * stream sends a GSSENCRequest. On "G" it establishes a context with confidentiality, integrity,
 * replay and sequence protection and mutual authentication, exchanging tokens framed as a 4-byte
 * length + token; from then on every byte both ways travels in packets of length + gss_wrap
 * output (at most 16 KB each, sized with gss_wrap_size_limit), unwrapped and verified before pg
 * sees them. The server then does not run a separate GSS authentication: the encryption context
 * is the authentication (pg_hba `hostgssenc ... gss`). A packet that fails verification, is
 * oversized or cut short closes the connection with a {@link PgGssencBrokenError}. pg only gets
 * its `connect` event once the link is set up, so it writes its start-up message through it.
 */
export class GssapiStream extends Duplex {
  private readonly socket = new Socket();
  /** The TLS layer over the TCP socket, once the server accepted an SSLRequest. */
  private tls: TLSSocket | null = null;
  /** Read at the handshake: once the socket is closed, node no longer reports them. */
  private tlsSession: PgTlsInfo | undefined;
  /** The CA file's contents (from {@link gssapiStream}, which reads it once). */
  private readonly ca: Buffer | undefined;
  /**
   * startup: until AuthenticationOk, GSS messages are ours; authenticated: until ReadyForQuery,
   * messages pass but a FATAL (e.g. the role does not exist, checked after authentication) is
   * translated; passthrough: bytes only.
   */
  private phase: 'negotiate' | 'gssenc' | 'sslnegotiate' | 'tlshandshake' | 'startup' | 'authenticated' | 'passthrough' | 'failed' = 'startup';
  /** Bytes of the encryption set-up (the G/N answer, length-prefixed tokens), before pg's start-up. */
  private raw: Buffer = Buffer.alloc(0);
  /** Sealed bytes not yet forming a complete packet. */
  private cipher: Buffer = Buffer.alloc(0);
  private channel: SecureChannel | null = null;
  private maxPlain = 0;
  /** Unsealed data is delivered in order through this chain (unseal may run on the libuv pool). */
  private inbound: Promise<void> = Promise.resolve();
  private encContext: InitiatorContext | null = null;
  private where = '';
  private pending: Buffer = Buffer.alloc(0);
  private busy = false;
  private context: InitiatorContext | null = null;
  private contextComplete = false;
  private user = '';

  constructor(
    private readonly opts: GssapiStreamOptions,
    ca?: Buffer,
  ) {
    super();
    this.ca = ca;
    this.socket.on('connect', () => this.onSocketConnect());
    this.listen(this.socket);
  }

  /** Data, end, error and close of the transport: the TCP socket, then the TLS socket over it. */
  private listen(transport: Socket): void {
    const current = () => transport === (this.tls ?? this.socket);
    transport.on('data', (chunk: Buffer) => {
      if (current()) this.onSocketData(chunk);
    });
    // During start-up the server's last words (an ErrorResponse) may still wait behind a GSS step
    // when it hangs up: let drainStartup read them first, so the caller gets the real reason.
    transport.on('end', () => {
      if (current()) this.afterInbound(() => this.onSocketEnd());
    });
    transport.on('error', (err) => {
      if (this.phase === 'tlshandshake') this.fail(new PgTlsError(this.tlsFailure(err), err));
      else this.destroy(err);
    });
    transport.on('close', () => {
      if (!current()) return;
      this.afterInbound(() => {
        if (this.phase === 'passthrough' || this.phase === 'failed') {
          this.disposeContext();
          if (!this.destroyed) this.destroy();
        } else this.onSocketEnd();
      });
    });
  }

  /** The byte stream to the server: TLS once it is up, else the TCP socket. */
  private get transport(): Socket {
    return this.tls ?? this.socket;
  }

  /** What protects this connection on the wire (meaningful once pg has connected). */
  get protection(): PgLinkProtection {
    return this.channel ? 'gssenc' : this.tls ? 'tls' : 'none';
  }

  /** Protocol and cipher of the TLS session, when {@link GssapiStream.protection} is `tls`. */
  get tlsInfo(): PgTlsInfo | undefined {
    return this.tlsSession;
  }

  private get gssencmode(): GssEncMode {
    return this.opts.gssencmode ?? 'prefer';
  }

  private get sslmode(): SslMode {
    return this.opts.sslmode ?? 'prefer';
  }

  private onSocketConnect(): void {
    if (this.gssencmode === 'disable') return this.startTls();
    this.phase = 'negotiate';
    this.socket.write(GSSENC_REQUEST);
  }

  /** After GSSAPI encryption is off or refused: ask for TLS unless sslmode is disable. */
  private startTls(): void {
    if (this.sslmode === 'disable') {
      this.phase = 'startup';
      this.emit('connect');
      return;
    }
    this.phase = 'sslnegotiate';
    this.socket.write(SSL_REQUEST);
  }

  /** The S/N answer to SSLRequest; on "S" the TLS handshake over the same socket. */
  private onSslAnswer(): void {
    if (this.raw.length < 1) return;
    const answer = String.fromCharCode(this.raw[0]);
    // As after GSSENCRequest: bytes behind the answer were not protected by TLS (CVE-2021-23222).
    if (this.raw.length > 1 && (answer === 'S' || answer === 'N')) {
      return this.fail(new PgProtocolError('the server sent unencrypted data right after its answer to the SSLRequest'));
    }
    this.raw = Buffer.alloc(0);
    if (answer === 'N') {
      if (this.sslmode !== 'prefer') return this.fail(new PgTlsRefusedError(this.where, this.sslmode));
      this.phase = 'startup';
      this.emit('connect');
      return;
    }
    if (answer !== 'S') {
      // An ErrorResponse here is a server older than 7.0 or not PostgreSQL at all.
      return this.fail(new PgProtocolError(`the server did not understand the SSLRequest (answered ${JSON.stringify(answer)}; set sslmode to "disable")`));
    }
    const mode = this.sslmode;
    // libpq: verify-ca and verify-full verify the chain; require does too when a root certificate
    // file is given; prefer never does.
    const verify = mode === 'verify-ca' || mode === 'verify-full' || (mode === 'require' && this.ca !== undefined);
    const host = this.where.slice(0, this.where.lastIndexOf(':'));
    this.phase = 'tlshandshake';
    const tls = tlsConnect({
      socket: this.socket,
      ca: this.ca,
      rejectUnauthorized: verify,
      // SNI takes a name, not an address.
      servername: isIP(host) ? undefined : host,
      checkServerIdentity: (_name: string, cert: PeerCertificate) => (mode === 'verify-full' ? checkServerIdentity(host, cert) : undefined),
      minVersion: 'TLSv1.2',
    });
    this.tls = tls;
    this.listen(tls);
    tls.once('secureConnect', () => {
      if (this.phase !== 'tlshandshake') return;
      this.tlsSession = { protocol: tls.getProtocol() ?? 'unknown', cipher: tls.getCipher()?.name ?? 'unknown', verified: verify };
      this.phase = 'startup';
      this.emit('connect');
    });
  }

  /** A TLS handshake error in words that say what to change. */
  private tlsFailure(err: Error & { code?: string }): string {
    const host = this.where.slice(0, this.where.lastIndexOf(':'));
    if (err.code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return `the server's certificate does not name "${host}" (sslmode=verify-full): connect by a name the certificate lists, or issue the server a certificate for "${host}" (${err.message})`;
    }
    if (/CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(err.code ?? '')) {
      return `the server's certificate is not signed by a certificate authority in sslrootcert (sslmode=${this.sslmode}): set sslrootcert (FORWARDABLE_PG_SSLROOTCERT) to the CA that issued the server's certificate (${err.code}: ${err.message})`;
    }
    return `the TLS handshake with ${this.where} failed (sslmode=${this.sslmode}): ${err.message}`;
  }

  private onSocketEnd(): void {
    if (this.phase === 'negotiate' || this.phase === 'gssenc') {
      return this.fail(new PgGssapiHandshakeError('the server closed the connection while setting up GSSAPI encryption'));
    }
    if (this.phase === 'sslnegotiate' || this.phase === 'tlshandshake') {
      return this.fail(new PgTlsError(`the server closed the connection while setting up TLS (sslmode=${this.sslmode})`));
    }
    if (this.channel && this.cipher.length > 0) {
      return this.fail(new PgGssencBrokenError(`the connection ended in the middle of an encrypted packet (${this.cipher.length} bytes of it arrived)`));
    }
    if (this.phase === 'passthrough') this.push(null);
    else if (this.phase !== 'failed') this.serverClosed();
  }

  /** Run `fn` once every unseal already queued has been delivered (order of end/close vs data). */
  private afterInbound(fn: () => void): void {
    if (!this.channel) return fn();
    this.inbound = this.inbound.then(fn);
  }

  private onSocketData(chunk: Buffer): void {
    if (this.phase === 'failed') return;
    if (this.phase === 'negotiate' || this.phase === 'gssenc') {
      this.raw = this.raw.length ? Buffer.concat([this.raw, chunk]) : chunk;
      return this.drainEncryptionSetup();
    }
    if (this.phase === 'sslnegotiate') {
      this.raw = this.raw.length ? Buffer.concat([this.raw, chunk]) : chunk;
      return this.onSslAnswer();
    }
    if (this.channel) return this.onSealed(chunk);
    this.onServerData(chunk);
  }

  /** Cut complete packets off the sealed input and unseal them, in order. */
  private onSealed(chunk: Buffer): void {
    this.cipher = this.cipher.length ? Buffer.concat([this.cipher, chunk]) : chunk;
    let end = 0;
    while (this.cipher.length - end >= 4) {
      const len = this.cipher.readUInt32BE(end);
      if (len > MAX_SEALED_TOKEN) {
        return this.fail(new PgGssencBrokenError(`the server sent an oversized packet (${len} bytes; at most ${MAX_SEALED_TOKEN} are allowed)`));
      }
      if (this.cipher.length - end < 4 + len) break;
      end += 4 + len;
    }
    if (end === 0) return;
    const packets = this.cipher.subarray(0, end);
    this.cipher = this.cipher.subarray(end);
    const channel = this.channel as SecureChannel;
    this.inbound = this.inbound
      .then(() => (this.phase === 'failed' ? null : channel.unseal(packets)))
      .then(
        (plain) => {
          if (plain && this.phase !== 'failed') this.onServerData(plain);
        },
        (err: Error) => {
          if (!this.destroyed) {
            this.fail(new PgGssencBrokenError(`a packet from the server failed GSSAPI verification (tampered with, replayed or corrupted): ${err.message}`, err));
          }
        },
      );
  }

  /** The G/N answer to GSSENCRequest, then the context tokens, each a 4-byte length + token. */
  private drainEncryptionSetup(): void {
    if (this.busy) return;
    if (this.phase === 'negotiate') {
      if (this.raw.length < 1) return;
      const answer = String.fromCharCode(this.raw[0]);
      // Anything after the one-byte answer was sent before we could ask for it: unprotected bytes a
      // man in the middle may have injected (CVE-2021-23222); libpq refuses them too.
      if (this.raw.length > 1 && (answer === 'G' || answer === 'N')) {
        return this.fail(new PgProtocolError('the server sent unencrypted data right after its answer to the GSSENCRequest'));
      }
      this.raw = Buffer.alloc(0);
      if (answer === 'N') {
        if (this.gssencmode === 'require') return this.fail(new PgGssencRefusedError(this.where));
        // libpq's order: GSSAPI encryption refused, so TLS next, on the same connection.
        return this.startTls();
      }
      if (answer !== 'G') {
        return this.fail(
          new PgProtocolError(
            `the server did not understand the GSSENCRequest (answered ${JSON.stringify(answer)}; PostgreSQL 12 or later is needed for ` +
              `GSSAPI encryption, or set gssencmode to "disable")`,
          ),
        );
      }
      this.phase = 'gssenc';
      return this.encStep(null);
    }
    // phase 'gssenc': wait for the server's next token (or an ErrorResponse, which starts with 'E').
    if (this.raw.length < 4) return;
    if (this.raw[0] === 0x45 /* 'E' */) {
      if (this.raw.length < 5) return;
      const len = this.raw.readInt32BE(1);
      if (len < 4 || len > MAX_HANDSHAKE_TOKEN) return this.fail(new PgProtocolError(`malformed error message during GSSAPI encryption set-up (length ${len})`));
      if (this.raw.length < 1 + len) return;
      return this.fail(pgAuthErrorFrom(parseErrorFields(this.raw.subarray(5, 1 + len)), this.user));
    }
    const len = this.raw.readUInt32BE(0);
    if (len > MAX_HANDSHAKE_TOKEN) return this.fail(new PgProtocolError(`oversized GSSAPI token from the server (${len} bytes)`));
    if (this.raw.length < 4 + len) return;
    const token = Buffer.from(this.raw.subarray(4, 4 + len));
    this.raw = this.raw.subarray(4 + len);
    this.encStep(token);
  }

  private encStep(input: Buffer | null): void {
    const target = `${this.opts.serviceName ?? 'postgres'}@${this.spnHost}`;
    let context: InitiatorContext;
    try {
      context = this.encContext ??= new InitiatorContext({
        credential: this.opts.credential,
        target,
        mutual: true,
        delegate: false,
        confidentiality: true,
        mech: 'krb5',
      });
    } catch (err) {
      return this.fail(new PgGssapiHandshakeError(`GSSAPI could not start an encryption context to ${target}: ${(err as Error).message}`, err));
    }
    this.busy = true;
    context.step(input).then(
      ({ token, complete, flags }) => {
        this.busy = false;
        if (this.phase !== 'gssenc') return;
        if (token && token.length) {
          const header = Buffer.alloc(4);
          header.writeUInt32BE(token.length, 0);
          this.socket.write(Buffer.concat([header, token]));
        }
        if (!complete) return this.drainEncryptionSetup();
        if (!flags.confidentiality || !flags.integrity || !flags.mutual || !flags.replay || !flags.sequence) {
          return this.fail(new PgGssapiHandshakeError(`the GSSAPI context to ${target} lacks confidentiality, integrity, replay or sequence protection; refusing it`));
        }
        try {
          this.channel = context.secureChannel();
          this.encContext = null;
          this.maxPlain = (this.channel as SecureChannel).wrapSizeLimit(MAX_SEALED_TOKEN);
        } catch (err) {
          return this.fail(new PgGssapiHandshakeError(`GSSAPI encryption could not start: ${(err as Error).message}`, err));
        }
        // The encryption context authenticated both sides: the server sends AuthenticationOk
        // without a separate GSS exchange.
        this.contextComplete = true;
        this.phase = 'startup';
        const early = this.raw;
        this.raw = Buffer.alloc(0);
        if (early.length) this.onSealed(early);
        this.emit('connect');
      },
      (err: Error) => {
        this.busy = false;
        this.fail(new PgGssapiHandshakeError(`GSSAPI could not build an encryption token for ${target}: ${err.message}`, err));
      },
    );
  }

  /** Send to the server: sealed once encryption is on. */
  private send(buf: Buffer, cb?: (err?: Error | null) => void): void {
    const channel = this.channel;
    if (!channel) {
      this.transport.write(buf, cb);
      return;
    }
    channel.seal(buf, this.maxPlain).then(
      (packets) => {
        if (this.socket.destroyed) return cb?.(new Error('the connection to PostgreSQL is closed'));
        this.socket.write(packets, cb);
      },
      (err: Error) => {
        const e = new PgGssencBrokenError(`GSSAPI could not encrypt data for the server: ${err.message}`, err);
        cb?.(e);
        this.fail(e);
      },
    );
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
    this.where = `${host}:${port}`;
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
    this.send(chunk, cb);
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
    this.send(chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk)), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    // Writes are sealed asynchronously: end after the last one reached the socket.
    if (this.channel) this.channel.seal(Buffer.alloc(0), this.maxPlain).then(() => this.socket.end(cb), () => this.socket.end(cb));
    else this.transport.end(cb);
  }

  override _read(): void {
    this.transport.resume();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.disposeContext();
    this.disposeChannel();
    this.tls?.destroy();
    this.socket.destroy();
    cb(err);
  }

  private forward(buf: Buffer): void {
    if (this.destroyed) return;
    if (buf.length && !this.push(buf)) this.transport.pause();
  }

  private onServerData(chunk: Buffer): void {
    if (this.phase === 'passthrough') return this.forward(chunk);
    if (this.phase === 'failed') return;
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    // A handler of socket data must never throw: that would take the process down.
    try {
      this.drainStartup();
    } catch (err) {
      this.fail(new PgProtocolError(`unreadable start-up message from the server (${(err as Error).message})`));
    }
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
        // An authentication request carries at least its 4-byte code (issue #22: a short one used
        // to throw from readInt32BE inside the socket's data handler and kill the process).
        if (len < 8) return this.fail(new PgProtocolError(`the server sent an authentication request of ${len - 4} bytes (at least 4 expected)`));
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
          this.send(Buffer.concat([header, token]));
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
    if (this.phase === 'failed') return;
    this.phase = 'failed';
    this.pending = Buffer.alloc(0);
    this.cipher = Buffer.alloc(0);
    this.raw = Buffer.alloc(0);
    this.destroy(err);
  }

  private disposeContext(): void {
    this.context?.dispose();
    this.context = null;
    this.encContext?.dispose();
    this.encContext = null;
  }

  private disposeChannel(): void {
    this.channel?.dispose();
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
  if (opts.gssencmode !== undefined && !GSSENC_MODES.includes(opts.gssencmode)) {
    throw new TypeError(`gssencmode must be one of ${GSSENC_MODES.join(', ')}, not "${String(opts.gssencmode)}"`);
  }
  if (opts.sslmode !== undefined && !SSL_MODES.includes(opts.sslmode)) {
    const allow = (opts.sslmode as string) === 'allow' ? ' ("allow" is not supported: use "prefer")' : '';
    throw new TypeError(`sslmode must be one of ${SSL_MODES.join(', ')}, not "${String(opts.sslmode)}"${allow}`);
  }
  if ((opts.sslmode === 'verify-ca' || opts.sslmode === 'verify-full') && !opts.sslrootcert) {
    throw new TypeError(`sslmode "${opts.sslmode}" needs sslrootcert: the PEM file of the CA that issued the server's certificate`);
  }
  let ca: Buffer | undefined;
  if (opts.sslrootcert) {
    try {
      ca = readFileSync(opts.sslrootcert);
    } catch (err) {
      throw new TypeError(`sslrootcert ${opts.sslrootcert} cannot be read: ${(err as Error).message}`);
    }
  }
  return () => new GssapiStream(opts, ca);
}
