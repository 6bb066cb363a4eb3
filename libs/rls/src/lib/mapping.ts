/**
 * The mapping an administrator chooses in the wizard (or writes as JSON for the CLI): for each data
 * table, the column that names the owning role and, optionally, the permission table that grants
 * other roles read access.
 */
import { MappingIssue, MappingValidationError, RlsUsageError } from './errors';
import { DatabaseModel, TableModel } from './model';
import { assertIdentifier, objectName } from './quote';

/** Grants for a data table: rows of `table` whose `fkColumn` references the data row and `granteeColumn` names a role. */
export interface PermissionMapping {
  table: string;
  fkColumn: string;
  granteeColumn: string;
  /**
   * String column holding the grant's access level: `'write'` lets the grantee update the row
   * (never delete it, move it, give it away or change its grants); any other value (`'read'`) only
   * reads. Omit when every grant reads.
   */
  levelColumn?: string;
}

/**
 * The container of a data table's rows: a grant on a container row extends to every row inside it
 * (and, when the container is a tree, to everything below it). New rows may only be put into a
 * container the inserting user owns.
 */
export interface ParentMapping {
  /** Column of this table referencing the container row's primary key (`NULL`: at the top). */
  column: string;
  /**
   * The container table: this table itself (a tree, like folders in folders) or another mapped
   * data table (files in folders), which may itself be a tree but not inherit from a third table.
   */
  table: string;
}

/** One data table. */
export interface TableMapping {
  table: string;
  /** String column holding the owning role's name (compared with `session_user`). */
  ownerColumn: string;
  /** Omit for owner-only tables. */
  permission?: PermissionMapping;
  /** Omit when rows are not inside other rows. */
  parent?: ParentMapping;
}

/** What to protect, in which schema, for which group of application users. */
export interface RlsMapping {
  /** Default `public`. */
  schema: string;
  /** The role every application user is a member of; it receives the table grants. Default `forwardable_users`. */
  groupRole: string;
  tables: TableMapping[];
}

/** The group role of a Forwardable installation (see tools/realm). */
export const DEFAULT_GROUP_ROLE = 'forwardable_users';

function isObj(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string') throw new RlsUsageError('ERR_RLS_BAD_MAPPING', `${path} must be a string, got ${JSON.stringify(v)}`);
  assertIdentifier(v, path);
  return v;
}

function noExtraKeys(o: Record<string, unknown>, allowed: string[], path: string): void {
  const extra = Object.keys(o).filter((k) => !allowed.includes(k));
  if (extra.length) throw new RlsUsageError('ERR_RLS_BAD_MAPPING', `${path} has unknown key(s) ${extra.join(', ')} (allowed: ${allowed.join(', ')})`);
}

/**
 * Check the shape of a mapping document (parsed JSON, wizard input) and fill in defaults. This is
 * only the shape; {@link validateMapping} checks it against the database.
 * @throws RlsUsageError (`ERR_RLS_BAD_MAPPING` / `ERR_RLS_BAD_IDENTIFIER`) naming the bad field.
 */
export function parseMapping(input: unknown): RlsMapping {
  if (!isObj(input)) throw new RlsUsageError('ERR_RLS_BAD_MAPPING', 'the mapping must be a JSON object with "tables"');
  noExtraKeys(input, ['schema', 'groupRole', 'tables', '$schema', 'description'], 'mapping');
  const schema = input.schema === undefined ? 'public' : str(input.schema, 'schema');
  const groupRole = input.groupRole === undefined ? DEFAULT_GROUP_ROLE : str(input.groupRole, 'groupRole');
  if (!Array.isArray(input.tables) || input.tables.length === 0) throw new RlsUsageError('ERR_RLS_BAD_MAPPING', 'tables must be a non-empty array');
  const tables = input.tables.map((t: unknown, i: number): TableMapping => {
    const p = `tables[${i}]`;
    if (!isObj(t)) throw new RlsUsageError('ERR_RLS_BAD_MAPPING', `${p} must be an object`);
    noExtraKeys(t, ['table', 'ownerColumn', 'permission', 'parent'], p);
    const out: TableMapping = { table: str(t.table, `${p}.table`), ownerColumn: str(t.ownerColumn, `${p}.ownerColumn`) };
    if (t.permission !== undefined && t.permission !== null) {
      const pm = t.permission;
      if (!isObj(pm)) throw new RlsUsageError('ERR_RLS_BAD_MAPPING', `${p}.permission must be an object`);
      noExtraKeys(pm, ['table', 'fkColumn', 'granteeColumn', 'levelColumn'], `${p}.permission`);
      out.permission = {
        table: str(pm.table, `${p}.permission.table`),
        fkColumn: str(pm.fkColumn, `${p}.permission.fkColumn`),
        granteeColumn: str(pm.granteeColumn, `${p}.permission.granteeColumn`),
      };
      if (pm.levelColumn !== undefined && pm.levelColumn !== null) out.permission.levelColumn = str(pm.levelColumn, `${p}.permission.levelColumn`);
    }
    if (t.parent !== undefined && t.parent !== null) {
      const pa = t.parent;
      if (!isObj(pa)) throw new RlsUsageError('ERR_RLS_BAD_MAPPING', `${p}.parent must be an object`);
      noExtraKeys(pa, ['column', 'table'], `${p}.parent`);
      out.parent = { column: str(pa.column, `${p}.parent.column`), table: str(pa.table, `${p}.parent.table`) };
    }
    return out;
  });
  return { schema, groupRole, tables };
}

/** The names our generator gives its policies, so pre-existing ones can be told apart. */
export const OWN_POLICY_SUFFIXES = ['rls_select', 'rls_insert', 'rls_update', 'rls_delete'];

/**
 * The mapping's tables with every container before the tables inside it, so that the helpers a
 * policy calls exist when the policy is created.
 */
export function containersFirst(tables: TableMapping[]): TableMapping[] {
  const isContainer = (t: TableMapping) => tables.some((o) => o !== t && o.parent?.table === t.table && o.table !== t.table);
  return [...tables.filter(isContainer), ...tables.filter((t) => !isContainer(t))];
}

/**
 * Check a mapping against an introspected schema: every table and column must exist (exact,
 * case-sensitive names, so nothing that is not already a catalog name can reach generated SQL),
 * owner and grantee columns must be strings, the data table must have a one-column primary key,
 * the permission table a foreign key from `fkColumn` to it, the group role must exist, and no
 * table may be used twice. Pre-existing policies that are not ours are reported as warnings: a
 * permissive one is OR-ed with ours and can widen access.
 * @returns every issue found (errors and warnings); empty when the mapping is fine.
 */
export function validateMapping(mapping: RlsMapping, model: DatabaseModel): MappingIssue[] {
  const issues: MappingIssue[] = [];
  const err = (code: MappingIssue['code'], path: string, message: string) => issues.push({ code, path, message, severity: 'error' });
  if (mapping.schema !== model.schema) err('SCHEMA_MISMATCH', 'schema', `the mapping is for schema "${mapping.schema}" but the database was introspected in "${model.schema}"`);
  if (model.roles && !model.roles.includes(mapping.groupRole)) {
    err('GROUP_ROLE_NOT_FOUND', 'groupRole', `role "${mapping.groupRole}" does not exist: create it (CREATE ROLE ... NOLOGIN) and grant it to the application users`);
  }
  const byName = new Map(model.tables.map((t) => [t.name, t]));
  const used = new Map<string, string>();
  const use = (name: string, path: string) => {
    const prev = used.get(name);
    if (prev) err('TABLE_MAPPED_TWICE', path, `table "${name}" is already used at ${prev}; each table may appear once, as data or as permission table`);
    else used.set(name, path);
  };
  const column = (t: TableModel, name: string, path: string, mustBeText: boolean) => {
    const c = t.columns.find((x) => x.name === name);
    if (!c) err('COLUMN_NOT_FOUND', path, `table "${t.name}" has no column "${name}" (columns: ${t.columns.map((x) => x.name).join(', ')})`);
    else if (mustBeText && !c.isText) err('COLUMN_NOT_TEXT', path, `column "${t.name}"."${name}" is ${c.type}; it must be a string type to hold a role name`);
    return c;
  };
  const foreignPolicies = (t: TableModel, path: string) => {
    const ours = new Set(OWN_POLICY_SUFFIXES.map((s) => objectName(t.name, s)));
    const foreign = t.policies.filter((p) => !ours.has(p.name));
    if (foreign.length) {
      issues.push({
        code: 'FOREIGN_POLICIES',
        path,
        severity: 'warning',
        message: `table "${t.name}" already has policies ${foreign.map((p) => `"${p.name}" (${p.permissive ? 'permissive' : 'restrictive'} ${p.command})`).join(', ')}; permissive ones are OR-ed with the generated policies and may widen access`,
      });
    }
  };

  const parentIssues = (m: TableMapping, p: string, data: TableModel) => {
    const pa = m.parent as ParentMapping;
    const path = `${p}.parent`;
    const container = mapping.tables.find((t) => t.table === pa.table);
    const containerModel = byName.get(pa.table);
    if (!container || !containerModel) {
      err('PARENT_NOT_MAPPED', `${path}.table`, `container table "${pa.table}" must be one of the mapped data tables (its owner decides who may put rows in it)`);
      return;
    }
    if (container !== m && container.parent && container.parent.table !== container.table) {
      err('PARENT_CHAIN', `${path}.table`, `container "${pa.table}" itself inherits from "${container.parent.table}"; a container may be a tree (parent in itself) but not inherit from a third table`);
    }
    const col = column(data, pa.column, `${path}.column`, false);
    if (col && containerModel.primaryKey.length === 1) {
      const ok = data.foreignKeys.some(
        (fk) => fk.refSchema === model.schema && fk.refTable === containerModel.name && fk.columns.length === 1 && fk.columns[0] === col.name && fk.refColumns[0] === containerModel.primaryKey[0],
      );
      if (!ok) err('NO_FOREIGN_KEY', `${path}.column`, `no foreign key from "${data.name}"."${col.name}" to "${containerModel.name}"."${containerModel.primaryKey[0]}"; add one (REFERENCES ... ON DELETE CASCADE)`);
    }
  };

  mapping.tables.forEach((m, i) => {
    const p = `tables[${i}]`;
    const data = byName.get(m.table);
    use(m.table, `${p}.table`);
    if (!data) {
      err('TABLE_NOT_FOUND', `${p}.table`, `table "${m.table}" not found in schema "${model.schema}" (or you have no privilege on it)`);
      return;
    }
    if (data.primaryKey.length === 0) err('NO_PRIMARY_KEY', `${p}.table`, `table "${m.table}" has no primary key; grants reference data rows by primary key`);
    else if (data.primaryKey.length > 1) err('COMPOSITE_PRIMARY_KEY', `${p}.table`, `table "${m.table}" has a composite primary key (${data.primaryKey.join(', ')}); only one-column keys are supported`);
    column(data, m.ownerColumn, `${p}.ownerColumn`, true);
    foreignPolicies(data, `${p}.table`);
    if (m.parent) parentIssues(m, p, data);
    if (!m.permission) return;
    const pp = `${p}.permission`;
    use(m.permission.table, `${pp}.table`);
    const perm = byName.get(m.permission.table);
    if (!perm) {
      err('TABLE_NOT_FOUND', `${pp}.table`, `permission table "${m.permission.table}" not found in schema "${model.schema}"`);
      return;
    }
    const fkCol = column(perm, m.permission.fkColumn, `${pp}.fkColumn`, false);
    column(perm, m.permission.granteeColumn, `${pp}.granteeColumn`, true);
    if (m.permission.levelColumn !== undefined) column(perm, m.permission.levelColumn, `${pp}.levelColumn`, true);
    if (fkCol && data.primaryKey.length === 1) {
      const ok = perm.foreignKeys.some(
        (fk) => fk.refSchema === model.schema && fk.refTable === data.name && fk.columns.length === 1 && fk.columns[0] === fkCol.name && fk.refColumns[0] === data.primaryKey[0],
      );
      if (!ok) err('NO_FOREIGN_KEY', `${pp}.fkColumn`, `no foreign key from "${perm.name}"."${fkCol.name}" to "${data.name}"."${data.primaryKey[0]}"; add one (REFERENCES ... ON DELETE CASCADE)`);
    }
    foreignPolicies(perm, `${pp}.table`);
  });
  return issues;
}

/**
 * {@link validateMapping}, throwing when there is any error (warnings are returned).
 * @throws MappingValidationError listing every error.
 */
export function assertValidMapping(mapping: RlsMapping, model: DatabaseModel): MappingIssue[] {
  const issues = validateMapping(mapping, model);
  const errors = issues.filter((i) => i.severity === 'error');
  if (errors.length) throw new MappingValidationError(errors);
  return issues;
}

/**
 * The default mapping for the file browser's schema (libs/api/db migrations 1763800000000 and
 * 1763800002000): `directories` shared through `directory_permissions`, `files` through
 * `file_permissions`, each grant `read` or `write` (column `level`). Folders are a tree
 * (`parent_id`) and files live in folders (`directory_id`): sharing a folder shares everything
 * below it, and only the owner of a folder puts things into it.
 */
export const fileBrowserMapping: RlsMapping = {
  schema: 'public',
  groupRole: DEFAULT_GROUP_ROLE,
  tables: [
    {
      table: 'directories',
      ownerColumn: 'owner',
      permission: { table: 'directory_permissions', fkColumn: 'directory_id', granteeColumn: 'grantee', levelColumn: 'level' },
      parent: { column: 'parent_id', table: 'directories' },
    },
    {
      table: 'files',
      ownerColumn: 'owner',
      permission: { table: 'file_permissions', fkColumn: 'file_id', granteeColumn: 'grantee', levelColumn: 'level' },
      parent: { column: 'directory_id', table: 'directories' },
    },
  ],
};
