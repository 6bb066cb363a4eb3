/**
 * Introspection: what tables a schema has, which of them could hold permissions for which, which
 * columns could name an owner, and what row-level security is already there.
 *
 * The live variant reads `pg_catalog` with the caller's own role. Like the reference paper's
 * managedb (§4.2.1), a role with no privilege on a table does not see it: tables are listed only
 * when `has_table_privilege` grants the caller something, as `information_schema.tables` does.
 */
import { DataSource } from 'typeorm';
import { assertIdentifier } from './quote';
import { DatabaseModel, deriveCandidates, ForeignKeyModel, PolicyModel, TableModel } from './model';
import { Queryable, queryRows } from './queryable';

/** Options of {@link introspect}. */
export interface IntrospectOptions {
  /** Schema to read; default `public`. */
  schema?: string;
}

const TABLES_SQL = `
SELECT c.oid::int8 AS oid, c.relname::text AS name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
       pg_catalog.pg_get_userbyid(c.relowner)::text AS owner
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
   AND pg_catalog.has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
 ORDER BY c.relname`;

const COLUMNS_SQL = `
SELECT a.attrelid::int8 AS oid, a.attname::text AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       NOT a.attnotnull AS nullable, t.typcategory = 'S' AS is_text
  FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
 WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attrelid, a.attnum`;

const CONSTRAINTS_SQL = `
SELECT con.conrelid::int8 AS oid, con.conname::text AS name, con.contype::text AS type,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord) AS columns,
       rn.nspname::text AS ref_schema, rc.relname::text AS ref_table,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord) AS ref_columns
  FROM pg_catalog.pg_constraint con
  LEFT JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
  LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
 WHERE con.conrelid = ANY($1::oid[]) AND con.contype IN ('p', 'f')
 ORDER BY con.conname`;

const POLICIES_SQL = `
SELECT tablename::text AS table, policyname::text AS name, cmd AS command, permissive = 'PERMISSIVE' AS permissive,
       roles::text[] AS roles, qual AS using, with_check
  FROM pg_catalog.pg_policies WHERE schemaname = $1 ORDER BY tablename, policyname`;

interface TableRow { oid: string; name: string; enabled: boolean; forced: boolean; owner: string }
interface ColumnRow { oid: string; name: string; type: string; nullable: boolean; is_text: boolean }
interface ConstraintRow { oid: string; name: string; type: string; columns: string[]; ref_schema: string | null; ref_table: string | null; ref_columns: string[] }
interface PolicyRow { table: string; name: string; command: PolicyModel['command']; permissive: boolean; roles: string[]; using: string | null; with_check: string | null }

/**
 * Read a schema on a live connection (pg `Client`/`Pool` or TypeORM `DataSource`/`QueryRunner`),
 * as the connection's role: data tables, primary keys, candidate owner columns, candidate
 * permission tables (foreign key to the primary key) with candidate grantee columns, RLS flags and
 * existing policies.
 * @example `const model = await introspect(dataSource, { schema: 'public' })`
 */
export async function introspect(q: Queryable, opts: IntrospectOptions = {}): Promise<DatabaseModel> {
  const schema = opts.schema ?? 'public';
  assertIdentifier(schema, 'schema');
  const [meta] = await queryRows<{ database: string; current_user: string }>(q, 'SELECT current_database()::text AS database, current_user::text AS current_user');
  const roles = (await queryRows<{ rolname: string }>(q, "SELECT rolname::text AS rolname FROM pg_catalog.pg_roles WHERE rolname !~ '^pg_' ORDER BY 1")).map((r) => r.rolname);
  const tables = await queryRows<TableRow>(q, TABLES_SQL, [schema]);
  const oids = tables.map((t) => String(t.oid));
  const columns = await queryRows<ColumnRow>(q, COLUMNS_SQL, [oids]);
  const constraints = await queryRows<ConstraintRow>(q, CONSTRAINTS_SQL, [oids]);
  const policies = await queryRows<PolicyRow>(q, POLICIES_SQL, [schema]);

  const base = tables.map((t) => {
    const oid = String(t.oid);
    const pk = constraints.find((c) => String(c.oid) === oid && c.type === 'p');
    const fks: ForeignKeyModel[] = constraints
      .filter((c) => String(c.oid) === oid && c.type === 'f')
      .map((c) => ({ name: c.name, columns: c.columns, refSchema: c.ref_schema ?? '', refTable: c.ref_table ?? '', refColumns: c.ref_columns }));
    return {
      name: t.name,
      primaryKey: pk ? pk.columns : [],
      columns: columns.filter((c) => String(c.oid) === oid).map((c) => ({ name: c.name, type: c.type, nullable: c.nullable, isText: c.is_text })),
      foreignKeys: fks,
      rls: { enabled: t.enabled, forced: t.forced },
      policies: policies
        .filter((p) => p.table === t.name)
        .map((p) => ({ name: p.name, command: p.command, permissive: p.permissive, roles: p.roles, using: p.using, withCheck: p.with_check })),
      owner: t.owner,
    };
  });
  return { database: meta.database, schema, source: 'database', currentUser: meta.current_user, roles, tables: deriveCandidates(base, schema) };
}

const TEXT_TYPES = new Set(['text', 'character varying', 'character', 'varchar', 'char', 'citext', 'name']);

/**
 * Build the same model from TypeORM entity metadata (`dataSource.entityMetadatas`), without a
 * connection: for generating a migration before the tables exist. RLS flags, existing policies,
 * table owners and roles are unknown (`null` / empty) in such a model. The data source must have
 * built its metadata (after `initialize()`, or `buildMetadatas()` in tests).
 * @param opts - `schema`: schema of entities that do not name one; default `public`.
 */
export function modelFromEntities(dataSource: Pick<DataSource, 'entityMetadatas' | 'driver'>, opts: IntrospectOptions = {}): DatabaseModel {
  const schema = opts.schema ?? 'public';
  assertIdentifier(schema, 'schema');
  const tables: Omit<TableModel, 'ownerCandidates' | 'permissionCandidates'>[] = dataSource.entityMetadatas
    .filter((m) => m.tableType === 'regular' || m.tableType === 'junction')
    .filter((m) => (m.schema ?? schema) === schema)
    .map((m) => ({
      name: m.tableName,
      primaryKey: m.primaryColumns.map((c) => c.databaseName),
      columns: m.columns.map((c) => {
        const type = dataSource.driver.normalizeType(c);
        return { name: c.databaseName, type, nullable: c.isNullable, isText: TEXT_TYPES.has(type) };
      }),
      foreignKeys: m.foreignKeys.map((fk) => ({
        name: fk.name,
        columns: fk.columnNames,
        refSchema: fk.referencedEntityMetadata.schema ?? schema,
        refTable: fk.referencedEntityMetadata.tableName,
        refColumns: fk.referencedColumnNames,
      })),
      rls: null,
      policies: [],
      owner: null,
    }));
  return { database: null, schema, source: 'entities', currentUser: null, roles: null, tables: deriveCandidates(tables, schema) };
}

/**
 * {@link modelFromEntities} for entity classes: builds TypeORM's metadata for them without
 * connecting to a database (what `forwardable-rls generate --entities` does).
 * @param entities - the TypeORM entity classes of the tables to map.
 * @param opts - `schema`: schema of entities that do not name one; default `public`.
 */
export async function modelFromEntityClasses(entities: readonly (abstract new (...args: never[]) => unknown)[], opts: IntrospectOptions = {}): Promise<DatabaseModel> {
  const ds = new DataSource({ type: 'postgres', entities: [...entities] as unknown as (new () => unknown)[] });
  // The metadata TypeORM builds in initialize(), without connecting (buildMetadatas is not public API).
  await (ds as unknown as { buildMetadatas(): Promise<void> }).buildMetadatas();
  return modelFromEntities(ds, opts);
}
