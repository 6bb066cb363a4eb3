import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { EqualityFilter, OrFilter } from 'ldapts';
import { acquireServiceCredential, sidFromBuffer, sidToBuffer } from '@forwardable/gssapi';
import { withLdap } from '../directory/ldap';
import { SharedServiceCredential } from '../directory/service-credential';
import { AUTH_OPTIONS, AuthOptions, realmOf } from './options';

/** How long a SID's group name is trusted before the directory is asked again. */
const SID_CACHE_MS = 10 * 60_000;
/** SIDs per LDAP search (an OR filter); a PAC rarely lists more than a few hundred. */
const SID_BATCH = 100;

/**
 * A user's groups, exposed as roles: from the ticket's PAC when it has one (Active Directory: the
 * group SIDs, named through one LDAP search and cached), otherwise from LDAP (groupOfNames whose
 * `member` is the user's entry), plus the configured admin list. A directory that does not answer
 * yields no groups: sign-in still works, but nobody is an administrator until it is back (fail closed).
 */
@Injectable()
export class GroupsService implements OnApplicationShutdown {
  private readonly log = new Logger(GroupsService.name);
  readonly adminGroup: string;
  private readonly admins: Set<string>;

  constructor(@Inject(AUTH_OPTIONS) private readonly options: AuthOptions) {
    this.adminGroup = options.adminGroup ?? 'forwardable-admins';
    this.admins = new Set((options.admins ?? []).map((a) => a.toLowerCase()));
  }

  /**
   * Who a GSSAPI bind to the directory acts as: the service itself, from its keytab. One shared
   * credential (its TGT and ldap/ ticket in a private MEMORY cache), so a lookup costs no KDC
   * round trip; renewed before it expires, destroyed at shutdown.
   */
  private readonly ldapCredential = new SharedServiceCredential(() =>
    acquireServiceCredential({ keytab: this.options.keytab, principal: this.options.servicePrincipal, usage: 'both' }));

  /** Destroy the shared LDAP credential and its cache. */
  onApplicationShutdown(): void {
    this.ldapCredential.dispose();
  }

  private readonly sidNames = new Map<string, { name: string | null; at: number }>();

  /**
   * Group names of `principal` (e.g. `alice@EXAMPLE.COM`), whose database role is `user`.
   * @param pacGroupSids - the group SIDs of the user's ticket (PAC), when it had one: they are
   *   named through the directory instead of searching for the user's memberships.
   */
  async groupsOf(principal: string, user: string, pacGroupSids?: string[]): Promise<string[]> {
    const fromPac = pacGroupSids?.length && this.options.ldap ? await this.namesOfSids(pacGroupSids) : undefined;
    const groups = new Set<string>(fromPac ?? (await this.ldapGroups(principal)));
    if (this.admins.has(user.toLowerCase())) groups.add(this.adminGroup);
    return [...groups].sort();
  }

  /**
   * Names (`cn`) of the directory objects with these SIDs (`objectSid`), cached for
   * SID_CACHE_MS; SIDs with no object (well-known ones such as S-1-18-1) are left out.
   * @returns undefined when the directory does not answer (the caller falls back).
   */
  private async namesOfSids(sids: string[]): Promise<string[] | undefined> {
    const ldap = this.options.ldap;
    if (!ldap) return undefined;
    const now = Date.now();
    const missing = [...new Set(sids)].filter((sid) => {
      const hit = this.sidNames.get(sid);
      return !hit || now - hit.at > SID_CACHE_MS;
    });
    if (missing.length) {
      try {
        const found = await withLdap(ldap, async (client) => {
          const names = new Map<string, string>();
          for (let i = 0; i < missing.length; i += SID_BATCH) {
            const batch = missing.slice(i, i + SID_BATCH);
            const { searchEntries } = await client.search(ldap.groupsBaseDn ?? ldap.baseDn, {
              scope: 'sub',
              filter: new OrFilter({ filters: batch.map((sid) => new EqualityFilter({ attribute: 'objectSid', value: sidToBuffer(sid) })) }),
              attributes: ['objectSid', 'cn'],
              explicitBufferAttributes: ['objectSid'],
            });
            for (const e of searchEntries) {
              const raw = Array.isArray(e.objectSid) ? e.objectSid[0] : e.objectSid;
              const cn = Array.isArray(e.cn) ? e.cn[0] : e.cn;
              if (Buffer.isBuffer(raw) && cn !== undefined) names.set(sidFromBuffer(raw), String(cn));
            }
          }
          return names;
        }, this.ldapCredential);
        for (const sid of missing) this.sidNames.set(sid, { name: found.get(sid) ?? null, at: now });
      } catch (err) {
        this.log.warn(`LDAP lookup of ${missing.length} group SID(s) from a PAC failed (${(err as Error).message}); using the membership lookup`);
        return undefined;
      }
    }
    return sids.map((sid) => this.sidNames.get(sid)?.name).filter((n): n is string => !!n);
  }

  private async ldapGroups(principal: string): Promise<string[]> {
    const ldap = this.options.ldap;
    if (!ldap) return [];
    // The member DN of a principal in MIT's LDAP KDB; an equality filter escapes the value (RFC 4515).
    const memberDn = (ldap.memberDn ?? 'krbPrincipalName={principal},cn={realm},cn=krbContainer,{base}')
      .replace('{principal}', escapeDnValue(principal))
      .replace('{realm}', escapeDnValue(realmOf(principal)))
      .replace('{base}', ldap.baseDn);
    try {
      return await withLdap(ldap, async (client) => {
        const { searchEntries } = await client.search(ldap.groupsBaseDn ?? ldap.baseDn, {
          scope: 'sub',
          filter: new EqualityFilter({ attribute: 'member', value: memberDn }),
          attributes: ['cn'],
        });
        return searchEntries.flatMap((e) => (Array.isArray(e.cn) ? e.cn : [e.cn])).map(String);
      }, this.ldapCredential);
    } catch (err) {
      this.log.warn(`LDAP group lookup for ${principal} failed (${(err as Error).message}); no groups this time`);
      return [];
    }
  }
}

/** Escape a value for use inside a DN (RFC 4514). */
function escapeDnValue(v: string): string {
  return v.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`).replace(/^[ #]/, (c) => `\\${c}`).replace(/ $/, '\\ ');
}
