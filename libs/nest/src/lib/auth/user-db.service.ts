import { Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { UserDataSources } from '../db/user-data-sources';
import type { CredentialLease } from './credential-lease';
import { CredentialVault } from './credential-vault';
import { NegotiateChallenge } from './errors';
import type { AuthUser } from './session.service';

/**
 * The signed-in user's own database connection: every query of a request runs as that user. The
 * accessor of the session's {@link CredentialLease}: its pool is the user's, opened with a live
 * lease's credential.
 *
 * Three ways in, so that reads can go to hot standbys (`FORWARDABLE_PG_READ_HOSTS`) and writes
 * never do: {@link UserDb.read} for queries that only read, {@link UserDb.write} for writes and
 * transactions, and {@link UserDb.of}, the primary handed out as is. Without standbys all three
 * are the primary.
 */
@Injectable()
export class UserDb {
  constructor(
    private readonly vault: CredentialVault,
    private readonly dataSources: UserDataSources,
  ) {}

  /**
   * The primary data source of `user`, connected as the user. Since what the caller does with it
   * is unknown, it counts as a write: the user's reads stay on the primary until a standby has
   * caught up (prefer {@link UserDb.write} and {@link UserDb.read}).
   */
  async of(user: AuthUser): Promise<DataSource> {
    return this.dataSources.get(this.lease(user));
  }

  /**
   * Run `fn` on the user's primary data source (writes, transactions, reads that must see the
   * latest data); the user's next reads see what it wrote.
   */
  async write<T>(user: AuthUser, fn: (dataSource: DataSource) => Promise<T>): Promise<T> {
    return this.dataSources.write(this.lease(user), fn);
  }

  /**
   * Run `fn`, which must only read, on a hot standby when one is configured and up to date for
   * this user, else on the primary (see `UserDataSources.read`). Row-level security is the
   * same on both: the connection is the user's own either way. `fn` may run twice (standby failed
   * mid-read, then the primary).
   */
  async read<T>(user: AuthUser, fn: (dataSource: DataSource) => Promise<T>): Promise<T> {
    return this.dataSources.read(this.lease(user), fn);
  }

  private lease(user: AuthUser): CredentialLease {
    const lease = this.vault.get(user.sessionId);
    if (!lease) throw new NegotiateChallenge('SESSION_EXPIRED', 'your session has ended', 'The browser signs you in again by itself; if not, reload.');
    return lease;
  }
}
