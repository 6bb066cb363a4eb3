/**
 * Generated SQL, checked statement by statement (explicit expectations, not snapshots), and the
 * guards that keep names from becoming SQL: quoting, validation against the model, NUL.
 * The model comes from the file browser's real entities, built by TypeORM without a connection.
 */
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import * as ts from 'typescript';
import { schemaEntities } from '@forwardable/api/db';
import {
  DatabaseModel,
  fileBrowserMapping,
  PermissionMapping,
  MappingValidationError,
  modelFromEntities,
  parseMapping,
  planPolicies,
  quoteIdent,
  quoteLiteral,
  renderMigration,
  renderSql,
  RlsMapping,
  RlsUsageError,
  validateMapping,
} from '../index';
import { assertTypeName, dollarQuote, objectName } from './quote';

async function fileBrowserModel(): Promise<DatabaseModel> {
  const ds = new DataSource({ type: 'postgres', entities: schemaEntities });
  // buildMetadatas() is what initialize() does before connecting; no database is needed.
  await (ds as unknown as { buildMetadatas(): Promise<void> }).buildMetadatas();
  const model = modelFromEntities(ds);
  return { ...model, roles: ['forwardable_users'] };
}

describe('quoting', () => {
  it('quoteIdent always quotes and doubles embedded quotes', () => {
    expect(quoteIdent('files')).toBe('"files"');
    expect(quoteIdent('Files')).toBe('"Files"');
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(quoteIdent('x"; DROP TABLE files; --')).toBe('"x""; DROP TABLE files; --"');
  });

  it('rejects NUL and empty names', () => {
    expect(() => quoteIdent('a\0b')).toThrow(RlsUsageError);
    expect(() => quoteIdent('')).toThrow(/non-empty/);
    expect(() => quoteLiteral('a\0')).toThrow(/NUL/);
  });

  it('quoteLiteral doubles quotes and uses E-strings for backslashes', () => {
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(quoteLiteral('a\\b')).toBe("E'a\\\\b'");
  });

  it('dollarQuote picks a tag that does not occur in the body', () => {
    expect(dollarQuote('SELECT 1')).toBe('$fw$SELECT 1$fw$');
    expect(dollarQuote('SELECT "a$fw$b"')).toBe('$fw1$SELECT "a$fw$b"$fw1$');
  });

  it('objectName stays within 63 bytes and keeps long names distinct', () => {
    const a = objectName('x'.repeat(80) + 'a', 'rls_select');
    const b = objectName('x'.repeat(80) + 'b', 'rls_select');
    expect(Buffer.byteLength(a)).toBeLessThanOrEqual(63);
    expect(a).not.toBe(b);
    expect(a.endsWith('_rls_select')).toBe(true);
    expect(objectName('files', 'rls_select')).toBe('files_rls_select');
  });

  it('accepts catalog type names only', () => {
    for (const t of ['uuid', 'integer', 'character varying(255)', 'timestamp with time zone', 'numeric(10,2)', 'text[]', 'myschema.mytype', '"My Type"']) {
      expect(assertTypeName(t)).toBe(t);
    }
    for (const t of ['uuid); DROP TABLE x; --', 'int4 OR 1=1', "text'", '']) expect(() => assertTypeName(t)).toThrow(RlsUsageError);
  });
});

describe('introspection from entity metadata', () => {
  it('finds tables, keys, owner candidates and permission candidates by foreign key', async () => {
    const model = await fileBrowserModel();
    const dirs = model.tables.find((t) => t.name === 'directories');
    const files = model.tables.find((t) => t.name === 'files');
    expect(dirs?.primaryKey).toEqual(['id']);
    expect(dirs?.ownerCandidates).toEqual(expect.arrayContaining(['owner', 'name']));
    // files (directory_id) is offered too, as the live introspection does: a candidate, not a choice
    expect(dirs?.permissionCandidates).toEqual(
      expect.arrayContaining([
        { table: 'directory_permissions', fkColumn: 'directory_id', granteeCandidates: ['grantee', 'level'] },
        { table: 'files', fkColumn: 'directory_id', granteeCandidates: ['name', 'owner', 'content'] },
      ]),
    );
    expect(dirs?.foreignKeys.map((f) => `${f.columns[0]}->${f.refTable}`)).toEqual(['parent_id->directories']);
    expect(files?.permissionCandidates).toEqual([{ table: 'file_permissions', fkColumn: 'file_id', granteeCandidates: ['grantee', 'level'] }]);
    expect(model.tables.find((t) => t.name === 'file_permissions')?.primaryKey).toEqual(['file_id', 'grantee']);
    expect(JSON.parse(JSON.stringify(model))).toEqual(model);
  });
});

describe('mapping validation', () => {
  let model: DatabaseModel;
  beforeAll(async () => {
    model = await fileBrowserModel();
  });
  const codes = (m: RlsMapping) => validateMapping(m, model).map((i) => `${i.path}:${i.code}`);

  it('accepts the default file browser mapping', () => {
    expect(validateMapping(fileBrowserMapping, model)).toEqual([]);
  });

  it('checks parents: a mapped container, a foreign key to it, no chain through a third table', () => {
    const dirs = fileBrowserMapping.tables[0];
    expect(codes({ ...fileBrowserMapping, tables: [{ ...fileBrowserMapping.tables[1] }] })).toEqual(['tables[0].parent.table:PARENT_NOT_MAPPED']);
    expect(codes({ ...fileBrowserMapping, tables: [dirs, { ...fileBrowserMapping.tables[1], parent: { column: 'name', table: 'directories' } }] })).toEqual(['tables[1].parent.column:NO_FOREIGN_KEY']);
    expect(codes({ ...fileBrowserMapping, tables: [{ ...dirs, parent: { column: 'parent_id', table: 'files' } }, fileBrowserMapping.tables[1]] })).toEqual(
      expect.arrayContaining(['tables[0].parent.column:NO_FOREIGN_KEY', 'tables[1].parent.table:PARENT_CHAIN']),
    );
    expect(codes({ ...fileBrowserMapping, tables: [{ ...dirs, permission: { ...(dirs.permission as PermissionMapping), levelColumn: 'granted_at' } }, fileBrowserMapping.tables[1]] })).toEqual([
      'tables[0].permission.levelColumn:COLUMN_NOT_TEXT',
    ]);
    // the order in the mapping does not matter: containers are generated first
    const swapped = planPolicies({ ...fileBrowserMapping, tables: [fileBrowserMapping.tables[1], dirs] }, model);
    expect(swapped.names.map((n) => n.table)).toEqual(['directories', 'files']);
    expect(() => parseMapping({ tables: [{ table: 'files', ownerColumn: 'owner', parent: { column: 'directory_id' } }] })).toThrow(/parent\.table must be a string/);
    expect(() => parseMapping({ tables: [{ table: 'files', ownerColumn: 'owner', parent: { column: 'd', table: 't', x: 1 } }] })).toThrow(/unknown key/);
  });

  it('names each problem with its path', () => {
    expect(codes({ ...fileBrowserMapping, tables: [{ table: 'nope', ownerColumn: 'owner' }] })).toEqual(['tables[0].table:TABLE_NOT_FOUND']);
    expect(codes({ ...fileBrowserMapping, tables: [{ table: 'files', ownerColumn: 'missing' }] })).toEqual(['tables[0].ownerColumn:COLUMN_NOT_FOUND']);
    expect(codes({ ...fileBrowserMapping, tables: [{ table: 'files', ownerColumn: 'created_at' }] })).toEqual(['tables[0].ownerColumn:COLUMN_NOT_TEXT']);
    expect(codes({ ...fileBrowserMapping, tables: [{ table: 'file_permissions', ownerColumn: 'grantee' }] })).toEqual(['tables[0].table:COMPOSITE_PRIMARY_KEY']);
    expect(
      codes({ ...fileBrowserMapping, tables: [{ table: 'files', ownerColumn: 'owner', permission: { table: 'directory_permissions', fkColumn: 'directory_id', granteeColumn: 'grantee' } }] }),
    ).toEqual(['tables[0].permission.fkColumn:NO_FOREIGN_KEY']);
    expect(
      codes({
        ...fileBrowserMapping,
        tables: [
          { table: 'files', ownerColumn: 'owner', permission: { table: 'file_permissions', fkColumn: 'file_id', granteeColumn: 'granted_at' } },
          { table: 'files', ownerColumn: 'owner' },
        ],
      }),
    ).toEqual(['tables[0].permission.granteeColumn:COLUMN_NOT_TEXT', 'tables[1].table:TABLE_MAPPED_TWICE']);
    expect(codes({ ...fileBrowserMapping, groupRole: 'nobody' })).toEqual(['groupRole:GROUP_ROLE_NOT_FOUND']);
    expect(codes({ ...fileBrowserMapping, schema: 'other' })).toEqual(['schema:SCHEMA_MISMATCH']);
  });

  it('rejects malicious identifiers: they are not catalog names', () => {
    const evil = { ...fileBrowserMapping, tables: [{ table: 'files"; DROP TABLE files; --', ownerColumn: "owner' OR 1=1 --" }] };
    expect(() => planPolicies(evil, model)).toThrow(MappingValidationError);
    expect(() => planPolicies({ ...fileBrowserMapping, tables: [{ table: 'files', ownerColumn: 'owner;' }] }, model)).toThrow(/no column "owner;"/);
  });

  it('parseMapping checks the document shape, fills defaults and refuses NUL', () => {
    expect(parseMapping({ tables: [{ table: 'files', ownerColumn: 'owner' }] })).toEqual({ schema: 'public', groupRole: 'forwardable_users', tables: [{ table: 'files', ownerColumn: 'owner' }] });
    expect(() => parseMapping({ tables: [{ table: 'fi\0les', ownerColumn: 'owner' }] })).toThrow(/NUL/);
    expect(() => parseMapping({ tables: [] })).toThrow(/non-empty/);
    expect(() => parseMapping({ tables: [{ table: 'files', ownerColumn: 1 }] })).toThrow(/tables\[0\]\.ownerColumn must be a string/);
    expect(() => parseMapping({ tables: [{ table: 'files', ownerColumn: 'owner', extra: 1 }] })).toThrow(/unknown key/);
  });
});

describe('generated SQL for the file browser', () => {
  let model: DatabaseModel;
  beforeAll(async () => {
    model = await fileBrowserModel();
  });
  const up = () => planPolicies(fileBrowserMapping, model).up.map((s) => s.sql);

  it('creates one policy per command on each table, never FOR ALL', () => {
    const sql = up();
    const creates = sql.filter((s) => s.startsWith('CREATE POLICY'));
    expect(creates.map((s) => s.split('\n')[0])).toEqual([
      'CREATE POLICY "directories_rls_select" ON "public"."directories" AS PERMISSIVE FOR SELECT TO PUBLIC',
      'CREATE POLICY "directories_rls_insert" ON "public"."directories" AS PERMISSIVE FOR INSERT TO PUBLIC',
      'CREATE POLICY "directories_rls_update" ON "public"."directories" AS PERMISSIVE FOR UPDATE TO PUBLIC',
      'CREATE POLICY "directories_rls_delete" ON "public"."directories" AS PERMISSIVE FOR DELETE TO PUBLIC',
      'CREATE POLICY "directory_permissions_rls_select" ON "public"."directory_permissions" AS PERMISSIVE FOR SELECT TO PUBLIC',
      'CREATE POLICY "directory_permissions_rls_insert" ON "public"."directory_permissions" AS PERMISSIVE FOR INSERT TO PUBLIC',
      'CREATE POLICY "directory_permissions_rls_delete" ON "public"."directory_permissions" AS PERMISSIVE FOR DELETE TO PUBLIC',
      'CREATE POLICY "directory_permissions_rls_update" ON "public"."directory_permissions" AS PERMISSIVE FOR UPDATE TO PUBLIC',
      'CREATE POLICY "files_rls_select" ON "public"."files" AS PERMISSIVE FOR SELECT TO PUBLIC',
      'CREATE POLICY "files_rls_insert" ON "public"."files" AS PERMISSIVE FOR INSERT TO PUBLIC',
      'CREATE POLICY "files_rls_update" ON "public"."files" AS PERMISSIVE FOR UPDATE TO PUBLIC',
      'CREATE POLICY "files_rls_delete" ON "public"."files" AS PERMISSIVE FOR DELETE TO PUBLIC',
      'CREATE POLICY "file_permissions_rls_select" ON "public"."file_permissions" AS PERMISSIVE FOR SELECT TO PUBLIC',
      'CREATE POLICY "file_permissions_rls_insert" ON "public"."file_permissions" AS PERMISSIVE FOR INSERT TO PUBLIC',
      'CREATE POLICY "file_permissions_rls_delete" ON "public"."file_permissions" AS PERMISSIVE FOR DELETE TO PUBLIC',
      'CREATE POLICY "file_permissions_rls_update" ON "public"."file_permissions" AS PERMISSIVE FOR UPDATE TO PUBLIC',
    ]);
    expect(sql.join('\n')).not.toMatch(/FOR ALL/);
  });

  const OWN = `"owner" = (SELECT session_user::text)`;
  const OFF = `(SELECT pg_catalog.current_setting('forwardable.rls_helper', true)) IS DISTINCT FROM 'on'`;
  const shared = (t: string, level: string) => `(SELECT "public"."${t}_rls_shared_ids"('${level}'))`;
  const inMyFolder = (col: string) => `("${col}" IS NULL OR "public"."directories_rls_is_owner"("${col}"))`;

  it('writes the data table policies with session_user evaluated once: grants on the row and on its folder, levels, the container check', () => {
    const sql = up();
    const policy = (name: string) => sql.find((s) => s.startsWith(`CREATE POLICY "${name}"`));
    expect(policy('files_rls_select')).toBe(
      `CREATE POLICY "files_rls_select" ON "public"."files" AS PERMISSIVE FOR SELECT TO PUBLIC\n` +
        `  USING (${OWN} OR (${OFF} AND ("id" IN ${shared('files', 'read')} OR "directory_id" IN ${shared('directories', 'read')})))`,
    );
    expect(policy('files_rls_insert')).toBe(`CREATE POLICY "files_rls_insert" ON "public"."files" AS PERMISSIVE FOR INSERT TO PUBLIC\n  WITH CHECK ((${OWN} AND ${inMyFolder('directory_id')}))`);
    const writers = `"id" IN ${shared('files', 'write')} OR "directory_id" IN ${shared('directories', 'write')}`;
    expect(policy('files_rls_update')).toBe(
      `CREATE POLICY "files_rls_update" ON "public"."files" AS PERMISSIVE FOR UPDATE TO PUBLIC\n  USING (${OWN} OR ${writers})\n  WITH CHECK ((${OWN} AND ${inMyFolder('directory_id')}) OR ("owner" <> (SELECT session_user::text) AND (${writers})))`,
    );
    expect(policy('files_rls_delete')).toBe(`CREATE POLICY "files_rls_delete" ON "public"."files" AS PERMISSIVE FOR DELETE TO PUBLIC\n  USING (${OWN})`);
    // a tree: the folder's own helper already covers the folders above it (the closure), so no parent arm
    expect(policy('directories_rls_select')).toBe(
      `CREATE POLICY "directories_rls_select" ON "public"."directories" AS PERMISSIVE FOR SELECT TO PUBLIC\n  USING (${OWN} OR (${OFF} AND ("id" IN ${shared('directories', 'read')})))`,
    );
    expect(policy('directories_rls_insert')).toBe(`CREATE POLICY "directories_rls_insert" ON "public"."directories" AS PERMISSIVE FOR INSERT TO PUBLIC\n  WITH CHECK ((${OWN} AND ${inMyFolder('parent_id')}))`);
  });

  it('keeps the old shape for a table without parent and levels: owner-only writes, no triggers, no closure', () => {
    const plain = parseMapping({ tables: [{ table: 'files', ownerColumn: 'owner', permission: { table: 'file_permissions', fkColumn: 'file_id', granteeColumn: 'grantee' } }] });
    const plan = planPolicies(plain, model);
    const sql = plan.up.map((s) => s.sql);
    expect(sql.find((s) => s.startsWith('CREATE POLICY "files_rls_update"'))).toBe(
      `CREATE POLICY "files_rls_update" ON "public"."files" AS PERMISSIVE FOR UPDATE TO PUBLIC\n  USING (${OWN})\n  WITH CHECK (${OWN})`,
    );
    expect(sql.find((s) => s.startsWith('CREATE POLICY "files_rls_select"'))).toContain(`"id" IN (SELECT "public"."files_rls_shared_ids"())`);
    expect(sql.some((s) => /TRIGGER|_rls_tree|UPDATE \(/.test(s))).toBe(false);
    expect(plan.names[0]).toMatchObject({ triggers: [], closureTable: null, functions: ['files_rls_is_owner', 'files_rls_shared_ids'] });
  });

  it('a tree gets a closure table kept by triggers, rebuilt on apply, read by the helper; moves into itself are refused', () => {
    const plan = planPolicies(fileBrowserMapping, model);
    const sql = plan.up.map((s) => s.sql);
    expect(plan.names.map((n) => [n.table, n.closureTable, n.triggers])).toEqual([
      ['directories', 'directories_rls_tree', ['directories_rls_guard', 'directories_rls_tree_insert', 'directories_rls_tree_move']],
      ['files', null, ['files_rls_guard']],
    ]);
    expect(sql.find((s) => s.startsWith('CREATE TABLE IF NOT EXISTS "public"."directories_rls_tree"'))).toContain(`REFERENCES "public"."directories" ("id") ON DELETE CASCADE ON UPDATE CASCADE`);
    expect(sql).toContain('REVOKE ALL ON TABLE "public"."directories_rls_tree" FROM PUBLIC');
    expect(sql.some((s) => /GRANT .* ON TABLE "public"."directories_rls_tree"/.test(s))).toBe(false);
    // the rebuild reads every folder: FORCE is lifted first and put back by the table settings after it
    const noForce = sql.indexOf('ALTER TABLE "public"."directories" NO FORCE ROW LEVEL SECURITY');
    const rebuild = sql.findIndex((s) => s.startsWith('INSERT INTO "public"."directories_rls_tree"'));
    expect(noForce).toBeGreaterThan(sql.findIndex((s) => s.startsWith('DO') && s.includes('directories_rls_is_owner'))); // after the prior state is recorded
    expect(rebuild).toBeGreaterThan(noForce);
    expect(sql.indexOf('ALTER TABLE "public"."directories" FORCE ROW LEVEL SECURITY')).toBeGreaterThan(rebuild);
    expect(sql.find((s) => s.startsWith('CREATE OR REPLACE FUNCTION "public"."directories_rls_shared_ids"(text)'))).toContain(
      `RETURN QUERY SELECT t."descendant" FROM "public"."directories_rls_tree" t WHERE t."ancestor" IN (SELECT CAST("directory_id" AS uuid) FROM "public"."directory_permissions" WHERE "grantee" = _fw_me AND ("level" = 'write' OR $1 IS DISTINCT FROM 'write') UNION ALL SELECT CAST("directory_id" AS uuid) FROM "public"."directory_permissions" WHERE "grantee" = ANY (_fw_roles) AND ("level" = 'write' OR $1 IS DISTINCT FROM 'write'));`,
    );
    const move = sql.find((s) => s.startsWith('CREATE OR REPLACE FUNCTION "public"."directories_rls_tree_move"()')) as string;
    expect(move).toContain(`ERRCODE = 'check_violation'`);
    expect(sql).toContain(
      'CREATE TRIGGER "directories_rls_tree_move" BEFORE UPDATE OF "parent_id" ON "public"."directories" FOR EACH ROW WHEN (OLD."parent_id" IS DISTINCT FROM NEW."parent_id") EXECUTE FUNCTION "public"."directories_rls_tree_move"()',
    );
    // helpers of the previous version (no level argument) are dropped once nothing uses them
    expect(sql.indexOf('DROP FUNCTION IF EXISTS "public"."files_rls_shared_ids"()')).toBeGreaterThan(sql.findIndex((s) => s.startsWith('CREATE POLICY "files_rls_update"')));
  });

  it('guards write grants: key, owner and container stay the owner\'s', () => {
    const guard = up().find((s) => s.startsWith('CREATE OR REPLACE FUNCTION "public"."files_rls_guard"()')) as string;
    expect(guard).toContain(
      `IF OLD."owner" IS DISTINCT FROM session_user::text AND (NEW."id" IS DISTINCT FROM OLD."id" OR NEW."owner" IS DISTINCT FROM OLD."owner" OR NEW."directory_id" IS DISTINCT FROM OLD."directory_id") THEN`,
    );
    expect(guard).toContain(`ERRCODE = 'insufficient_privilege'`);
    expect(guard).not.toMatch(/SECURITY DEFINER/);
  });

  it('lets only the owner of the referenced row grant, revoke and change a level (UPDATE on the level column only)', () => {
    const sql = up();
    expect(sql).toContain(
      `CREATE POLICY "file_permissions_rls_select" ON "public"."file_permissions" AS PERMISSIVE FOR SELECT TO PUBLIC\n` +
        `  USING ("grantee" = ANY (ARRAY(SELECT rolname::text FROM pg_catalog.pg_roles WHERE pg_catalog.pg_has_role(session_user, oid, 'USAGE'))) OR ((SELECT pg_catalog.current_setting('forwardable.rls_helper', true)) IS DISTINCT FROM 'on' AND "public"."files_rls_is_owner"("file_id")))`,
    );
    expect(sql).toContain(`CREATE POLICY "file_permissions_rls_insert" ON "public"."file_permissions" AS PERMISSIVE FOR INSERT TO PUBLIC\n  WITH CHECK ("public"."files_rls_is_owner"("file_id"))`);
    expect(sql).toContain(`CREATE POLICY "file_permissions_rls_delete" ON "public"."file_permissions" AS PERMISSIVE FOR DELETE TO PUBLIC\n  USING ("public"."files_rls_is_owner"("file_id"))`);
    expect(sql).toContain(
      `CREATE POLICY "file_permissions_rls_update" ON "public"."file_permissions" AS PERMISSIVE FOR UPDATE TO PUBLIC\n  USING ("public"."files_rls_is_owner"("file_id"))\n  WITH CHECK ("public"."files_rls_is_owner"("file_id"))`,
    );
    expect(sql).toContain('GRANT SELECT, INSERT, DELETE ON TABLE "public"."file_permissions" TO "forwardable_users"');
    expect(sql).toContain('GRANT UPDATE ("level") ON TABLE "public"."file_permissions" TO "forwardable_users"');
    expect(sql).toContain('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE "public"."files" TO "forwardable_users"');
  });

  it('enables and forces RLS and revokes PUBLIC on every table', () => {
    const sql = up();
    for (const t of ['directories', 'directory_permissions', 'files', 'file_permissions']) {
      expect(sql).toContain(`ALTER TABLE "public"."${t}" ENABLE ROW LEVEL SECURITY`);
      expect(sql).toContain(`ALTER TABLE "public"."${t}" FORCE ROW LEVEL SECURITY`);
      expect(sql).toContain(`REVOKE ALL ON TABLE "public"."${t}" FROM PUBLIC`);
    }
    expect(sql).toContain('GRANT USAGE ON SCHEMA "public" TO "forwardable_users"');
  });

  it('defines the helpers as SECURITY DEFINER with a fixed search_path, for the group only', () => {
    const sql = up();
    expect(sql).toContain(
      `CREATE OR REPLACE FUNCTION "public"."files_rls_is_owner"(uuid)\n  RETURNS boolean\n  LANGUAGE plpgsql STABLE SECURITY DEFINER\n` +
        `  SET search_path = pg_catalog, "public", pg_temp\n  AS $fw$\n` +
        `#variable_conflict use_column\n` +
        `DECLARE\n  _fw_prior text := pg_catalog.current_setting('forwardable.rls_helper', true);\n  _fw_me text := session_user;\n  _fw_answer boolean;\n` +
        `BEGIN\n  PERFORM pg_catalog.set_config('forwardable.rls_helper', 'on', true);\n` +
        `  _fw_answer := EXISTS (SELECT 1 FROM "public"."files" WHERE "id" = $1 AND "owner" = _fw_me);\n` +
        `  PERFORM pg_catalog.set_config('forwardable.rls_helper', coalesce(_fw_prior, ''), true);\n  RETURN _fw_answer;\nEND\n$fw$`,
    );
    expect(sql.find((s) => s.startsWith('CREATE OR REPLACE FUNCTION "public"."files_rls_shared_ids"(text)'))).toContain(
      `  RETURNS SETOF uuid\n  LANGUAGE plpgsql STABLE SECURITY DEFINER\n  SET search_path = pg_catalog, "public", pg_temp\n  AS $fw$\n`,
    );
    expect(sql.find((s) => s.startsWith('CREATE OR REPLACE FUNCTION "public"."files_rls_shared_ids"(text)'))).toContain(
      `  RETURN QUERY SELECT CAST("file_id" AS uuid) FROM "public"."file_permissions" WHERE "grantee" = _fw_me AND ("level" = 'write' OR $1 IS DISTINCT FROM 'write') UNION ALL SELECT CAST("file_id" AS uuid) FROM "public"."file_permissions" WHERE "grantee" = ANY (_fw_roles) AND ("level" = 'write' OR $1 IS DISTINCT FROM 'write');\n`,
    );
    expect(sql).toContain('REVOKE ALL ON FUNCTION "public"."files_rls_is_owner"(uuid) FROM PUBLIC');
    expect(sql).toContain('GRANT EXECUTE ON FUNCTION "public"."files_rls_shared_ids"(text) TO "forwardable_users"');
  });

  it('creates indexes on the policy columns unless one exists, and records what it did', () => {
    const block = up().find((s) => s.startsWith('DO') && s.includes('"public"."files_rls_owner_idx"')) as string;
    expect(block).toContain('CREATE INDEX "files_rls_owner_idx" ON "public"."files" ("owner");');
    expect(block).toContain('CREATE INDEX "file_permissions_rls_grantee_idx" ON "public"."file_permissions" ("grantee", "file_id");');
    expect(block).toContain('CREATE INDEX "file_permissions_rls_fk_idx" ON "public"."file_permissions" ("file_id");');
    expect(block).toContain("EXECUTE 'COMMENT ON FUNCTION ' || '\"public\".\"files_rls_is_owner\"(uuid)' || ' IS ' || pg_catalog.quote_literal(state::text);");
  });

  it('reverts in reverse order: restore, then drop policies, then helpers', () => {
    const down = planPolicies(fileBrowserMapping, model).down.map((s) => s.sql);
    expect(down[0]).toMatch(/^DO \$fw\$/);
    expect(down[0]).toContain(`pg_catalog.to_regprocedure('"public"."files_rls_is_owner"(uuid)')`);
    expect(down[0]).toContain('ALTER TABLE "public"."files" NO FORCE ROW LEVEL SECURITY');
    const filesDrops = down.slice(1, 10);
    expect(filesDrops.slice(0, 8).every((s) => s.startsWith('DROP POLICY IF EXISTS'))).toBe(true);
    expect(down).toContain('DROP FUNCTION IF EXISTS "public"."files_rls_shared_ids"(text)');
    expect(down.indexOf('DROP TRIGGER IF EXISTS "directories_rls_tree_move" ON "public"."directories"')).toBeLessThan(down.indexOf('DROP TABLE IF EXISTS "public"."directories_rls_tree"'));
    expect(down.some((s) => s.includes('files_rls_tree'))).toBe(false);
    expect(down.indexOf('DROP FUNCTION IF EXISTS "public"."files_rls_is_owner"(uuid)')).toBeLessThan(down.indexOf('DROP FUNCTION IF EXISTS "public"."directories_rls_is_owner"(uuid)'));
  });

  it('quotes strange but real names everywhere', () => {
    const strange: DatabaseModel = {
      database: null,
      schema: 'we"ird',
      source: 'entities',
      currentUser: null,
      roles: null,
      tables: [
        {
          name: "t'; DROP TABLE x; --",
          primaryKey: ['i$fw$d'],
          columns: [
            { name: 'i$fw$d', type: 'integer', nullable: false, isText: false },
            { name: 'o"wn', type: 'text', nullable: false, isText: true },
          ],
          ownerCandidates: ['o"wn'],
          foreignKeys: [],
          permissionCandidates: [],
          rls: null,
          policies: [],
          owner: null,
        },
      ],
    };
    const plan = planPolicies({ schema: 'we"ird', groupRole: 'g"rp', tables: [{ table: "t'; DROP TABLE x; --", ownerColumn: 'o"wn' }] }, strange);
    const sql = plan.up.map((s) => s.sql);
    expect(sql).toContain(`CREATE POLICY "t'; DROP TABLE x; --_rls_insert" ON "we""ird"."t'; DROP TABLE x; --" AS PERMISSIVE FOR INSERT TO PUBLIC\n  WITH CHECK ("o""wn" = (SELECT session_user::text))`);
    expect(sql[0]).toMatch(/^CREATE OR REPLACE FUNCTION "we""ird"."t'; DROP TABLE x; --_rls_is_owner"\(integer\)\n[^]*AS \$fw1\$\n[^]*\$fw1\$$/);
    expect(sql[0]).toContain(`EXISTS (SELECT 1 FROM "we""ird"."t'; DROP TABLE x; --" WHERE "i$fw$d" = $1 AND "o""wn" = _fw_me)`);
    // inside DO blocks the names are string literals, quotes doubled
    expect(sql.find((s) => s.startsWith('DO'))).toContain(`'"we""ird"."t''; DROP TABLE x; --"'::regclass`);
  });
});

describe('output', () => {
  it('renders a preview script and a TypeORM migration that compiles', async () => {
    const model = await fileBrowserModel();
    const plan = planPolicies(fileBrowserMapping, model);
    const preview = renderSql(plan);
    expect(preview).toMatch(/^-- forwardable-rls: apply row-level security on public\.directories, public\.files/);
    expect(preview).toContain('BEGIN;');
    expect(preview.trimEnd().endsWith('COMMIT;')).toBe(true);
    const text = renderMigration(plan, { timestamp: 1763900000000 });
    expect(text).toContain('export class RlsPolicies1763900000000 implements MigrationInterface');
    expect(text).toContain("name = 'RlsPolicies1763900000000';");
    const out = ts.transpileModule(text, { reportDiagnostics: true, compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } });
    expect(out.diagnostics ?? []).toEqual([]);
    // the SQL inside the template literals survives the round trip
    const queries: string[] = [];
    const mod = { exports: {} as Record<string, new () => { up(q: unknown): Promise<void> }> };
    new Function('module', 'exports', 'require', out.outputText)(mod, mod.exports, require);
    await new mod.exports.RlsPolicies1763900000000().up({ query: async (s: string) => void queries.push(s) });
    expect(queries).toEqual(plan.up.map((s) => s.sql));
  });
});
