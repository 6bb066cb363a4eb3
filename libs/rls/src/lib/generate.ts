/**
 * Policy generation: from a validated mapping to the SQL that turns row-level security on
 * (`up`) and the SQL that restores the tables as they were (`down`).
 *
 * Design (see also the README of this library):
 *
 * - Per data table D (owner column `o`): ENABLE + FORCE ROW LEVEL SECURITY and four policies, one
 *   per command, never `FOR ALL`: SELECT for the owner and for grantees; INSERT only `WITH CHECK`
 *   (o = session_user); UPDATE and DELETE by the owner, and an UPDATE cannot give a row away.
 * - Per permission table P (fk `f` → D's key, grantee `g`): ENABLE + FORCE; SELECT for the grantee
 *   and for the owner of the referenced row; INSERT and DELETE by the owner of the referenced row
 *   only, so nobody can grant themself access; no UPDATE policy and no UPDATE privilege.
 * - `session_user`, not `current_user`: the role the user signed in as, which SECURITY DEFINER
 *   does not change. Written `(SELECT session_user::text)` so the planner evaluates it once per
 *   query (an InitPlan) and can use an index on the owner column.
 * - Recursion. D's SELECT policy must read P and P's policies must read D; two policies that
 *   reference each other's tables make the rewriter fail with "infinite recursion detected in
 *   policy". So the cross-table reads go through two SECURITY DEFINER SQL functions, which the
 *   rewriter does not look into: `<D>_rls_is_owner(key)` and `<D>_rls_shared_ids()`. They are
 *   owned by whoever applies (the table owner), and FORCE means RLS still applies inside them, so
 *   they do not bypass anything; what stops the cycle at run time is the setting
 *   `forwardable.rls_helper`, which both functions set to `on` while they run, and which
 *   turns the cross-table arm of both SELECT policies off. Inside a helper, D's SELECT policy is just
 *   `o = session_user` and P's is just `g = session_user`, which is exactly what the helpers ask
 *   ("do I own row X", "which rows are shared with me"), so their answers are right and nothing
 *   recurses. A user who sets the flag themself only narrows their own view: it can remove rows,
 *   never add them, and the INSERT/UPDATE/DELETE checks do not look at it. The helpers set it with
 *   `set_config(..., true)` and restore it, because PostgreSQL 15+ allows a custom setting in a
 *   function's `SET` clause only to superusers.
 * - Inheritance (`parent`). A container's grants reach the rows inside it: a table whose parent is
 *   another mapped table (files in folders) gets a policy arm `parent IN (<container>_rls_shared_ids())`
 *   on its own column; a tree (folders in folders) gets a closure table `<D>_rls_tree` kept by
 *   triggers, and its shared-ids helper returns every row at or below a granted one. The closure has
 *   no RLS and no grants; only the SECURITY DEFINER helpers and triggers touch it. A row is inserted
 *   (or moved, by its owner) only into a container its user owns or at the top: the "container
 *   check" in the INSERT and UPDATE WITH CHECK, so with SQL on their own connection nobody can put
 *   rows into someone else's folder. A move into the row itself or below it (a cycle) is refused by
 *   the closure trigger. Moving a row out of a shared container ends the inherited access at once:
 *   the policies ask where the row is now.
 * - Levels (`permission.levelColumn`). `'write'` grants (directly or inherited) add an UPDATE arm;
 *   a guard trigger keeps the key, the owner and the container (moves) to the owner, because a
 *   policy sees only the new row. Delete, share, revoke and changing a grant's level stay with the
 *   owner; grants get an UPDATE policy and an UPDATE privilege on the level column only.
 * - Prior state. The first apply records, as a JSON comment on `<D>_rls_is_owner`, each table's RLS
 *   flags and the privileges PUBLIC and the group role had, whether the group could use the schema,
 *   and which indexes it created. Revert reads that record, restores exactly that, and drops what we
 *   created. Re-applying keeps the first record, so apply is idempotent and revert always returns
 *   to the state before the first apply.
 */
import { assertValidMapping, containersFirst, RlsMapping, TableMapping } from './mapping';
import { MappingIssue, RlsUsageError } from './errors';
import { DatabaseModel, TableModel } from './model';
import { assertTypeName, dollarQuote, objectName, qualify, quoteIdent, quoteLiteral } from './quote';

/** The run-time setting that narrows the SELECT policies inside the helper functions. */
export const HELPER_SETTING = 'forwardable.rls_helper';

/** One SQL statement, with a comment saying why, for previews. */
export interface SqlStatement {
  comment?: string;
  sql: string;
}

/** Names of what we create for one data table (for tests and the wizard). */
export interface GeneratedNames {
  table: string;
  permissionTable: string | null;
  policies: Record<string, string[]>;
  /** Helpers and trigger functions. */
  functions: string[];
  indexes: string[];
  /** Triggers on the data table (closure maintenance, the guard of write grants). */
  triggers: string[];
  /** The closure table of a tree (`<table>_rls_tree`), `null` when the table is not a shared tree. */
  closureTable: string | null;
}

/** The generated SQL for a mapping. */
export interface PolicyPlan {
  mapping: RlsMapping;
  /** Statements that apply the policies (idempotent). */
  up: SqlStatement[];
  /** Statements that restore the state before the first apply (idempotent). */
  down: SqlStatement[];
  /** Non-blocking validation issues (for example pre-existing policies). */
  warnings: MappingIssue[];
  names: GeneratedNames[];
}

const SU = '(SELECT session_user::text)';
/** The roles whose privileges session_user has (USAGE: membership through INHERIT), itself included. */
const MY_ROLES = "SELECT rolname::text FROM pg_catalog.pg_roles WHERE pg_catalog.pg_has_role(session_user, oid, 'USAGE')";
const HELPER_OFF = `(SELECT pg_catalog.current_setting(${quoteLiteral(HELPER_SETTING)}, true)) IS DISTINCT FROM 'on'`;
const TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'];

interface Resolved {
  m: TableMapping;
  schema: string;
  group: string;
  data: TableModel;
  key: string;
  keyType: string;
  perm: TableModel | null;
  /** The container of this table's rows, resolved; `null` without `parent`. */
  container: Resolved | null;
  /** The rows are a tree shared through grants: a closure table carries the inherited grants. */
  tree: boolean;
}

function resolve(mapping: RlsMapping, model: DatabaseModel, m: TableMapping, done: Map<string, Resolved>): Resolved {
  const data = model.tables.find((t) => t.name === m.table) as TableModel;
  const key = data.primaryKey[0];
  const keyCol = data.columns.find((c) => c.name === key);
  if (!keyCol) throw new RlsUsageError('ERR_RLS_BAD_MAPPING', `primary key column "${key}" of "${data.name}" is missing from the model`);
  const r: Resolved = {
    m,
    schema: mapping.schema,
    group: mapping.groupRole,
    data,
    key,
    keyType: assertTypeName(keyCol.type),
    perm: m.permission ? (model.tables.find((t) => t.name === m.permission?.table) as TableModel) : null,
    container: null,
    tree: false,
  };
  if (m.parent) {
    // containersFirst() put the container before this table, so it is resolved already (or is this table)
    r.container = m.parent.table === m.table ? r : (done.get(m.parent.table) ?? null);
    if (!r.container) throw new RlsUsageError('ERR_RLS_BAD_MAPPING', `container "${m.parent.table}" of "${m.table}" is not mapped`);
    r.tree = r.container === r && !!m.permission;
  }
  done.set(m.table, r);
  return r;
}

function names(r: Resolved) {
  const d = r.data.name;
  const p = r.perm?.name ?? null;
  return {
    isOwner: objectName(d, 'rls_is_owner'),
    sharedIds: objectName(d, 'rls_shared_ids'),
    dataPolicy: (cmd: string) => objectName(d, `rls_${cmd}`),
    permPolicy: (cmd: string) => objectName(p as string, `rls_${cmd}`),
    ownerIdx: objectName(d, 'rls_owner_idx'),
    granteeIdx: p ? objectName(p, 'rls_grantee_idx') : '',
    fkIdx: p ? objectName(p, 'rls_fk_idx') : '',
    tree: objectName(d, 'rls_tree'),
    treeDescIdx: objectName(d, 'rls_tree_descendant_idx'),
    treeInsert: objectName(d, 'rls_tree_insert'),
    treeMove: objectName(d, 'rls_tree_move'),
    guard: objectName(d, 'rls_guard'),
  };
}

/** Argument types of `<D>_rls_shared_ids`: the wanted level when grants have levels. */
function sharedArgs(r: Resolved): string {
  return r.m.permission?.levelColumn ? 'text' : '';
}

/** True when grants of this table can be `write` grants. */
function hasLevels(r: Resolved): boolean {
  return !!r.m.permission?.levelColumn;
}

/**
 * SQL arms (OR-ed) that give session_user `level` access to a row of `r` through grants: on the
 * row itself (for a tree: on it or any folder above it, through the closure) and on its container.
 */
function grantArms(r: Resolved, level: 'read' | 'write'): string[] {
  const arms: string[] = [];
  const call = (x: Resolved) => `${qualify(x.schema, names(x).sharedIds)}(${hasLevels(x) ? quoteLiteral(level) : ''})`;
  const applies = (x: Resolved) => !!x.perm && (level === 'read' || hasLevels(x));
  if (applies(r)) arms.push(`${quoteIdent(r.key)} IN (SELECT ${call(r)})`);
  const c = r.container;
  if (c && c !== r && applies(c)) arms.push(`${quoteIdent((r.m.parent as { column: string }).column)} IN (SELECT ${call(c)})`);
  return arms;
}

/** "The container is mine or there is none": new rows go only into the inserting user's own containers. */
function containerCheck(r: Resolved): string | null {
  if (!r.container) return null;
  const c = r.container as Resolved;
  const col = quoteIdent((r.m.parent as { column: string }).column);
  return `(${col} IS NULL OR ${qualify(c.schema, names(c).isOwner)}(${col}))`;
}

const CMDS = ['select', 'insert', 'update', 'delete'];

/** `"schema"."fn"(type)`: a function's signature, for GRANT, COMMENT and DROP. */
function signature(schema: string, fn: string, args: string): string {
  return `${qualify(schema, fn)}(${args})`;
}

/**
 * A PL/pgSQL body that turns {@link HELPER_SETTING} on around `work` and restores it. Not a
 * function `SET` clause: PostgreSQL (15+) lets only superusers put a custom placeholder setting
 * there. `set_config(..., true)` is transaction-local, so an error inside rolls it back too.
 */
function helperBody(declare: string[], work: string[]): string {
  const setting = quoteLiteral(HELPER_SETTING);
  return [
    '',
    '#variable_conflict use_column',
    'DECLARE',
    `  _fw_prior text := pg_catalog.current_setting(${setting}, true);`,
    // A variable, not session_user in the query: PL/pgSQL passes it as a parameter, which RLS
    // lets the planner use as an index condition (session_user::text is not leakproof, so
    // under FORCE RLS it could only filter a sequential scan of the whole table).
    '  _fw_me text := session_user;',
    ...declare.map((d) => `  ${d}`),
    'BEGIN',
    `  PERFORM pg_catalog.set_config(${setting}, 'on', true);`,
    ...work.map((w) => `  ${w}`),
    `  PERFORM pg_catalog.set_config(${setting}, coalesce(_fw_prior, ''), true);`,
    '  RETURN' + (declare.some((d) => d.startsWith('_fw_answer ')) ? ' _fw_answer;' : ';'),
    'END',
    '',
  ].join('\n');
}

function helperFunctions(r: Resolved): SqlStatement[] {
  const n = names(r);
  const D = qualify(r.schema, r.data.name);
  const head = (returns: string) => `RETURNS ${returns}\n  LANGUAGE plpgsql STABLE SECURITY DEFINER\n  SET search_path = pg_catalog, ${quoteIdent(r.schema)}, pg_temp\n  AS `;
  const out: SqlStatement[] = [
    {
      comment: `is session_user the owner of ${D} row $1? (SECURITY DEFINER so the permission table's policies can ask without referencing ${D}; ${HELPER_SETTING} keeps ${D}'s SELECT policy to its owner arm in here)`,
      sql:
        `CREATE OR REPLACE FUNCTION ${signature(r.schema, n.isOwner, r.keyType)}\n  ${head('boolean')}` +
        dollarQuote(
          helperBody(
            ['_fw_answer boolean;'],
            [`_fw_answer := EXISTS (SELECT 1 FROM ${D} WHERE ${quoteIdent(r.key)} = $1 AND ${quoteIdent(r.m.ownerColumn)} = _fw_me);`],
          ),
        ),
    },
  ];
  if (r.perm && r.m.permission) {
    const P = qualify(r.schema, r.perm.name);
    const pm = r.m.permission;
    // asked for 'write': write grants only; asked for anything else: every grant (write includes read)
    const level = pm.levelColumn ? ` AND (${quoteIdent(pm.levelColumn)} = 'write' OR $1 IS DISTINCT FROM 'write')` : '';
    // A grant to a group role counts for its members: session_user and every role it inherits
    // from (pg_auth_members, recursively, through roles with INHERIT), collected once per call
    // into a variable so the grantee index still drives the lookup (= ANY of a parameter).
    // The user's own grants and their groups' are two index probes (UNION ALL), so a user whose
    // groups hold no grants costs what it did before groups counted.
    const pick = `SELECT CAST(${quoteIdent(pm.fkColumn)} AS ${r.keyType}) FROM ${P} WHERE ${quoteIdent(pm.granteeColumn)}`;
    const granted = `${pick} = _fw_me${level} UNION ALL ${pick} = ANY (_fw_roles)${level}`;
    const roles =
      '_fw_roles := ARRAY(WITH RECURSIVE m(oid, inh) AS (SELECT r.oid, r.rolinherit FROM pg_catalog.pg_roles r WHERE r.rolname = _fw_me' +
      ' UNION SELECT a.roleid, g.rolinherit FROM pg_catalog.pg_auth_members a JOIN m ON a.member = m.oid AND m.inh JOIN pg_catalog.pg_roles g ON g.oid = a.roleid)' +
      ' SELECT r.rolname::text FROM m JOIN pg_catalog.pg_roles r ON r.oid = m.oid WHERE r.rolname <> _fw_me);';
    const query = r.tree
      ? // the closure table has every (folder, folder-at-or-below) pair and no RLS (nobody but its owner reads it): a grant reaches down the tree
        `RETURN QUERY SELECT t."descendant" FROM ${qualify(r.schema, n.tree)} t WHERE t."ancestor" IN (${granted});`
      : `RETURN QUERY ${granted};`;
    out.push({
      comment: `keys of ${D} rows shared with session_user or a group role it is a member of${pm.levelColumn ? ' at the level asked ($1: read or write)' : ''}${r.tree ? ', directly or through a row above them' : ''} (read from ${P}; one call per query, hashed by the planner; an index scan on the grantee column)`,
      sql: `CREATE OR REPLACE FUNCTION ${signature(r.schema, n.sharedIds, sharedArgs(r))}\n  ${head(`SETOF ${r.keyType}`)}` + dollarQuote(helperBody(['_fw_roles text[];'], [roles, query])),
    });
  }
  const g = quoteIdent(r.group);
  for (const [fn, args] of [[n.isOwner, r.keyType], ...(r.perm ? [[n.sharedIds, sharedArgs(r)]] : [])]) {
    out.push({ comment: 'helpers are for the application users only', sql: `REVOKE ALL ON FUNCTION ${signature(r.schema, fn, args)} FROM PUBLIC` });
    out.push({ sql: `GRANT EXECUTE ON FUNCTION ${signature(r.schema, fn, args)} TO ${g}` });
  }
  return out;
}

/** PL/pgSQL that records the prior state (first apply only) and creates the missing indexes. */
function recordStateBlock(r: Resolved): SqlStatement {
  const n = names(r);
  const anchor = quoteLiteral(signature(r.schema, n.isOwner, r.keyType));
  const L = quoteLiteral;
  const tables = [r.data, ...(r.perm ? [r.perm] : [])];
  const acl = (grantee: string) =>
    `coalesce((SELECT pg_catalog.jsonb_agg(DISTINCT a.privilege_type) FROM pg_catalog.aclexplode(coalesce(c.relacl, pg_catalog.acldefault('r', c.relowner))) a WHERE a.grantee = ${grantee}), '[]'::jsonb)`;
  const tableParts = tables.map((t) => {
    const reg = `${L(qualify(r.schema, t.name))}::regclass`;
    return [
      `  IF NOT (state -> 'tables') ? ${L(t.name)} THEN`,
      `    state := pg_catalog.jsonb_set(state, ARRAY['tables', ${L(t.name)}], (`,
      `      SELECT pg_catalog.jsonb_build_object('enabled', c.relrowsecurity, 'forced', c.relforcerowsecurity,`,
      `               'public', ${acl('0')},`,
      `               'group', ${acl('grp')})`,
      `        FROM pg_catalog.pg_class c WHERE c.oid = ${reg}));`,
      `  END IF;`,
    ].join('\n');
  });
  const indexes: { table: string; cols: string[]; name: string }[] = [{ table: r.data.name, cols: [r.m.ownerColumn], name: n.ownerIdx }];
  if (r.perm && r.m.permission) {
    indexes.push({ table: r.perm.name, cols: [r.m.permission.granteeColumn, r.m.permission.fkColumn], name: n.granteeIdx });
    indexes.push({ table: r.perm.name, cols: [r.m.permission.fkColumn], name: n.fkIdx });
  }
  const indexParts = indexes.map((ix) => {
    const reg = `${L(qualify(r.schema, ix.table))}::regclass`;
    const leading = ix.cols
      .map((c, i) => `i.indkey[${i}] = (SELECT a.attnum FROM pg_catalog.pg_attribute a WHERE a.attrelid = ${reg} AND a.attname = ${L(c)})`)
      .join(' AND ');
    return [
      `  -- an index on (${ix.cols.join(', ')}) unless one already leads with these columns`,
      `  IF pg_catalog.to_regclass(${L(qualify(r.schema, ix.name))}) IS NULL AND NOT EXISTS (`,
      `      SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = ${reg} AND i.indisvalid AND i.indpred IS NULL`,
      `         AND i.indnkeyatts >= ${ix.cols.length} AND ${leading}) THEN`,
      `    CREATE INDEX ${quoteIdent(ix.name)} ON ${qualify(r.schema, ix.table)} (${ix.cols.map(quoteIdent).join(', ')});`,
      `    state := pg_catalog.jsonb_set(state, '{indexes}', (state -> 'indexes') || pg_catalog.to_jsonb(${L(ix.name)}::text));`,
      `  END IF;`,
    ].join('\n');
  });
  const body = [
    '',
    'DECLARE',
    `  state jsonb := coalesce(pg_catalog.obj_description(${anchor}::regprocedure, 'pg_proc'), '{}')::jsonb;`,
    `  grp oid := (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = ${L(r.group)});`,
    'BEGIN',
    `  IF NOT state ? 'groupRole' THEN`,
    `    state := pg_catalog.jsonb_build_object('version', 1, 'groupRole', ${L(r.group)}, 'tables', '{}'::jsonb, 'indexes', '[]'::jsonb,`,
    `      'schemaUsage', EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a`,
    `                              WHERE n.nspname = ${L(r.schema)} AND a.grantee = grp AND a.privilege_type = 'USAGE'));`,
    '  END IF;',
    ...tableParts,
    ...indexParts,
    `  EXECUTE 'COMMENT ON FUNCTION ' || ${anchor} || ' IS ' || pg_catalog.quote_literal(state::text);`,
    'END',
    '',
  ].join('\n');
  return {
    comment: `first apply only: remember RLS flags and grants of ${tables.map((t) => t.name).join(', ')} (revert restores them); create missing indexes on the policy columns`,
    sql: `DO ${dollarQuote(body)}`,
  };
}

/**
 * The closure table of a shared tree (every pair "row A is at or above row B"), kept by triggers,
 * and rebuilt from the data on every apply. Chosen over a recursive query at read time by the
 * numbers in bench/README.md (rls-inheritance). It has no RLS and no grants: only its owner (the
 * helpers and the triggers, SECURITY DEFINER) reads and writes it, and a user learns from it only
 * what the helpers return (their own grants' rows).
 */
function treeStatements(r: Resolved): SqlStatement[] {
  if (!r.tree) return [];
  const n = names(r);
  const D = qualify(r.schema, r.data.name);
  const T = qualify(r.schema, n.tree);
  const k = quoteIdent(r.key);
  const pc = quoteIdent((r.m.parent as { column: string }).column);
  const kt = r.keyType;
  const head = `RETURNS trigger\n  LANGUAGE plpgsql SECURITY DEFINER\n  SET search_path = pg_catalog, ${quoteIdent(r.schema)}, pg_temp\n  AS `;
  const fk = `REFERENCES ${D} (${k}) ON DELETE CASCADE ON UPDATE CASCADE`;
  return [
    {
      comment: `closure of the ${D} tree: (ancestor, descendant) for every row at or below another; foreign keys drop and rename its rows with the data`,
      sql: `CREATE TABLE IF NOT EXISTS ${T} (\n  "ancestor" ${kt} NOT NULL ${fk},\n  "descendant" ${kt} NOT NULL ${fk},\n  PRIMARY KEY ("ancestor", "descendant"))`,
    },
    { sql: `CREATE INDEX IF NOT EXISTS ${quoteIdent(n.treeDescIdx)} ON ${T} ("descendant")` },
    { comment: 'nobody but its owner reads the closure (through the helpers)', sql: `REVOKE ALL ON TABLE ${T} FROM PUBLIC` },
    {
      comment: `rebuild the closure from the data: the owner reads every row of ${D} for this, so FORCE is lifted inside this transaction (the table settings below force it again)`,
      sql: `ALTER TABLE ${D} NO FORCE ROW LEVEL SECURITY`,
    },
    { sql: `DELETE FROM ${T}` },
    {
      // UNION (not UNION ALL) stops on a cycle already in the data instead of looping
      sql: `INSERT INTO ${T} ("ancestor", "descendant")\n  WITH RECURSIVE c(a, d) AS (SELECT ${k}, ${k} FROM ${D} UNION SELECT c.a, x.${k} FROM c JOIN ${D} x ON x.${pc} = c.d)\n  SELECT a, d FROM c`,
    },
    {
      comment: 'a new row sits below its parent and everything above it',
      sql:
        `CREATE OR REPLACE FUNCTION ${signature(r.schema, n.treeInsert, '')}\n  ${head}` +
        dollarQuote(
          [
            '',
            'BEGIN',
            `  INSERT INTO ${T} ("ancestor", "descendant") SELECT NEW.${k}, NEW.${k}`,
            `    UNION ALL SELECT t."ancestor", NEW.${k} FROM ${T} t WHERE t."descendant" = NEW.${pc};`,
            '  RETURN NULL;',
            'END',
            '',
          ].join('\n'),
        ),
    },
    {
      comment: 'a move: refuse a cycle (into itself or below itself), then re-hang the moved sub-tree; moves are serialised so two cannot make a cycle together',
      sql:
        `CREATE OR REPLACE FUNCTION ${signature(r.schema, n.treeMove, '')}\n  ${head}` +
        dollarQuote(
          [
            '',
            'BEGIN',
            `  LOCK TABLE ${T} IN SHARE ROW EXCLUSIVE MODE;`,
            `  IF NEW.${pc} IS NOT NULL AND EXISTS (SELECT 1 FROM ${T} t WHERE t."ancestor" = OLD.${k} AND t."descendant" = NEW.${pc}) THEN`,
            `    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = ${quoteLiteral(`a row of ${r.data.name} cannot be moved into itself or below itself`)},`,
            `      HINT = 'choose a parent that is not inside the row being moved';`,
            '  END IF;',
            `  DELETE FROM ${T} t WHERE t."descendant" IN (SELECT s."descendant" FROM ${T} s WHERE s."ancestor" = OLD.${k})`,
            `    AND t."ancestor" NOT IN (SELECT s."descendant" FROM ${T} s WHERE s."ancestor" = OLD.${k});`,
            `  INSERT INTO ${T} ("ancestor", "descendant") SELECT a."ancestor", s."descendant"`,
            `    FROM ${T} a, ${T} s WHERE a."descendant" = NEW.${pc} AND s."ancestor" = OLD.${k};`,
            '  RETURN NEW;',
            'END',
            '',
          ].join('\n'),
        ),
    },
    { comment: 'trigger functions are not for calling', sql: `REVOKE ALL ON FUNCTION ${signature(r.schema, n.treeInsert, '')} FROM PUBLIC` },
    { sql: `REVOKE ALL ON FUNCTION ${signature(r.schema, n.treeMove, '')} FROM PUBLIC` },
    { sql: `DROP TRIGGER IF EXISTS ${quoteIdent(n.treeInsert)} ON ${D}` },
    { sql: `CREATE TRIGGER ${quoteIdent(n.treeInsert)} AFTER INSERT ON ${D} FOR EACH ROW EXECUTE FUNCTION ${signature(r.schema, n.treeInsert, '')}` },
    { sql: `DROP TRIGGER IF EXISTS ${quoteIdent(n.treeMove)} ON ${D}` },
    {
      sql: `CREATE TRIGGER ${quoteIdent(n.treeMove)} BEFORE UPDATE OF ${pc} ON ${D} FOR EACH ROW WHEN (OLD.${pc} IS DISTINCT FROM NEW.${pc}) EXECUTE FUNCTION ${signature(r.schema, n.treeMove, '')}`,
    },
  ];
}

/**
 * With write grants, the UPDATE policy lets a grantee change a row, but a policy sees only the new
 * row; this trigger compares it with the old one and keeps to the owner what is the owner's: the
 * key, the owner column and the container (a move). Names sort it before the closure trigger.
 */
function guardStatements(r: Resolved): SqlStatement[] {
  if (!hasLevels(r) && !(r.container && r.container !== r && hasLevels(r.container))) return [];
  const n = names(r);
  const D = qualify(r.schema, r.data.name);
  const cols = [r.key, r.m.ownerColumn, ...(r.m.parent ? [r.m.parent.column] : [])].map(quoteIdent);
  const changed = cols.map((c) => `NEW.${c} IS DISTINCT FROM OLD.${c}`).join(' OR ');
  const body = [
    '',
    'BEGIN',
    `  IF OLD.${quoteIdent(r.m.ownerColumn)} IS DISTINCT FROM session_user::text AND (${changed}) THEN`,
    `    RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege', MESSAGE = ${quoteLiteral(`only the owner of a row of ${r.data.name} moves it or changes its key or owner`)},`,
    `      HINT = 'a write grant edits the other columns; ask the owner to move the row';`,
    '  END IF;',
    '  RETURN NEW;',
    'END',
    '',
  ].join('\n');
  return [
    {
      comment: 'write grantees edit, the owner moves: compare the new row with the old',
      sql: `CREATE OR REPLACE FUNCTION ${signature(r.schema, n.guard, '')}\n  RETURNS trigger\n  LANGUAGE plpgsql\n  SET search_path = pg_catalog, pg_temp\n  AS ${dollarQuote(body)}`,
    },
    { sql: `REVOKE ALL ON FUNCTION ${signature(r.schema, n.guard, '')} FROM PUBLIC` },
    { sql: `DROP TRIGGER IF EXISTS ${quoteIdent(n.guard)} ON ${D}` },
    { sql: `CREATE TRIGGER ${quoteIdent(n.guard)} BEFORE UPDATE ON ${D} FOR EACH ROW EXECUTE FUNCTION ${signature(r.schema, n.guard, '')}` },
  ];
}

function policies(r: Resolved): SqlStatement[] {
  const n = names(r);
  const D = qualify(r.schema, r.data.name);
  const o = quoteIdent(r.m.ownerColumn);
  const own = `${o} = ${SU}`;
  const out: SqlStatement[] = [];
  for (const c of CMDS) out.push({ sql: `DROP POLICY IF EXISTS ${quoteIdent(n.dataPolicy(c))} ON ${D}` });
  const read = grantArms(r, 'read');
  const write = grantArms(r, 'write');
  const shared = read.length ? ` OR (${HELPER_OFF} AND (${read.join(' OR ')}))` : '';
  const container = containerCheck(r);
  const ownNew = container ? `(${own} AND ${container})` : own;
  const writers = write.length ? ` OR ${write.join(' OR ')}` : '';
  // In WITH CHECK the write arms hold only for someone else's row: the user's own rows pass the
  // owner arm with its container check or not at all (else a write grant on alice's folder would
  // let bob move his own rows into it).
  const othersWriters = write.length ? ` OR (${o} <> ${SU} AND (${write.join(' OR ')}))` : '';
  out.push(
    { comment: `owner${read.length ? ` and grantees${r.container && read.length > 1 ? ' (of the row or of its container)' : r.tree ? ' (of the row or of a row above it)' : ''}` : ''} see a row`, sql: `CREATE POLICY ${quoteIdent(n.dataPolicy('select'))} ON ${D} AS PERMISSIVE FOR SELECT TO PUBLIC\n  USING (${own}${shared})` },
    {
      comment: `new rows belong to the inserting user${container ? ', and go only into a container of theirs (or none)' : ''}`,
      sql: `CREATE POLICY ${quoteIdent(n.dataPolicy('insert'))} ON ${D} AS PERMISSIVE FOR INSERT TO PUBLIC\n  WITH CHECK (${ownNew})`,
    },
    {
      comment: write.length
        ? 'the owner and write grantees update; the owner cannot give the row away or move it into a container not theirs; the guard trigger keeps key, owner and container to the owner'
        : `only the owner updates, and cannot give the row away${container ? ' or move it into a container not theirs' : ''}`,
      sql: `CREATE POLICY ${quoteIdent(n.dataPolicy('update'))} ON ${D} AS PERMISSIVE FOR UPDATE TO PUBLIC\n  USING (${own}${writers})\n  WITH CHECK (${ownNew}${othersWriters})`,
    },
    { comment: 'only the owner deletes', sql: `CREATE POLICY ${quoteIdent(n.dataPolicy('delete'))} ON ${D} AS PERMISSIVE FOR DELETE TO PUBLIC\n  USING (${own})` },
  );
  if (r.perm && r.m.permission) {
    const P = qualify(r.schema, r.perm.name);
    const owns = `${qualify(r.schema, n.isOwner)}(${quoteIdent(r.m.permission.fkColumn)})`;
    for (const c of CMDS) out.push({ sql: `DROP POLICY IF EXISTS ${quoteIdent(n.permPolicy(c))} ON ${P}` });
    out.push(
      {
        // session_user's roles (itself included) are an uncorrelated ARRAY(sub-select): computed once
        // per query, and `= ANY` of it can drive the grantee index. It lets the shared-ids helper
        // read a grant to a group role session_user inherits.
        comment: 'a grant is visible to its grantee, to the members of a grantee group role, and to the owner of the shared row',
        sql: `CREATE POLICY ${quoteIdent(n.permPolicy('select'))} ON ${P} AS PERMISSIVE FOR SELECT TO PUBLIC\n  USING (${quoteIdent(r.m.permission.granteeColumn)} = ANY (ARRAY(${MY_ROLES})) OR (${HELPER_OFF} AND ${owns}))`,
      },
      { comment: 'only the owner of the row shares it: nobody can grant themself access', sql: `CREATE POLICY ${quoteIdent(n.permPolicy('insert'))} ON ${P} AS PERMISSIVE FOR INSERT TO PUBLIC\n  WITH CHECK (${owns})` },
      {
        comment: `only the owner of the row revokes${hasLevels(r) ? '' : '; there is no UPDATE policy, so grants are never updated'}`,
        sql: `CREATE POLICY ${quoteIdent(n.permPolicy('delete'))} ON ${P} AS PERMISSIVE FOR DELETE TO PUBLIC\n  USING (${owns})`,
      },
    );
    if (hasLevels(r)) {
      out.push({
        comment: 'only the owner of the row changes the level of a grant (the UPDATE privilege covers the level column only)',
        sql: `CREATE POLICY ${quoteIdent(n.permPolicy('update'))} ON ${P} AS PERMISSIVE FOR UPDATE TO PUBLIC\n  USING (${owns})\n  WITH CHECK (${owns})`,
      });
    }
  }
  if (sharedArgs(r) !== '') out.push({ comment: 'the helper of the previous version (no level argument), if any', sql: `DROP FUNCTION IF EXISTS ${signature(r.schema, n.sharedIds, '')}` });
  return out;
}

function tableSettings(r: Resolved): SqlStatement[] {
  const g = quoteIdent(r.group);
  const out: SqlStatement[] = [];
  const t = (table: string, privs: string, why: string) => {
    const q = qualify(r.schema, table);
    out.push(
      { comment: `RLS on ${q}; FORCE so that the table owner is subject to it too`, sql: `ALTER TABLE ${q} ENABLE ROW LEVEL SECURITY` },
      { sql: `ALTER TABLE ${q} FORCE ROW LEVEL SECURITY` },
      { comment: why, sql: `REVOKE ALL ON TABLE ${q} FROM PUBLIC` },
      { sql: `REVOKE ALL ON TABLE ${q} FROM ${g}` },
      { sql: `GRANT ${privs} ON TABLE ${q} TO ${g}` },
    );
  };
  out.push({ sql: `GRANT USAGE ON SCHEMA ${quoteIdent(r.schema)} TO ${g}` });
  t(r.data.name, 'SELECT, INSERT, UPDATE, DELETE', 'application users reach the table through the group role only; the policies decide which rows');
  if (r.perm) t(r.perm.name, 'SELECT, INSERT, DELETE', 'no UPDATE on grants: share and revoke are INSERT and DELETE');
  if (r.perm && r.m.permission?.levelColumn) {
    out.push({ comment: 'a grant changes its level only: grantee and row stay', sql: `GRANT UPDATE (${quoteIdent(r.m.permission.levelColumn)}) ON TABLE ${qualify(r.schema, r.perm.name)} TO ${g}` });
  }
  return out;
}

function revertBlock(r: Resolved): SqlStatement {
  const n = names(r);
  const L = quoteLiteral;
  const anchor = L(signature(r.schema, n.isOwner, r.keyType));
  const privList = TABLE_PRIVILEGES.map((p) => `'${p}'`).join(', ');
  const tableParts = [r.data, ...(r.perm ? [r.perm] : [])].map((t) => {
    const q = qualify(r.schema, t.name);
    const st = `state -> 'tables' -> ${L(t.name)}`;
    return [
      `  IF (state -> 'tables') ? ${L(t.name)} THEN`,
      `    IF (${st} ->> 'forced')::boolean THEN ALTER TABLE ${q} FORCE ROW LEVEL SECURITY; ELSE ALTER TABLE ${q} NO FORCE ROW LEVEL SECURITY; END IF;`,
      `    IF (${st} ->> 'enabled')::boolean THEN ALTER TABLE ${q} ENABLE ROW LEVEL SECURITY; ELSE ALTER TABLE ${q} DISABLE ROW LEVEL SECURITY; END IF;`,
      `    REVOKE ALL ON TABLE ${q} FROM PUBLIC;`,
      `    FOR priv IN SELECT pg_catalog.jsonb_array_elements_text(${st} -> 'public') LOOP`,
      `      IF priv IN (${privList}) THEN EXECUTE 'GRANT ' || priv || ' ON TABLE ' || ${L(q)} || ' TO PUBLIC'; END IF;`,
      `    END LOOP;`,
      `    IF grp_exists THEN`,
      `      EXECUTE 'REVOKE ALL ON TABLE ' || ${L(q)} || ' FROM ' || pg_catalog.quote_ident(grp);`,
      `      FOR priv IN SELECT pg_catalog.jsonb_array_elements_text(${st} -> 'group') LOOP`,
      `        IF priv IN (${privList}) THEN EXECUTE 'GRANT ' || priv || ' ON TABLE ' || ${L(q)} || ' TO ' || pg_catalog.quote_ident(grp); END IF;`,
      `      END LOOP;`,
      `    END IF;`,
      `  END IF;`,
    ].join('\n');
  });
  const body = [
    '',
    'DECLARE',
    `  fn regprocedure := pg_catalog.to_regprocedure(${anchor});`,
    '  state jsonb;',
    '  grp text;',
    '  grp_exists boolean;',
    '  priv text;',
    'BEGIN',
    '  IF fn IS NULL THEN RETURN; END IF; -- never applied, or already reverted',
    `  state := coalesce(pg_catalog.obj_description(fn, 'pg_proc'), '{}')::jsonb;`,
    `  grp := state ->> 'groupRole';`,
    '  grp_exists := grp IS NOT NULL AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = grp);',
    ...tableParts,
    `  FOR priv IN SELECT pg_catalog.jsonb_array_elements_text(coalesce(state -> 'indexes', '[]'::jsonb)) LOOP`,
    `    EXECUTE 'DROP INDEX IF EXISTS ' || pg_catalog.quote_ident(${L(r.schema)}) || '.' || pg_catalog.quote_ident(priv);`,
    '  END LOOP;',
    `  IF grp_exists AND NOT coalesce((state ->> 'schemaUsage')::boolean, true) THEN`,
    `    EXECUTE 'REVOKE USAGE ON SCHEMA ' || pg_catalog.quote_ident(${L(r.schema)}) || ' FROM ' || pg_catalog.quote_ident(grp);`,
    '  END IF;',
    'END',
    '',
  ].join('\n');
  return { comment: `restore RLS flags, grants and schema usage recorded by the first apply; drop the indexes it created`, sql: `DO ${dollarQuote(body)}` };
}

function dropAll(r: Resolved): SqlStatement[] {
  const n = names(r);
  const out: SqlStatement[] = [];
  const D = qualify(r.schema, r.data.name);
  for (const c of CMDS) out.push({ sql: `DROP POLICY IF EXISTS ${quoteIdent(n.dataPolicy(c))} ON ${D}` });
  if (r.perm) for (const c of CMDS) out.push({ sql: `DROP POLICY IF EXISTS ${quoteIdent(n.permPolicy(c))} ON ${qualify(r.schema, r.perm.name)}` });
  const triggers = [...(guardStatements(r).length ? [n.guard] : []), ...(r.tree ? [n.treeInsert, n.treeMove] : [])];
  for (const t of triggers) {
    out.push({ sql: `DROP TRIGGER IF EXISTS ${quoteIdent(t)} ON ${D}` });
    out.push({ sql: `DROP FUNCTION IF EXISTS ${signature(r.schema, t, '')}` });
  }
  if (r.tree) out.push({ comment: 'the closure goes with the tree policies', sql: `DROP TABLE IF EXISTS ${qualify(r.schema, n.tree)}` });
  out.push({ comment: 'the helpers go last: the policies depend on them', sql: `DROP FUNCTION IF EXISTS ${signature(r.schema, n.sharedIds, '')}` });
  if (sharedArgs(r) !== '') out.push({ sql: `DROP FUNCTION IF EXISTS ${signature(r.schema, n.sharedIds, sharedArgs(r))}` });
  out.push({ sql: `DROP FUNCTION IF EXISTS ${signature(r.schema, n.isOwner, r.keyType)}` });
  return out;
}

/**
 * Generate the SQL for a mapping. The mapping is validated against `model` first, so every name
 * in the output is a name the catalog (or the entity metadata) already has, and is quoted.
 * @throws MappingValidationError when the mapping does not fit the model.
 */
export function planPolicies(mapping: RlsMapping, model: DatabaseModel): PolicyPlan {
  const warnings = assertValidMapping(mapping, model);
  const done = new Map<string, Resolved>();
  const resolved = containersFirst(mapping.tables).map((m) => resolve(mapping, model, m, done));
  const up: SqlStatement[] = [];
  const down: SqlStatement[] = [];
  for (const r of resolved) {
    up.push(...helperFunctions(r), recordStateBlock(r), ...treeStatements(r), ...guardStatements(r), ...policies(r), ...tableSettings(r));
  }
  for (const r of [...resolved].reverse()) down.push(revertBlock(r), ...dropAll(r));
  const planNames: GeneratedNames[] = resolved.map((r) => {
    const n = names(r);
    return {
      table: r.data.name,
      permissionTable: r.perm?.name ?? null,
      policies: {
        [r.data.name]: CMDS.map(n.dataPolicy),
        ...(r.perm ? { [r.perm.name]: (hasLevels(r) ? ['select', 'insert', 'delete', 'update'] : ['select', 'insert', 'delete']).map(n.permPolicy) } : {}),
      },
      functions: [n.isOwner, ...(r.perm ? [n.sharedIds] : []), ...(r.tree ? [n.treeInsert, n.treeMove] : []), ...(guardStatements(r).length ? [n.guard] : [])],
      indexes: r.perm ? [n.ownerIdx, n.granteeIdx, n.fkIdx] : [n.ownerIdx],
      triggers: [...(guardStatements(r).length ? [n.guard] : []), ...(r.tree ? [n.treeInsert, n.treeMove] : [])],
      closureTable: r.tree ? n.tree : null,
    };
  });
  return { mapping, up, down, warnings: warnings.filter((w) => w.severity === 'warning'), names: planNames };
}

/** A plan as one SQL script (for previews and `forwardable-rls plan`): statements end with `;`, comments as `--`. */
export function renderSql(plan: PolicyPlan, direction: 'up' | 'down' = 'up'): string {
  const tables = plan.mapping.tables.map((t) => `${plan.mapping.schema}.${t.table}`).join(', ');
  const head = `-- forwardable-rls: ${direction === 'up' ? 'apply' : 'revert'} row-level security on ${commentSafe(tables)} (group role ${commentSafe(plan.mapping.groupRole)})\n`;
  const warn = plan.warnings.map((w) => `-- WARNING ${commentSafe(`${w.path}: ${w.message}`)}\n`).join('');
  const body = plan[direction].map((s) => `${s.comment ? `-- ${commentSafe(s.comment)}\n` : ''}${s.sql};\n`).join('\n');
  return `${head}${warn}BEGIN;\n\n${body}\nCOMMIT;\n`;
}

/** Text for a `--` or `//` comment or a JSDoc block: no line breaks (a name may contain any), no comment terminator. */
function commentSafe(s: string): string {
  return s.replace(/[\r\n\u2028\u2029]+/g, ' ').replace(/\*\//g, '* /');
}

function templateLiteral(s: string): string {
  return '`' + s.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${') + '`';
}

/** Options of {@link renderMigration}. */
export interface MigrationOptions {
  /** Milliseconds timestamp used in the class name and `name`; default `Date.now()`. */
  timestamp?: number;
  /** Class name prefix; default `RlsPolicies`. */
  className?: string;
}

/** The file name TypeORM expects for {@link renderMigration}'s output: `<timestamp>-rls-policies.ts`. */
export function migrationFileName(opts: MigrationOptions = {}): string {
  return `${opts.timestamp ?? Date.now()}-rls-policies.ts`;
}

/**
 * A TypeORM migration (`up` applies, `down` reverts) with one `queryRunner.query` per statement.
 * Run it with the operator's own credential like the schema migrations (`runMigrations`).
 */
export function renderMigration(plan: PolicyPlan, opts: MigrationOptions = {}): string {
  const ts = opts.timestamp ?? Date.now();
  const prefix = opts.className ?? 'RlsPolicies';
  if (!/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(prefix) || !Number.isSafeInteger(ts) || ts < 0) {
    throw new RlsUsageError('ERR_RLS_BAD_MAPPING', `class name ${JSON.stringify(prefix)} / timestamp ${ts} cannot name a migration class`);
  }
  const cls = `${prefix}${ts}`;
  const calls = (stmts: SqlStatement[]) =>
    stmts.map((s) => `${s.comment ? `    // ${commentSafe(s.comment)}\n` : ''}    await q.query(${templateLiteral(s.sql)});`).join('\n');
  const tables = plan.mapping.tables.map((t) => `${t.table}${t.permission ? ` (shared through ${t.permission.table})` : ''}`).join(', ');
  return `import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Row-level security for ${commentSafe(`${plan.mapping.schema}: ${tables}`)}.
 * Generated by forwardable-rls (libs/rls) for group role ${commentSafe(plan.mapping.groupRole)}; regenerate rather than edit.
 * Run as the owner of the tables, with the operator's own ticket: the policies FORCE RLS on the
 * owner too. \`down\` restores the RLS flags and grants recorded by the first \`up\`.
 */
export class ${cls} implements MigrationInterface {
  name = '${cls}';

  async up(q: QueryRunner): Promise<void> {
${calls(plan.up)}
  }

  async down(q: QueryRunner): Promise<void> {
${calls(plan.down)}
  }
}
`;
}
