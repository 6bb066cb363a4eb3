/**
 * The throwaway realm itself, proven with the real MIT tools and psql: these are the facts every
 * later suite stands on. Nothing here is mocked.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureRealm, kinit, processAlive, readRealm, RealmEnv, repoRoot, runWithRealm, stopRealm, testPortBase, TicketCache } from '@forwardable/testing/realm';

const realmTool = join(repoRoot, 'tools/realm/realm.sh');

function psqlAs(realm: RealmEnv, user: string, cc: TicketCache, sql: string) {
  return runWithRealm(
    realm,
    'psql',
    ['-X', '-A', '-t', '-h', realm.pg.host, '-p', String(realm.pg.port), '-U', user, '-d', realm.pg.database, '-c', sql],
    { ccache: cc, env: { PGHOSTADDR: realm.pg.hostaddr } },
  );
}

function pidsOf(realm: RealmEnv): number[] {
  const files = ['run/krb5kdc.pid', 'pg/data/postmaster.pid'];
  if (realm.kdb === 'ldap') files.push('run/slapd.pid');
  return files.map((f) => Number(readFileSync(join(realm.dir, f), 'utf8').split('\n')[0]));
}

describe.each(['db2', 'ldap'] as const)('realm with the %s KDB', (kdb) => {
  let realm: RealmEnv;
  let alice: TicketCache;

  beforeAll(() => {
    realm = ensureRealm(kdb);
    alice = kinit(realm, 'alice');
  });
  afterAll(() => alice?.destroy());

  it('issues alice a forwardable TGT for her password', () => {
    const r = runWithRealm(realm, 'klist', ['-f'], { ccache: alice });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`Default principal: alice@${realm.realm}`);
    expect(r.stdout).toMatch(new RegExp(`krbtgt/${realm.realm.replace(/\./g, '\\.')}@\\S+\\s*\\n\\s*renew until .*Flags: F`));
  });

  it('refuses a wrong password', () => {
    const r = runWithRealm(realm, 'kinit', [`alice@${realm.realm}`], {
      env: { KRB5CCNAME: 'MEMORY:wrong' },
      input: 'not-her-password\n',
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/Password incorrect|Preauthentication failed/);
  });

  it('lets alice reach PostgreSQL as alice with her ticket, and with no password method', () => {
    const r = psqlAs(realm, 'alice', alice, 'SELECT session_user');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('alice');
    const hba = readFileSync(join(realm.dir, 'pg/data/pg_hba.conf'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.trim().startsWith('#'));
    expect(hba.some((l) => /\bgss\b.*include_realm=0/.test(l))).toBe(true);
    // TCP only with GSSAPI encryption: no plain "host" line (#17).
    expect(hba.filter((l) => !l.startsWith('local')).every((l) => /^hostgssenc\s/.test(l))).toBe(true);
    expect(hba.join('\n')).not.toMatch(/\b(trust|password|md5|scram-sha-256)\b/);
  });

  it('refuses alice\'s ticket for the role bob', () => {
    const r = psqlAs(realm, 'bob', alice, 'SELECT 1');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('GSSAPI authentication failed for user "bob"');
  });

  it('gives a ticket for HTTP/localhost, flagged ok-as-delegate', () => {
    const r = runWithRealm(realm, 'kvno', [`HTTP/localhost@${realm.realm}`], { ccache: alice });
    expect(r.status).toBe(0);
    const list = runWithRealm(realm, 'klist', ['-f'], { ccache: alice }).stdout;
    expect(list).toMatch(/HTTP\/localhost@\S+\s*\n.*Flags: \w*O/);
  });

  it('has a database owned by dbadmin, who is not a superuser (superusers bypass RLS)', () => {
    const admin = kinit(realm, 'dbadmin');
    try {
      const r = psqlAs(realm, 'dbadmin', admin, "SELECT pg_get_userbyid(datdba) || ',' || (SELECT rolsuper FROM pg_roles WHERE rolname = 'dbadmin') FROM pg_database WHERE datname = current_database()");
      expect(r.stdout.trim()).toBe('dbadmin,false');
    } finally {
      admin.destroy();
    }
  });

  it('is idempotent: a second up keeps the same daemons', () => {
    const before = pidsOf(realm);
    const again = ensureRealm(kdb);
    expect(again.passwords).toEqual(realm.passwords);
    expect(pidsOf(again)).toEqual(before);
    const status = execFileSync('bash', [realmTool, 'status', '--dir', realm.dir], { encoding: 'utf8' });
    expect(status).toMatch(/krb5kdc running/);
    expect(status).toMatch(/postgres running/);
  });

  it('prints an env file a shell can eval', () => {
    const out = execFileSync('bash', [realmTool, 'env', '--dir', realm.dir], { encoding: 'utf8' });
    const shell = execFileSync('bash', ['-c', `eval "$1"; echo "$KRB5_CONFIG|$FORWARDABLE_URL|$FORWARDABLE_PASSWORD_BOB"`, '_', out], {
      encoding: 'utf8',
    });
    expect(shell.trim()).toBe(`${realm.krb5Config}|${realm.url}|${realm.passwords.bob}`);
    expect(statSync(join(realm.dir, 'realm.env')).mode & 0o077).toBe(0);
  });
});

describe('constrained delegation in the ldap realm', () => {
  let realm: RealmEnv;
  let probe: TicketCache;

  beforeAll(() => {
    realm = ensureRealm('ldap');
    // kvno drives S4U2proxy only after S4U2self, so a test-only probe service with protocol transition
    // stands in for HTTP/localhost; both carry the same krbAllowedToDelegateTo list.
    probe = { name: `FILE:${join(realm.dir, 'run', `probe-${process.pid}.ccache`)}`, path: '', destroy: () => undefined };
    const r = runWithRealm(realm, 'kinit', ['-k', '-t', realm.vars.FORWARDABLE_S4U_PROBE_KEYTAB, `s4u-probe/localhost@${realm.realm}`], {
      ccache: probe,
    });
    expect(r.status).toBe(0);
  });

  it('allows S4U2proxy to postgres/localhost', () => {
    const r = runWithRealm(realm, 'kvno', ['-U', 'alice', '-P', `postgres/localhost@${realm.realm}`], { ccache: probe });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`postgres/localhost@${realm.realm}: kvno =`);
  });

  it('refuses S4U2proxy to any other service', () => {
    const r = runWithRealm(realm, 'kvno', ['-U', 'alice', '-P', `other/localhost@${realm.realm}`], { ccache: probe });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("KDC can't fulfill requested option");
  });

  it('lists postgres/localhost, and only it, as HTTP/localhost\'s delegation target', () => {
    const r = runWithRealm(realm, 'ldapsearch', [
      '-x', '-LLL', '-o', 'ldif-wrap=no', '-H', realm.vars.FORWARDABLE_LDAP_URL, '-b', realm.vars.FORWARDABLE_LDAP_BASE,
      `(krbPrincipalName=HTTP/localhost@${realm.realm})`, 'krbAllowedToDelegateTo',
    ]);
    // Anonymous reads of Kerberos entries must not work either: keys live there.
    expect(r.stdout).not.toContain('krbAllowedToDelegateTo');
    const state = readFileSync(join(realm.dir, 'realm.state'), 'utf8');
    const pw = /LDAP_ADMIN_PASSWORD='([^']+)'/.exec(state)?.[1] ?? '';
    const admin = runWithRealm(realm, 'ldapsearch', [
      '-x', '-LLL', '-o', 'ldif-wrap=no', '-H', realm.vars.FORWARDABLE_LDAP_URL, '-D', `cn=admin,${realm.vars.FORWARDABLE_LDAP_BASE}`, '-w', pw,
      '-b', realm.vars.FORWARDABLE_LDAP_BASE, `(krbPrincipalName=HTTP/localhost@${realm.realm})`, 'krbAllowedToDelegateTo',
    ]);
    expect(admin.stdout.match(/krbAllowedToDelegateTo: .*/g)).toEqual([`krbAllowedToDelegateTo: postgres/localhost@${realm.realm}`]);
  });
});

describe('a second realm beside the first, and down', () => {
  it('runs on other ports with other keys, and down stops every daemon by PID and removes the directory', () => {
    const first = ensureRealm('db2');
    const dir = join(repoRoot, 'tmp/realms/test-second');
    const second = ensureRealm('db2', { dir, portBase: testPortBase + 350 });
    try {
      expect(second.pg.port).toBe(testPortBase + 352);
      expect(second.pg.port).not.toBe(first.pg.port);
      expect(second.passwords.alice).not.toBe(first.passwords.alice);
      // alice's ticket from the second KDC is worthless in the first realm's PostgreSQL.
      const cc = kinit(second, 'alice');
      try {
        expect(psqlAs(second, 'alice', cc, 'SELECT session_user').stdout.trim()).toBe('alice');
        const cross = psqlAs({ ...first, vars: first.vars }, 'alice', cc, 'SELECT 1');
        expect(cross.status).not.toBe(0);
      } finally {
        cc.destroy();
      }
      const pids = pidsOf(second);
      expect(pids.every(processAlive)).toBe(true);
      stopRealm(dir);
      expect(pids.filter(processAlive)).toEqual([]);
      expect(existsSync(dir)).toBe(false);
      expect(pidsOf(readRealm(first.dir)).every(processAlive)).toBe(true);
    } finally {
      if (existsSync(dir)) stopRealm(dir);
    }
  });
});

describe('realm with a Samba AD DC (--kdc samba-ad)', () => {
  let realm: RealmEnv;
  let alice: TicketCache;

  beforeAll(() => {
    realm = ensureRealm('samba-ad');
    alice = kinit(realm, 'alice');
  });
  afterAll(() => alice?.destroy());

  it('env prints the upper-case AD realm and a krb5.conf whose KDC is the namespace end of its veth pair', () => {
    const env = execFileSync('bash', [realmTool, 'env', '--dir', realm.dir], { encoding: 'utf8' });
    expect(env).toContain("export FORWARDABLE_REALM='AD.TEST'");
    expect(env).toContain("export FORWARDABLE_KDB='samba-ad'");
    expect(env).toContain(`export KRB5_CONFIG='${realm.dir}/krb5.conf'`);
    const conf = readFileSync(realm.krb5Config, 'utf8');
    expect(conf).toContain('default_realm = AD.TEST');
    expect(conf).toContain(`kdc = ${realm.kdc}`);
    expect(realm.kdc).toMatch(/^10\.251\.\d+\.\d+:88$/);
    // Samba (and its LDAP port 389) lives in the realm's own namespace, never on the host.
    const netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    expect(netns).toContain(realm.vars.FORWARDABLE_AD_NETNS);
    const hostListeners = execFileSync('ss', ['-ltnH'], { encoding: 'utf8' });
    expect(hostListeners).not.toContain(`${realm.kdc.split(':')[0]}:389`);
    const status = execFileSync('bash', [realmTool, 'status', '--dir', realm.dir], { encoding: 'utf8' });
    expect(status).toMatch(/samba running, pid \d+/);
    expect(status).toMatch(/postgres running, pid \d+/);
  });

  it('exports AES keys for the service accounts and PostgreSQL trusts the AD-exported postgres keytab', () => {
    for (const keytab of [realm.httpKeytab, realm.postgresKeytab]) {
      const kl = runWithRealm(realm, 'klist', ['-ke', keytab]);
      expect(kl.stdout).toMatch(/aes256-cts-hmac-sha1-96/);
    }
    const r = psqlAs(realm, 'alice', alice, 'SELECT current_user');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('alice');
    const bob = psqlAs(realm, 'bob', alice, 'SELECT current_user');
    expect(bob.stderr).toMatch(/GSSAPI authentication failed for user "bob"/);
  });

  it('lets HTTP/localhost delegate both ways: trusted for delegation and allowed to postgres/localhost only', () => {
    const show = execFileSync('samba-tool', ['delegation', 'show', 'svc-http', '-s', realm.vars.FORWARDABLE_AD_SMB_CONF], { encoding: 'utf8' });
    expect(show).toContain('UF_TRUSTED_FOR_DELEGATION: True');
    expect(show).toContain('msDS-AllowedToDelegateTo: postgres/localhost');
    expect(show).not.toContain('other/localhost');
  });

  it('down removes its network namespace, also for a realm behind a link (a checkout the daemons cannot reach)', () => {
    // A root-only parent: the tool puts the realm under /tmp and leaves a link here, so `up` sees
    // one path and `down` the other; the namespace must still be found and removed.
    const parent = mkdtempSync(join(tmpdir(), 'fw-ad-private-'));
    chmodSync(parent, 0o700);
    const dir = join(parent, 'realm');
    const netns = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    let name = '';
    try {
      execFileSync('bash', [realmTool, 'up', '--quiet', '--kdc', 'samba-ad', '--delegation', 'constrained', '--dir', dir, '--port-base', String(testPortBase + 450)], { stdio: 'pipe' });
      expect(lstatSync(dir).isSymbolicLink()).toBe(true);
      name = readRealm(dir).vars.FORWARDABLE_AD_NETNS;
      expect(name).toMatch(/^forwardable-[0-9a-f]{8}$/);
      expect(netns()).toContain(name);
    } finally {
      execFileSync('bash', [realmTool, 'down', '--quiet', '--dir', dir], { stdio: 'pipe' });
      rmSync(parent, { recursive: true, force: true });
    }
    expect(netns()).not.toContain(name);
    expect(existsSync(dir)).toBe(false);
  });
});
