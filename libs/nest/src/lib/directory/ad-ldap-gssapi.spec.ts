/**
 * The directory side of issue #20 against a real Samba AD DC, configured as a deployment would
 * be: ldaps:// with the DC's CA (FORWARDABLE_LDAP_CA_FILE), a SASL/GSSAPI bind to the DC's own
 * ldap/<fqdn> service from the API's keytab (or the operator's ticket for the role tool), no LDAP
 * password anywhere, and the DC set to `ldap server require strong auth = allow_sasl_over_tls`.
 * Also AD's ranged retrieval of a big group's `member`, and the refusal of plain ldap://.
 *
 * The URL names the DC by address (no DNS in the test network namespace; its certificate carries
 * the address too), so FORWARDABLE_LDAP_SASL_SERVICE names the SPN: ldap@<dc fqdn>.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Client } from 'ldapts';
import { acquireServiceCredential, sidFromBuffer } from '@forwardable/gssapi';
import { ensureRealm, kinit, RealmEnv, realmProcessEnv, repoRoot, runWithRealm, superuserSql, TicketCache } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import { GroupsService } from '../auth/groups.service';
import type { AuthOptions } from '../auth/options';
import { readDirectory } from '../roles/directory';
import { LdapOptions, ldapOptionsFromEnv, withLdap } from './ldap';
import { firstRangeDescription, readAllValues } from './ranged';
import { bindGssapi, LdapGssapiBindError } from './sasl-gssapi';
import { SharedServiceCredential } from './service-credential';

const cli = join(repoRoot, 'libs/nest/src/lib/roles/cli.ts');
// Names unique to this run: the AD test realm is shared by other suites and survives them.
const tag = `adl${randomBytes(3).toString('hex')}`;
const bigGroup = `${tag}-big`;
const readers = `${tag}-readers`;
const MEMBERS = 25;
const STEP = 10;
const members = Array.from({ length: MEMBERS }, (_, i) => `${tag}-u${String(i).padStart(2, '0')}`);

describe('LDAP over SASL/GSSAPI and ldaps:// against Samba AD', () => {
  let realm: RealmEnv;
  let env: Record<string, string>;
  let ldap: LdapOptions;
  let dbadmin: TicketCache;
  const base = () => realm.vars.FORWARDABLE_AD_BASE_DN;
  const samLdb = () => join(realm.dir, 'samba/private/sam.ldb');
  const serviceCredential = () => acquireServiceCredential({ keytab: realm.httpKeytab, principal: realm.servicePrincipal, usage: 'both' });

  function ldb(tool: 'ldbadd' | 'ldbdel' | 'ldbsearch', args: string[], input?: string): string {
    const r = runWithRealm(realm, tool, ['-H', samLdb(), ...args], { input });
    if (r.status !== 0) throw new Error(`${tool} failed: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  const sidOf = (cn: string) => /^objectSid: (S-[\d-]+)$/m.exec(ldb('ldbsearch', ['-b', base(), `(cn=${cn})`, 'objectSid']))?.[1] as string;

  beforeAll(() => {
    realm = ensureRealm('samba-ad');
    useRealm(realm);
    // The directory settings of a deployment: no bind DN, no password (file), only where and who.
    env = {
      FORWARDABLE_LDAP_URL: realm.vars.FORWARDABLE_AD_LDAPS_URL,
      FORWARDABLE_LDAP_BASE: base(),
      FORWARDABLE_LDAP_CA_FILE: realm.vars.FORWARDABLE_AD_LDAP_CA_FILE,
      FORWARDABLE_LDAP_SASL_SERVICE: realm.vars.FORWARDABLE_AD_LDAP_SASL_SERVICE,
    };
    ldap = ldapOptionsFromEnv(env) as LdapOptions;
    // 25 accounts in one group, added straight into the DC's database (one ldbadd, not 25
    // samba-tool runs); they need no password to be members.
    const users = members.map((u) => `dn: CN=${u},CN=Users,${base()}\nobjectClass: user\nsAMAccountName: ${u}\n`).join('\n');
    const group = `dn: CN=${bigGroup},CN=Users,${base()}\nobjectClass: group\nsAMAccountName: ${bigGroup}\n${members.map((u) => `member: CN=${u},CN=Users,${base()}`).join('\n')}\n`;
    // svc-http (the HTTP service's account) alone in a group of its own: the evidence of who bound.
    const readersGroup = `dn: CN=${readers},CN=Users,${base()}\nobjectClass: group\nsAMAccountName: ${readers}\nmember: CN=svc-http,CN=Users,${base()}\n`;
    ldb('ldbadd', [], `${users}\n${group}\n${readersGroup}`);
    dbadmin = kinit(realm, 'dbadmin');
  });

  afterAll(() => {
    dbadmin?.destroy();
    if (!realm) return;
    ldb('ldbdel', [`CN=${bigGroup},CN=Users,${base()}`, `CN=${readers},CN=Users,${base()}`, ...members.map((u) => `CN=${u},CN=Users,${base()}`)]);
  });

  it('the DC has its ldap/<fqdn> service principal, and the API\'s directory settings hold no password', () => {
    const fqdn = realm.vars.FORWARDABLE_AD_LDAP_SASL_SERVICE.replace(/^ldap@/, '');
    const spns = runWithRealm(realm, 'samba-tool', ['spn', 'list', 'FWDC$', '-s', realm.vars.FORWARDABLE_AD_SMB_CONF]);
    expect(spns.stdout).toMatch(new RegExp(`^\\s*ldap/${fqdn.replace(/\./g, '\\.')}$`, 'mi'));
    // The settings the API and the role tool read from these variables: a GSSAPI bind, no DN, no password.
    expect(ldap).toEqual({ url: env.FORWARDABLE_LDAP_URL, baseDn: base(), bind: 'gssapi', saslService: `ldap@${fqdn}`, groupsBaseDn: undefined, caFile: env.FORWARDABLE_LDAP_CA_FILE });
    expect(Object.keys(env).filter((k) => /LDAP_BIND_(DN|PASSWORD)/.test(k))).toEqual([]);
    expect(env.FORWARDABLE_LDAP_URL).toMatch(/^ldaps:\/\//);
  });

  it('binds over ldaps:// as the HTTP service from its keytab; the DC says who we are', async () => {
    // AD has no "Who am I?" operation; the rootDSE's tokenGroups lists the groups of the bound
    // identity, and only svc-http is in the readers group.
    const token = await withLdap(ldap, async (client) => {
      const { searchEntries } = await client.search('', { scope: 'base', attributes: ['tokenGroups'], explicitBufferAttributes: ['tokenGroups'] });
      const raw = searchEntries[0]?.tokenGroups;
      return (Array.isArray(raw) ? raw : [raw]).filter(Buffer.isBuffer).map((b) => sidFromBuffer(b));
    }, serviceCredential);
    expect(token).toContain(sidOf(readers));
    expect(token).toContain(sidOf('Domain Users'));
  });

  it('GroupsService names the PAC\'s group SIDs through the GSSAPI bind (the groups of a user)', async () => {
    const groups = new GroupsService({ keytab: realm.httpKeytab, servicePrincipal: realm.servicePrincipal, ldap } as AuthOptions);
    try {
      const domainUsers = sidOf('Domain Users');
      expect(domainUsers).toMatch(/^S-1-5-21-\d+-\d+-\d+-513$/);
      // What a PAC lists: the primary group, a group of our own, and a well-known SID with no object.
      expect(await groups.groupsOf(`${members[0]}@${realm.realm}`, members[0], [domainUsers, sidOf(bigGroup), 'S-1-18-1'])).toEqual([bigGroup, 'Domain Users'].sort());
    } finally {
      groups.onApplicationShutdown();
    }
  });

  it('follows AD\'s ranges of a big group\'s member attribute to the end', async () => {
    const credential = new SharedServiceCredential(serviceCredential);
    try {
      await withLdap(ldap, async (client) => {
        const search = client.search.bind(client);
        const asked: string[][] = [];
        // Record what is asked, to show the follow-up requests really went to the DC.
        client.search = ((dn: string, options?: Parameters<Client['search']>[1], controls?: Parameters<Client['search']>[2]) => {
          asked.push([...(options?.attributes ?? [])]);
          return search(dn, options, controls);
        }) as Client['search'];
        const dn = `CN=${bigGroup},CN=Users,${base()}`;
        const { searchEntries } = await client.search(dn, { scope: 'base', attributes: [firstRangeDescription('member', STEP)] });
        // The DC really answers in ranges: the first window is 0-9, not the whole attribute.
        expect(Object.keys(searchEntries[0])).toContain('member;range=0-9');
        const all = await readAllValues(client, dn, 'member', searchEntries[0], STEP);
        expect(all.map((m) => /^CN=([^,]+),/.exec(m)?.[1]).sort()).toEqual(members);
        expect(asked).toEqual([['member;range=0-9'], ['member;range=10-19'], ['member;range=20-29']]);
      }, credential);
      // The role tool's reader, over the same ranges, finds every member's sAMAccountName.
      const snapshot = await readDirectory(ldap, { usersGroup: bigGroup, groups: [], userAttribute: 'sAMAccountName', rangeStep: STEP, gssapiCredential: serviceCredential });
      expect(snapshot.users).toEqual(members);
      expect(snapshot.skipped).toEqual([]);
    } finally {
      credential.dispose();
    }
  });

  it('forwardable-roles sync plans the roles of the AD group over GSSAPI as the operator (dry run changes nothing)', () => {
    const before = superuserSql(realm, `SELECT count(*) FROM pg_roles WHERE rolname LIKE '${tag}%'`);
    const childEnv = realmProcessEnv(realm, {
      ...env,
      KRB5CCNAME: dbadmin.name,
      TS_NODE_PROJECT: join(repoRoot, 'libs/nest/tsconfig.lib.json'),
      FORWARDABLE_LDAP_USER_ATTRIBUTE: 'sAMAccountName',
      FORWARDABLE_ROLES_USERS_GROUP: bigGroup,
      FORWARDABLE_ROLES_GROUPS: bigGroup,
      FORWARDABLE_PG_HOST: 'localhost',
      FORWARDABLE_PG_HOSTADDR: '127.0.0.1',
      FORWARDABLE_PG_PORT: String(realm.pg.port),
      FORWARDABLE_PG_DATABASE: realm.pg.database,
    });
    for (const k of Object.keys(childEnv)) if (/^FORWARDABLE_LDAP_BIND_(DN|PASSWORD)/.test(k)) delete childEnv[k];
    const r = spawnSync('node', ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register', cli, 'sync'], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000, env: childEnv });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    for (const u of members) {
      expect(r.stdout).toContain(`CREATE ROLE "${u}" LOGIN IN ROLE "forwardable_managed";`);
      expect(r.stdout).toContain(`GRANT "${bigGroup}" TO "${u}";`);
    }
    expect(r.stdout).toMatch(/dry run: nothing changed/);
    expect(superuserSql(realm, `SELECT count(*) FROM pg_roles WHERE rolname LIKE '${tag}%'`)).toEqual(before);
  });

  it('refuses a GSSAPI bind over plain ldap:// to the DC with a clear error, and the DC itself refuses an unsealed bind there', async () => {
    const plain = realm.vars.FORWARDABLE_AD_LDAPS_URL.replace(/^ldaps:/, 'ldap:');
    expect(() => ldapOptionsFromEnv({ ...env, FORWARDABLE_LDAP_URL: plain, FORWARDABLE_LDAP_CA_FILE: '' })).toThrow(/needs ldaps:\/\/ \(or a loopback address\)/);
    await expect(withLdap({ ...ldap, url: plain, caFile: undefined }, async () => 'read', serviceCredential)).rejects.toThrow(/needs ldaps:\/\//);
    // Past our own check (bindGssapi alone), the DC configured for production answers the same:
    // on plain LDAP it wants a signed or sealed bind (strongerAuthRequired), which Forwardable does not do.
    const client = new Client({ url: plain, timeout: 5000, connectTimeout: 5000 });
    const credential = await serviceCredential();
    try {
      const refused = bindGssapi(client, credential, ldap.saslService as string);
      await expect(refused).rejects.toThrow(LdapGssapiBindError);
      await expect(refused).rejects.toThrow(/strongerAuthRequired.*connect with ldaps:\/\//);
    } finally {
      credential.dispose();
      await client.unbind().catch(() => undefined);
    }
  });

  it('refuses ldaps:// to a DC whose certificate is not signed by the configured CA', async () => {
    await expect(withLdap({ ...ldap, caFile: undefined }, async () => 'read', serviceCredential)).rejects.toThrow(/self[- ]signed|unable to (get|verify)/i);
  });
});
