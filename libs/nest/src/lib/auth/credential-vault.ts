import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { mkdirSync, statSync } from 'node:fs';
import type { Credential, StoredCache } from '@forwardable/gssapi';
import { CredentialLease, databaseRoleOf, LeaseEndReason } from './credential-lease';
import type { UsernameCase } from '@forwardable/pg-gssapi';
import { AUTH_OPTIONS, AuthOptions, realmOf, usernameCaseOf } from './options';

/**
 * Session id → the {@link CredentialLease} of the user's Kerberos credential, in this process only.
 * Credentials never leave the replica that accepted them, are never logged or serialised, and
 * are destroyed (the per-user pool stops using them, their caches removed, the credential
 * disposed) when the lease ends: at logout here or on another replica, at expiry, when replaced,
 * when the user's oldest session is pushed out by the per-user cap, and at shutdown.
 */
@Injectable()
export class CredentialVault implements OnApplicationShutdown {
  private readonly log = new Logger(CredentialVault.name);
  private readonly held = new Map<string, CredentialLease>();
  private readonly fileDir: string | null;
  /** The realms users may come from; the first is the home realm (no suffix on the role). */
  readonly realms: readonly string[];
  /** How a principal's name becomes its role name ({@link AuthOptions.usernameCase}). */
  readonly usernameCase: UsernameCase;

  constructor(@Inject(AUTH_OPTIONS) options: AuthOptions) {
    this.fileDir = options.credentialStore === 'file' ? privateDir(options.fileCacheDir) : null;
    this.realms = options.allowedRealms?.length ? options.allowedRealms : [realmOf(options.servicePrincipal)];
    this.usernameCase = usernameCaseOf(options);
  }

  /**
   * Lease `credential` to session `id` until `expiresAt` (epoch ms, or the credential's end if
   * earlier). The vault owns the credential from now on; an earlier lease of `id` ends first.
   * @throws ApiException 403 when the principal maps to no database role (the credential is disposed).
   */
  async lease(id: string, credential: Credential, expiresAt: number): Promise<CredentialLease> {
    await this.end(id, 'replaced');
    try {
      // Refuse before anything is written: a refused principal's ticket never reaches the disk.
      databaseRoleOf(credential.principal, this.realms, this.usernameCase);
    } catch (err) {
      credential.dispose();
      throw err;
    }
    let file: StoredCache | null = null;
    if (this.fileDir) {
      try {
        // For operators who want libpq tools on the same ticket: 0600 file, random name, 0700 dir.
        file = await credential.store({ type: 'FILE', dir: this.fileDir });
      } catch (err) {
        credential.dispose();
        throw err;
      }
    }
    const lease = new CredentialLease({ credential, sessionId: id, realms: this.realms, usernameCase: this.usernameCase, expiresAt, file });
    this.held.set(id, lease);
    lease.onEnd(() => {
      if (this.held.get(lease.sessionId) === lease) this.held.delete(lease.sessionId);
    });
    return lease;
  }

  /** The live lease of a session, or null (expired, logged out, or held by another replica). */
  get(id: string): CredentialLease | null {
    const lease = this.held.get(id);
    if (!lease) return null;
    if (!lease.live) {
      void lease.end('expired');
      return null;
    }
    return lease;
  }

  /** The FILE cache name of a session (file mode only), for tools that read `KRB5CCNAME`. */
  fileCache(id: string): string | null {
    return this.held.get(id)?.fileCache ?? null;
  }

  /** End a session's lease (its pool stops using the credential, which is destroyed). Idempotent. */
  async end(id: string, reason: LeaseEndReason = 'logout'): Promise<void> {
    const lease = this.held.get(id);
    if (!lease) return;
    this.held.delete(id);
    await lease.end(reason);
  }

  /**
   * A session of `principal` got a new id (re-authentication on another replica): the lease this
   * replica holds for `from`, if any, now serves `to`; `from` is gone. Anything inconsistent (another
   * principal, `to` already held here) ends the lease instead.
   */
  async move(from: string, to: string, principal: string): Promise<void> {
    const lease = this.held.get(from);
    if (!lease) return;
    if (lease.principal !== principal || this.held.has(to) || !lease.live) return this.end(from, 'replaced');
    this.held.delete(from);
    lease.moveTo(to);
    this.held.set(to, lease);
  }

  /** The live leases of one principal on this replica, oldest first. */
  leasesOf(principal: string): CredentialLease[] {
    return [...this.held.values()].filter((l) => l.principal === principal && l.live);
  }

  /** The sessions this replica holds a lease for (only leases made before `createdBefore`, epoch ms, when given). */
  sessionIds(createdBefore = Infinity): string[] {
    return [...this.held.entries()].filter(([, l]) => l.createdAt < createdBefore).map(([id]) => id);
  }

  /** Leases held now (for metrics and tests). */
  get size(): number {
    return this.held.size;
  }

  async onApplicationShutdown(): Promise<void> {
    const ids = [...this.held.keys()];
    await Promise.allSettled(ids.map((id) => this.end(id, 'shutdown')));
    if (ids.length) this.log.log(`destroyed ${ids.length} credential(s) at shutdown`);
  }
}

function privateDir(dir: string | undefined): string {
  if (!dir) throw new Error('credentialStore "file" needs fileCacheDir: a directory only this user can read (mode 0700)');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if ((st.mode & 0o077) !== 0) throw new Error(`fileCacheDir ${dir} is accessible to others (mode ${(st.mode & 0o777).toString(8)}): chmod 0700 it`);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw new Error(`fileCacheDir ${dir} is not owned by this user: chown it`);
  return dir;
}
