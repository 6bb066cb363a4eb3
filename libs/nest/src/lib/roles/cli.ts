#!/usr/bin/env node
/**
 * `forwardable-roles sync [--apply] [--drop [--force]]` (in the repository: `npx nx run api:roles --
 * sync`): make PostgreSQL login and group roles match a directory group. Prints the plan; changes
 * nothing without `--apply`. Connects to PostgreSQL as the operator with the ticket in KRB5CCNAME
 * (`kinit dbadmin` first) over GSSAPI, and to the directory with the API's own LDAP settings.
 */
import { Client as PgClient } from 'pg';
import { Credential } from '@forwardable/gssapi';
import { gssapiClientConfig, gssapiTargetFromEnv, type UsernameCase } from '@forwardable/pg-gssapi';
import { ldapOptionsFromEnv } from '../directory/ldap';
import { renderRolePlan } from './plan';
import { syncRoles } from './sync';

const USAGE = `usage: forwardable-roles sync [--apply] [--drop [--force]] [--users-group CN] [--groups CN,CN]

  sync             plan (and with --apply run) the statements that make PostgreSQL roles match the directory
  --apply          run the plan in one transaction, as the operator (the ticket in KRB5CCNAME)
  --drop           drop the roles of users who left the users group, if they own nothing (default: NOLOGIN)
  --force          with --drop: also drop roles that own objects, reassigning them to the operator first
  --users-group CN directory group whose members get login roles (FORWARDABLE_ROLES_USERS_GROUP, default forwardable-users)
  --groups CN,...  directory groups mirrored as group roles (FORWARDABLE_ROLES_GROUPS, default none)

environment: FORWARDABLE_LDAP_URL, _BASE, _GROUPS_BASE, _SASL_SERVICE, _CA_FILE, or for a simple bind _BIND_DN,
_BIND_PASSWORD(_FILE) (as the API reads them; without a bind DN the directory bind is GSSAPI with KRB5CCNAME's ticket),
FORWARDABLE_LDAP_USER_ATTRIBUTE (default krbPrincipalName; sAMAccountName in AD),
FORWARDABLE_ROLES_LOGIN_GROUPS (roles every user joins, default forwardable_users), FORWARDABLE_ALLOWED_REALMS,
FORWARDABLE_USERNAME_CASE (exact or lower, as the API maps names; lower: Alice and Engineering become alice and engineering),
FORWARDABLE_PG_HOST (the host in postgres/<host>), FORWARDABLE_PG_HOSTADDR, FORWARDABLE_PG_PORT, FORWARDABLE_PG_DATABASE, KRB5CCNAME.
`;

const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);

/** Parse the command line; unknown flags are an error, not ignored. */
export function parseRolesArgs(argv: string[]): { apply: boolean; drop: boolean; force: boolean; usersGroup?: string; groups?: string[] } {
  const [command, ...rest] = argv;
  if (command !== 'sync') throw new RangeError(command && command !== 'help' && command !== '--help' ? `unknown command ${JSON.stringify(command)}\n\n${USAGE}` : USAGE);
  const out: ReturnType<typeof parseRolesArgs> = { apply: false, drop: false, force: false };
  for (let i = 0; i < rest.length; i++) {
    const [name, inline] = rest[i].split(/=(.*)/s, 2);
    const value = () => {
      const v = inline ?? rest[++i];
      if (v === undefined || v.startsWith('--')) throw new RangeError(`${name} needs a value\n\n${USAGE}`);
      return v;
    };
    if (name === '--apply') out.apply = true;
    else if (name === '--drop') out.drop = true;
    else if (name === '--force') out.force = true;
    else if (name === '--users-group') out.usersGroup = value();
    else if (name === '--groups') out.groups = list(value());
    else throw new RangeError(`unknown option ${JSON.stringify(rest[i])}\n\n${USAGE}`);
  }
  if (out.force && !out.drop) throw new RangeError('--force only applies with --drop: without --drop no role is dropped');
  return out;
}

/** The operator's ticket (KRB5CCNAME): for PostgreSQL, and for a GSSAPI bind to the directory. */
async function operatorCredential(env: NodeJS.ProcessEnv): Promise<Credential> {
  const cache = env.KRB5CCNAME;
  if (!cache) throw new Error('KRB5CCNAME is not set: run kinit as a role with CREATEROLE (e.g. kinit dbadmin) and export KRB5CCNAME');
  return Credential.fromCache(cache, 'password');
}

/**
 * The operator's own connection: their Kerberos ticket (KRB5CCNAME), GSSAPI to PostgreSQL, no
 * password. The one place this CLI connects, so it can move to a shared connection factory.
 */
async function operatorConnection(env: NodeJS.ProcessEnv): Promise<{ client: PgClient; principal: string; usernameCase?: UsernameCase; close(): Promise<void> }> {
  // The one target reader and connection factory (the API's encryption settings included).
  const target = gssapiTargetFromEnv(env);
  const credential = await operatorCredential(env);
  const client = new PgClient(
    gssapiClientConfig(credential, target),
  );
  try {
    await client.connect();
  } catch (e) {
    credential.dispose();
    throw e;
  }
  return {
    client,
    principal: credential.principal,
    usernameCase: target.usernameCase,
    close: async () => {
      await client.end().catch(() => undefined);
      credential.dispose();
    },
  };
}

async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const args = parseRolesArgs(argv);
  const ldap = ldapOptionsFromEnv(env);
  if (!ldap) throw new Error('FORWARDABLE_LDAP_URL is not set: the provisioning reads groups from the directory the API uses (FORWARDABLE_LDAP_*)');
  const conn = await operatorConnection(env);
  try {
    const result = await syncRoles(conn.client, {
      ldap,
      usersGroup: args.usersGroup ?? (env.FORWARDABLE_ROLES_USERS_GROUP?.trim() || 'forwardable-users'),
      groups: args.groups ?? list(env.FORWARDABLE_ROLES_GROUPS),
      loginGroups: env.FORWARDABLE_ROLES_LOGIN_GROUPS === undefined ? undefined : list(env.FORWARDABLE_ROLES_LOGIN_GROUPS),
      userAttribute: env.FORWARDABLE_LDAP_USER_ATTRIBUTE?.trim() || undefined,
      allowedRealms: env.FORWARDABLE_ALLOWED_REALMS ? list(env.FORWARDABLE_ALLOWED_REALMS) : undefined,
      // The operator's target already read and checked it (gssapiTargetFromEnv): the roles are
      // named as the API will name them.
      usernameCase: conn.usernameCase,
      // A GSSAPI bind to the directory as the operator: the same ticket the database sees.
      gssapiCredential: () => operatorCredential(env),
      drop: args.drop,
      force: args.force,
      apply: args.apply,
    });
    process.stdout.write(renderRolePlan(result.plan));
    const n = result.plan.steps.length;
    if (result.applied) process.stdout.write(`-- applied ${n} statement(s) as ${conn.principal} (role ${result.operator})\n`);
    else if (n) process.stdout.write(`-- dry run: nothing changed; run again with --apply to execute these ${n} statement(s) as ${conn.principal}\n`);
  } finally {
    await conn.close();
  }
}

if (require.main === module) {
  main(process.argv.slice(2), process.env).catch((err: Error) => {
    process.stderr.write(`forwardable-roles: ${err.message}\n`);
    process.exit(err instanceof RangeError ? 2 : 1);
  });
}
