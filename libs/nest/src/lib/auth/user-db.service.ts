import { Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { UserDataSources } from '../db/user-data-sources';
import { CredentialVault } from './credential-vault';
import { NegotiateChallenge } from './errors';
import type { AuthUser } from './session.service';

/**
 * The signed-in user's own database connection: every query of a request runs as that user. The
 * accessor of the session's {@link CredentialLease}: its pool is the user's, opened with a live
 * lease's credential.
 */
@Injectable()
export class UserDb {
  constructor(
    private readonly vault: CredentialVault,
    private readonly dataSources: UserDataSources,
  ) {}

  /** The data source of `user`, connected as the user. */
  async of(user: AuthUser): Promise<DataSource> {
    const lease = this.vault.get(user.sessionId);
    if (!lease) throw new NegotiateChallenge('SESSION_EXPIRED', 'your session has ended', 'The browser signs you in again by itself; if not, reload.');
    return this.dataSources.get(lease);
  }
}
