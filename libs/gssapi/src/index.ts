/**
 * `@forwardable/gssapi`: a native binding over MIT GSSAPI (libgssapi_krb5) that accepts
 * Negotiate tokens, receives delegated credentials (forwarded TGTs and S4U2proxy), initiates
 * contexts with a chosen credential, and logs users in with a password while verifying the KDC.
 *
 * Every call that may read a keytab or talk to the KDC runs on the libuv pool and returns a
 * promise. See README.md.
 * @packageDocumentation
 */
export { configureKerberos, type KerberosConfig } from './lib/config';
export {
  Credential,
  acquireServiceCredential,
  destroyCache,
  passwordLogin,
  type CredentialKind,
  type PasswordLoginOptions,
  type ServiceCredentialOptions,
  type StoreOptions,
  type StoredCache,
} from './lib/credential';
export {
  AcceptorContext,
  InitiatorContext,
  MAX_TOKEN_BYTES,
  decodeNegotiateToken,
  tokenMechanism,
  type AcceptResult,
  type ContextFlags,
  type InitiateResult,
  type InitiatorOptions,
  type TokenMechanism,
  pacLogonInfo,
  type NameAttribute,
} from './lib/context';
export { parsePacLogonInfo, sidToBuffer, sidFromBuffer, PacParseError, type PacLogonInfo } from './lib/pac';
export { SecureChannel, MAX_SEALED_PACKET_BYTES, INLINE_MAX_BYTES } from './lib/secure-channel';
export type { UnwrappedToken } from './lib/secure-channel';
export {
  BadPasswordError,
  ClientNotFoundError,
  ClientRevokedError,
  ClockSkewError,
  CredentialsExpiredError,
  DefectiveTokenError,
  DelegationRefusedError,
  GssError,
  GssFailureError,
  GssRangeError,
  GssUsageError,
  KdcUnreachableError,
  KdcUnverifiedError,
  KeyVersionMismatchError,
  KeytabMissingError,
  KeytabNoKeyError,
  KeytabUnreadableError,
  MechanismRefusedError,
  NoCredentialsError,
  PasswordExpiredError,
  ReplayError,
  ServerNotFoundError,
  type AnyGssError,
  type GssErrorCode,
  type GssStatus,
  type GssUsageCode,
} from './lib/errors';
