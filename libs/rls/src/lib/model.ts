/**
 * The serialisable picture of a schema that the setup wizard shows and that mappings are
 * validated against. Built from a live connection ({@link introspect}) or from TypeORM entity
 * metadata ({@link modelFromEntities}); plain JSON either way.
 */

/** One column. */
export interface ColumnModel {
  name: string;
  /** As `format_type()` prints it: `uuid`, `text`, `character varying(255)`. */
  type: string;
  nullable: boolean;
  /** A string type (PostgreSQL type category `S`), so it can hold a role name. */
  isText: boolean;
}

/** A foreign key from this table. */
export interface ForeignKeyModel {
  name: string;
  columns: string[];
  refSchema: string;
  refTable: string;
  refColumns: string[];
}

/** A table that may hold grants for rows of a data table: it has a foreign key to the data table's primary key. */
export interface PermissionCandidate {
  table: string;
  /** The referencing column (single-column foreign key to the data table's primary key). */
  fkColumn: string;
  /** String columns of the permission table that could name the grantee. */
  granteeCandidates: string[];
}

/** An existing row-level security policy (from `pg_policies`). */
export interface PolicyModel {
  name: string;
  command: 'ALL' | 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';
  permissive: boolean;
  roles: string[];
  using: string | null;
  withCheck: string | null;
}

/** One table of the schema. */
export interface TableModel {
  name: string;
  /** Primary key columns in key order (empty when there is none). */
  primaryKey: string[];
  columns: ColumnModel[];
  /** String columns that could name the owning role. */
  ownerCandidates: string[];
  foreignKeys: ForeignKeyModel[];
  permissionCandidates: PermissionCandidate[];
  /** Row-level security flags; `null` when unknown (model built from entities). */
  rls: { enabled: boolean; forced: boolean } | null;
  policies: PolicyModel[];
  /** Owning role, `null` when unknown. */
  owner: string | null;
}

/** A schema as introspected. */
export interface DatabaseModel {
  /** `current_database()`, or `null` for a model built from entity metadata. */
  database: string | null;
  schema: string;
  source: 'database' | 'entities';
  /** The role that introspected (`current_user`); `null` from entities. */
  currentUser: string | null;
  /** Role names that exist (system `pg_*` roles left out); `null` when unknown. */
  roles: string[] | null;
  tables: TableModel[];
}

/**
 * Fill in the derived parts of a table list: owner candidates and permission candidates (every
 * table with a single-column foreign key to a table's single-column primary key, as the
 * reference paper's managedb finds them, §3.7).
 */
export function deriveCandidates(tables: Omit<TableModel, 'ownerCandidates' | 'permissionCandidates'>[], schema: string): TableModel[] {
  return tables.map((t) => {
    const ownerCandidates = t.columns.filter((c) => c.isText).map((c) => c.name);
    const permissionCandidates: PermissionCandidate[] = [];
    if (t.primaryKey.length === 1) {
      for (const other of tables) {
        if (other.name === t.name) continue; // a self-reference (parent_id) is a tree, not grants
        for (const fk of other.foreignKeys) {
          if (fk.refSchema === schema && fk.refTable === t.name && fk.columns.length === 1 && fk.refColumns.length === 1 && fk.refColumns[0] === t.primaryKey[0]) {
            permissionCandidates.push({
              table: other.name,
              fkColumn: fk.columns[0],
              granteeCandidates: other.columns.filter((c) => c.isText && c.name !== fk.columns[0]).map((c) => c.name),
            });
          }
        }
      }
    }
    return { ...t, ownerCandidates, permissionCandidates };
  });
}
