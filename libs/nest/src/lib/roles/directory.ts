/**
 * What the directory says: the members of the users group (each becomes a PostgreSQL login role)
 * and of each group mirrored as a PostgreSQL group role.
 */
import { AndFilter, Client, EqualityFilter, OrFilter } from 'ldapts';
import type { Credential } from '@forwardable/gssapi';
import { roleFromPrincipal, roleNameCase, type UsernameCase } from '@forwardable/pg-gssapi';
import { firstRdn, LdapOptions, withLdap } from '../directory/ldap';
import { firstRangeDescription, readAllValues } from '../directory/ranged';

/** Which directory groups to read, and how a member entry names its user. */
export interface DirectoryReadOptions {
  /** The group (its `cn`) whose members get a login role, e.g. `forwardable-users`. */
  usersGroup: string;
  /** Groups (their `cn`) to mirror as PostgreSQL group roles of the same name. */
  groups: string[];
  /**
   * Attribute holding a member's name: `krbPrincipalName` (MIT's LDAP KDB, the default), or
   * `sAMAccountName` / `userPrincipalName` in Active Directory. A value with a realm
   * (`alice@EXAMPLE.COM`) becomes the role `alice`, as pg_hba's `include_realm=0` maps it.
   */
  userAttribute?: string;
  /** Realms whose principals may have roles; default: any. */
  allowedRealms?: string[];
  /**
   * How names become role names, as the API maps them (`FORWARDABLE_USERNAME_CASE`): `exact`
   * (default), or `lower`: `Alice@R`, `Alice` (sAMAccountName) and the group `Engineering` become
   * the roles `alice` and `engineering`, the names the API's sessions and shares use.
   */
  usernameCase?: UsernameCase;
  /**
   * Who a GSSAPI bind acts as (the CLI: the operator's own ticket from `KRB5CCNAME`); needed when
   * the directory options choose `gssapi`. Disposed after the bind.
   */
  gssapiCredential?: () => Promise<Credential>;
  /**
   * Ask Active Directory for at most this many `member` values per request (ranged retrieval,
   * `member;range=a-b`). The ranges a DC starts by itself (past its `MaxValRange`, 1500 by
   * default) are always followed; this only makes the windows smaller. Only for directories that
   * implement ranges (AD, Samba): OpenLDAP does not understand the range option. Default: none.
   */
  rangeStep?: number;
}

/** The directory's answer, already mapped to PostgreSQL role names. */
export interface DirectorySnapshot {
  /** Role names of the users group's members, sorted, without duplicates. */
  users: string[];
  /** For each mirrored group, by its role name: the role names of its members. */
  groups: Map<string, string[]>;
  /** Members that map to no role, each with the reason (service principals, reserved names...). */
  skipped: string[];
}

const GROUP_CLASSES = ['groupOfNames', 'groupOfUniqueNames', 'group'];

/**
 * Read the configured groups' direct members (nested groups are not expanded) and map each member
 * to a role name. A group that does not exist is an error, not an empty group: a typo in the
 * configuration must not plan to disable every user.
 * @throws Error naming the group and the base searched when a group is missing or ambiguous.
 */
export async function readDirectory(ldap: LdapOptions, o: DirectoryReadOptions): Promise<DirectorySnapshot> {
  const attribute = o.userAttribute ?? 'krbPrincipalName';
  if (o.rangeStep !== undefined && !(Number.isSafeInteger(o.rangeStep) && o.rangeStep > 0)) throw new RangeError(`rangeStep must be a whole number of values > 0, not ${o.rangeStep}`);
  const skipped: string[] = [];
  return withLdap(ldap, async (client) => {
    const names = new Map<string, string | undefined>();
    const roleOf = async (dn: string): Promise<string | undefined> => {
      if (!names.has(dn)) names.set(dn, await memberRole(client, dn, attribute, o.allowedRealms, o.usernameCase, skipped));
      return names.get(dn);
    };
    const membersOf = async (group: string): Promise<string[]> => {
      const roles = new Set<string>();
      for (const dn of await groupMemberDns(client, ldap, group, o.rangeStep)) {
        const r = await roleOf(dn);
        if (r) roles.add(r);
      }
      return [...roles].sort();
    };
    const users = await membersOf(o.usersGroup);
    const groups = new Map<string, string[]>();
    for (const g of o.groups) {
      // Members of `Engineering` and `engineering` (one directory group) add up under one role.
      const role = roleNameCase(g, o.usernameCase);
      groups.set(role, [...new Set([...(groups.get(role) ?? []), ...(await membersOf(g))])].sort());
    }
    return { users, groups, skipped };
  }, o.gssapiCredential);
}

async function groupMemberDns(client: Client, ldap: LdapOptions, group: string, rangeStep?: number): Promise<string[]> {
  const base = ldap.groupsBaseDn ?? ldap.baseDn;
  const { searchEntries } = await client.search(base, {
    scope: 'sub',
    filter: new AndFilter({
      filters: [
        new EqualityFilter({ attribute: 'cn', value: group }),
        new OrFilter({ filters: GROUP_CLASSES.map((c) => new EqualityFilter({ attribute: 'objectClass', value: c })) }),
      ],
    }),
    attributes: [firstRangeDescription('member', rangeStep), 'uniqueMember'],
  });
  if (searchEntries.length === 0) {
    throw new Error(`directory group "${group}" not found under ${base}: check the group name (its cn) and FORWARDABLE_LDAP_GROUPS_BASE`);
  }
  if (searchEntries.length > 1) {
    throw new Error(`directory group "${group}" is ambiguous under ${base} (${searchEntries.map((e) => e.dn).join('; ')}): narrow FORWARDABLE_LDAP_GROUPS_BASE`);
  }
  const e = searchEntries[0];
  // AD sends a big group's members in ranges (member;range=0-1499): follow them to the end.
  return [...(await readAllValues(client, e.dn, 'member', e, rangeStep)), ...values(e.uniqueMember)];
}

function values(v: unknown): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

/**
 * A member's role name: from its DN when the DN is built on the name attribute (MIT's LDAP KDB
 * names entries `krbPrincipalName=alice@R,...`, and the Kerberos container is usually not readable
 * by the reader account), otherwise from the entry itself.
 */
async function memberRole(
  client: Client,
  dn: string,
  attribute: string,
  allowedRealms: string[] | undefined,
  usernameCase: UsernameCase | undefined,
  skipped: string[],
): Promise<string | undefined> {
  let name: string | undefined;
  const rdn = firstRdn(dn);
  if (rdn && rdn.attribute.toLowerCase() === attribute.toLowerCase()) name = rdn.value;
  else {
    try {
      const { searchEntries } = await client.search(dn, { scope: 'base', attributes: [attribute] });
      const found = searchEntries[0]?.[attribute] ?? Object.entries(searchEntries[0] ?? {}).find(([k]) => k.toLowerCase() === attribute.toLowerCase())?.[1];
      name = values(found)[0];
    } catch (e) {
      skipped.push(`${dn}: cannot be read (${(e as Error).message})`);
      return undefined;
    }
    if (!name) {
      skipped.push(`${dn}: has no ${attribute}`);
      return undefined;
    }
  }
  let role = roleNameCase(name, usernameCase);
  if (name.includes('@')) {
    try {
      role = roleFromPrincipal(name, allowedRealms, usernameCase);
    } catch (e) {
      skipped.push(`${dn}: ${(e as Error).message}`);
      return undefined;
    }
  }
  const problem = roleNameProblem(role);
  if (problem) {
    skipped.push(`${dn}: ${problem}`);
    return undefined;
  }
  return role;
}

/** Why a name cannot be a role this tool creates, or `undefined` when it can. */
export function roleNameProblem(role: string): string | undefined {
  if (!role) return 'empty name';
  if (role.includes('\0')) return 'the name contains a NUL character';
  if (Buffer.byteLength(role, 'utf8') > 63) return `"${role}" is longer than PostgreSQL's 63-byte names`;
  if (/^pg_/i.test(role)) return `"${role}" is reserved: PostgreSQL keeps pg_* role names for itself`;
  if (/^(public|none|current_user|current_role|session_user)$/i.test(role)) return `"${role}" is a reserved role name`;
  return undefined;
}
