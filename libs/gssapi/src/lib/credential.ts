import { randomBytes } from 'node:crypto';
import { rmdirSync } from 'node:fs';
import { chmod, mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { FailureContext, GssUsageError, toGssError } from './errors';
import { loadNative } from './load';
import type { NativeCredential } from './native';

/**
 * Where a credential came from:
 * - `forwarded`: the user's own TGT, delegated by the client (unconstrained delegation);
 * - `proxy`: an S4U2proxy credential (constrained delegation): the web service's TGT plus the
 *   user's ticket to the service, usable only for targets the KDC allows;
 * - `password`: a TGT obtained with {@link passwordLogin};
 * - `service`: the service's own acceptor (and optionally initiator) credential.
 */
export type CredentialKind = 'forwarded' | 'proxy' | 'password' | 'service';

const KINDS: readonly CredentialKind[] = ['forwarded', 'proxy', 'password', 'service'];

/** A ccache written by {@link Credential.store}. */
export interface StoredCache {
  /** The cache name for {@link Credential.fromCache} or `KRB5CCNAME`: `MEMORY:…` or `FILE:/dir/…`. */
  readonly name: string;
  readonly type: 'MEMORY' | 'FILE';
  /** The file of a FILE cache (mode 0600, in a 0700 directory); null for MEMORY. */
  readonly path: string | null;
  /** True once {@link StoredCache.destroy} ran (or the owning credential destroyed it). */
  readonly destroyed: boolean;
  /**
   * Destroy the cache (krb5_cc_destroy, off the event loop and after any operation still reading
   * or writing it; a FILE cache's file and, if we made it, its directory are removed).
   * Idempotent. Resolves with whether there was something to destroy; never rejects.
   */
  destroy(): Promise<boolean>;
}

/** Options of {@link Credential.store}. */
export interface StoreOptions {
  /** `MEMORY` (default): process memory only. `FILE`: for tools that only read a file cache (libpq). */
  type?: 'MEMORY' | 'FILE';
  /**
   * Directory for a FILE cache: must exist, be owned by this user and have no group/other
   * permissions (0700). Default: a fresh private directory under the OS temp dir.
   */
  dir?: string;
  /**
   * By default the cache belongs to the credential and is destroyed by its `dispose()`.
   * `detach: true` keeps it after the credential is disposed, until {@link StoredCache.destroy},
   * {@link destroyCache} or environment teardown (which destroys every cache this library made).
   */
  detach?: boolean;
}

const nativeOf = new WeakMap<Credential, NativeCredential>();
const construct = Symbol('Credential.construct');

function usage(code: ConstructorParameters<typeof GssUsageError>[0], message: string): GssUsageError {
  return new GssUsageError(code, message);
}

function randomName(prefix: string): string {
  return `${prefix}${randomBytes(16).toString('hex')}`;
}

/** @internal Validate a string option. */
export function requireString(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) throw usage('ERR_GSS_INVALID_ARG', `${what} must be a non-empty string`);
  if (value.includes('\0')) throw usage('ERR_GSS_INVALID_ARG', `${what} must not contain NUL characters`);
  return value;
}

/**
 * A GSSAPI credential (a native `gss_cred_id_t`). Dispose it when done: `dispose()` releases the
 * handle and destroys the caches it owns; garbage collection and environment teardown are only
 * safety nets. Reading `kind`, `principal` and `expiresAt` stays possible after disposal; every
 * operation then throws `GssUsageError` (`ERR_GSS_DISPOSED`).
 *
 * Security: a `forwarded` credential is the user's TGT, and a `proxy` credential contains the web
 * service's own TGT; whoever can read their caches or exported blobs can act as that user (or
 * as the service). Keep them in MEMORY unless a tool needs a file, and destroy them promptly.
 * A proxy credential is not bounded by the user's ticket lifetime: enforce your own session expiry.
 */
export class Credential {
  /** Where the credential came from; checked against the credential itself where possible. */
  readonly kind: CredentialKind;
  readonly #principal: string;
  readonly #expiresAt: Date | null;
  readonly #impersonator: string | null;
  readonly #usage: 'accept' | 'initiate' | 'both';
  #disposed = false;
  readonly #dirs: string[] = [];

  /** @internal Credentials come from the functions of this library, not from `new`. */
  constructor(token: typeof construct, native: NativeCredential, kind: CredentialKind) {
    if (token !== construct) throw usage('ERR_GSS_INVALID_ARG', 'Credential is not constructible: use acquireServiceCredential, passwordLogin, Credential.fromCache or Credential.import');
    const info = native.info();
    this.kind = kind;
    this.#principal = info.principal;
    this.#expiresAt = info.lifetime < 0 ? null : new Date(info.observedAt + info.lifetime * 1000);
    this.#impersonator = info.impersonator;
    this.#usage = info.usage;
    nativeOf.set(this, native);
  }

  /**
   * The principal the credential acts as, e.g. `alice@FORWARDABLE.TEST`. For a `proxy`
   * credential this is the impersonated user; for a `service` credential, the service.
   */
  get principal(): string {
    return this.#principal;
  }

  /** When the credential stops working; null when indefinite (keytab-based acceptor credentials). */
  get expiresAt(): Date | null {
    return this.#expiresAt;
  }

  /** For a `proxy` credential: the service that impersonates {@link Credential.principal}; otherwise null. */
  get impersonator(): string | null {
    return this.#impersonator;
  }

  /** What the credential can do: accept contexts, initiate them, or both. */
  get usage(): 'accept' | 'initiate' | 'both' {
    return this.#usage;
  }

  /** True after {@link Credential.dispose}. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** @internal The native handle, or a GssUsageError when disposed. */
  static nativeHandle(cred: unknown, what = 'credential'): NativeCredential {
    if (!(cred instanceof Credential)) throw usage('ERR_GSS_INVALID_ARG', `${what} must be a Credential`);
    const n = nativeOf.get(cred);
    if (!n || cred.#disposed) throw usage('ERR_GSS_DISPOSED', `${what} has been disposed`);
    return n;
  }

  /** @internal Wrap a native credential, checking the claimed kind against what it is. */
  static wrap(native: NativeCredential, kind: CredentialKind): Credential {
    const info = native.info();
    const isProxy = info.impersonator !== null;
    if (isProxy !== (kind === 'proxy')) {
      native.dispose();
      throw usage('ERR_GSS_KIND_MISMATCH', isProxy
        ? `this is an S4U2proxy credential (impersonator ${info.impersonator}), not a '${kind}' one: load it as 'proxy'`
        : `this is not an S4U2proxy credential: it cannot be loaded as 'proxy'`);
    }
    return new Credential(construct, native, kind);
  }

  /**
   * Write the credential into a new ccache with a random name (gss_store_cred_into), for
   * {@link Credential.fromCache} later or for a tool that reads `KRB5CCNAME`.
   * A FILE cache is created 0600 inside a 0700 directory.
   */
  async store(opts: StoreOptions = {}): Promise<StoredCache> {
    const native = Credential.nativeHandle(this);
    if (typeof opts !== 'object' || opts === null) throw usage('ERR_GSS_INVALID_ARG', 'store options must be an object');
    const type = opts.type ?? 'MEMORY';
    if (type !== 'MEMORY' && type !== 'FILE') throw usage('ERR_GSS_INVALID_ARG', `store type must be 'MEMORY' or 'FILE', not ${String(type)}`);
    if (opts.dir !== undefined && type !== 'FILE') throw usage('ERR_GSS_INVALID_ARG', 'dir is only for FILE caches');
    const own = opts.detach !== true;
    let name: string;
    let path: string | null = null;
    let madeDir: string | null = null;
    if (type === 'MEMORY') {
      name = randomName('MEMORY:fw-');
    } else {
      let dir: string;
      if (opts.dir === undefined) {
        dir = await mkdtemp(join(tmpdir(), 'fw-ccache-')); // mkdtemp creates it 0700
        madeDir = dir;
      } else {
        dir = requireString(opts.dir, 'dir');
        if (!isAbsolute(dir)) throw usage('ERR_GSS_INVALID_ARG', `dir must be an absolute path, not ${dir}`);
        await checkPrivateDir(dir);
      }
      path = join(dir, randomName('krb5cc_'));
      name = `FILE:${path}`;
    }
    const ctx: FailureContext = { operation: 'store', cache: name };
    try {
      await native.store(name, own);
      // MIT creates cache files 0600 already; make it explicit so a umask or a future library
      // change can never widen it.
      if (path) await chmod(path, 0o600);
    } catch (e) {
      await loadNative().destroyCache(name);
      if (madeDir) removeDir(madeDir);
      throw toGssError(e, ctx);
    }
    if (madeDir && own) this.#dirs.push(madeDir);
    let destroyed = false;
    return {
      name,
      type,
      path,
      get destroyed() {
        return destroyed;
      },
      async destroy(): Promise<boolean> {
        if (destroyed) return false;
        destroyed = true;
        const existed = await loadNative().destroyCache(name);
        if (madeDir) removeDir(madeDir);
        return existed;
      },
    };
  }

  /**
   * Load a credential from a ccache (gss_acquire_cred_from with `{ccache: name}`), e.g. one
   * written by {@link Credential.store} or by `kinit`.
   * @param kind - what the cache holds; `proxy` must match an S4U2proxy cache and vice versa,
   *   otherwise `GssUsageError` (`ERR_GSS_KIND_MISMATCH`).
   * @param opts - `destroyOnDispose`: destroy the cache when this credential is disposed.
   */
  static async fromCache(name: string, kind: CredentialKind, opts: { destroyOnDispose?: boolean } = {}): Promise<Credential> {
    requireString(name, 'cache name');
    if (!/^(MEMORY|FILE):./.test(name)) throw usage('ERR_GSS_INVALID_ARG', `cache name must be 'MEMORY:…' or 'FILE:/path', not ${name}`);
    checkKind(kind);
    let native: NativeCredential;
    try {
      native = await loadNative().credentialFromCache(name, opts.destroyOnDispose === true);
    } catch (e) {
      throw toGssError(e, { operation: 'cache', cache: name });
    }
    return Credential.wrap(native, kind);
  }

  /**
   * Serialise the credential (gss_export_cred) to move it to another process. The blob holds
   * key material (for a forwarded credential, the user's TGT session key): treat it as a secret.
   */
  async export(): Promise<Buffer> {
    const native = Credential.nativeHandle(this);
    try {
      return await native.exportBlob();
    } catch (e) {
      throw toGssError(e, { operation: 'export' });
    }
  }

  /** Rebuild a credential from {@link Credential.export}'s blob (gss_import_cred). */
  static async import(blob: Buffer, kind: CredentialKind): Promise<Credential> {
    if (!Buffer.isBuffer(blob) || blob.length === 0) throw usage('ERR_GSS_INVALID_ARG', 'blob must be a non-empty Buffer');
    checkKind(kind);
    let native: NativeCredential;
    try {
      native = await loadNative().importCredential(blob);
    } catch (e) {
      throw toGssError(e, { operation: 'import' });
    }
    return Credential.wrap(native, kind);
  }

  /**
   * Release the handle (gss_release_cred) and destroy the caches this credential owns
   * (krb5_cc_destroy: a MEMORY cache survives gss_release_cred). Idempotent. If an operation
   * is still running on the credential, the release happens as soon as it finishes.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    nativeOf.get(this)?.dispose();
    for (const d of this.#dirs.splice(0)) removeDir(d);
  }

  /** No secrets in logs: only kind, principal and expiry. */
  toJSON(): { kind: CredentialKind; principal: string; expiresAt: string | null } {
    return { kind: this.kind, principal: this.#principal, expiresAt: this.#expiresAt?.toISOString() ?? null };
  }
}

function checkKind(kind: unknown): asserts kind is CredentialKind {
  if (!KINDS.includes(kind as CredentialKind)) throw usage('ERR_GSS_INVALID_ARG', `kind must be one of ${KINDS.join(', ')}, not ${String(kind)}`);
}

async function checkPrivateDir(dir: string): Promise<void> {
  const st = await stat(dir).catch(() => null);
  if (!st || !st.isDirectory()) throw usage('ERR_GSS_INVALID_ARG', `dir ${dir} is not an existing directory`);
  const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
  if (st.uid !== uid) throw usage('ERR_GSS_UNSAFE_DIRECTORY', `dir ${dir} belongs to uid ${st.uid}, not to this process (uid ${uid}): use a directory of your own`);
  if ((st.mode & 0o077) !== 0) throw usage('ERR_GSS_UNSAFE_DIRECTORY', `dir ${dir} is accessible to group or others (mode ${(st.mode & 0o777).toString(8)}): chmod 700 ${dir}`);
}

function removeDir(dir: string): void {
  try {
    rmdirSync(dir); // only succeeds when empty: never removes anything but our own directory
  } catch {
    // Still holds a cache whose release is deferred, or already gone: nothing to do.
  }
}

/**
 * Destroy a ccache by name (krb5_cc_destroy), e.g. one stored with `detach: true` by another
 * part of the application. The destruction runs off the event loop and waits for operations
 * still reading or writing the cache (a credential loading from it, a store into it, a context
 * step of a credential that reads it). Resolves with whether it existed.
 */
export async function destroyCache(name: string): Promise<boolean> {
  requireString(name, 'cache name');
  return loadNative().destroyCache(name);
}

/** Options of {@link acquireServiceCredential}. */
export interface ServiceCredentialOptions {
  /** Keytab with the service key: `/path` or `FILE:/path`. Read from here only, never from `KRB5_KTNAME`. */
  keytab: string;
  /**
   * The service principal: `HTTP/localhost@REALM` (krb5 form) or `HTTP@localhost` (host-based).
   * Default: any key in the keytab.
   */
  principal?: string;
  /**
   * `accept`: accept contexts only (unconstrained delegation works). `both`: also initiate as
   * the service, which is what makes S4U2proxy (constrained delegation) credentials usable;
   * the service's TGT is kept in a private MEMORY cache, destroyed with the credential.
   */
  usage: 'accept' | 'both';
  /** Keytab used to get the service's own TGT when `usage` is `both`. Default: `keytab`. */
  clientKeytab?: string;
  /** Replay cache (`dfl:`, `file2:/path` or `none:`); default: the library's (`KRB5RCACHEDIR`). */
  rcache?: string;
}

/**
 * Acquire the service's credential from an explicit credential store (gss_acquire_cred_from),
 * never through the process-wide `KRB5_KTNAME`/`KRB5CCNAME`. Reads the keytab on the libuv pool.
 * @returns a credential of kind `service`.
 * @throws KeytabMissingError, KeytabUnreadableError, KeytabNoKeyError, GssUsageError
 */
export async function acquireServiceCredential(opts: ServiceCredentialOptions): Promise<Credential> {
  if (typeof opts !== 'object' || opts === null) throw usage('ERR_GSS_INVALID_ARG', 'options must be an object');
  const keytab = requireString(opts.keytab, 'keytab');
  if (opts.usage !== 'accept' && opts.usage !== 'both') throw usage('ERR_GSS_INVALID_ARG', `usage must be 'accept' or 'both', not ${String(opts.usage)}`);
  const principal = opts.principal === undefined ? undefined : requireString(opts.principal, 'principal');
  const clientKeytab = opts.clientKeytab === undefined ? keytab : requireString(opts.clientKeytab, 'clientKeytab');
  const rcache = opts.rcache === undefined ? undefined : requireString(opts.rcache, 'rcache');
  let native: NativeCredential;
  try {
    native = await loadNative().acquireServiceCredential({
      keytab,
      clientKeytab,
      usage: opts.usage,
      ccache: opts.usage === 'both' ? randomName('MEMORY:fw-svc-') : undefined,
      rcache,
      principal,
      nameType: principal ? nameType(principal) : undefined,
    });
  } catch (e) {
    throw toGssError(e, { operation: 'acquire', keytab, principal });
  }
  return new Credential(construct, native, 'service');
}

/** @internal `service@host` is host-based (RFC 2743 4.1); anything with a `/` is a krb5 principal. */
export function nameType(name: string): 'hostbased' | 'principal' {
  return name.includes('/') || !name.includes('@') ? 'principal' : 'hostbased';
}

/** Options of {@link passwordLogin}. */
export interface PasswordLoginOptions {
  /** `alice` (default realm) or `alice@REALM`. */
  username: string;
  /**
   * The password. A string is copied into a Buffer that is zeroed right after the native copy;
   * the native copy is wiped as soon as the KDC exchange is over. A Buffer you pass is not
   * modified: zero it yourself when done.
   */
  password: string | Buffer;
  /** Keytab with our service key, to verify the KDC (required unless `verifyKdc` is false). */
  keytab?: string;
  /** Our service principal in that keytab: `HTTP/localhost@REALM`, `HTTP/localhost` or `HTTP@localhost`. */
  servicePrincipal?: string;
  /**
   * Prove the KDC is the real one by getting a ticket for `servicePrincipal` and decrypting it
   * with `keytab` (krb5_verify_init_creds). Default true. Turning it off lets anyone who can
   * answer for the realm's KDC address (a spoofed KDC) log in as anybody.
   */
  verifyKdc?: boolean;
  /** A krb5.conf to use for this login only, instead of the process's `KRB5_CONFIG`. */
  krb5Config?: string;
}

/**
 * Log a user in with a password: get a TGT from the KDC, then (by default) verify that the KDC
 * knows our service key, refusing the login otherwise. Runs on the libuv pool.
 * @returns a credential of kind `password` (its TGT in a private MEMORY cache, destroyed on dispose).
 * @throws BadPasswordError, ClientNotFoundError, KdcUnverifiedError, KdcUnreachableError,
 *   KeytabMissingError, KeytabUnreadableError, KeytabNoKeyError, GssUsageError
 */
export async function passwordLogin(opts: PasswordLoginOptions): Promise<Credential> {
  if (typeof opts !== 'object' || opts === null) throw usage('ERR_GSS_INVALID_ARG', 'options must be an object');
  const username = requireString(opts.username, 'username');
  const verifyKdc = opts.verifyKdc !== false;
  const keytab = opts.keytab === undefined ? undefined : requireString(opts.keytab, 'keytab');
  let servicePrincipal = opts.servicePrincipal === undefined ? undefined : requireString(opts.servicePrincipal, 'servicePrincipal');
  const krb5Config = opts.krb5Config === undefined ? undefined : requireString(opts.krb5Config, 'krb5Config');
  if (verifyKdc && (!keytab || !servicePrincipal)) {
    throw usage('ERR_GSS_INVALID_ARG', 'keytab and servicePrincipal are required to verify the KDC (verifyKdc defaults to true)');
  }
  if (servicePrincipal && nameType(servicePrincipal) === 'hostbased') {
    const [svc, host] = servicePrincipal.split('@');
    servicePrincipal = `${svc}/${host}`;
  }
  const given = opts.password;
  if (typeof given !== 'string' && !Buffer.isBuffer(given)) throw usage('ERR_GSS_INVALID_ARG', 'password must be a string or a Buffer');
  const password = typeof given === 'string' ? Buffer.from(given, 'utf8') : given;
  let pending: Promise<NativeCredential>;
  try {
    // libkrb5 takes a C string: a NUL would silently cut the password short.
    if (password.length === 0) throw usage('ERR_GSS_INVALID_ARG', 'password must not be empty');
    if (password.includes(0)) throw usage('ERR_GSS_INVALID_ARG', 'password must not contain NUL bytes');
    // The native side copies the password synchronously, before this call returns.
    pending = loadNative().passwordLogin({ username, password, keytab, servicePrincipal, krb5Config, verifyKdc });
  } finally {
    if (password !== given) password.fill(0);
  }
  let native: NativeCredential;
  try {
    native = await pending;
  } catch (e) {
    throw toGssError(e, { operation: 'password', keytab, principal: username, target: servicePrincipal, krb5Config });
  }
  return new Credential(construct, native, 'password');
}

/** @internal Wrap a delegated credential from an accepted context. */
export function wrapDelegated(native: NativeCredential): Credential {
  const kind: CredentialKind = native.info().impersonator !== null ? 'proxy' : 'forwarded';
  return new Credential(construct, native, kind);
}
