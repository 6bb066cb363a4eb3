import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import type { Credential } from '@forwardable/gssapi';
import type { DelegationKind } from '../contract';
import { CredentialVault } from './credential-vault';
import { ApiException } from './errors';
import { GroupsService } from './groups.service';
import { AUTH_OPTIONS, AuthOptions, realmOf } from './options';
import { MemorySessionStore, SessionData, SessionStore } from './session-store';

/** The signed-in user of a request (`@CurrentUser()`). Holds no credential. */
export interface AuthUser extends SessionData {
  sessionId: string;
}

const DEFAULT_MAX_AGE = 8 * 3600_000;

/**
 * Sessions: created after a successful negotiation or password sign-in, always with a fresh
 * 256-bit random id (no fixation), ending no later than the credential and the configured maximum.
 */
@Injectable()
export class SessionService implements OnApplicationShutdown {
  readonly store: SessionStore;
  private readonly realms: string[];
  readonly maxAgeMs: number;

  constructor(
    @Inject(AUTH_OPTIONS) private readonly options: AuthOptions,
    private readonly vault: CredentialVault,
    private readonly groups: GroupsService,
  ) {
    this.store = options.sessionStore ?? new MemorySessionStore();
    this.realms = options.allowedRealms ?? [realmOf(options.servicePrincipal)];
    this.maxAgeMs = options.sessionMaxAgeMs ?? DEFAULT_MAX_AGE;
  }

  /** The database role / display name of a principal of an allowed realm; refuses others. */
  userOf(principal: string): string {
    const at = principal.lastIndexOf('@');
    const name = at > 0 ? principal.slice(0, at) : '';
    const realm = at > 0 ? principal.slice(at + 1) : '';
    // An enterprise name (RFC 6806: `alice\@ad.test@AD.TEST`) means the user signed in with their
    // userPrincipalName and the KDC was not asked to canonicalise it: neither the API nor
    // PostgreSQL can map it to a role, so say how to get a ticket in the account's own name.
    if (name.includes('@')) {
      const upn = name.replace(/\\@/g, '@');
      throw new ApiException(
        403,
        'REALM_REFUSED',
        `${principal} is an enterprise name (userPrincipalName ${upn}), not the account's own principal`,
        `Get a ticket in the account's name: kinit -C -E ${upn} (canonicalise; Windows always does) or kinit <account>@${realm}.`,
      );
    }
    if (!name || name.includes('/')) {
      throw new ApiException(403, 'REALM_REFUSED', `${principal} is not a user principal`, 'Sign in as a person, not as a service.');
    }
    if (!this.realms.includes(realm)) {
      throw new ApiException(403, 'REALM_REFUSED', `users of realm ${realm} may not sign in here`, `Allowed realms: ${this.realms.join(', ')}.`);
    }
    return name;
  }

  /**
   * Start a session for `credential`, which the session (its vault entry) owns from now on.
   * @param groupSids - group SIDs from the ticket's PAC, when it had one: names come from them.
   * @throws ApiException when the principal's realm is not allowed (the credential is then disposed).
   */
  async create(credential: Credential, delegation: DelegationKind, groupSids?: string[]): Promise<AuthUser> {
    let user: string;
    try {
      user = this.userOf(credential.principal);
    } catch (err) {
      credential.dispose();
      throw err;
    }
    const now = Date.now();
    const credEnd = credential.expiresAt?.getTime() ?? Infinity;
    const expiresAt = Math.min(now + this.maxAgeMs, credEnd);
    const groups = await this.groups.groupsOf(credential.principal, user, groupSids);
    const data: SessionData = {
      principal: credential.principal,
      user,
      delegation,
      mode: this.options.delegation ?? 'constrained',
      groups,
      isAdmin: groups.includes(this.groups.adminGroup),
      createdAt: now,
      expiresAt,
    };
    const id = randomBytes(32).toString('base64url');
    await this.vault.put(id, credential, expiresAt);
    try {
      await this.store.set(id, data);
    } catch (err) {
      await this.vault.remove(id);
      throw err;
    }
    return { ...data, sessionId: id };
  }

  /** A live session's data, whether or not this replica holds its credential. */
  async peek(id: string): Promise<SessionData | null> {
    const data = await this.store.get(id);
    return data && data.expiresAt > Date.now() ? data : null;
  }

  /**
   * Give this replica a credential for an existing session, after the browser negotiated again
   * here (another replica accepted the session first). Only for the same principal: anything else
   * is a new sign-in and gets a new session id.
   */
  async attach(id: string, data: SessionData, credential: Credential): Promise<AuthUser> {
    if (credential.principal !== data.principal) {
      credential.dispose();
      throw new Error('attach: the credential is not the session\'s principal');
    }
    const expiresAt = Math.min(data.expiresAt, credential.expiresAt?.getTime() ?? Infinity);
    await this.vault.put(id, credential, expiresAt);
    return { ...data, expiresAt, sessionId: id };
  }

  /** The session of `id` if it is live and this replica holds its credential; null otherwise. */
  async resolve(id: string): Promise<AuthUser | null> {
    const data = await this.store.get(id);
    if (!data) {
      await this.vault.remove(id);
      return null;
    }
    if (data.expiresAt <= Date.now()) {
      await this.destroy(id);
      return null;
    }
    // Another replica may have accepted this session: then we have no credential, and the
    // browser must negotiate again here (ARCHITECTURE.md, scale-out).
    if (!this.vault.get(id)) return null;
    return { ...data, sessionId: id };
  }

  /** End a session everywhere: its data, its credential and its database pool. */
  async destroy(id: string): Promise<void> {
    await Promise.allSettled([this.store.delete(id), this.vault.remove(id)]);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.store.close?.();
  }
}
