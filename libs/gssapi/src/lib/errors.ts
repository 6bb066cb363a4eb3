import type { NativeFailure } from './native';

/** Every condition a {@link GssError} can report; `ERR_GSS_FAILURE` is the catch-all. */
export type GssErrorCode =
  | 'ERR_GSS_KEYTAB_MISSING'
  | 'ERR_GSS_KEYTAB_UNREADABLE'
  | 'ERR_GSS_KEYTAB_NO_KEY'
  | 'ERR_GSS_KEY_VERSION_MISMATCH'
  | 'ERR_GSS_CLOCK_SKEW'
  | 'ERR_GSS_REPLAY'
  | 'ERR_GSS_DELEGATION_REFUSED'
  | 'ERR_GSS_SERVER_NOT_FOUND'
  | 'ERR_GSS_CLIENT_NOT_FOUND'
  | 'ERR_GSS_BAD_PASSWORD'
  | 'ERR_GSS_PASSWORD_EXPIRED'
  | 'ERR_GSS_CLIENT_REVOKED'
  | 'ERR_GSS_KDC_UNVERIFIED'
  | 'ERR_GSS_KDC_UNREACHABLE'
  | 'ERR_GSS_DEFECTIVE_TOKEN'
  | 'ERR_GSS_MECH_REFUSED'
  | 'ERR_GSS_EXPIRED'
  | 'ERR_GSS_NO_CREDENTIALS'
  | 'ERR_GSS_FAILURE';

/** Codes of caller mistakes, carried by `TypeError`/`RangeError` (see {@link GssUsageError}). */
export type GssUsageCode =
  | 'ERR_GSS_INVALID_ARG'
  | 'ERR_GSS_DISPOSED'
  | 'ERR_GSS_CONTEXT_BUSY'
  | 'ERR_GSS_CONTEXT_COMPLETE'
  | 'ERR_GSS_CONTEXT_FAILED'
  | 'ERR_GSS_CONTEXT_INCOMPLETE'
  | 'ERR_GSS_KIND_MISMATCH'
  | 'ERR_GSS_UNSAFE_DIRECTORY'
  | 'ERR_GSS_OPERATIONS_PENDING';

/** The library's own report of a failure, kept verbatim on every {@link GssError}. */
export interface GssStatus {
  /** GSS major status (routine error bits included), e.g. `0x90000` for GSS_S_DEFECTIVE_TOKEN. */
  major: number;
  /** Minor status: a krb5 error code (possibly remapped by the mechglue), an errno, or 0. */
  minor: number;
  /** The call that failed, e.g. `gss_accept_sec_context`. */
  routine: string;
  /** gss_display_status text of `major`. */
  majorText: string;
  /** The library's own text for `minor` (MIT's extended message when there is one). */
  minorText: string;
  /**
   * The krb5 error code (krb5_err.h, as unsigned) behind the failure, captured where the call
   * failed; null or absent when unknown (a minor status MIT's mechglue remapped after it passed
   * through SPNEGO, with a text that is not the library's standard one).
   */
  krb5Code?: number | null;
}

/**
 * A GSSAPI/Kerberos failure. `code` says which condition it is (one subclass per condition,
 * narrowed by `code`); the message starts with what to do and ends with the library's own text.
 * Failures of {@link AcceptorContext.step} come from untrusted client input: answer them with
 * 401, never 500.
 */
export class GssError extends Error implements GssStatus {
  /** The condition; see {@link GssErrorCode}. */
  readonly code: GssErrorCode;
  readonly major: number;
  readonly minor: number;
  readonly routine: string;
  readonly majorText: string;
  readonly minorText: string;
  /** See {@link GssStatus.krb5Code}; null when unknown. */
  readonly krb5Code: number | null;
  /**
   * For a failed {@link AcceptorContext.step}: the error token the library produced for the
   * client (a KRB-ERROR or SPNEGO reject), to send back in `WWW-Authenticate: Negotiate <token>`;
   * null when there is none.
   */
  readonly token: Buffer | null;

  /** @internal Use `toGssError`; subclasses fix `code`. */
  constructor(code: GssErrorCode, hint: string, status: GssStatus, options?: { cause?: unknown }) {
    const library = status.minorText ? `${status.majorText}: ${status.minorText}` : status.majorText;
    super(`${hint} [${status.routine}: ${library}]`, options);
    this.name = new.target.name;
    this.code = code;
    this.major = status.major;
    this.minor = status.minor;
    this.routine = status.routine;
    this.majorText = status.majorText;
    this.minorText = status.minorText;
    this.krb5Code = status.krb5Code ?? null;
    this.token = null;
  }
}

/** The keytab file does not exist. */
export class KeytabMissingError extends GssError { declare readonly code: 'ERR_GSS_KEYTAB_MISSING'; }
/** The keytab exists but this process may not read it. */
export class KeytabUnreadableError extends GssError { declare readonly code: 'ERR_GSS_KEYTAB_UNREADABLE'; }
/** The keytab holds no key for the principal asked for. */
export class KeytabNoKeyError extends GssError { declare readonly code: 'ERR_GSS_KEYTAB_NO_KEY'; }
/** The ticket was made with a key (version) the keytab does not have: the keytab is stale. */
export class KeyVersionMismatchError extends GssError { declare readonly code: 'ERR_GSS_KEY_VERSION_MISMATCH'; }
/** Client, server and KDC clocks differ by more than the allowed skew (5 minutes by default). */
export class ClockSkewError extends GssError { declare readonly code: 'ERR_GSS_CLOCK_SKEW'; }
/** The token was already accepted once (replay cache hit). */
export class ReplayError extends GssError { declare readonly code: 'ERR_GSS_REPLAY'; }
/** The KDC refused the requested option: delegation not allowed to this target, or a non-forwardable ticket. */
export class DelegationRefusedError extends GssError { declare readonly code: 'ERR_GSS_DELEGATION_REFUSED'; }
/** The target service principal does not exist in the realm. */
export class ServerNotFoundError extends GssError { declare readonly code: 'ERR_GSS_SERVER_NOT_FOUND'; }
/** The user principal does not exist in the realm. */
export class ClientNotFoundError extends GssError { declare readonly code: 'ERR_GSS_CLIENT_NOT_FOUND'; }
/** The KDC rejected the password. */
export class BadPasswordError extends GssError { declare readonly code: 'ERR_GSS_BAD_PASSWORD'; }
/** The user's password has expired (KRB5KDC_ERR_KEY_EXP): it must be changed before signing in. */
export class PasswordExpiredError extends GssError { declare readonly code: 'ERR_GSS_PASSWORD_EXPIRED'; }
/** The KDC refuses the user (KRB5KDC_ERR_CLIENT_REVOKED): the account is locked out or disabled. */
export class ClientRevokedError extends GssError { declare readonly code: 'ERR_GSS_CLIENT_REVOKED'; }
/** The KDC that issued the TGT could not prove it knows our service key: possibly a rogue KDC. */
export class KdcUnverifiedError extends GssError { declare readonly code: 'ERR_GSS_KDC_UNVERIFIED'; }
/** No KDC of the realm answered. */
export class KdcUnreachableError extends GssError { declare readonly code: 'ERR_GSS_KDC_UNREACHABLE'; }
/** The token is malformed, truncated or not a GSS token at all. */
export class DefectiveTokenError extends GssError { declare readonly code: 'ERR_GSS_DEFECTIVE_TOKEN'; }
/** The token uses a mechanism we refuse (NTLM) or do not support. */
export class MechanismRefusedError extends GssError { declare readonly code: 'ERR_GSS_MECH_REFUSED'; }
/** The ticket or credential has expired. */
export class CredentialsExpiredError extends GssError { declare readonly code: 'ERR_GSS_EXPIRED'; }
/** The credential or ccache does not exist or holds no usable ticket. */
export class NoCredentialsError extends GssError { declare readonly code: 'ERR_GSS_NO_CREDENTIALS'; }
/** Any other failure; `minorText` has the library's explanation. */
export class GssFailureError extends GssError { declare readonly code: 'ERR_GSS_FAILURE'; }

/** Every concrete {@link GssError}, discriminated by `code`. */
export type AnyGssError =
  | KeytabMissingError
  | KeytabUnreadableError
  | KeytabNoKeyError
  | KeyVersionMismatchError
  | ClockSkewError
  | ReplayError
  | DelegationRefusedError
  | ServerNotFoundError
  | ClientNotFoundError
  | BadPasswordError
  | PasswordExpiredError
  | ClientRevokedError
  | KdcUnverifiedError
  | KdcUnreachableError
  | DefectiveTokenError
  | MechanismRefusedError
  | CredentialsExpiredError
  | NoCredentialsError
  | GssFailureError;

const classes: Record<GssErrorCode, new (code: GssErrorCode, hint: string, s: GssStatus, o?: { cause?: unknown }) => GssError> = {
  ERR_GSS_KEYTAB_MISSING: KeytabMissingError,
  ERR_GSS_KEYTAB_UNREADABLE: KeytabUnreadableError,
  ERR_GSS_KEYTAB_NO_KEY: KeytabNoKeyError,
  ERR_GSS_KEY_VERSION_MISMATCH: KeyVersionMismatchError,
  ERR_GSS_CLOCK_SKEW: ClockSkewError,
  ERR_GSS_REPLAY: ReplayError,
  ERR_GSS_DELEGATION_REFUSED: DelegationRefusedError,
  ERR_GSS_SERVER_NOT_FOUND: ServerNotFoundError,
  ERR_GSS_CLIENT_NOT_FOUND: ClientNotFoundError,
  ERR_GSS_BAD_PASSWORD: BadPasswordError,
  ERR_GSS_PASSWORD_EXPIRED: PasswordExpiredError,
  ERR_GSS_CLIENT_REVOKED: ClientRevokedError,
  ERR_GSS_KDC_UNVERIFIED: KdcUnverifiedError,
  ERR_GSS_KDC_UNREACHABLE: KdcUnreachableError,
  ERR_GSS_DEFECTIVE_TOKEN: DefectiveTokenError,
  ERR_GSS_MECH_REFUSED: MechanismRefusedError,
  ERR_GSS_EXPIRED: CredentialsExpiredError,
  ERR_GSS_NO_CREDENTIALS: NoCredentialsError,
  ERR_GSS_FAILURE: GssFailureError,
};

/**
 * A caller mistake (bad argument, disposed object, overlapping steps). `TypeError` so that it
 * is never confused with a Kerberos failure; `code` says which mistake.
 */
export class GssUsageError extends TypeError {
  readonly code: GssUsageCode;
  /** @internal */
  constructor(code: GssUsageCode, message: string) {
    super(message);
    this.name = 'GssUsageError';
    this.code = code;
  }
}

/** A numeric argument out of range; `code` is always `ERR_GSS_INVALID_ARG`. */
export class GssRangeError extends RangeError {
  readonly code = 'ERR_GSS_INVALID_ARG' as const;
  /** @internal */
  constructor(message: string) {
    super(message);
    this.name = 'GssRangeError';
  }
}

// GSS major status routine-error field (RFC 2744 section 3.9.1).
const ROUTINE_MASK = 0xff << 16;
const S = {
  BAD_MECH: 1 << 16,
  DEFECTIVE_TOKEN: 9 << 16,
  CREDENTIALS_EXPIRED: 11 << 16,
  NO_CRED: 7 << 16,
};

// krb5 com_err codes (krb5_err.h; base -1765328384 = 0x96C73A00), as unsigned OM_uint32.
const KRB5_BASE = 0x96c73a00;
const K = {
  C_PRINCIPAL_UNKNOWN: KRB5_BASE + 6,
  S_PRINCIPAL_UNKNOWN: KRB5_BASE + 7,
  BADOPTION: KRB5_BASE + 13,
  PREAUTH_FAILED: KRB5_BASE + 24,
  BAD_INTEGRITY: KRB5_BASE + 31,
  TKT_EXPIRED: KRB5_BASE + 32,
  REPEAT: KRB5_BASE + 34,
  SKEW: KRB5_BASE + 37,
  BADKEYVER: KRB5_BASE + 44,
  NOKEY: KRB5_BASE + 45,
  CLIENT_REVOKED: KRB5_BASE + 18,
  KEY_EXP: KRB5_BASE + 23,
  // Library (non-protocol) codes of the same table.
  KT_NOTFOUND: KRB5_BASE + 181,
  KDC_UNREACH: KRB5_BASE + 156,
  REALM_UNKNOWN: KRB5_BASE + 154,
  REALM_CANT_RESOLVE: KRB5_BASE + 220,
};

/** What the failing operation was about, so that the message can name it. */
export interface FailureContext {
  operation: 'acquire' | 'accept' | 'initiate' | 'password' | 'cache' | 'store' | 'import' | 'export' | 'wrap' | 'unwrap';
  keytab?: string;
  target?: string;
  principal?: string;
  cache?: string;
  krb5Config?: string;
}

function uid(): string {
  return typeof process.getuid === 'function' ? String(process.getuid()) : 'this user';
}

type Classified = { code: GssErrorCode; hint: string };

/**
 * The condition of a failure whose krb5 error code is known (captured by the addon on the
 * thread that failed). Null when the code is not one we name, and the text decides.
 */
function classifyKrb5Code(code: number, s: GssStatus, ctx: FailureContext): Classified | null {
  const keytab = ctx.keytab ?? 'the keytab';
  const passwordStep = ctx.operation === 'password' && s.routine === 'krb5_get_init_creds_password';
  switch (code) {
    case K.REPEAT: return HINTS.replay();
    case K.SKEW: return HINTS.skew();
    case K.BADKEYVER: return HINTS.keyVersion(keytab);
    case K.BAD_INTEGRITY:
      if (ctx.operation === 'accept') return HINTS.wrongKey(keytab);
      if (passwordStep) return HINTS.badPassword();
      return null;
    case K.BADOPTION: return HINTS.delegation(ctx);
    case K.S_PRINCIPAL_UNKNOWN: return HINTS.serverNotFound(ctx);
    case K.C_PRINCIPAL_UNKNOWN: return HINTS.clientNotFound(ctx);
    case K.PREAUTH_FAILED: return passwordStep ? HINTS.badPassword() : null;
    case K.KEY_EXP: return HINTS.passwordExpired(ctx);
    case K.CLIENT_REVOKED: return HINTS.clientRevoked(ctx);
    case K.KDC_UNREACH:
    case K.REALM_UNKNOWN:
    case K.REALM_CANT_RESOLVE: return HINTS.kdcUnreachable();
    case K.NOKEY:
    case K.KT_NOTFOUND: return HINTS.keytabNoKey(keytab, ctx);
    case K.TKT_EXPIRED: return HINTS.expired();
    default: return null;
  }
}

const HINTS = {
  replay: (): Classified => ({ code: 'ERR_GSS_REPLAY', hint: 'this token was already used (replay cache): the client must authenticate again with a fresh token' }),
  skew: (): Classified => ({ code: 'ERR_GSS_CLOCK_SKEW', hint: 'client, server and KDC clocks differ by more than the allowed skew: synchronise the clocks (NTP)' }),
  keyVersion: (keytab: string): Classified => ({ code: 'ERR_GSS_KEY_VERSION_MISMATCH', hint: `${keytab} does not hold the key version the KDC used: re-export the keytab (ktadd changes the key, so export once and distribute that file)` }),
  wrongKey: (keytab: string): Classified => ({ code: 'ERR_GSS_KEY_VERSION_MISMATCH', hint: `the ticket was not encrypted with the key in ${keytab}: the keytab is stale or from another realm; re-export it from the realm's KDC` }),
  delegation: (ctx: FailureContext): Classified => ({ code: 'ERR_GSS_DELEGATION_REFUSED', hint: `the KDC refused the request for ${ctx.target ?? 'the target service'}: the service is not allowed to delegate to it (krbAllowedToDelegateTo / AD constrained delegation list; MIT's DB2 KDB cannot do S4U2proxy at all: use the LDAP KDB or unconstrained delegation), or the user's ticket is not forwardable; ask the user to sign in again with a forwardable ticket or have the realm admin allow this target` }),
  serverNotFound: (ctx: FailureContext): Classified => ({ code: 'ERR_GSS_SERVER_NOT_FOUND', hint: `no such service principal for ${ctx.target ?? ctx.principal ?? 'the service'}: check the name (use the host name in the SPN, e.g. postgres@localhost, not an IP address) and that the principal exists in the realm` }),
  clientNotFound: (ctx: FailureContext): Classified => ({ code: 'ERR_GSS_CLIENT_NOT_FOUND', hint: `no such user ${ctx.principal ?? ''} in the realm: check the user name`.replace('  ', ' ') }),
  badPassword: (): Classified => ({ code: 'ERR_GSS_BAD_PASSWORD', hint: 'the user name or password is wrong' }),
  passwordExpired: (ctx: FailureContext): Classified => ({ code: 'ERR_GSS_PASSWORD_EXPIRED', hint: `the password of ${ctx.principal ?? 'the user'} has expired: change it (kpasswd) before signing in` }),
  clientRevoked: (ctx: FailureContext): Classified => ({ code: 'ERR_GSS_CLIENT_REVOKED', hint: `the KDC refuses ${ctx.principal ?? 'the user'}: the account is locked out (too many failed attempts) or disabled; the realm administrator can unlock it (kadmin modprinc -unlock)` }),
  kdcUnreachable: (): Classified => ({ code: 'ERR_GSS_KDC_UNREACHABLE', hint: 'no KDC of the realm answered: check that the KDC runs and that krb5.conf (KRB5_CONFIG) lists it' }),
  keytabNoKey: (keytab: string, ctx: FailureContext): Classified => ({ code: 'ERR_GSS_KEYTAB_NO_KEY', hint: `${keytab} has no key for ${ctx.principal ?? 'this service'}: export that principal's key into it (kadmin ktadd) or fix the principal name` }),
  expired: (): Classified => ({ code: 'ERR_GSS_EXPIRED', hint: 'the ticket has expired: the user must sign in again' }),
};

/**
 * Decide the condition of a native failure: by the krb5 error code the addon captured where the
 * call failed when there is one ({@link classifyKrb5Code}); otherwise (a minor code MIT's
 * mechglue remapped after it passed through SPNEGO) by the minor number and, as the fallback,
 * the library's English text.
 */
function classify(s: GssStatus & { minorKind?: string }, ctx: FailureContext): Classified {
  const t = s.minorText;
  const has = (re: RegExp) => re.test(t);
  const minor = s.minor >>> 0;
  const routineErr = (s.major & ROUTINE_MASK) >>> 0;
  const keytab = ctx.keytab ?? 'the keytab';
  const target = ctx.target ?? 'the target service';

  if (s.minorKind === 'errno') {
    if (s.minor === 2) {
      if (s.routine === 'krb5_init_context_profile') {
        return { code: 'ERR_GSS_FAILURE', hint: `krb5 profile ${ctx.krb5Config} does not exist: fix the krb5Config path` };
      }
      return { code: 'ERR_GSS_KEYTAB_MISSING', hint: `keytab ${keytab} does not exist: export the service key once (kadmin ktadd -k ${keytab} <principal>) or fix the path` };
    }
    if (s.minor === 13 || s.minor === 1) {
      return { code: 'ERR_GSS_KEYTAB_UNREADABLE', hint: `keytab ${keytab} is not readable by uid ${uid()}: give this user read access (chown or chmod 0640 with a shared group); never make it world-readable` };
    }
  }
  if (s.krb5Code != null) {
    const byCode = classifyKrb5Code(s.krb5Code >>> 0, s, ctx);
    if (byCode) return byCode;
  }
  if (minor === K.REPEAT || has(/Request is a replay/i)) {
    return { code: 'ERR_GSS_REPLAY', hint: 'this token was already used (replay cache): the client must authenticate again with a fresh token' };
  }
  if (minor === K.SKEW || has(/Clock skew too great/i)) {
    return { code: 'ERR_GSS_CLOCK_SKEW', hint: 'client, server and KDC clocks differ by more than the allowed skew: synchronise the clocks (NTP)' };
  }
  if (minor === K.BADKEYVER || has(/kvno \d+ not found in keytab|Cannot find key for .* kvno \d+|Key version number for principal in key table is incorrect|keytab is likely out of date|key version/i)) {
    return { code: 'ERR_GSS_KEY_VERSION_MISMATCH', hint: `${keytab} does not hold the key version the KDC used: re-export the keytab (ktadd changes the key, so export once and distribute that file)` };
  }
  if (ctx.operation === 'accept' && (minor === K.BAD_INTEGRITY || has(/Decrypt integrity check failed|Bad encryption type|Cannot decrypt ticket/i))) {
    return { code: 'ERR_GSS_KEY_VERSION_MISMATCH', hint: `the ticket was not encrypted with the key in ${keytab}: the keytab is stale or from another realm; re-export it from the realm's KDC` };
  }
  if (minor === K.BADOPTION || has(/KDC can't fulfill requested option/i)) {
    return { code: 'ERR_GSS_DELEGATION_REFUSED', hint: `the KDC refused the request for ${target}: the service is not allowed to delegate to it (krbAllowedToDelegateTo / AD constrained delegation list; MIT's DB2 KDB cannot do S4U2proxy at all: use the LDAP KDB or unconstrained delegation), or the user's ticket is not forwardable; ask the user to sign in again with a forwardable ticket or have the realm admin allow this target` };
  }
  if (minor === K.S_PRINCIPAL_UNKNOWN || has(/Server .* not found in Kerberos database|Server not found in Kerberos database/i)) {
    return { code: 'ERR_GSS_SERVER_NOT_FOUND', hint: `no such service principal for ${ctx.target ?? ctx.principal ?? 'the service'}: check the name (use the host name in the SPN, e.g. postgres@localhost, not an IP address) and that the principal exists in the realm` };
  }
  if (minor === K.C_PRINCIPAL_UNKNOWN || has(/Client .* not found in Kerberos database|Client not found/i)) {
    return { code: 'ERR_GSS_CLIENT_NOT_FOUND', hint: `no such user ${ctx.principal ?? ''} in the realm: check the user name`.replace('  ', ' ') };
  }
  if (ctx.operation === 'password' && s.routine === 'krb5_get_init_creds_password' &&
      (minor === K.PREAUTH_FAILED || minor === K.BAD_INTEGRITY || has(/Preauthentication failed|Password incorrect|Decrypt integrity check failed/i))) {
    return { code: 'ERR_GSS_BAD_PASSWORD', hint: 'the user name or password is wrong' };
  }
  if (ctx.operation === 'password' && (minor === K.KEY_EXP || has(/Password has expired/i))) {
    return HINTS.passwordExpired(ctx);
  }
  if (ctx.operation === 'password' && (minor === K.CLIENT_REVOKED || has(/Client's credentials have been revoked|Client's entry in database has expired/i))) {
    return HINTS.clientRevoked(ctx);
  }
  if (has(/Cannot contact any KDC|Cannot find KDC|Cannot resolve network address for KDC/i)) {
    return { code: 'ERR_GSS_KDC_UNREACHABLE', hint: 'no KDC of the realm answered: check that the KDC runs and that krb5.conf (KRB5_CONFIG) lists it' };
  }
  if (has(/No key table entry found|Keytab .* is nonexistent or empty/i) || minor === K.NOKEY) {
    return { code: 'ERR_GSS_KEYTAB_NO_KEY', hint: `${keytab} has no key for ${ctx.principal ?? 'this service'}: export that principal's key into it (kadmin ktadd) or fix the principal name` };
  }
  if (ctx.operation === 'acquire' && routineErr === S.NO_CRED) {
    // The keytab was opened fine (checked first), so it lacks the requested key; the mechglue
    // drops the minor status here, so there is no text to match.
    return { code: 'ERR_GSS_KEYTAB_NO_KEY', hint: `${keytab} has no usable key for ${ctx.principal ?? 'any service'}: export that principal's key into it (kadmin ktadd) or fix the principal name` };
  }
  if (ctx.operation === 'password' && s.routine === 'krb5_verify_init_creds') {
    return { code: 'ERR_GSS_KDC_UNVERIFIED', hint: `the KDC that accepted the password could not issue a ticket our keytab ${keytab} can decrypt: it may be a rogue KDC, or the keytab is stale; login refused` };
  }
  if (minor === K.TKT_EXPIRED || routineErr === S.CREDENTIALS_EXPIRED || has(/Ticket expired|credentials have expired/i)) {
    return { code: 'ERR_GSS_EXPIRED', hint: 'the ticket has expired: the user must sign in again' };
  }
  if (routineErr === S.BAD_MECH) {
    return { code: 'ERR_GSS_MECH_REFUSED', hint: 'the client used a mechanism this service does not accept: only Kerberos (raw or SPNEGO-wrapped) is accepted, NTLM is refused; make the client use Kerberos (is the host name in the URL the one in the SPN?)' };
  }
  if (routineErr === S.DEFECTIVE_TOKEN || ctx.operation === 'accept' && has(/Invalid token|Message out of order|ASN\.1|Invalid message type|Bad format|Wrong principal|Message stream modified|Bad magic/i)) {
    return { code: 'ERR_GSS_DEFECTIVE_TOKEN', hint: 'the token is malformed or truncated: the client must send a fresh, complete Negotiate token' };
  }
  if (routineErr === S.NO_CRED ||
      has(/No credentials cache found|No Kerberos credentials available|Can't find client principal|Credential cache is empty|No credentials were supplied/i)) {
    return { code: 'ERR_GSS_NO_CREDENTIALS', hint: `no usable credentials${ctx.cache ? ` in ${ctx.cache}` : ''}: the cache does not exist, was destroyed, or holds no ticket` };
  }
  return { code: 'ERR_GSS_FAILURE', hint: `GSSAPI ${ctx.operation} failed` };
}

function isNativeFailure(e: unknown): e is NativeFailure {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ERR_GSS_NATIVE';
}

/**
 * Turn what the addon threw into the error callers see: a typed {@link GssError} for library
 * failures, a {@link GssUsageError} for caller mistakes caught natively, anything else as is.
 * @internal
 */
export function toGssError(e: unknown, ctx: FailureContext): Error {
  if (isNativeFailure(e)) {
    const status = { major: e.major, minor: e.minor, routine: e.routine, majorText: e.majorText, minorText: e.minorText, minorKind: e.minorKind, krb5Code: e.krb5Code ?? null };
    const { code, hint } = classify(status, ctx);
    const Cls = classes[code];
    const { minorKind: _ignored, ...plain } = status;
    void _ignored;
    const err = new Cls(code, hint, plain);
    // The acceptor's error token for the client: a Buffer made by the addon, copied so the
    // error owns it.
    if (Buffer.isBuffer(e.token) && e.token.length > 0) (err as { token: Buffer | null }).token = Buffer.from(e.token);
    return err;
  }
  if (e instanceof Error || (typeof e === 'object' && e !== null && 'message' in e)) {
    const code = (e as { code?: unknown }).code;
    // Errors thrown by the addon belong to the addon's realm; re-create them here so that
    // `instanceof TypeError` and `instanceof GssUsageError` hold for callers.
    if (typeof code === 'string' && code.startsWith('ERR_GSS_')) {
      return new GssUsageError(code as GssUsageCode, (e as Error).message);
    }
  }
  return e instanceof Error ? e : new Error(String(e));
}

/** Build a {@link GssError} for a condition detected before the library is called. @internal */
export function localGssError(code: GssErrorCode, hint: string, routine: string, majorText: string, major: number): GssError {
  return new classes[code](code, hint, { major, minor: 0, routine, majorText, minorText: '' });
}

/** For unit tests of the mapping only. @internal */
export const __classifyForTest = classify;

/** For unit tests: the krb5 codes the mapping names, checked against the addon's constants. @internal */
export const __krb5CodesForTest = K;
