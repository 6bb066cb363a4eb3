/**
 * The raw binding exported by build/Release/gssapi.node (src/native/*.cc). Private: only the
 * typed wrapper in this library talks to it, after validating every argument.
 * @internal
 */

/** What the native side rejects with when a GSS or krb5 call fails. */
export interface NativeFailure extends Error {
  code: 'ERR_GSS_NATIVE';
  major: number;
  minor: number;
  routine: string;
  majorText: string;
  minorText: string;
  minorKind: 'krb5' | 'errno' | 'none';
  /** The krb5 error code captured on the worker thread (unsigned); null when unknown. */
  krb5Code: number | null;
  /** A failed accept step: the error token for the client, when the library made one. */
  token?: Buffer;
}

export interface NativeCredInfo {
  /** Display name, e.g. `alice@FORWARDABLE.TEST`; empty when the credential has none. */
  principal: string;
  /** Seconds from `observedAt`; -1 when indefinite (acceptor credentials). */
  lifetime: number;
  /** Epoch milliseconds at which `lifetime` was read. */
  observedAt: number;
  usage: 'accept' | 'initiate' | 'both';
  /** Set for an S4U2proxy credential: the service that impersonates `principal`. */
  impersonator: string | null;
}

export declare class NativeCredential {
  private constructor();
  info(): NativeCredInfo;
  /** gss_store_cred_into the named ccache; `own`: destroy it when this credential is disposed. */
  store(cacheName: string, own: boolean): Promise<string>;
  exportBlob(): Promise<Buffer>;
  dispose(): void;
  readonly disposed: boolean;
}

export interface NativeStepResult {
  complete: boolean;
  token: Buffer | null;
  /** Dotted OID of the mechanism in use; empty when the library did not say. */
  mech: string;
  flags: number;
  /** Context lifetime in seconds; -1 when indefinite. */
  lifetime: number;
}

export interface NativeAcceptResult extends NativeStepResult {
  principal: string | null;
  delegated: NativeCredential | null;
  /** Whether the client's service ticket was forwardable; null when the library did not say. */
  ticketForwardable: boolean | null;
  /** The initiator name's attributes (RFC 6680); values only for `urn:mspac:*`. Empty until complete. */
  nameAttributes: NativeNameAttribute[];
}

export interface NativeNameAttribute {
  name: string;
  authenticated: boolean;
  complete: boolean;
  values: Buffer[];
}

export declare class NativeAcceptor {
  constructor(credential: NativeCredential, krb5Only: boolean);
  step(token: Buffer): Promise<NativeAcceptResult>;
  dispose(): void;
}

export declare class NativeInitiator {
  constructor(credential: NativeCredential, target: string, hostbased: boolean, flags: number, spnego: boolean);
  step(token: Buffer | null): Promise<NativeStepResult>;
  dispose(): void;
}

/** gss_wrap / gss_unwrap over an established initiator context (seal.cc). */
export declare class NativeSealer {
  /** Takes the established context of `initiator` over; the initiator is disposed. */
  constructor(initiator: NativeInitiator);
  wrapSizeLimit(maxToken: number): number;
  /** Wrap `data` in slices of at most `maxPlain` bytes; returns the framed packets (length + token each). */
  seal(data: Buffer, maxPlain: number): Promise<Buffer>;
  sealSync(data: Buffer, maxPlain: number): Buffer;
  /** Unwrap a run of complete framed packets; returns the plaintext. */
  unseal(packets: Buffer): Promise<Buffer>;
  unsealSync(packets: Buffer): Buffer;
  /** One unframed gss_wrap token (SASL security-layer messages). */
  wrapToken(data: Buffer, confidential: boolean): Buffer;
  /** One unframed gss_unwrap; integrity always verified, confidentiality reported. */
  unwrapToken(token: Buffer): { data: Buffer; confidential: boolean };
  dispose(): void;
}

export interface NativeServiceOptions {
  keytab: string;
  clientKeytab?: string;
  ccache?: string;
  rcache?: string;
  principal?: string;
  nameType?: 'hostbased' | 'principal';
  usage: 'accept' | 'both';
}

export interface NativePasswordOptions {
  username: string;
  password: Buffer;
  keytab?: string;
  servicePrincipal?: string;
  krb5Config?: string;
  verifyKdc: boolean;
}

export interface NativeBinding {
  NativeCredential: typeof NativeCredential;
  NativeAcceptor: typeof NativeAcceptor;
  NativeInitiator: typeof NativeInitiator;
  NativeSealer: typeof NativeSealer;
  acquireServiceCredential(opts: NativeServiceOptions): Promise<NativeCredential>;
  credentialFromCache(name: string, owned: boolean): Promise<NativeCredential>;
  importCredential(blob: Buffer): Promise<NativeCredential>;
  passwordLogin(opts: NativePasswordOptions): Promise<NativeCredential>;
  /**
   * krb5_cc_resolve + krb5_cc_destroy on the libuv pool, after any worker still reading or
   * writing the cache; resolves false when there was nothing to destroy.
   */
  destroyCache(name: string): Promise<boolean>;
  /** setenv/unsetenv of KRB5_CONFIG, KRB5RCACHEDIR or KRB5_TRACE; throws while operations run. */
  setKerberosEnv(name: string, value: string | null): void;
  constants: Record<string, number>;
}
