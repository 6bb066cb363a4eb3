/**
 * One provisioning run: read the directory, read PostgreSQL's roles as the operator, plan, and
 * (on request) apply, all on one connection the caller opened.
 */
import type { LdapOptions } from '../directory/ldap';
import { DirectoryReadOptions, readDirectory } from './directory';
import { applyRolePlan, planRoles, readDatabaseRoles, RolePlan, RolePlanOptions, RoleQueryable } from './plan';

/** Everything a sync needs besides the connection. */
export interface RoleSyncOptions extends DirectoryReadOptions, RolePlanOptions {
  /** The directory, as the API's group lookup reaches it. */
  ldap: LdapOptions;
  /** Run the plan (in one transaction). Default false: plan only. */
  apply?: boolean;
}

/** What a sync found and did. */
export interface RoleSyncResult {
  /** What the directory and the database differ by. */
  plan: RolePlan;
  /** The plan ran (false for a dry run or an empty plan). */
  applied: boolean;
  /** The role the statements ran (or would run) as. */
  operator: string;
}

/**
 * Make PostgreSQL's login and group roles match the directory (see `planRoles` for the rules).
 * Idempotent: a second run right after an applied one plans nothing.
 * @param db - a connection as the operator (a role with CREATEROLE, not a superuser).
 */
export async function syncRoles(db: RoleQueryable, o: RoleSyncOptions): Promise<RoleSyncResult> {
  const directory = await readDirectory(o.ldap, o);
  const roles = await readDatabaseRoles(db);
  const plan = planRoles(directory, roles, o);
  if (o.apply && plan.steps.length) await applyRolePlan(db, plan);
  return { plan, applied: !!o.apply && plan.steps.length > 0, operator: roles.operator };
}
