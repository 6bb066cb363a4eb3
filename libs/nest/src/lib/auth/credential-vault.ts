import { Inject, Injectable, Logger, OnApplicationShutdown, Optional } from '@nestjs/common';
import { mkdirSync, statSync } from 'node:fs';
import type { Credential, StoredCache } from '@forwardable/gssapi';
import { UserDataSources } from '../db/user-data-sources';
import { AUTH_OPTIONS, AuthOptions } from './options';

interface Held {
  credential: Credential;
  principal: string;
  expiresAt: number;
  file: StoredCache | null;
  timer: NodeJS.Timeout;
}

/**
 * Session id → the user's Kerberos credential, in this process only. Credentials never leave
 * the replica that accepted them, are never logged or serialised, and are destroyed (the
 * credential disposed, its caches removed, the user's database pool closed) at logout, at
 * expiry, when replaced and at shutdown.
 */
@Injectable()
export class CredentialVault implements OnApplicationShutdown {
  private readonly log = new Logger(CredentialVault.name);
  private readonly held = new Map<string, Held>();
  private readonly fileDir: string | null;

  constructor(
    @Inject(AUTH_OPTIONS) private readonly options: AuthOptions,
    @Optional() private readonly dataSources?: UserDataSources,
  ) {
    this.fileDir = options.credentialStore === 'file' ? privateDir(options.fileCacheDir) : null;
  }

  /** Keep `credential` for session `id` until `expiresAt` (epoch ms). The vault owns it from now on. */
  async put(id: string, credential: Credential, expiresAt: number): Promise<void> {
    await this.remove(id);
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
    const timer = setTimeout(() => void this.remove(id), Math.max(0, Math.min(expiresAt - Date.now(), 2 ** 31 - 1)));
    timer.unref();
    this.held.set(id, { credential, principal: credential.principal, expiresAt, file, timer });
  }

  /** The live credential of a session, or null (expired, logged out, or held by another replica). */
  get(id: string): Credential | null {
    const h = this.held.get(id);
    if (!h) return null;
    if (h.expiresAt <= Date.now() || h.credential.disposed) {
      void this.remove(id);
      return null;
    }
    return h.credential;
  }

  /** The FILE cache name of a session (file mode only), for tools that read `KRB5CCNAME`. */
  fileCache(id: string): string | null {
    return this.held.get(id)?.file?.name ?? null;
  }

  /** Destroy a session's credential and close its database pool. Idempotent. */
  async remove(id: string): Promise<void> {
    const h = this.held.get(id);
    if (!h) return;
    this.held.delete(id);
    clearTimeout(h.timer);
    try {
      await this.dataSources?.release(id);
    } finally {
      await h.file?.destroy();
      h.credential.dispose();
    }
  }

  /** Credentials held now (for metrics and tests). */
  get size(): number {
    return this.held.size;
  }

  async onApplicationShutdown(): Promise<void> {
    const ids = [...this.held.keys()];
    await Promise.allSettled(ids.map((id) => this.remove(id)));
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
