/**
 * Groups from the Kerberos ticket's PAC, against a real Samba AD DC: alice is put in an AD group,
 * signs in with curl --negotiate, and /api/auth/me lists that group, named through one LDAP search
 * by objectSid over ldaps:// with a SASL/GSSAPI bind as the API's own service (no LDAP password). The membership lookup the API falls back to (groupOfNames `member` with MIT's
 * LDAP-KDB layout) cannot find anything in AD, and AD never lists primary groups in `member`,
 * so "Domain Users" can only have come from the PAC.
 */
import { ensureRealm, kinit, RealmEnv, runWithRealm, TicketCache } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import { Api, configFor, curl, startApi } from '../testing/api-harness';

const GROUP = 'pac-engineering';

describe('groups from the PAC (Samba AD DC)', () => {
  let realm: RealmEnv;
  let api: Api;
  const caches: TicketCache[] = [];

  function samba(args: string[]): { status: number | null; out: string } {
    const r = runWithRealm(realm, 'samba-tool', [...args, '-s', realm.vars.FORWARDABLE_AD_SMB_CONF]);
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  }

  beforeAll(async () => {
    realm = ensureRealm('samba-ad');
    useRealm(realm);
    const add = samba(['group', 'add', GROUP]);
    if (add.status !== 0 && !/already exists/i.test(add.out)) throw new Error(`samba-tool group add: ${add.out}`);
    const members = samba(['group', 'addmembers', GROUP, 'alice']);
    if (members.status !== 0 && !/already|member/i.test(members.out)) throw new Error(`samba-tool group addmembers: ${members.out}`);
    // The DC as a deployment reaches it (tools/realm/samba-ad.sh): ldaps:// with its CA, and a
    // GSSAPI bind to its ldap/<fqdn> service; the DC refuses simple and unsealed binds on ldap://.
    api = await startApi(configFor(realm, {
      FORWARDABLE_DELEGATION: 'unconstrained',
      FORWARDABLE_LDAP_URL: realm.vars.FORWARDABLE_AD_LDAPS_URL,
      FORWARDABLE_LDAP_BASE: realm.vars.FORWARDABLE_AD_BASE_DN,
      FORWARDABLE_LDAP_CA_FILE: realm.vars.FORWARDABLE_AD_LDAP_CA_FILE,
      FORWARDABLE_LDAP_SASL_SERVICE: realm.vars.FORWARDABLE_AD_LDAP_SASL_SERVICE,
    }));
  });
  afterAll(async () => {
    await api?.close();
    caches.forEach((c) => c.destroy());
  });

  async function groupsOf(user: 'alice' | 'bob'): Promise<string[]> {
    const cc = kinit(realm, user);
    caches.push(cc);
    const r = await curl(realm, `${api.url}/api/auth/me`, { cc, delegate: true });
    expect(r.status).toBe(200);
    expect(r.body.principal).toBe(`${user}@${realm.realm}`);
    return r.body.groups as string[];
  }

  it('lists the AD groups of the ticket on /api/auth/me, the primary group included', async () => {
    const groups = await groupsOf('alice');
    expect(groups).toEqual(expect.arrayContaining([GROUP, 'Domain Users']));
  });

  it('lists only the groups the user is in', async () => {
    const groups = await groupsOf('bob');
    expect(groups).toContain('Domain Users');
    expect(groups).not.toContain(GROUP);
  });
});
