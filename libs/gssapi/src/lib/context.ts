import { Credential, nameType, requireString, wrapDelegated } from './credential';
import { GssUsageError, localGssError, toGssError } from './errors';
import { loadNative } from './load';
import type { NativeAcceptor, NativeInitiator, NativeSealer } from './native';
import { PacLogonInfo, parsePacLogonInfo } from './pac';
import { SecureChannel } from './secure-channel';

/** The largest token accepted (bytes); larger ones are refused before reaching the library. */
export const MAX_TOKEN_BYTES = 64 * 1024;

/** Context flags (RFC 2744 section 3.10), decoded. */
export interface ContextFlags {
  /** GSS_C_DELEG_FLAG: credentials were delegated (forwarded TGT, or an S4U2proxy credential). */
  delegate: boolean;
  /** GSS_C_MUTUAL_FLAG: the peer authenticated itself too (the acceptor returns a token). */
  mutual: boolean;
  replay: boolean;
  sequence: boolean;
  confidentiality: boolean;
  integrity: boolean;
  anonymous: boolean;
  /** GSS_C_PROT_READY_FLAG */
  protectionReady: boolean;
  /** GSS_C_TRANS_FLAG: the context can be exported. */
  transferable: boolean;
  /** GSS_C_DELEG_POLICY_FLAG: delegate only if the KDC marks the target ok-as-delegate. */
  delegationPolicy: boolean;
  /** The raw OM_uint32. */
  raw: number;
}

function decodeFlags(raw: number): ContextFlags {
  return {
    delegate: (raw & 1) !== 0,
    mutual: (raw & 2) !== 0,
    replay: (raw & 4) !== 0,
    sequence: (raw & 8) !== 0,
    confidentiality: (raw & 16) !== 0,
    integrity: (raw & 32) !== 0,
    anonymous: (raw & 64) !== 0,
    protectionReady: (raw & 128) !== 0,
    transferable: (raw & 256) !== 0,
    delegationPolicy: (raw & 32768) !== 0,
    raw,
  };
}

/** The GSS mechanism a token was framed with. */
export type TokenMechanism = 'krb5' | 'spnego' | 'ntlm' | 'unknown';

const OID_SPNEGO = Buffer.from('2b0601050502', 'hex');
const OID_KRB5 = [
  Buffer.from('2a864886f712010202', 'hex'), // 1.2.840.113554.1.2.2
  Buffer.from('2a864882f712010202', 'hex'), // 1.2.840.48018.1.2.2 (Microsoft's)
  Buffer.from('2b0601050205', 'hex'), // 1.3.6.1.5.2.5 (IAKERB)
];

/**
 * Which mechanism an initial context token names (RFC 2743 3.1 framing:
 * `[APPLICATION 0] { OID, ... }`), or `ntlm` for a raw NTLMSSP message.
 */
export function tokenMechanism(token: Buffer): TokenMechanism {
  if (token.length >= 8 && token.subarray(0, 8).equals(Buffer.from('NTLMSSP\0', 'latin1'))) return 'ntlm';
  if (token.length < 4 || token[0] !== 0x60) return 'unknown';
  let i = 1;
  const first = token[i++];
  if (first & 0x80) i += first & 0x7f; // long-form length: skip its bytes
  if (i + 2 > token.length || token[i] !== 0x06) return 'unknown';
  const len = token[i + 1];
  const oid = token.subarray(i + 2, i + 2 + len);
  if (oid.length !== len) return 'unknown';
  if (oid.equals(OID_SPNEGO)) return 'spnego';
  if (OID_KRB5.some((k) => k.equals(oid))) return 'krb5';
  return 'unknown';
}

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Decode the token of an `Authorization: Negotiate <base64>` header (or the bare base64),
 * strictly: anything that is not canonical base64 of 1 to {@link MAX_TOKEN_BYTES} bytes is a
 * {@link DefectiveTokenError} (the client's fault: answer 401).
 */
export function decodeNegotiateToken(value: string): Buffer {
  if (typeof value !== 'string') throw new GssUsageError('ERR_GSS_INVALID_ARG', 'the header value must be a string');
  const m = /^\s*(?:negotiate\s+)?(\S+)\s*$/i.exec(value);
  const b64 = m?.[1] ?? '';
  const bad = (why: string) =>
    localGssError('ERR_GSS_DEFECTIVE_TOKEN', `the Negotiate token is ${why}: the client must send 'Authorization: Negotiate <base64 token>'`, 'decodeNegotiateToken', 'Defective token detected', 0x90000);
  if (!b64 || b64.length % 4 !== 0 || !B64.test(b64)) throw bad('not valid base64');
  const buf = Buffer.from(b64, 'base64');
  if (buf.toString('base64') !== b64) throw bad('not canonical base64');
  if (buf.length > MAX_TOKEN_BYTES) throw bad(`larger than ${MAX_TOKEN_BYTES} bytes`);
  return buf;
}

function toTokenBuffer(token: unknown): Buffer {
  if (typeof token === 'string') return decodeNegotiateToken(token);
  if (!(token instanceof Uint8Array)) throw new GssUsageError('ERR_GSS_INVALID_ARG', 'token must be a Buffer, a Uint8Array or a base64 string');
  const buf = Buffer.isBuffer(token) ? token : Buffer.from(token.buffer, token.byteOffset, token.byteLength);
  if (buf.length === 0 || buf.length > MAX_TOKEN_BYTES) {
    throw localGssError('ERR_GSS_DEFECTIVE_TOKEN', `the token must be 1 to ${MAX_TOKEN_BYTES} bytes, not ${buf.length}`, 'gss_accept_sec_context', 'Defective token detected', 0x90000);
  }
  return buf;
}

/** What one {@link AcceptorContext.step} produced. */
export interface AcceptResult {
  /** True when the context is established; otherwise send `token` and call `step` again. */
  complete: boolean;
  /** Token for the client (`WWW-Authenticate: Negotiate <base64>`): the mutual-auth reply, or the next leg. */
  token: Buffer | null;
  /** The authenticated client, e.g. `alice@FORWARDABLE.TEST` (only when complete). */
  principal?: string;
  flags: ContextFlags;
  /** Seconds the context stays valid (the client's ticket lifetime); null when indefinite. */
  lifetime: number | null;
  /** How the client framed its token: raw Kerberos or SPNEGO (browsers, curl). */
  mech: 'krb5' | 'spnego';
  /** The negotiated mechanism's OID (Kerberos: 1.2.840.113554.1.2.2); empty if not reported. */
  mechOid: string;
  /**
   * The delegated credential, if any: the caller owns it and must dispose it.
   * `forwarded` = the client's TGT (unconstrained); `proxy` = S4U2proxy (service credential with
   * usage `both`), usable only for targets the KDC allows. Told apart by the credential's
   * impersonator (GSS_KRB5_GET_CRED_IMPERSONATOR), not by the flags, which are the same.
   */
  delegated: Credential | null;
  delegation: 'forwarded' | 'proxy' | 'none';
  /**
   * Whether the client's service ticket was forwardable. A non-forwardable ticket means no
   * delegation of either kind is possible (no TGT was forwarded, and the KDC refuses S4U2proxy
   * evidence that is not forwardable): `delegation` is then `none`. Null if unknown.
   */
  ticketForwardable: boolean | null;
  /**
   * Attributes the mechanism attached to the client's name (RFC 6680 naming extensions), read
   * with gss_inquire_name / gss_get_name_attribute once the context is complete. A ticket with a
   * Microsoft PAC (Active Directory; MIT KDCs from 1.20 add a smaller one) shows `urn:mspac:*`
   * attributes, whose raw values are given; see {@link pacLogonInfo}. Empty while incomplete.
   */
  nameAttributes: NameAttribute[];
}

/** One attribute of an accepted client's name. */
export interface NameAttribute {
  /** The attribute's URN, e.g. `urn:mspac:logon-info`. */
  name: string;
  /** The mechanism verified it (for the PAC: its server checksum, made with our service key). */
  authenticated: boolean;
  /** The values listed are all there are. */
  complete: boolean;
  /** Raw values; only read for `urn:mspac:*` attributes (empty for the others). */
  values: Buffer[];
}

/**
 * The PAC logon information of an accepted client, when its ticket carried one that the library
 * verified: the user's SID, their group SIDs, account and domain name.
 * @returns null when there is no authenticated `urn:mspac:logon-info` attribute (MIT DB2 realms,
 *   MIT 1.20 PACs, which carry no logon info, or a PAC whose checksum was not verified).
 * @throws PacParseError when the logon info is present but malformed.
 */
export function pacLogonInfo(result: Pick<AcceptResult, 'nameAttributes'>): PacLogonInfo | null {
  const attr = result.nameAttributes.find((a) => a.name === 'urn:mspac:logon-info' && a.authenticated && a.values.length > 0);
  return attr ? parsePacLogonInfo(attr.values[0]) : null;
}

/**
 * The acceptor side of one security context (one HTTP Negotiate exchange). One step at a time;
 * dispose it when done (it holds the session key). Errors from `step` are {@link GssError}s
 * caused by client input: answer 401.
 */
export class AcceptorContext {
  readonly #native: NativeAcceptor;
  readonly #krb5Only: boolean;
  #busy = false;
  #disposed = false;
  #mech: 'krb5' | 'spnego' | null = null;

  /**
   * @param credential - a `service` credential from {@link acquireServiceCredential}.
   * @param opts - `krb5Only` (default true): refuse NTLM and any other non-Kerberos mechanism,
   *   while still accepting SPNEGO-wrapped Kerberos.
   */
  constructor(credential: Credential, opts: { krb5Only?: boolean } = {}) {
    const native = Credential.nativeHandle(credential, 'the service credential');
    if (credential.usage === 'initiate') throw new GssUsageError('ERR_GSS_INVALID_ARG', 'the credential cannot accept contexts: use acquireServiceCredential');
    if (opts.krb5Only !== undefined && typeof opts.krb5Only !== 'boolean') throw new GssUsageError('ERR_GSS_INVALID_ARG', 'krb5Only must be a boolean');
    this.#krb5Only = opts.krb5Only !== false;
    const { NativeAcceptor } = loadNative();
    this.#native = new NativeAcceptor(native, this.#krb5Only);
  }

  /** True after {@link AcceptorContext.dispose}. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * One gss_accept_sec_context step on the libuv pool.
   * @param token - the client's token: raw bytes, or the base64 of a Negotiate header.
   * @throws GssUsageError (`ERR_GSS_CONTEXT_BUSY`) if a step is already running,
   *   (`ERR_GSS_DISPOSED`), (`ERR_GSS_CONTEXT_COMPLETE`), (`ERR_GSS_CONTEXT_FAILED`);
   *   GssError for anything wrong with the token.
   */
  async step(token: Buffer | Uint8Array | string): Promise<AcceptResult> {
    if (this.#disposed) throw new GssUsageError('ERR_GSS_DISPOSED', 'this context has been disposed');
    if (this.#busy) throw new GssUsageError('ERR_GSS_CONTEXT_BUSY', 'a step is already in progress on this context: await it before the next');
    const buf = toTokenBuffer(token);
    if (this.#mech === null) {
      const m = tokenMechanism(buf);
      if (m === 'ntlm' && this.#krb5Only) {
        // Refused here too so that the message is explicit; the native side refuses it as well.
        throw localGssError('ERR_GSS_MECH_REFUSED', 'NTLM is refused: only Kerberos (raw or SPNEGO-wrapped) is accepted; make the client use Kerberos (is the URL host the one in the SPN?)', 'gss_accept_sec_context', 'An unsupported mechanism was requested', 0x10000);
      }
      this.#mech = m === 'spnego' ? 'spnego' : 'krb5';
    }
    this.#busy = true;
    try {
      const r = await this.#native.step(buf);
      const delegated = r.delegated ? wrapDelegated(r.delegated) : null;
      return {
        complete: r.complete,
        token: r.token,
        ...(r.principal !== null ? { principal: r.principal } : {}),
        flags: decodeFlags(r.flags),
        lifetime: r.lifetime < 0 ? null : r.lifetime,
        mech: this.#mech,
        mechOid: r.mech,
        delegated,
        delegation: delegated ? (delegated.kind as 'forwarded' | 'proxy') : 'none',
        ticketForwardable: r.ticketForwardable,
        nameAttributes: (r.nameAttributes ?? []).map((a) => ({ name: a.name, authenticated: a.authenticated, complete: a.complete, values: a.values })),
      };
    } catch (e) {
      throw toGssError(e, { operation: 'accept' });
    } finally {
      this.#busy = false;
    }
  }

  /** Delete the context (gss_delete_sec_context). Idempotent; deferred while a step runs. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#native.dispose();
  }
}

/** Options of {@link InitiatorContext}. */
export interface InitiatorOptions {
  /** The credential to act with (`forwarded`, `proxy`, `password`, or a service's `both`). */
  credential: Credential;
  /** The target: host-based `postgres@localhost` or a principal `postgres/localhost@REALM`. */
  target: string;
  /** Ask the target to authenticate itself (default true). */
  mutual?: boolean;
  /** Forward our TGT to the target (default false). */
  delegate?: boolean;
  /** `krb5` (default; what PostgreSQL expects) or `spnego` (what HTTP Negotiate expects). */
  mech?: 'krb5' | 'spnego';
  /**
   * Ask for per-message confidentiality and integrity (GSS_C_CONF_FLAG | GSS_C_INTEG_FLAG), as
   * PostgreSQL's GSSAPI encryption does; default false. Use {@link InitiatorContext.secureChannel}
   * once established.
   */
  confidentiality?: boolean;
}

/** What one {@link InitiatorContext.step} produced. */
export interface InitiateResult {
  /** Send this to the target when not null. */
  token: Buffer | null;
  /** True when established; otherwise feed the target's reply to `step` again. */
  complete: boolean;
  flags: ContextFlags;
  /** Seconds the context stays valid; null when indefinite. */
  lifetime: number | null;
  /** Dotted OID of the mechanism in use (may be empty before completion). */
  mechOid: string;
}

/**
 * The initiator side of a security context to a target service, with a chosen credential
 * (used by libs/pg-gssapi: AuthenticationGSS, then `step()`, then a 'p' message, then
 * AuthenticationGSSContinue, then `step(token)`). The first step may talk to the KDC (service ticket, S4U2proxy); it runs on
 * the libuv pool.
 */
export class InitiatorContext {
  readonly #native: NativeInitiator;
  readonly target: string;
  #busy = false;
  #disposed = false;

  constructor(opts: InitiatorOptions) {
    if (typeof opts !== 'object' || opts === null) throw new GssUsageError('ERR_GSS_INVALID_ARG', 'options must be an object');
    const cred = Credential.nativeHandle(opts.credential);
    if (opts.credential.usage === 'accept') throw new GssUsageError('ERR_GSS_INVALID_ARG', 'an accept-only credential cannot initiate: use a delegated, password or both-usage credential');
    const target = requireString(opts.target, 'target');
    if (!/^[^@/\s]+(@[^@/\s]+|\/[^@/\s]+(@[^@/\s]+)?)$/.test(target)) {
      throw new GssUsageError('ERR_GSS_INVALID_ARG', `target must be 'service@host' or 'service/host@REALM', not ${target}`);
    }
    const mech = opts.mech ?? 'krb5';
    if (mech !== 'krb5' && mech !== 'spnego') throw new GssUsageError('ERR_GSS_INVALID_ARG', `mech must be 'krb5' or 'spnego', not ${String(mech)}`);
    for (const k of ['mutual', 'delegate', 'confidentiality'] as const) {
      if (opts[k] !== undefined && typeof opts[k] !== 'boolean') throw new GssUsageError('ERR_GSS_INVALID_ARG', `${k} must be a boolean`);
    }
    const { constants, NativeInitiator } = loadNative();
    let flags = constants['GSS_C_SEQUENCE_FLAG'] | constants['GSS_C_REPLAY_FLAG'];
    if (opts.mutual !== false) flags |= constants['GSS_C_MUTUAL_FLAG'];
    if (opts.delegate === true) flags |= constants['GSS_C_DELEG_FLAG'];
    if (opts.confidentiality === true) flags |= constants['GSS_C_CONF_FLAG'] | constants['GSS_C_INTEG_FLAG'];
    this.target = target;
    this.#native = new NativeInitiator(cred, target, nameType(target) === 'hostbased', flags, mech === 'spnego');
  }

  /** True after {@link InitiatorContext.dispose}. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * One gss_init_sec_context step: call with no input first, then with each token the target
   * returns until `complete`.
   * @throws DelegationRefusedError (S4U2proxy to a target the service may not delegate to),
   *   ServerNotFoundError, CredentialsExpiredError, GssUsageError
   */
  async step(input?: Buffer | null): Promise<InitiateResult> {
    if (this.#disposed) throw new GssUsageError('ERR_GSS_DISPOSED', 'this context has been disposed');
    if (this.#busy) throw new GssUsageError('ERR_GSS_CONTEXT_BUSY', 'a step is already in progress on this context: await it before the next');
    if (input !== undefined && input !== null && !Buffer.isBuffer(input)) throw new GssUsageError('ERR_GSS_INVALID_ARG', 'input must be a Buffer or null');
    if (input && input.length > MAX_TOKEN_BYTES) throw new GssUsageError('ERR_GSS_INVALID_ARG', `input must be at most ${MAX_TOKEN_BYTES} bytes`);
    this.#busy = true;
    try {
      const r = await this.#native.step(input ?? null);
      return { token: r.token, complete: r.complete, flags: decodeFlags(r.flags), lifetime: r.lifetime < 0 ? null : r.lifetime, mechOid: r.mech };
    } catch (e) {
      throw toGssError(e, { operation: 'initiate', target: this.target });
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Hand the established context over to a {@link SecureChannel} for gss_wrap / gss_unwrap; this
   * object is disposed by the move (the channel owns the context and deletes it on dispose).
   * @throws GssUsageError `ERR_GSS_CONTEXT_INCOMPLETE` before the last step completed,
   *   `ERR_GSS_CONTEXT_BUSY` while a step runs, `ERR_GSS_DISPOSED`
   */
  secureChannel(): SecureChannel {
    if (this.#disposed) throw new GssUsageError('ERR_GSS_DISPOSED', 'this context has been disposed');
    if (this.#busy) throw new GssUsageError('ERR_GSS_CONTEXT_BUSY', 'a step is in progress on this context: await it first');
    let sealer: NativeSealer;
    try {
      sealer = new (loadNative().NativeSealer)(this.#native);
    } catch (e) {
      throw toGssError(e, { operation: 'wrap', target: this.target });
    }
    this.#disposed = true;
    return SecureChannel.fromNative(sealer, this.target);
  }

  /** Delete the context (gss_delete_sec_context). Idempotent; deferred while a step runs. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#native.dispose();
  }
}

