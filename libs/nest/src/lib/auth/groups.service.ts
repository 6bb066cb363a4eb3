import { Inject, Injectable, Logger } from '@nestjs/common';
import { Client, EqualityFilter } from 'ldapts';
import { AUTH_OPTIONS, AuthOptions, realmOf } from './options';

/**
 * A user's groups, exposed as roles: from LDAP when configured (groupOfNames whose `member` is
 * the user's entry), plus the configured admin list. A directory that does not answer yields no
 * groups: sign-in still works, but nobody is an administrator until it is back (fail closed).
 */
@Injectable()
export class GroupsService {
  private readonly log = new Logger(GroupsService.name);
  readonly adminGroup: string;
  private readonly admins: Set<string>;

  constructor(@Inject(AUTH_OPTIONS) private readonly options: AuthOptions) {
    this.adminGroup = options.adminGroup ?? 'forwardable-admins';
    this.admins = new Set((options.admins ?? []).map((a) => a.toLowerCase()));
  }

  /** Group names of `principal` (e.g. `alice@EXAMPLE.COM`), whose database role is `user`. */
  async groupsOf(principal: string, user: string): Promise<string[]> {
    const groups = new Set<string>(await this.ldapGroups(principal));
    if (this.admins.has(user.toLowerCase())) groups.add(this.adminGroup);
    return [...groups].sort();
  }

  private async ldapGroups(principal: string): Promise<string[]> {
    const ldap = this.options.ldap;
    if (!ldap) return [];
    // The member DN of a principal in MIT's LDAP KDB; an equality filter escapes the value (RFC 4515).
    const memberDn = (ldap.memberDn ?? 'krbPrincipalName={principal},cn={realm},cn=krbContainer,{base}')
      .replace('{principal}', escapeDnValue(principal))
      .replace('{realm}', escapeDnValue(realmOf(principal)))
      .replace('{base}', ldap.baseDn);
    const client = new Client({ url: ldap.url, timeout: 5000, connectTimeout: 5000 });
    try {
      await client.bind(ldap.bindDn, ldap.bindPassword);
      const { searchEntries } = await client.search(ldap.groupsBaseDn ?? ldap.baseDn, {
        scope: 'sub',
        filter: new EqualityFilter({ attribute: 'member', value: memberDn }),
        attributes: ['cn'],
      });
      return searchEntries.flatMap((e) => (Array.isArray(e.cn) ? e.cn : [e.cn])).map(String);
    } catch (err) {
      this.log.warn(`LDAP group lookup for ${principal} failed (${(err as Error).message}); no groups this time`);
      return [];
    } finally {
      await client.unbind().catch(() => undefined);
    }
  }
}

/** Escape a value for use inside a DN (RFC 4514). */
function escapeDnValue(v: string): string {
  return v.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`).replace(/^[ #]/, (c) => `\\${c}`).replace(/ $/, '\\ ');
}
