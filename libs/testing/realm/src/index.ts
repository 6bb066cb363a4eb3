/**
 * Test helpers over `tools/realm`: start (idempotently) the throwaway Kerberos realm and
 * PostgreSQL cluster a suite needs, and get tickets from it with the real MIT tools.
 *
 * Suites call {@link ensureRealm} in `beforeAll`; concurrent callers on the same directory are
 * serialised by the realm tool's own lock, and a realm that is already up is reused.
 */
import { execFile, spawnSync, SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * Which KDC the realm runs: MIT with the `db2` KDB (unconstrained delegation only) or the `ldap`
 * KDB (S4U2proxy too), or a Samba 4 Active Directory DC, `samba-ad` (both; root only, since it runs
 * in a network namespace: see tools/realm/samba-ad.sh).
 */
export type RealmKdb = 'db2' | 'ldap' | 'samba-ad';

/** The demo users every realm has. */
export type RealmUser = 'alice' | 'bob' | 'carol' | 'dbadmin';

/** What a running realm offers a test, parsed from its `realm.env`. */
export interface RealmEnv {
  dir: string;
  realm: string;
  kdb: RealmKdb;
  krb5Config: string;
  rcacheDir: string;
  kdc: string;
  httpKeytab: string;
  postgresKeytab: string;
  otherKeytab: string;
  servicePrincipal: string;
  pg: { host: string; hostaddr: string; port: number; database: string; socketDir: string; superuser: string };
  /** The hot standby's port (`realm up --pg-standby`): same host, socket directory, keytab and roles. */
  pgStandbyPort?: number;
  url: string;
  port: number;
  passwords: Record<RealmUser, string>;
  /** Every exported variable, for spawning tools with the realm's environment. */
  vars: Record<string, string>;
}

/** Where the repository is, found from this file (libs/testing/realm/src). */
export const repoRoot = resolve(__dirname, '../../../..');
const realmTool = join(repoRoot, 'tools/realm/realm.sh');

/**
 * Port base of the test realms. Every port a test opens derives from it, and no two may overlap
 * (realms stay up until `npm test` ends, and suites run in no fixed order): db2 realm +0..+3,
 * single ports +94..+99 (API processes of the secrets and replicas suites, Redis, credential-dir API,
 * closed LDAP/PostgreSQL ports),
 * ldap realm +100, rogue realm +200, Samba AD realm +300 (PostgreSQL +302, app +303), second
 * realms in realm.spec +350 (MIT) and +450 (AD), the fault suite's realm +400 and its resetting listener +410, the TLS realm (ensureTlsRealm) +500,
 * the hot-standby realm (ensureStandbyRealm) +600 (its standby PostgreSQL +605), the name-case realm
 * (ensureCaseRealm) +700.
 * Override with FORWARDABLE_TEST_PORT_BASE to test two checkouts on one machine at once.
 */
export const testPortBase = Number(process.env.FORWARDABLE_TEST_PORT_BASE ?? 17600);

/**
 * Fixed test realms: one per KDC, on port bases no demo uses. The AD realm's KDC is on port 88 of
 * its own network namespace; only its PostgreSQL (+2) and app port (+3) come from the base.
 */
export const testRealms: Record<RealmKdb, { dir: string; portBase: number }> = {
  db2: { dir: join(repoRoot, 'tmp/realms/test-db2'), portBase: testPortBase },
  ldap: { dir: join(repoRoot, 'tmp/realms/test-ldap'), portBase: testPortBase + 100 },
  'samba-ad': { dir: join(repoRoot, 'tmp/realms/test-ad'), portBase: testPortBase + 300 },
};

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', env: opts.env ?? process.env, input: opts.input, timeout: 120_000 });
}

function fail(what: string, r: SpawnSyncReturns<string>): never {
  throw new Error(`${what} failed (exit ${r.status}${r.signal ? `, ${r.signal}` : ''}): ${(r.stderr || r.stdout || String(r.error)).trim()}`);
}

/** Parse a realm.env file (`export NAME='value'` lines) into a map. */
export function parseEnvFile(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Z0-9_]+)='([^']*)'$/.exec(line.trim());
    if (m) vars[m[1]] = m[2];
  }
  return vars;
}

/** Read the environment of the realm in `dir` (which must be up). */
export function readRealm(dir: string): RealmEnv {
  const v = parseEnvFile(readFileSync(join(dir, 'realm.env'), 'utf8'));
  const need = (k: string) => {
    if (v[k] === undefined) throw new Error(`realm.env in ${dir} lacks ${k}: run 'npm run realm -- down --dir ${dir}' and retry`);
    return v[k];
  };
  return {
    dir: need('FORWARDABLE_REALM_DIR'),
    realm: need('FORWARDABLE_REALM'),
    kdb: need('FORWARDABLE_KDB') as RealmKdb,
    krb5Config: need('KRB5_CONFIG'),
    rcacheDir: need('KRB5RCACHEDIR'),
    kdc: need('FORWARDABLE_KDC'),
    httpKeytab: need('FORWARDABLE_HTTP_KEYTAB'),
    postgresKeytab: need('FORWARDABLE_POSTGRES_KEYTAB'),
    otherKeytab: need('FORWARDABLE_OTHER_KEYTAB'),
    servicePrincipal: need('FORWARDABLE_SERVICE_PRINCIPAL'),
    pg: {
      host: need('FORWARDABLE_PG_HOST'),
      hostaddr: need('FORWARDABLE_PG_HOSTADDR'),
      port: Number(need('FORWARDABLE_PG_PORT')),
      database: need('FORWARDABLE_PG_DATABASE'),
      socketDir: need('FORWARDABLE_PG_SOCKET_DIR'),
      superuser: need('FORWARDABLE_PG_SUPERUSER'),
    },
    pgStandbyPort: v.FORWARDABLE_PG_STANDBY_PORT ? Number(v.FORWARDABLE_PG_STANDBY_PORT) : undefined,
    url: need('FORWARDABLE_URL'),
    port: Number(need('FORWARDABLE_PORT')),
    passwords: {
      alice: need('FORWARDABLE_PASSWORD_ALICE'),
      bob: need('FORWARDABLE_PASSWORD_BOB'),
      carol: need('FORWARDABLE_PASSWORD_CAROL'),
      dbadmin: need('FORWARDABLE_PASSWORD_DBADMIN'),
    },
    vars: v,
  };
}

/**
 * Start the realm (if it is not running) and return its environment.
 * @param kdb - `db2`, `ldap` or `samba-ad`; each has its own fixed test directory and ports.
 * @param opts - another directory / port base / realm name, for a second realm beside the first;
 *   `pgTls`: PostgreSQL also offers TLS (`realm up --pg-tls`), for a realm of its own directory;
 *   `pgStandby`: a hot standby of PostgreSQL too (`realm up --pg-standby`), likewise.
 *   `krbCaseinsUsers`: PostgreSQL's `krb_caseins_users = on` (`realm up --krb-caseins-users`), likewise.
 */
export function ensureRealm(kdb: RealmKdb, opts: { dir?: string; portBase?: number; realm?: string; pgTls?: boolean; pgStandby?: boolean; krbCaseinsUsers?: boolean } = {}): RealmEnv {
  const dir = opts.dir ?? testRealms[kdb].dir;
  const portBase = opts.portBase ?? testRealms[kdb].portBase;
  const flavour = kdb === 'samba-ad' ? ['--kdc', 'samba-ad'] : ['--kdb', kdb];
  const args = [realmTool, 'up', '--quiet', '--dir', dir, ...flavour, '--port-base', String(portBase)];
  if (opts.realm) args.push('--realm', opts.realm);
  if (opts.pgTls) args.push('--pg-tls');
  if (opts.pgStandby) args.push('--pg-standby');
  if (opts.krbCaseinsUsers) args.push('--krb-caseins-users');
  const r = run('bash', args);
  if (r.status !== 0) fail(`npm run realm -- up ${flavour.join(' ')} --dir ${dir}`, r);
  return readRealm(dir);
}

/**
 * The rogue-KDC stand-in: a second db2 realm with the same realm and principal names as the test
 * realms but other keys. Shared by every suite that needs one, in tmp/realms like the others (so
 * `npm test` stops it at the end).
 */
export function ensureRogueRealm(): RealmEnv {
  return ensureRealm('db2', { dir: join(repoRoot, 'tmp/realms/test-rogue'), portBase: testPortBase + 200 });
}

/**
 * A db2 realm whose PostgreSQL also offers TLS (`hostssl ... gss`, a throwaway CA in
 * `FORWARDABLE_PG_SSLROOTCERT`, an unrelated CA in `FORWARDABLE_PG_OTHER_CA`), for the TLS suites.
 */
export function ensureTlsRealm(): RealmEnv {
  return ensureRealm('db2', { dir: join(repoRoot, 'tmp/realms/test-tls'), portBase: testPortBase + 500, pgTls: true });
}

/**
 * A db2 realm whose PostgreSQL has a hot standby (streaming replication, `realm up --pg-standby`),
 * for the read-replica suites. Its port is {@link RealmEnv.pgStandbyPort}.
 */
export function ensureStandbyRealm(): RealmEnv {
  return ensureRealm('db2', { dir: join(repoRoot, 'tmp/realms/test-standby'), portBase: testPortBase + 600, pgStandby: true });
}

/**
 * The same realm seen through its hot standby: `pg.port` is the standby's, so {@link superuserSql}
 * and friends ask the standby. Throws for a realm without one.
 */
export function standbyView(realm: RealmEnv): RealmEnv {
  if (!realm.pgStandbyPort) throw new Error(`the realm in ${realm.dir} has no standby: start it with --pg-standby (ensureStandbyRealm)`);
  return { ...realm, pg: { ...realm.pg, port: realm.pgStandbyPort } };
}

/**
 * A db2 realm whose PostgreSQL compares principal and role names ignoring case
 * (`krb_caseins_users = on`), for the FORWARDABLE_USERNAME_CASE suites: its own directory, so that
 * the setting (and a test turning it off for a moment) touches no other suite.
 */
export function ensureCaseRealm(): RealmEnv {
  return ensureRealm('db2', { dir: join(repoRoot, 'tmp/realms/test-case'), portBase: testPortBase + 700, krbCaseinsUsers: true });
}

/** Whether a process (a realm's daemon, by the PID in its PID file) is still running. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stop and remove a realm started by {@link ensureRealm}. */
export function stopRealm(dir: string): void {
  const r = run('bash', [realmTool, 'down', '--quiet', '--dir', dir]);
  if (r.status !== 0) fail(`npm run realm -- down --dir ${dir}`, r);
}

/** The realm's environment for a child process, with `extra` on top. */
export function realmProcessEnv(realm: RealmEnv, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...realm.vars, KRB5_KDC_PROFILE: '/nonexistent', ...extra };
}

/** A user's ticket cache, made by the real `kinit`. Call `destroy()` when done. */
export interface TicketCache {
  /** `FILE:/path` form, for KRB5CCNAME. */
  name: string;
  path: string;
  destroy(): void;
}

/**
 * `kinit` a demo user with their password into a fresh FILE cache; another user of the realm
 * (one a test added, such as `Dana`) with the `password` given.
 * @param flags - extra kinit flags, such as `-F` (not forwardable) or `-l 30s`.
 */
export function kinit(realm: RealmEnv, user: RealmUser | (string & {}), flags: string[] = [], password?: string): TicketCache {
  const secret = password ?? realm.passwords[user as RealmUser];
  if (secret === undefined) throw new Error(`kinit ${user}: not a demo user, so its password must be given`);
  const d = mkdtempSync(join(tmpdir(), `fw-${user.toLowerCase()}-`));
  const path = join(d, 'ccache');
  const name = `FILE:${path}`;
  const r = run('kinit', [...flags, `${user}@${realm.realm}`], {
    env: realmProcessEnv(realm, { KRB5CCNAME: name }),
    input: `${secret}\n`,
  });
  if (r.status !== 0) fail(`kinit ${user}`, r);
  return { name, path, destroy: () => rmSync(d, { recursive: true, force: true }) };
}

/**
 * Run one `kadmin.local` query against an MIT realm's database (as the realm's own user when
 * running as root), e.g. to add a throwaway principal or policy for a test. Never change the
 * demo users: other suites share the realm.
 */
export function kadminLocal(realm: RealmEnv, query: string): string {
  const env = { KRB5_CONFIG: realm.krb5Config, KRB5_KDC_PROFILE: join(realm.dir, 'kdc/kdc.conf') };
  const args = ['kadmin.local', '-r', realm.realm, '-q', query];
  const r = process.getuid?.() === 0
    ? run('runuser', ['-u', realm.pg.superuser, '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...args])
    : run(args[0], args.slice(1), { env: { ...process.env, ...env } });
  // kadmin.local exits 0 even when the query fails; it says so on stderr.
  if (r.status !== 0 || /^(add_principal|modify_principal|add_policy|delete_principal)[^\n]*: /m.test(r.stderr)) fail(`kadmin.local ${query.split(' -pw ')[0]}`, r);
  return r.stdout;
}

/** Run a command with the realm's environment (and optionally a ticket cache). */
export function runWithRealm(
  realm: RealmEnv,
  cmd: string,
  args: string[],
  opts: { ccache?: TicketCache; env?: Record<string, string>; input?: string } = {},
): SpawnSyncReturns<string> {
  const extra: Record<string, string> = { ...(opts.env ?? {}) };
  if (opts.ccache) extra.KRB5CCNAME = opts.ccache.name;
  return run(cmd, args, { env: realmProcessEnv(realm, extra), input: opts.input });
}

/**
 * Run SQL as the cluster's bootstrap superuser over its private socket (peer authentication):
 * for test assertions that must see past row-level security, such as pg_stat_activity.
 * @returns psql's unaligned, tuples-only output lines.
 */
export function superuserSql(realm: RealmEnv, sql: string, database = 'postgres'): string[] {
  const [cmd, args, extra] = superuserPsql(realm, sql, database);
  const r = run(cmd, args, { env: realmProcessEnv(realm, extra) });
  if (r.status !== 0) fail(`psql as ${realm.pg.superuser}`, r);
  return r.stdout.split('\n').filter((l) => l.length > 0);
}

/**
 * {@link superuserSql} without blocking the event loop: for sampling (pg_stat_activity) while
 * the code under test runs in this same process.
 */
export async function superuserSqlAsync(realm: RealmEnv, sql: string, database = 'postgres'): Promise<string[]> {
  const [cmd, args, env] = superuserPsql(realm, sql, database);
  const r = await runWithRealmAsync(realm, cmd, args, { env });
  if (r.status !== 0) throw new Error(`psql as ${realm.pg.superuser} failed (${r.status}): ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.length > 0);
}

/** The psql command line of the bootstrap superuser (runuser when we are root, else ourselves). */
function superuserPsql(realm: RealmEnv, sql: string, database: string): [string, string[], Record<string, string>] {
  const args = ['-u', realm.pg.superuser, '--', 'env', '-u', 'PGHOSTADDR', 'psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
    '-h', realm.pg.socketDir, '-p', String(realm.pg.port), '-d', database, '-c', sql];
  return process.getuid?.() === 0 ? ['runuser', args, {}] : [args[3 + 2], args.slice(5), { PGHOSTADDR: '' }];
}

/** What an asynchronous tool run printed. */
export interface ToolResult {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * {@link runWithRealm} without blocking the event loop: needed when the tool talks to a server
 * running in this same process (curl against the API under test).
 */
export function runWithRealmAsync(
  realm: RealmEnv,
  cmd: string,
  args: string[],
  opts: { ccache?: TicketCache; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ToolResult> {
  const extra: Record<string, string> = { ...(opts.env ?? {}) };
  if (opts.ccache) extra.KRB5CCNAME = opts.ccache.name;
  return new Promise((resolve) => {
    execFile(cmd, args, { env: realmProcessEnv(realm, extra), timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const status = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ status, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}
