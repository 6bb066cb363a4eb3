/**
 * An LDAP SASL/GSSAPI bind (RFC 4752) over an `ldapts` client, driven by our own GSSAPI binding,
 * so the API (with its keytab) and the role tool (with the operator's ticket) read the directory
 * without any stored LDAP password.
 *
 * Why this is not a plain `client.bind('GSSAPI', …)`: ldapts 9.2 has no GSSAPI mechanism, and its
 * bind API carries SASL credentials as UTF-8 strings both ways (`BerWriter.writeString` on the
 * way out, `BindResponse.data` decoded with `toString('utf8')` on the way in), which corrupts
 * binary Kerberos tokens. So we send our own BindRequest subclass (the credentials written as an
 * OCTET STRING of raw bytes) through the client's `_send`, and read `serverSaslCreds` from the
 * raw bytes of the BindResponse the client's parser is decoding. Both are ldapts internals: they
 * are checked at run time (a clear error if a new ldapts changes them) and the version is pinned.
 *
 * Security layer: after authentication the server offers protection levels; we choose "none"
 * (RFC 4752 section 3.1), which is only acceptable where the transport itself protects the
 * connection: `ldaps://` (TLS) or a loopback address. {@link assertGssapiTransport} enforces it.
 * Signing/sealing every LDAP PDU (the SASL integrity/confidentiality layer) is not implemented.
 */
import { BerReader, BerWriter, BindRequest, Client } from 'ldapts';
import { Credential, InitiatorContext, SecureChannel } from '@forwardable/gssapi';

const LDAP_RES_BIND = 0x61;
const LDAP_REQ_BIND_SASL = 0xa3;
const SERVER_SASL_CREDS = 0x87;
const RESULT_SUCCESS = 0;
const RESULT_SASL_BIND_IN_PROGRESS = 14;
/** RFC 4511 strongerAuthRequired: the server wants TLS or a SASL security layer for this bind. */
const RESULT_STRONGER_AUTH_REQUIRED = 8;
/** RFC 4752: bit 0 of the first byte of the server's offer is "no security layer". */
const LAYER_NONE = 0x01;
/** A GSSAPI exchange takes 1-2 round trips (3 with the layer negotiation); more is a broken peer. */
const MAX_ROUNDS = 8;

/** The shape of the ldapts internals we use; checked at run time. */
interface LdaptsInternals {
  isConnected: boolean;
  _connect(): Promise<void>;
  _send(message: BindRequest): Promise<{ status: number; errorMessage?: string } | undefined>;
  _nextMessageId(): number;
  messageParser: {
    _getMessageFromProtocolOperation(messageId: number, protocolOperation: number, reader: BerReader, details: unknown): unknown;
  };
}

/** A failed SASL/GSSAPI bind, with what to check. */
export class LdapGssapiBindError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LdapGssapiBindError';
  }
}

/** A SASL bind request with mechanism GSSAPI and binary credentials (RFC 4511 section 4.2). */
class GssapiBindRequest extends BindRequest {
  constructor(messageId: number, private readonly credentials: Buffer | null) {
    super({ messageId, mechanism: 'GSSAPI' });
  }

  override writeMessage(writer: BerWriter): void {
    writer.writeInt(this.version);
    writer.writeString('');
    writer.startSequence(LDAP_REQ_BIND_SASL);
    writer.writeString('GSSAPI');
    if (this.credentials) writer.writeBuffer(this.credentials, 0x04);
    writer.endSequence();
  }
}

/**
 * Refuse a GSSAPI bind without a protected transport: with no SASL security layer, only TLS
 * (`ldaps://`) or loopback keeps the connection from being hijacked after the bind.
 * @throws RangeError naming the URL and the fix.
 */
export function assertGssapiTransport(url: string): void {
  let host: string;
  let protocol: string;
  try {
    const u = new URL(url);
    host = u.hostname.replace(/^\[|\]$/g, '');
    protocol = u.protocol;
  } catch {
    throw new RangeError(`LDAP URL ${url} is not a valid URL`);
  }
  const loopback = host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
  if (protocol !== 'ldaps:' && !loopback) {
    throw new RangeError(
      `a GSSAPI bind to ${url} needs ldaps:// (or a loopback address): Forwardable negotiates no SASL security layer, ` +
        'so the connection must be protected by TLS; use ldaps://, or FORWARDABLE_LDAP_BIND=simple over ldaps://',
    );
  }
}

/** The default SASL service of an LDAP URL: `ldap@<host>` (what the server's keytab must hold as `ldap/<host>`). */
export function defaultLdapService(url: string): string {
  return `ldap@${new URL(url).hostname.replace(/^\[|\]$/g, '')}`;
}

function internalsOf(client: Client): LdaptsInternals {
  const c = client as unknown as Partial<LdaptsInternals>;
  if (typeof c._send !== 'function' || typeof c._connect !== 'function' || typeof c._nextMessageId !== 'function' ||
      typeof c.messageParser?._getMessageFromProtocolOperation !== 'function') {
    throw new LdapGssapiBindError('this version of ldapts does not expose what the GSSAPI bind needs (_send, messageParser): pin ldapts to the version in package-lock.json');
  }
  return c as LdaptsInternals;
}

/** serverSaslCreds ([7] OCTET STRING) of a BindResponse body, as raw bytes. */
function serverSaslCreds(body: Buffer): Buffer | null {
  const r = new BerReader(body);
  r.readEnumeration();
  r.readString();
  r.readString();
  while (r.remain > 0) {
    const tag = r.peek();
    if (tag === null) break;
    const value = r.readString(tag, true);
    if (tag === SERVER_SASL_CREDS) return value ?? Buffer.alloc(0);
  }
  return null;
}

/**
 * Bind `client` with SASL/GSSAPI as `credential` to `service` (`ldap@host` or `ldap/host@REALM`),
 * choosing no security layer. Call {@link assertGssapiTransport} on the URL first.
 * @throws LdapGssapiBindError with the server's diagnostic when the bind is refused, and the
 *   binding's GssError (e.g. ServerNotFoundError for a missing `ldap/host` principal).
 */
export async function bindGssapi(client: Client, credential: Credential, service: string): Promise<void> {
  const c = internalsOf(client);
  if (!c.isConnected) await c._connect();
  // Capture the raw serverSaslCreds of each BindResponse while ldapts parses it (lossily) itself.
  const parser = c.messageParser;
  const original = parser._getMessageFromProtocolOperation;
  const raw = new Map<number, Buffer | null>();
  parser._getMessageFromProtocolOperation = function (this: unknown, messageId, protocolOperation, reader, details) {
    if (protocolOperation === LDAP_RES_BIND) raw.set(messageId, serverSaslCreds(reader.buffer.subarray(reader.offset, reader.offset + reader.length)));
    return original.call(this, messageId, protocolOperation, reader, details);
  };
  const send = async (token: Buffer | null): Promise<{ status: number; creds: Buffer | null; message: string }> => {
    const id = c._nextMessageId();
    const res = await c._send(new GssapiBindRequest(id, token));
    const creds = raw.get(id) ?? null;
    raw.delete(id);
    return { status: res?.status ?? -1, creds, message: res?.errorMessage ?? '' };
  };
  const refused = (r: { status: number; message: string }) => r.status === RESULT_STRONGER_AUTH_REQUIRED
    ? new LdapGssapiBindError(`the directory at ${service} requires a stronger bind than GSSAPI without a security layer (LDAP result 8, strongerAuthRequired${r.message ? `: ${r.message}` : ''}): connect with ldaps://, and let the server accept SASL binds over TLS without signing (Samba: ldap server require strong auth = allow_sasl_over_tls)`)
    : new LdapGssapiBindError(`the directory refused the GSSAPI bind as ${credential.principal} to ${service} (LDAP result ${r.status}${r.message ? `: ${r.message}` : ''}); check the server's keytab for ${service.replace('@', '/')}, its SASL GSSAPI module and its authz-regexp`);
  const ctx = new InitiatorContext({ credential, target: service, mutual: true, confidentiality: true });
  let channel: SecureChannel | undefined;
  try {
    let step = await ctx.step();
    let reply = await send(step.token);
    let rounds = 0;
    while (!step.complete) {
      if (reply.status !== RESULT_SASL_BIND_IN_PROGRESS) throw refused(reply);
      if (++rounds > MAX_ROUNDS) throw new LdapGssapiBindError(`the GSSAPI bind to ${service} did not finish in ${MAX_ROUNDS} rounds`);
      step = await ctx.step(reply.creds ?? Buffer.alloc(0));
      // Once complete, an empty response asks the server for its security-layer offer.
      reply = await send(step.token ?? null);
    }
    if (reply.status !== RESULT_SASL_BIND_IN_PROGRESS || !reply.creds?.length) throw refused(reply);
    channel = ctx.secureChannel();
    const offer = await channel.unwrapToken(reply.creds);
    if (offer.data.length !== 4) throw new LdapGssapiBindError(`the directory's security-layer offer is ${offer.data.length} bytes, not 4 (RFC 4752)`);
    if ((offer.data[0] & LAYER_NONE) === 0) {
      throw new LdapGssapiBindError(`the directory at ${service} requires a SASL security layer (signing or sealing every LDAP message), which Forwardable does not implement: allow "no security layer" over TLS (e.g. Samba: ldap server require strong auth = allow_sasl_over_tls; OpenLDAP: minssf=0 with TLS)`);
    }
    // No layer, maximum buffer size 0, no authorization identity (act as the authenticated one).
    const answer = await channel.wrapToken(Buffer.from([LAYER_NONE, 0, 0, 0]), false);
    const done = await send(answer);
    if (done.status !== RESULT_SUCCESS) throw refused(done);
  } finally {
    parser._getMessageFromProtocolOperation = original;
    channel?.dispose();
    ctx.dispose();
  }
}
