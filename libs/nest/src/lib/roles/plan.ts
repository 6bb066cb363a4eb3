/**
 * Role provisioning: compare what the directory says with the roles PostgreSQL has, and plan the
 * statements that make them match. Only roles marked as managed (direct members of
 * {@link MANAGED_ROLE}) are ever changed; superusers, the operator and every other role are left
 * alone and reported.
 */
import { escapeIdentifier } from 'pg';
import type { DirectorySnapshot } from './directory';

/**
 * The marker role: a role is managed by the provisioning tool when it is a direct member of this
 * NOLOGIN role, which holds no privileges itself. Membership, unlike a comment, can only be given
 * by a role with CREATEROLE or ADMIN OPTION on the marker.
 */
export const MANAGED_ROLE = 'forwardable_managed';

/** Something that runs SQL and returns rows: a node-postgres `Client`, `Pool` or `PoolClient`. */
export interface RoleQueryable {
  /** Run one statement with `$1`-style parameters. */
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** One role as PostgreSQL has it. */
export interface RoleState {
  /** The role's name. */
  name: string;
  /** It may log in (`rolcanlogin`). */
  login: boolean;
  /** A superuser: never changed by this tool. */
  superuser: boolean;
  /** A direct member of {@link MANAGED_ROLE}. */
  managed: boolean;
  /** Roles it is a direct member of. */
  memberOf: string[];
  /** Objects it owns, in every database of the cluster (pg_shdepend). */
  ownedObjects: number;
  /** It may connect to the current database (directly or through PUBLIC or a group). */
  canConnect: boolean;
}

/** The cluster's roles, seen from the current database by the operator. */
export interface DatabaseRoles {
  /** The database connected to (CONNECT is granted on it). */
  database: string;
  /** The connected role (the operator), which is never changed. */
  operator: string;
  /** Every role of the cluster, by name. */
  roles: Map<string, RoleState>;
}

/**
 * Read every role with its memberships and ownership. Needs no privilege beyond connecting:
 * pg_roles, pg_auth_members and pg_shdepend are readable by everyone.
 */
export async function readDatabaseRoles(q: RoleQueryable): Promise<DatabaseRoles> {
  const { rows } = await q.query(
    `SELECT r.rolname AS name, r.rolcanlogin AS login, r.rolsuper AS superuser,
            EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid AND g.rolname = $1) AS managed,
            ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid ORDER BY 1) AS "memberOf",
            (SELECT count(*) FROM pg_shdepend d WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = r.oid AND d.deptype = 'o')::int AS "ownedObjects",
            has_database_privilege(r.oid, current_database(), 'CONNECT') AS "canConnect",
            current_database() AS database, current_user AS operator
       FROM pg_roles r`,
    [MANAGED_ROLE],
  );
  const roles = new Map<string, RoleState>();
  let database = '';
  let operator = '';
  for (const row of rows as (RoleState & { database: string; operator: string })[]) {
    database = row.database;
    operator = row.operator;
    roles.set(row.name, {
      name: row.name,
      login: row.login,
      superuser: row.superuser,
      managed: row.managed,
      memberOf: row.memberOf,
      ownedObjects: row.ownedObjects,
      canConnect: row.canConnect,
    });
  }
  return { database, operator, roles };
}

/** How to reconcile. */
export interface RolePlanOptions {
  /**
   * Existing PostgreSQL group roles every provisioned user joins (the roles the schema grants
   * table privileges to). Default `['forwardable_users']`. They must exist; they are not changed.
   */
  loginGroups?: string[];
  /** Drop roles of users no longer in the directory, when they own nothing. Default: only NOLOGIN. */
  drop?: boolean;
  /** With {@link RolePlanOptions.drop}: also drop roles that own objects, reassigning them to the operator first. */
  force?: boolean;
}

/** One statement of a plan and the reason for it. */
export interface RoleStep {
  /** One statement, identifiers quoted. */
  sql: string;
  /** Why it is in the plan, for the operator reading it. */
  why: string;
}

/** What a sync would do: statements in order, and roles it leaves alone with the reason. */
export interface RolePlan {
  /** Statements to run, in order (empty: the roles match the directory). */
  steps: RoleStep[];
  /** Roles and directory members left alone, each with the reason. */
  notes: string[];
}

const ident = (name: string) => escapeIdentifier(name);

/**
 * Plan the statements that make PostgreSQL's roles match the directory:
 * - a user in the users group gets `CREATE ROLE ... LOGIN` (or `ALTER ROLE ... LOGIN` if their
 *   managed role was disabled), membership in the login groups and CONNECT on the database;
 * - each mirrored directory group is a NOLOGIN group role, and its members are granted it;
 *   managed users who left the group have it revoked;
 * - a managed user no longer in the users group becomes NOLOGIN and leaves the mirrored groups;
 *   with `drop` the role is dropped if it owns nothing, and with `force` also if it does (its
 *   objects are reassigned to the operator first).
 * Pure: the same inputs give the same plan, and a plan applied once plans nothing the second time.
 * @throws Error when a login group does not exist or the marker role is not a NOLOGIN role.
 */
export function planRoles(dir: DirectorySnapshot, db: DatabaseRoles, o: RolePlanOptions = {}): RolePlan {
  const loginGroups = o.loginGroups ?? ['forwardable_users'];
  if (o.force && !o.drop) throw new RangeError('--force only applies with --drop: without --drop no role is dropped');
  const steps: RoleStep[] = [];
  const notes: string[] = [...dir.skipped.map((s) => `skipped directory member ${s}`)];
  const marker = db.roles.get(MANAGED_ROLE);
  if (marker && (marker.login || marker.superuser)) {
    throw new Error(`role ${MANAGED_ROLE} exists but can log in or is a superuser: it must be a NOLOGIN marker role (ALTER ROLE ${MANAGED_ROLE} NOLOGIN NOSUPERUSER)`);
  }
  if (!marker) steps.push({ sql: `CREATE ROLE ${ident(MANAGED_ROLE)} NOLOGIN`, why: 'marker of the roles this tool manages (it grants nothing)' });
  for (const g of loginGroups) {
    if (!db.roles.has(g)) throw new Error(`login group role "${g}" does not exist: create it (CREATE ROLE ${ident(g)} NOLOGIN) or set FORWARDABLE_ROLES_LOGIN_GROUPS`);
  }

  /** Why a role may not be touched, or undefined when it is (or will be) managed. */
  const untouchable = (name: string): string | undefined => {
    const r = db.roles.get(name);
    if (name === db.operator) return 'it is the operator running this sync';
    if (!r) return undefined;
    if (r.superuser) return 'it is a superuser, never changed by this tool';
    if (!r.managed) return `it exists and is not managed by this tool (GRANT ${MANAGED_ROLE} TO ${ident(name)} to let the tool manage it)`;
    return undefined;
  };

  // Group roles first: users are granted them below.
  const managedGroups = new Set<string>();
  for (const g of [...dir.groups.keys()].sort()) {
    const why = untouchable(g);
    if (why) {
      notes.push(`group role ${g} left alone: ${why}`);
      continue;
    }
    if (dir.users.includes(g)) {
      notes.push(`group ${g} left alone: a user of the same name has a login role`);
      continue;
    }
    managedGroups.add(g);
    if (!db.roles.has(g)) steps.push({ sql: `CREATE ROLE ${ident(g)} NOLOGIN IN ROLE ${ident(MANAGED_ROLE)}`, why: `directory group ${g}` });
  }

  const wanted = new Set(dir.users);
  for (const user of dir.users) {
    const why = untouchable(user);
    if (why) {
      notes.push(`user ${user} left alone: ${why}`);
      continue;
    }
    const r = db.roles.get(user);
    const memberOf = new Set(r?.memberOf ?? [MANAGED_ROLE]);
    if (!r) steps.push({ sql: `CREATE ROLE ${ident(user)} LOGIN IN ROLE ${ident(MANAGED_ROLE)}`, why: `${user} is in the directory's users group` });
    else if (!r.login) steps.push({ sql: `ALTER ROLE ${ident(user)} LOGIN`, why: `${user} is back in the directory's users group` });
    for (const g of loginGroups) {
      if (!memberOf.has(g)) steps.push({ sql: `GRANT ${ident(g)} TO ${ident(user)}`, why: `every provisioned user is in ${g}` });
    }
    if (!r?.canConnect) steps.push({ sql: `GRANT CONNECT, TEMPORARY ON DATABASE ${ident(db.database)} TO ${ident(user)}`, why: `${user} may connect to ${db.database}` });
    for (const g of managedGroups) {
      const inGroup = dir.groups.get(g)?.includes(user) ?? false;
      if (inGroup && !memberOf.has(g)) steps.push({ sql: `GRANT ${ident(g)} TO ${ident(user)}`, why: `${user} is in directory group ${g}` });
      if (!inGroup && memberOf.has(g)) steps.push({ sql: `REVOKE ${ident(g)} FROM ${ident(user)}`, why: `${user} left directory group ${g}` });
    }
  }

  // Managed roles of users who left the users group. Group roles (never LOGIN, never in a login
  // group) are not users: one no longer listed is left as it is, since policies may name it.
  for (const r of [...db.roles.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    if (!r.managed || r.superuser || r.name === db.operator || wanted.has(r.name) || managedGroups.has(r.name) || dir.groups.has(r.name)) continue;
    if (!r.login && !loginGroups.some((g) => r.memberOf.includes(g))) continue;
    if (!r.login && !o.drop && !r.memberOf.some((g) => managedGroups.has(g))) continue;
    const who = ident(r.name);
    if (o.drop && r.ownedObjects > 0 && !o.force) {
      notes.push(`${r.name} kept as NOLOGIN: owns ${r.ownedObjects} object(s); --drop --force reassigns them to ${db.operator} and drops the role`);
    }
    if (o.drop && (r.ownedObjects === 0 || o.force)) {
      // DROP OWNED and REASSIGN OWNED need the privileges of the role: CREATEROLE lets the operator
      // take them for the moment; the membership goes with the role.
      steps.push({ sql: `GRANT ${who} TO CURRENT_USER`, why: `to drop ${r.name}, the operator needs its privileges` });
      if (r.ownedObjects > 0) steps.push({ sql: `REASSIGN OWNED BY ${who} TO CURRENT_USER`, why: `--force: ${r.name}'s ${r.ownedObjects} object(s) go to ${db.operator} (in this database; objects in other databases make the drop fail)` });
      steps.push({ sql: `DROP OWNED BY ${who}`, why: `revoke ${r.name}'s privileges in ${db.database}` });
      steps.push({ sql: `DROP ROLE ${who}`, why: `${r.name} is no longer in the directory's users group` });
      continue;
    }
    if (r.login) steps.push({ sql: `ALTER ROLE ${who} NOLOGIN`, why: `${r.name} is no longer in the directory's users group` });
    for (const g of r.memberOf.filter((m) => managedGroups.has(m))) {
      steps.push({ sql: `REVOKE ${ident(g)} FROM ${who}`, why: `${r.name} is no longer in the directory's users group` });
    }
  }
  return { steps, notes };
}

/** The plan as an operator reads it: SQL with a comment for each statement, then the notes. */
export function renderRolePlan(plan: RolePlan): string {
  const lines: string[] = [];
  if (!plan.steps.length) lines.push('-- nothing to do: PostgreSQL roles match the directory');
  for (const s of plan.steps) lines.push(`-- ${s.why}`, `${s.sql};`);
  for (const n of plan.notes) lines.push(`-- note: ${n}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Run a plan's statements in one transaction (role DDL is transactional in PostgreSQL): either
 * every change is made or none.
 */
export async function applyRolePlan(q: RoleQueryable, plan: RolePlan): Promise<void> {
  await q.query('BEGIN');
  try {
    for (const s of plan.steps) await q.query(s.sql);
    await q.query('COMMIT');
  } catch (e) {
    await q.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
