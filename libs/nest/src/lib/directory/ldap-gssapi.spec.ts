/**
 * LDAP bound with SASL/GSSAPI (RFC 4752) on the real LDAP realm: slapd with the Cyrus GSSAPI
 * module and its own ldap/localhost keytab, the API's HTTP/localhost keytab or a user's ticket as
 * the client, no LDAP password anywhere. The directory's own WhoAmI answer is the evidence of who
 * we bound as.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { acquireServiceCredential, Credential, KeytabNoKeyError } from '@forwardable/gssapi';
import { ensureRealm, kinit, processAlive, RealmEnv, TicketCache } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import { GroupsService } from '../auth/groups.service';
import type { AuthOptions } from '../auth/options';
import { LdapCredential, LdapOptions, ldapOptionsFromEnv, withLdap } from './ldap';
import { LdapGssapiBindError } from './sasl-gssapi';
import { CredentialSource, SharedServiceCredential } from './service-credential';

let realm: RealmEnv;
let alice: TicketCache;

/** The directory options the realm exports, minus every password: a GSSAPI bind. */
function gssapiLdap(): LdapOptions {
  const v = realm.vars;
  return { url: v.FORWARDABLE_LDAP_URL, baseDn: v.FORWARDABLE_LDAP_BASE, groupsBaseDn: v.FORWARDABLE_LDAP_GROUPS_BASE, saslService: 'ldap@localhost' };
}

const serviceCredential = (keytab = realm.httpKeytab) => () =>
  acquireServiceCredential({ keytab, principal: `HTTP/localhost@${realm.realm}`, usage: 'both' });

/** RFC 4532 "Who am I?": the authorization identity the server gave this connection. */
async function whoAmI(ldap: LdapOptions, credential: LdapCredential): Promise<string> {
  return withLdap(ldap, async (client) => {
    const r = await client.exop('1.3.6.1.4.1.4203.1.11.3');
    return String(r.value ?? '');
  }, credential);
}

beforeAll(() => {
  realm = ensureRealm('ldap');
  useRealm(realm);
  alice = kinit(realm, 'alice');
});

afterAll(() => alice?.destroy());

describe('LDAP SASL/GSSAPI bind on the real realm', () => {
  it('binds as the service from its keytab, with no password configured, and slapd maps it to the reader', async () => {
    const ldap = gssapiLdap();
    expect(ldap.bindDn).toBeUndefined();
    expect(ldap.bindPassword).toBeUndefined();
    expect(await whoAmI(ldap, serviceCredential())).toBe(`dn:cn=forwardable-reader,${realm.vars.FORWARDABLE_LDAP_BASE}`);
  });

  it('binds as a user with their own ticket (what the role tool does with the operator\'s)', async () => {
    expect((await whoAmI(gssapiLdap(), () => Credential.fromCache(alice.name, 'password'))).toLowerCase()).toMatch(/^dn:uid=alice(,cn=[^,]+)?,cn=gssapi,cn=auth$/);
  });

  it('GroupsService looks groups up through a GSSAPI bind as the HTTP service', async () => {
    const options = { keytab: realm.httpKeytab, servicePrincipal: `HTTP/localhost@${realm.realm}`, ldap: gssapiLdap() } as AuthOptions;
    const groups = new GroupsService(options);
    expect(await groups.groupsOf(`dbadmin@${realm.realm}`, 'dbadmin')).toEqual(['forwardable-admins', 'forwardable-users']);
    expect(await groups.groupsOf(`alice@${realm.realm}`, 'alice')).toEqual(['forwardable-users']);
  });

  it('a keytab without the service key fails with a clear error; the group lookup then fails closed', async () => {
    await expect(whoAmI(gssapiLdap(), serviceCredential(realm.otherKeytab))).rejects.toBeInstanceOf(KeytabNoKeyError);
    const options = { keytab: realm.otherKeytab, servicePrincipal: `HTTP/localhost@${realm.realm}`, ldap: gssapiLdap() } as AuthOptions;
    expect(await new GroupsService(options).groupsOf(`dbadmin@${realm.realm}`, 'dbadmin')).toEqual([]);
  });

  it('a directory service with no key in the KDC fails naming the service', async () => {
    await expect(whoAmI({ ...gssapiLdap(), saslService: 'ldap@nowhere.invalid' }, serviceCredential())).rejects.toThrow(/ldap\/nowhere\.invalid|nowhere\.invalid/);
  });

  it('the server refusing the bind (a service whose key the directory does not hold) is an LdapGssapiBindError', async () => {
    // postgres/localhost exists in the KDC, so we get a ticket, but slapd holds only ldap/localhost's key.
    await expect(whoAmI({ ...gssapiLdap(), saslService: 'postgres@localhost' }, serviceCredential())).rejects.toBeInstanceOf(LdapGssapiBindError);
  });

  it('refuses a GSSAPI bind over plain ldap:// to a non-loopback host before connecting', async () => {
    await expect(whoAmI({ ...gssapiLdap(), url: 'ldap://192.0.2.10/' }, serviceCredential())).rejects.toThrow(/needs ldaps:\/\//);
  });
});

/**
 * What the KDC issued to the HTTP service so far, from its own log: AS requests (its TGT) and TGS
 * requests for the directory's ldap/localhost ticket.
 */
function kdcIssued(): { tgt: number; ldap: number } {
  const log = readFileSync(join(realm.dir, 'log/krb5kdc.log'), 'utf8');
  const count = (re: RegExp) => (log.match(re) ?? []).length;
  const r = realm.realm.replace(/\./g, '\\.');
  return {
    tgt: count(new RegExp(`AS_REQ .*ISSUE: .*HTTP/localhost@${r} for krbtgt/${r}@${r}$`, 'gm')),
    ldap: count(new RegExp(`TGS_REQ .*ISSUE: .*HTTP/localhost@${r} for ldap/localhost@${r}$`, 'gm')),
  };
}

/** krb5kdc writes its log as it goes; give the last line a moment to land. */
async function settledKdcIssued(): Promise<{ tgt: number; ldap: number }> {
  let last = kdcIssued();
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const now = kdcIssued();
    if (now.tgt === last.tgt && now.ldap === last.ldap) return now;
    last = now;
  }
  return last;
}

async function stopKdc(): Promise<void> {
  const pid = Number(readFileSync(join(realm.dir, 'run/krb5kdc.pid'), 'utf8').split('\n')[0]);
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 200 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  if (processAlive(pid)) throw new Error(`krb5kdc (${pid}) did not stop`);
}

describe('KDC round trips of the service\'s LDAP binds', () => {
  const LOOKUPS = 6;
  const options = () => ({ keytab: realm.httpKeytab, servicePrincipal: `HTTP/localhost@${realm.realm}`, ldap: gssapiLdap() }) as AuthOptions;

  it('the counter works: a credential per bind costs a TGT and an ldap/ ticket every time', async () => {
    const before = await settledKdcIssued();
    for (let i = 0; i < 3; i++) expect(await whoAmI(gssapiLdap(), serviceCredential())).toMatch(/forwardable-reader/);
    const after = await settledKdcIssued();
    expect(after.tgt - before.tgt).toBe(3);
    expect(after.ldap - before.ldap).toBe(3);
  });

  it(`GroupsService keeps one credential: ${LOOKUPS} lookups cost one TGT and one ldap/ ticket, and shutdown destroys it`, async () => {
    const groups = new GroupsService(options());
    try {
      const before = await settledKdcIssued();
      for (let i = 0; i < LOOKUPS; i++) expect(await groups.groupsOf(`alice@${realm.realm}`, 'alice')).toEqual(['forwardable-users']);
      const after = await settledKdcIssued();
      expect(after).toEqual({ tgt: before.tgt + 1, ldap: before.ldap + 1 });
      // Concurrent lookups share it too.
      await Promise.all(Array.from({ length: LOOKUPS }, () => groups.groupsOf(`dbadmin@${realm.realm}`, 'dbadmin')));
      expect(await settledKdcIssued()).toEqual(after);
    } finally {
      groups.onApplicationShutdown();
    }
    // Shut down: nothing to bind with any more, so the lookup fails closed.
    expect(await groups.groupsOf(`dbadmin@${realm.realm}`, 'dbadmin')).toEqual([]);
  });

  it('renews the credential before it expires and disposes the old one', async () => {
    let skew = 0;
    const acquired: Credential[] = [];
    const shared = new SharedServiceCredential(async () => {
      const c = await serviceCredential()();
      acquired.push(c);
      return c;
    }, { now: () => Date.now() + skew });
    try {
      expect(await whoAmI(gssapiLdap(), shared)).toMatch(/forwardable-reader/);
      expect(await whoAmI(gssapiLdap(), shared)).toMatch(/forwardable-reader/);
      expect(acquired).toHaveLength(1);
      const end = acquired[0].expiresAt;
      expect(end).toBeInstanceOf(Date);
      // Four minutes before its end (inside the five-minute margin): time for a new one.
      skew = (end as Date).getTime() - Date.now() - 4 * 60_000;
      const before = await settledKdcIssued();
      expect(await whoAmI(gssapiLdap(), shared)).toMatch(/forwardable-reader/);
      expect(acquired).toHaveLength(2);
      expect(acquired[0].disposed).toBe(true);
      expect(acquired[1].disposed).toBe(false);
      expect(await settledKdcIssued()).toEqual({ tgt: before.tgt + 1, ldap: before.ldap + 1 });
    } finally {
      shared.dispose();
    }
    expect(acquired.every((c) => c.disposed)).toBe(true);
  });

  it('a bind that fails with a credential already in use is retried once with a new one; a new one that fails is not retried', async () => {
    const good = serviceCredential();
    const broken = await good();
    broken.dispose();
    const leases: { fresh: boolean; failed?: boolean }[] = [];
    // First a cached credential that no longer works (disposed here; in life: keys changed), then a fresh one.
    const source: CredentialSource = {
      borrow: async () => {
        const fresh = leases.length > 0;
        const lease = { fresh, failed: undefined as boolean | undefined };
        leases.push(lease);
        const credential = fresh ? await good() : broken;
        return { credential, fresh, release: (failed = false) => { lease.failed = failed; if (fresh) credential.dispose(); } };
      },
    };
    expect(await whoAmI(gssapiLdap(), source)).toMatch(/forwardable-reader/);
    expect(leases).toEqual([{ fresh: false, failed: true }, { fresh: true, failed: false }]);
    const alwaysFresh: CredentialSource = { borrow: async () => ({ credential: broken, fresh: true, release: () => leases.push({ fresh: true, failed: true }) }) };
    await expect(whoAmI(gssapiLdap(), alwaysFresh)).rejects.toThrow(/disposed/);
    expect(leases).toHaveLength(3);
  });

  it('survives the KDC stopping (binds need no KDC) and recovers after it restarts', async () => {
    const acquired: Credential[] = [];
    let skew = 0;
    const shared = new SharedServiceCredential(async () => {
      const c = await serviceCredential()();
      acquired.push(c);
      return c;
    }, { now: () => Date.now() + skew });
    try {
      expect(await whoAmI(gssapiLdap(), shared)).toMatch(/forwardable-reader/);
      await stopKdc();
      try {
        // The cached TGT and ldap/ ticket are enough: the directory keeps answering.
        expect(await whoAmI(gssapiLdap(), shared)).toMatch(/forwardable-reader/);
        // The credential is due for renewal while the KDC is down: that bind fails...
        skew = (acquired[0].expiresAt as Date).getTime() - Date.now();
        await expect(whoAmI(gssapiLdap(), shared)).rejects.toThrow();
      } finally {
        realm = ensureRealm('ldap');
      }
      // ...and the next one, with the KDC back, gets a new credential and succeeds.
      expect(await whoAmI(gssapiLdap(), shared)).toMatch(/forwardable-reader/);
      expect(acquired[acquired.length - 1].disposed).toBe(false);
      expect(acquired[0].disposed).toBe(true);
    } finally {
      shared.dispose();
    }
  });
});

describe('ldapOptionsFromEnv', () => {
  const base = { FORWARDABLE_LDAP_URL: 'ldap://127.0.0.1:389/', FORWARDABLE_LDAP_BASE: 'dc=example,dc=com' };

  it('chooses gssapi when no bind DN or password is set, simple when they are', () => {
    expect(ldapOptionsFromEnv(base)).toEqual({ ...{ url: base.FORWARDABLE_LDAP_URL, baseDn: base.FORWARDABLE_LDAP_BASE }, bind: 'gssapi', saslService: undefined, groupsBaseDn: undefined });
    expect(ldapOptionsFromEnv({ ...base, FORWARDABLE_LDAP_BIND_DN: 'cn=r', FORWARDABLE_LDAP_BIND_PASSWORD: 'pw' })).toMatchObject({ bind: 'simple', bindDn: 'cn=r', bindPassword: 'pw' });
    expect(ldapOptionsFromEnv({ ...base, FORWARDABLE_LDAP_SASL_SERVICE: 'ldap@dc1.example.com' })).toMatchObject({ bind: 'gssapi', saslService: 'ldap@dc1.example.com' });
  });

  it('names every problem: gssapi over plain ldap:// to a remote host, a password with gssapi, a bad mode', () => {
    expect(() => ldapOptionsFromEnv({ ...base, FORWARDABLE_LDAP_URL: 'ldap://dc1.example.com/' })).toThrow(/needs ldaps:\/\//);
    expect(() => ldapOptionsFromEnv({ ...base, FORWARDABLE_LDAP_BIND: 'gssapi', FORWARDABLE_LDAP_BIND_PASSWORD: 'pw' })).toThrow(/unset FORWARDABLE_LDAP_BIND_DN/);
    expect(() => ldapOptionsFromEnv({ ...base, FORWARDABLE_LDAP_BIND: 'kerberos' })).toThrow(/FORWARDABLE_LDAP_BIND=kerberos must be gssapi or simple/);
    expect(() => ldapOptionsFromEnv({ ...base, FORWARDABLE_LDAP_BIND: 'simple' })).toThrow(/FORWARDABLE_LDAP_BIND_DN is not set/);
    expect(ldapOptionsFromEnv({ ...base, FORWARDABLE_LDAP_URL: 'ldaps://dc1.example.com/' })).toMatchObject({ bind: 'gssapi' });
  });
});
