/**
 * The service's own Kerberos credential for its LDAP binds, acquired once and shared, so a group
 * lookup costs an LDAP bind but no KDC round trip: the credential's private MEMORY cache (random
 * name, see `acquireServiceCredential`) keeps the service's TGT and its `ldap/` service ticket,
 * and every bind after the first reuses them. It is replaced shortly before it expires, dropped
 * when a bind with it fails (a restarted KDC with new keys, a rotated keytab), and destroyed at
 * shutdown. The cache never leaves the process and is never written to disk.
 */
import type { Credential } from '@forwardable/gssapi';

/** A credential lent for one bind; call `release` exactly once when the bind is over. */
export interface CredentialLease {
  credential: Credential;
  /** True when the credential was acquired for this lease (a retry with it would not help). */
  fresh: boolean;
  /** Give the credential back; `failed` drops it so the next bind acquires a new one. */
  release(failed?: boolean): void;
}

/** Lends a Kerberos credential for LDAP binds (see {@link SharedServiceCredential}). */
export interface CredentialSource {
  borrow(): Promise<CredentialLease>;
}

/** Options of {@link SharedServiceCredential}. */
export interface SharedServiceCredentialOptions {
  /** Replace the credential when it has less than this left. Default 5 minutes. */
  renewBeforeMs?: number;
  /** The clock, in ms since the epoch (tests move it past the credential's end). Default `Date.now`. */
  now?: () => number;
}

interface Entry {
  credential: Credential;
  leases: number;
  retired: boolean;
}

/**
 * One shared credential from `acquire` (e.g. the keytab's, via `acquireServiceCredential`). A
 * replaced credential is disposed once the last bind using it has released it.
 */
export class SharedServiceCredential implements CredentialSource {
  readonly #acquire: () => Promise<Credential>;
  readonly #renewBeforeMs: number;
  readonly #now: () => number;
  #current: Entry | undefined;
  #pending: Promise<Entry> | undefined;
  #disposed = false;

  constructor(acquire: () => Promise<Credential>, options: SharedServiceCredentialOptions = {}) {
    this.#acquire = acquire;
    this.#renewBeforeMs = options.renewBeforeMs ?? 5 * 60_000;
    this.#now = options.now ?? Date.now;
    if (!Number.isFinite(this.#renewBeforeMs) || this.#renewBeforeMs < 0) throw new RangeError(`renewBeforeMs must be a number of milliseconds >= 0, not ${options.renewBeforeMs}`);
  }

  /**
   * The shared credential, acquired first if there is none or it is about to expire.
   * @throws the acquisition's error (e.g. the KDC does not answer); nothing is cached then.
   */
  async borrow(): Promise<CredentialLease> {
    if (this.#disposed) throw new Error('the service credential for LDAP binds was disposed (the application is shutting down)');
    let entry = this.#current;
    if (entry && this.#stale(entry.credential)) {
      this.#retire(entry);
      entry = undefined;
    }
    let fresh = false;
    if (!entry) {
      // Concurrent lookups share one acquisition instead of each asking the KDC.
      this.#pending ??= this.#acquire()
        .then((credential) => {
          const e: Entry = { credential, leases: 0, retired: false };
          if (this.#disposed) {
            credential.dispose();
            throw new Error('the service credential for LDAP binds was disposed (the application is shutting down)');
          }
          this.#current = e;
          return e;
        })
        .finally(() => (this.#pending = undefined));
      entry = await this.#pending;
      fresh = true;
    }
    const lent = entry;
    lent.leases++;
    let released = false;
    return {
      credential: lent.credential,
      fresh,
      release: (failed = false) => {
        if (released) return;
        released = true;
        lent.leases--;
        if (failed) this.#retire(lent);
        else if (lent.retired && lent.leases === 0) lent.credential.dispose();
      },
    };
  }

  /** Destroy the credential (and its MEMORY cache); later borrows fail. Idempotent. */
  dispose(): void {
    this.#disposed = true;
    if (this.#current) this.#retire(this.#current);
  }

  #stale(credential: Credential): boolean {
    if (credential.disposed) return true;
    const end = credential.expiresAt;
    return end !== null && end.getTime() - this.#now() < this.#renewBeforeMs;
  }

  #retire(entry: Entry): void {
    if (this.#current === entry) this.#current = undefined;
    entry.retired = true;
    if (entry.leases === 0) entry.credential.dispose();
  }
}

/** True for a {@link CredentialSource}, false for a plain `() => Promise<Credential>`. */
export function isCredentialSource(v: unknown): v is CredentialSource {
  return typeof v === 'object' && v !== null && typeof (v as CredentialSource).borrow === 'function';
}
