#!/usr/bin/env node
/**
 * `forwardable-rls`: introspect, preview, generate, apply and revert row-level security from the
 * command line. Run it with ts-node (or `npx nx run rls:cli -- <args>`):
 *
 *   TS_NODE_PROJECT=libs/rls/tsconfig.lib.json \
 *     node -r ts-node/register/transpile-only -r tsconfig-paths/register libs/rls/src/cli.ts <command> [options]
 *
 * Commands that read the database connect as the operator with the ticket in KRB5CCNAME (`kinit
 * dbadmin` first), over GSSAPI; no password is read or stored. Connection settings come from
 * FORWARDABLE_PG_HOST (the host in postgres/<host>), FORWARDABLE_PG_HOSTADDR, FORWARDABLE_PG_PORT,
 * FORWARDABLE_PG_DATABASE and FORWARDABLE_PG_GSSENCMODE, as `source tmp/realms/<realm>/realm.env` sets them.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client as PgClient } from 'pg';
import { Credential } from '@forwardable/gssapi';
import { gssapiClientConfig, gssapiTargetFromEnv } from '@forwardable/pg-gssapi';
import {
  applyPolicies,
  DatabaseModel,
  fileBrowserMapping,
  introspect,
  migrationFileName,
  modelFromEntityClasses,
  parseMapping,
  planPolicies,
  renderMigration,
  renderSql,
  revertPolicies,
  RlsMapping,
  TableMapping,
} from './index';

const USAGE = `usage: forwardable-rls <command> [options]

commands:
  introspect            print the schema model (tables, candidate owner and permission tables) as JSON
  plan                  print the SQL that apply would run (--down: the SQL revert would run)
  generate --out DIR    write a TypeORM migration (<timestamp>-rls-policies.ts) into DIR
  apply                 run the SQL on the database, in one transaction, as the operator
  revert                undo apply: restore the recorded RLS flags and grants, drop our objects

mapping (one of):
  --mapping FILE        a JSON mapping: {"schema", "groupRole", "tables": [{"table", "ownerColumn",
                        "permission": {"table", "fkColumn", "granteeColumn", "levelColumn"?},
                        "parent": {"column", "table"}?}]} (levels and containers: libs/rls README)
  --default             the file browser's mapping (directories, files)
  --table SPEC          repeatable; SPEC = table:ownerColumn[:permTable:fkColumn:granteeColumn]
  --schema NAME         schema (default public), --group-role NAME (default forwardable_users)

model for plan/generate (default: introspect the live database as the operator):
  --entities MODULE     build the model from TypeORM entities exported by MODULE instead (no
                        connection); --export NAME picks the export (default: every class exported)

other:
  --timestamp MS        migration timestamp (default now)
  --down                plan: print the revert SQL
`;

interface Args {
  command: string;
  flags: Map<string, string[]>;
  has(name: string): boolean;
  get(name: string): string | undefined;
}

function parseArgs(argv: string[]): Args {
  const [command = 'help', ...rest] = argv;
  const flags = new Map<string, string[]>();
  const boolean = new Set(['default', 'down', 'help']);
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(a)}\n\n${USAGE}`);
    const [name, inline] = a.slice(2).split(/=(.*)/s, 2);
    const value = boolean.has(name) ? 'true' : (inline ?? rest[++i]);
    if (value === undefined) throw new Error(`--${name} needs a value`);
    flags.set(name, [...(flags.get(name) ?? []), value]);
  }
  return { command, flags, has: (n) => flags.has(n), get: (n) => flags.get(n)?.at(-1) };
}

function mappingFrom(args: Args): RlsMapping {
  if (args.has('mapping')) {
    const file = args.get('mapping') as string;
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`cannot read mapping ${file}: ${(e as Error).message}`);
    }
    return parseMapping(json);
  }
  const schema = args.get('schema');
  const groupRole = args.get('group-role');
  if (args.has('default')) return parseMapping({ ...fileBrowserMapping, ...(schema ? { schema } : {}), ...(groupRole ? { groupRole } : {}) });
  const specs = args.flags.get('table') ?? [];
  if (!specs.length) throw new Error(`give a mapping: --mapping FILE, --default or --table SPEC\n\n${USAGE}`);
  const tables: TableMapping[] = specs.map((spec) => {
    const p = spec.split(':');
    if (p.length !== 2 && p.length !== 5) throw new Error(`--table ${spec}: expected table:ownerColumn or table:ownerColumn:permTable:fkColumn:granteeColumn`);
    return p.length === 2 ? { table: p[0], ownerColumn: p[1] } : { table: p[0], ownerColumn: p[1], permission: { table: p[2], fkColumn: p[3], granteeColumn: p[4] } };
  });
  return parseMapping({ schema, groupRole, tables });
}

async function operatorConnection(): Promise<{ client: PgClient; close(): Promise<void> }> {
  const env = process.env;
  const target = gssapiTargetFromEnv(env);
  const cache = env.KRB5CCNAME;
  if (!cache) throw new Error('KRB5CCNAME is not set: run kinit as the owner of the tables (e.g. kinit dbadmin) and export KRB5CCNAME');
  const credential = await Credential.fromCache(cache, 'password');
  const client = new PgClient(gssapiClientConfig(credential, target));
  try {
    await client.connect();
  } catch (e) {
    credential.dispose();
    throw e;
  }
  return {
    client,
    close: async () => {
      await client.end().catch(() => undefined);
      credential.dispose();
    },
  };
}

async function entityModel(modulePath: string, exportName: string | undefined, schema: string): Promise<DatabaseModel> {
  const mod = require(resolve(modulePath)) as Record<string, unknown>;
  const picked = exportName ? mod[exportName] : Object.values(mod).filter((v) => typeof v === 'function');
  const entities = (Array.isArray(picked) ? picked : [picked]) as (new () => unknown)[];
  if (!entities.length || entities.some((e) => typeof e !== 'function')) throw new Error(`${modulePath}${exportName ? ` export ${exportName}` : ''} has no entity classes`);
  return modelFromEntityClasses(entities, { schema });
}

async function withModel<T>(args: Args, mapping: RlsMapping, work: (model: DatabaseModel) => T): Promise<T> {
  if (args.has('entities')) return work(await entityModel(args.get('entities') as string, args.get('export'), mapping.schema));
  const conn = await operatorConnection();
  try {
    return work(await introspect(conn.client, { schema: mapping.schema }));
  } finally {
    await conn.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  switch (args.command) {
    case 'introspect': {
      const conn = await operatorConnection();
      try {
        console.log(JSON.stringify(await introspect(conn.client, { schema: args.get('schema') ?? 'public' }), null, 2));
      } finally {
        await conn.close();
      }
      return;
    }
    case 'plan': {
      const mapping = mappingFrom(args);
      process.stdout.write(await withModel(args, mapping, (model) => renderSql(planPolicies(mapping, model), args.has('down') ? 'down' : 'up')));
      return;
    }
    case 'generate': {
      const mapping = mappingFrom(args);
      const out = args.get('out');
      if (!out) throw new Error('generate needs --out DIR (for example libs/api/db/src/migrations)');
      const timestamp = args.has('timestamp') ? Number(args.get('timestamp')) : Date.now();
      const text = await withModel(args, mapping, (model) => renderMigration(planPolicies(mapping, model), { timestamp }));
      mkdirSync(out, { recursive: true });
      const file = join(out, migrationFileName({ timestamp }));
      writeFileSync(file, text, { flag: 'wx' });
      console.log(`wrote ${file}`);
      return;
    }
    case 'apply':
    case 'revert': {
      const mapping = mappingFrom(args);
      const conn = await operatorConnection();
      try {
        const plan = await (args.command === 'apply' ? applyPolicies : revertPolicies)(conn.client, mapping);
        for (const w of plan.warnings) console.warn(`warning: ${w.path}: ${w.message}`);
        const done = args.command === 'apply' ? 'applied' : 'reverted';
        console.log(`${done} row-level security on ${mapping.tables.map((t) => `${mapping.schema}.${t.table}`).join(', ')} (${plan[args.command === 'apply' ? 'up' : 'down'].length} statements)`);
      } finally {
        await conn.close();
      }
      return;
    }
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return;
    default:
      throw new Error(`unknown command ${JSON.stringify(args.command)}\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: Error & { issues?: { path: string; message: string }[] }) => {
  console.error(`forwardable-rls: ${err.message}`);
  process.exit(1);
});
