/**
 * Role provisioning (`forwardable-roles sync`, `npx nx run api:roles -- sync`) against the real
 * LDAP realm: slapd holds the groups, the CLI runs as its own process with dbadmin's ticket, and
 * PostgreSQL's catalog and a real GSSAPI login are the evidence. Users are added to and removed
 * from the directory group with ldapmodify (as the realm's LDAP admin) between runs.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ensureRealm,
  kinit,
  RealmEnv,
  RealmUser,
  realmProcessEnv,
  repoRoot,
  runWithRealm,
  superuserSql,
  TicketCache,
} from '@forwardable/testing/realm';

const cli = join(repoRoot, 'libs/nest/src/lib/roles/cli.ts');
// Names unique to this run: the test realm is shared by other suites and survives them.
const tag = `rp${randomBytes(3).toString('hex')}`;
const [erin, frank, gina, hank] = ['erin', 'frank', 'gina', 'hank'].map((n) => `${tag}_${n}`);
const usersGroup = `${tag}-users`;
const engGroup = `${tag}_eng`;
const password = randomBytes(12).toString('base64url');

let realm: RealmEnv;
let dbadmin: TicketCache;
let adminPassword: string;

function ldap(tool: 'ldapmodify' | 'ldapadd' | 'ldapdelete', input: string): void {
  const r = runWithRealm(realm, tool, ['-x', '-H', realm.vars.FORWARDABLE_LDAP_URL, '-D', `cn=admin,${realm.vars.FORWARDABLE_LDAP_BASE}`, '-w', adminPassword], { input });
  if (r.status !== 0) throw new Error(`${tool} failed: ${r.stderr}`);
}

const memberDn = (user: string) => `krbPrincipalName=${user}@${realm.realm},cn=${realm.realm},cn=krbContainer,${realm.vars.FORWARDABLE_LDAP_BASE}`;
const groupDn = (cn: string) => `cn=${cn},${realm.vars.FORWARDABLE_LDAP_GROUPS_BASE}`;

function setMembers(cn: string, users: string[]): void {
  ldap('ldapmodify', `dn: ${groupDn(cn)}\nchangetype: modify\nreplace: member\n${users.map((u) => `member: ${memberDn(u)}`).join('\n')}\n`);
}

function sync(...args: string[]) {
  return syncWith({}, ...args);
}

function syncWith(env: Record<string, string>, ...args: string[]) {
  const r = spawnSync('node', ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register', cli, 'sync', ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 120_000,
    env: realmProcessEnv(realm, {
      KRB5CCNAME: dbadmin.name,
      TS_NODE_PROJECT: join(repoRoot, 'libs/nest/tsconfig.lib.json'),
      FORWARDABLE_ROLES_USERS_GROUP: usersGroup,
      FORWARDABLE_ROLES_GROUPS: engGroup,
      ...env,
    }),
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every role of this run: login?, managed?, and its direct memberships among our groups. */
function roles(): Record<string, string> {
  const rows = superuserSql(realm, `SELECT r.rolname || ' ' || r.rolcanlogin || ' ' || pg_has_role(r.oid, 'forwardable_managed', 'MEMBER') || ' ' ||
      coalesce((SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                WHERE m.member = r.oid AND g.rolname IN ('forwardable_users', '${engGroup}')), '-')
    FROM pg_roles r WHERE r.rolname LIKE '${tag}%' ORDER BY 1`);
  return Object.fromEntries(rows.map((l) => {
    const [name, ...rest] = l.split(' ');
    return [name, rest.join(' ')];
  }));
}

/** Sign in to PostgreSQL as `user` with a real ticket (GSSAPI), and say who we are. */
function loginAs(user: string): { status: number | null; out: string } {
  const cc = kinit(realm, user as RealmUser, [], password);
  try {
    const r = runWithRealm(realm, 'psql', ['-X', '-A', '-t', '-h', 'localhost', '-U', user, '-d', realm.pg.database, '-c', `SELECT session_user, pg_has_role('${engGroup}', 'MEMBER')`], { ccache: cc });
    return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
  } finally {
    cc.destroy();
  }
}

beforeAll(() => {
  realm = ensureRealm('ldap');
  adminPassword = /LDAP_ADMIN_PASSWORD='([^']+)'/.exec(readFileSync(join(realm.dir, 'realm.state'), 'utf8'))?.[1] ?? '';
  const add = spawnSync('bash', [join(repoRoot, 'tools/realm/realm.sh'), 'add-users', '--quiet', '--dir', realm.dir, '--no-role', '--password', password, erin, frank, gina, hank], { encoding: 'utf8' });
  if (add.status !== 0) throw new Error(`add-users: ${add.stderr}`);
  ldap('ldapadd', `dn: ${groupDn(usersGroup)}\nobjectClass: groupOfNames\ncn: ${usersGroup}\n${[erin, frank, hank].map((u) => `member: ${memberDn(u)}`).join('\n')}\n\n` +
    `dn: ${groupDn(engGroup)}\nobjectClass: groupOfNames\ncn: ${engGroup}\nmember: ${memberDn(erin)}\nmember: ${memberDn(frank)}\n`);
  dbadmin = kinit(realm, 'dbadmin');
});

afterAll(() => {
  dbadmin?.destroy();
  if (!realm) return;
  const ours = superuserSql(realm, `SELECT rolname FROM pg_roles WHERE rolname LIKE '${tag}%'`);
  for (const r of ours) superuserSql(realm, `REASSIGN OWNED BY "${r}" TO dbadmin; DROP OWNED BY "${r}"; DROP ROLE "${r}"`, realm.pg.database);
  ldap('ldapdelete', `${groupDn(usersGroup)}\n${groupDn(engGroup)}\n`);
});

describe('forwardable-roles sync on the LDAP realm', () => {
  it('plans CREATE ROLE ... LOGIN and group roles from the directory, and a dry run changes nothing', () => {
    const r = sync();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    for (const u of [erin, frank, hank]) expect(r.stdout).toContain(`CREATE ROLE "${u}" LOGIN IN ROLE "forwardable_managed";`);
    expect(r.stdout).toContain(`CREATE ROLE "${engGroup}" NOLOGIN IN ROLE "forwardable_managed";`);
    expect(r.stdout).toContain(`GRANT "${engGroup}" TO "${erin}";`);
    expect(r.stdout).toContain(`GRANT "forwardable_users" TO "${frank}";`);
    expect(r.stdout).not.toContain(gina);
    expect(r.stdout).toMatch(/dry run: nothing changed/);
    expect(roles()).toEqual({});
  });

  it('--apply creates the roles as dbadmin; the users sign in to PostgreSQL with their tickets; a second run plans nothing', () => {
    const r = sync('--apply');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`applied`);
    expect(r.stdout).toContain(`as dbadmin@${realm.realm}`);
    expect(roles()).toEqual({
      [engGroup]: 'false true -',
      [erin]: `true true forwardable_users,${engGroup}`,
      [frank]: `true true forwardable_users,${engGroup}`,
      [hank]: 'true true forwardable_users',
    });
    expect(loginAs(erin)).toEqual({ status: 0, out: `${erin}|t` });
    expect(loginAs(hank)).toEqual({ status: 0, out: `${hank}|f` });
    const again = sync('--apply');
    expect(again.stdout).toMatch(/^-- nothing to do: PostgreSQL roles match the directory$/m);
    expect(again.stdout).not.toMatch(/^(CREATE|ALTER|GRANT|REVOKE|DROP)/m);
  });

  it('follows the directory: a removed user loses LOGIN (and the group), an added one gets a role, a group change is mirrored', () => {
    // frank owns a table: the role must survive every run below that lacks --force.
    superuserSql(realm, `CREATE TABLE "${tag}_frank_notes" (id int); ALTER TABLE "${tag}_frank_notes" OWNER TO "${frank}"`, realm.pg.database);
    setMembers(usersGroup, [erin, gina]);
    setMembers(engGroup, [gina, frank]);
    const r = sync('--apply');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`ALTER ROLE "${frank}" NOLOGIN;`);
    expect(r.stdout).toContain(`ALTER ROLE "${hank}" NOLOGIN;`);
    expect(r.stdout).toContain(`REVOKE "${engGroup}" FROM "${erin}";`);
    expect(r.stdout).not.toContain('DROP');
    expect(roles()).toEqual({
      [engGroup]: 'false true -',
      [erin]: 'true true forwardable_users',
      [frank]: 'false true forwardable_users',
      [gina]: `true true forwardable_users,${engGroup}`,
      [hank]: 'false true forwardable_users',
    });
    const refused = loginAs(frank);
    expect(refused.status).not.toBe(0);
    expect(refused.out).toContain(`role "${frank}" is not permitted to log in`);
    expect(loginAs(erin)).toEqual({ status: 0, out: `${erin}|f` });
    expect(loginAs(gina)).toEqual({ status: 0, out: `${gina}|t` });
    expect(sync('--apply').stdout).toMatch(/^-- nothing to do/m);
  });

  it('--drop drops a removed role that owns nothing and keeps one that owns data; --force reassigns the data and drops it', () => {
    const dry = sync('--drop');
    expect(dry.stdout).toContain(`DROP ROLE "${hank}";`);
    expect(dry.stdout).not.toContain(`DROP ROLE "${frank}"`);
    expect(dry.stdout).toContain(`-- note: ${frank} kept as NOLOGIN: owns 1 object(s)`);
    expect(roles()[hank]).toBeDefined();

    const drop = sync('--drop', '--apply');
    expect(drop.stderr).toBe('');
    expect(Object.keys(roles()).sort()).toEqual([engGroup, erin, frank, gina].sort());
    expect(superuserSql(realm, `SELECT tableowner FROM pg_tables WHERE tablename = '${tag}_frank_notes'`, realm.pg.database)).toEqual([frank]);

    const force = sync('--drop', '--force', '--apply');
    expect(force.stderr).toBe('');
    expect(force.stdout).toContain(`REASSIGN OWNED BY "${frank}" TO CURRENT_USER;`);
    expect(Object.keys(roles()).sort()).toEqual([engGroup, erin, gina].sort());
    expect(superuserSql(realm, `SELECT tableowner FROM pg_tables WHERE tablename = '${tag}_frank_notes'`, realm.pg.database)).toEqual(['dbadmin']);
    expect(sync('--drop', '--force').stdout).toMatch(/^-- nothing to do/m);
  });

  it('never touches a role it does not manage, however the directory lists it', () => {
    const before = superuserSql(realm, `SELECT rolcanlogin || ' ' || rolcreaterole FROM pg_roles WHERE rolname IN ('alice', 'dbadmin') ORDER BY rolname`);
    // alice and dbadmin have hand-made roles; bob's role is not in the group at all.
    setMembers(usersGroup, [erin, gina, 'alice', 'dbadmin']);
    const r = sync('--drop', '--force', '--apply');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('-- note: user alice left alone: it exists and is not managed by this tool');
    expect(r.stdout).toContain('-- note: user dbadmin left alone: it is the operator running this sync');
    const statements = r.stdout.split('\n').filter((l) => l && !l.startsWith('--'));
    expect(statements.filter((l) => /"(alice|bob|carol|dbadmin)"/.test(l))).toEqual([]);
    expect(superuserSql(realm, `SELECT rolcanlogin || ' ' || rolcreaterole FROM pg_roles WHERE rolname IN ('alice', 'dbadmin') ORDER BY rolname`)).toEqual(before);
    expect(superuserSql(realm, `SELECT rolcanlogin FROM pg_roles WHERE rolname = 'bob'`)).toEqual(['t']);
    // A group role no longer listed is not a departed user: even --drop --force leaves it.
    const unlisted = sync('--groups', '', '--drop', '--force', '--apply');
    expect(unlisted.stderr).toBe('');
    expect(unlisted.stdout).not.toContain(engGroup);
    expect(roles()[engGroup]).toBe('false true -');
  });

  it('refuses a group that is not in the directory instead of disabling everyone, and an unknown option', () => {
    const missing = spawnSync('node', ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register', cli, 'sync', '--users-group', `${tag}-nosuch`], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: realmProcessEnv(realm, { KRB5CCNAME: dbadmin.name, TS_NODE_PROJECT: join(repoRoot, 'libs/nest/tsconfig.lib.json') }),
    });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain(`directory group "${tag}-nosuch" not found under ${realm.vars.FORWARDABLE_LDAP_GROUPS_BASE}`);
    const bad = sync('--aply');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('unknown option "--aply"');
    expect(sync('--force').stderr).toContain('--force only applies with --drop');
  });

  it('reads the directory with a GSSAPI bind as the operator when no LDAP password is configured', () => {
    const noPassword = { FORWARDABLE_LDAP_BIND_DN: '', FORWARDABLE_LDAP_BIND_PASSWORD: '' };
    const r = syncWith(noPassword);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // The directory was read: the users group's members are all accounted for.
    expect(r.stdout).toContain('-- note: user alice left alone: it exists and is not managed by this tool');
    expect(r.stdout).toContain('-- note: user dbadmin left alone: it is the operator running this sync');
    // And it was read over GSSAPI: a directory service the KDC does not know fails the run, naming it.
    const wrong = syncWith({ ...noPassword, FORWARDABLE_LDAP_SASL_SERVICE: 'ldap@nowhere.invalid' });
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(/nowhere\.invalid/);
    expect(wrong.stdout).toBe('');
  });

  it('FORWARDABLE_USERNAME_CASE=lower names roles as the API will: member Ivy and group ENG become ivy and eng (a dry run)', () => {
    const caseGroup = `${tag}-case`;
    const ivy = `${tag}_Ivy`;
    const upperEng = engGroup.toUpperCase();
    // LDAP compares cn case-insensitively, so ENG finds the eng group; the member's name comes from its DN.
    ldap('ldapadd', `dn: ${groupDn(caseGroup)}\nobjectClass: groupOfNames\ncn: ${caseGroup}\nmember: ${memberDn(ivy)}\n`);
    try {
      const env = { FORWARDABLE_ROLES_USERS_GROUP: caseGroup, FORWARDABLE_ROLES_GROUPS: upperEng };
      const lower = syncWith({ ...env, FORWARDABLE_USERNAME_CASE: 'lower' });
      expect(lower.stderr).toBe('');
      expect(lower.stdout).toContain(`CREATE ROLE "${ivy.toLowerCase()}" LOGIN IN ROLE "forwardable_managed";`);
      expect(lower.stdout).not.toContain(ivy);
      // the eng group role exists (earlier tests applied it): the upper-case request names it, nothing to create
      expect(lower.stdout).not.toContain(upperEng);
      const exact = syncWith(env);
      expect(exact.stdout).toContain(`CREATE ROLE "${ivy}" LOGIN IN ROLE "forwardable_managed";`);
      expect(exact.stdout).toContain(`CREATE ROLE "${upperEng}" NOLOGIN IN ROLE "forwardable_managed";`);
      expect(syncWith({ ...env, FORWARDABLE_USERNAME_CASE: 'upper' }).stderr).toContain('FORWARDABLE_USERNAME_CASE=upper must be one of exact, lower');
    } finally {
      ldap('ldapdelete', `${groupDn(caseGroup)}\n`);
    }
  });
});
