/**
 * Behaviour of the generated policies on the real realm: PostgreSQL with real roles, each user
 * connected with their own delegated Kerberos credential (GSSAPI, no password). Everything runs in
 * a private schema `rls_test_<random>` with a private group role, both created by dbadmin (the
 * database owner) and dropped at the end, so other suites using `public` are not disturbed.
 *
 * alice owns rows, bob is a grantee, carol a stranger; dbadmin owns the tables and applies the
 * policies, and is subject to them (FORCE).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import * as ts from 'typescript';
import { Credential } from '@forwardable/gssapi';
import { gssapiClientConfig, gssapiStream } from '@forwardable/pg-gssapi';
import { ensureRealm, kinit, RealmEnv, TicketCache } from '@forwardable/testing/realm';
import { delegatedCredential, useRealm } from '@forwardable/testing/delegation';
import { applyPolicies, fileBrowserMapping, introspect, planOnDatabase, quoteIdent, renderMigration, revertPolicies, RlsMapping, MappingValidationError } from '../index';

const S = `rls_test_${randomBytes(4).toString('hex')}`;
const G = `${S}_users`;
const q = (s: string) => `${quoteIdent(S)}.${quoteIdent(s)}`;
// A real table and columns with quotes, semicolons and a dollar-quote tag in their names.
const WEIRD = 'we"ird; --';
const WEIRD_GRANTS = "gr'ants";

const mapping: RlsMapping = {
  ...fileBrowserMapping,
  schema: S,
  groupRole: G,
  tables: [
    ...fileBrowserMapping.tables,
    { table: WEIRD, ownerColumn: "o'wn", permission: { table: WEIRD_GRANTS, fkColumn: 'd$fw$id', granteeColumn: 'wh"o' } },
  ],
};
const TABLES = ['directories', 'directory_permissions', 'files', 'file_permissions', WEIRD, WEIRD_GRANTS];

type Who = 'alice' | 'bob' | 'carol' | 'dbadmin';

describe(`generated RLS policies on the real realm (schema ${S})`, () => {
  let realm: RealmEnv;
  let operatorCache: TicketCache | undefined;
  const creds: Partial<Record<Who, Credential>> = {};
  const db: Partial<Record<Who, Client>> = {};
  const as = (w: Who) => db[w] as Client;
  const rows = async (w: Who, sql: string, params: unknown[] = []) => (await as(w).query(sql, params)).rows;
  const names = async (w: Who, table: string) => (await rows(w, `SELECT name FROM ${q(table)} ORDER BY name`)).map((r) => r.name as string);
  const ids: Record<string, string> = {};

  /** Catalog state of our tables as dbadmin sees it: flags, grants, indexes, policies, helpers, schema ACL. */
  async function catalogState(): Promise<unknown> {
    const acl = (expr: string, kind: string, owner: string) =>
      `(SELECT array_agg(x ORDER BY x) FROM (SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END || ':' || a.privilege_type AS x
          FROM aclexplode(coalesce(${expr}, acldefault('${kind}', ${owner}))) a) s)`;
    const [r] = await rows(
      'dbadmin',
      `SELECT json_build_object(
        'tables', (SELECT json_agg(json_build_object('name', c.relname, 'rls', c.relrowsecurity, 'force', c.relforcerowsecurity,
                                                      'acl', ${acl('c.relacl', 'r', 'c.relowner')}) ORDER BY c.relname)
                     FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1::text) AND c.relname = ANY($2)),
        'indexes', (SELECT array_agg(ic.relname::text ORDER BY ic.relname) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                     JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1::text) AND c.relname = ANY($2)),
        'policies', (SELECT array_agg(x ORDER BY x) FROM (SELECT tablename || '.' || policyname || ':' || cmd || ':' || coalesce(qual, '') || ':' || coalesce(with_check, '') AS x
                     FROM pg_policies WHERE schemaname = $1::text) s),
        'functions', (SELECT array_agg(x ORDER BY x) FROM (SELECT p.proname || ':' || p.prosecdef || ':' || coalesce(obj_description(p.oid, 'pg_proc'), '') || ':' || ${acl('p.proacl', 'f', 'p.proowner')}::text AS x
                     FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1::text)) s),
        'schema', (SELECT ${acl('n.nspacl', 'n', 'n.nspowner')} FROM pg_namespace n WHERE n.nspname = $1::text)) AS state`,
      [S, TABLES],
    );
    return r.state;
  }

  beforeAll(async () => {
    realm = ensureRealm('db2');
    useRealm(realm);
    for (const u of ['alice', 'bob', 'carol'] as const) creds[u] = await delegatedCredential(realm, u, 'forwarded');
    // The operator's credential refers to their FILE cache, which must outlive it (destroyed in afterAll).
    operatorCache = kinit(realm, 'dbadmin');
    creds.dbadmin = await Credential.fromCache(operatorCache.name, 'password');
    for (const w of ['alice', 'bob', 'carol', 'dbadmin'] as const) {
      const c = new Client(gssapiClientConfig(creds[w] as Credential, { host: 'localhost', hostaddr: '127.0.0.1', port: realm.pg.port, database: realm.pg.database }));
      c.on('error', () => undefined); // a dropped connection fails the next query instead
      await c.connect();
      db[w] = c;
    }
    await as('dbadmin').query(`
      CREATE SCHEMA ${quoteIdent(S)};
      CREATE ROLE ${quoteIdent(G)} NOLOGIN;
      GRANT ${quoteIdent(G)} TO alice, bob, carol;
      CREATE TABLE ${q('directories')} (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        parent_id uuid REFERENCES ${q('directories')}(id) ON DELETE CASCADE,
        name text NOT NULL,
        owner text NOT NULL DEFAULT session_user);
      CREATE TABLE ${q('files')} (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        directory_id uuid REFERENCES ${q('directories')}(id) ON DELETE CASCADE,
        name text NOT NULL,
        owner text NOT NULL DEFAULT session_user,
        content text NOT NULL DEFAULT '');
      CREATE TABLE ${q('directory_permissions')} (
        directory_id uuid NOT NULL REFERENCES ${q('directories')}(id) ON DELETE CASCADE,
        grantee text NOT NULL,
        level text NOT NULL DEFAULT 'read',
        PRIMARY KEY (directory_id, grantee));
      CREATE TABLE ${q('file_permissions')} (
        file_id uuid NOT NULL REFERENCES ${q('files')}(id) ON DELETE CASCADE,
        grantee text NOT NULL,
        level text NOT NULL DEFAULT 'read',
        PRIMARY KEY (file_id, grantee));
      CREATE TABLE ${q(WEIRD)} (
        "i""d" integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name text NOT NULL,
        "o'wn" varchar(63) NOT NULL DEFAULT session_user);
      CREATE TABLE ${q(WEIRD_GRANTS)} (
        "d$fw$id" integer NOT NULL REFERENCES ${q(WEIRD)}("i""d") ON DELETE CASCADE,
        "wh""o" text NOT NULL);
      -- a prior state that revert must restore: RLS already on (not forced) on one table, PUBLIC
      -- reading another, the group holding a privilege on a third
      ALTER TABLE ${q('directories')} ENABLE ROW LEVEL SECURITY;
      GRANT SELECT ON ${q('files')} TO PUBLIC;
      GRANT REFERENCES ON ${q('directory_permissions')} TO ${quoteIdent(G)};
    `);
    for (const w of ['alice', 'bob', 'carol', 'dbadmin'] as const) await as(w).query(`SET search_path = ${quoteIdent(S)}`);
  });

  afterAll(async () => {
    await db.dbadmin?.query(`DROP SCHEMA IF EXISTS ${quoteIdent(S)} CASCADE; DROP ROLE IF EXISTS ${quoteIdent(G)}`).catch((e) => console.error(`cleanup of ${S} failed: ${e.message}`));
    for (const c of Object.values(db)) await c?.end().catch(() => undefined);
    for (const c of Object.values(creds)) c?.dispose();
    operatorCache?.destroy();
  });

  let before: unknown;
  let afterFirstApply: unknown;

  it('introspects as the database owner: tables, keys, candidates, RLS flags', async () => {
    const model = await introspect(as('dbadmin'), { schema: S });
    expect(model.database).toBe(realm.pg.database);
    expect(model.currentUser).toBe('dbadmin');
    expect(model.tables.map((t) => t.name).sort()).toEqual([...TABLES].sort());
    const dirs = model.tables.find((t) => t.name === 'directories');
    expect(dirs).toMatchObject({ primaryKey: ['id'], ownerCandidates: ['name', 'owner'], rls: { enabled: true, forced: false }, policies: [], owner: 'dbadmin' });
    expect(dirs?.permissionCandidates).toEqual(
      expect.arrayContaining([
        { table: 'directory_permissions', fkColumn: 'directory_id', granteeCandidates: ['grantee', 'level'] },
        // the paper's heuristic also offers files (FK directory_id, text columns): a candidate, not a choice
        { table: 'files', fkColumn: 'directory_id', granteeCandidates: ['name', 'owner', 'content'] },
      ]),
    );
    const weird = model.tables.find((t) => t.name === WEIRD);
    expect(weird?.permissionCandidates).toEqual([{ table: WEIRD_GRANTS, fkColumn: 'd$fw$id', granteeCandidates: ['wh"o'] }]);
    expect(weird?.ownerCandidates).toEqual(['name', "o'wn"]);
  });

  it('shows a user without privileges no tables, so there is nothing they can map', async () => {
    // carol holds no privilege on these tables, except what the prior state below gives PUBLIC
    // (SELECT on files) and the group (REFERENCES on directory_permissions)
    const model = await introspect(as('carol'), { schema: S });
    expect(model.tables.map((t) => t.name)).toEqual(['directory_permissions', 'files']);
    await expect(applyPolicies(as('carol'), mapping)).rejects.toBeInstanceOf(MappingValidationError);
  });

  it('rejects a mapping whose names are not in the catalog before touching anything', async () => {
    const evil: RlsMapping = { ...mapping, tables: [{ table: `files"; DROP SCHEMA ${S} CASCADE; --`, ownerColumn: 'owner' }] };
    await expect(applyPolicies(as('dbadmin'), evil)).rejects.toThrow(/not found in schema/);
    await expect(planOnDatabase(as('dbadmin'), { ...mapping, tables: [{ table: 'files', ownerColumn: "owner' OR 1=1 --" }] })).rejects.toThrow(/no column/);
  });

  it('applies as dbadmin', async () => {
    before = await catalogState();
    const plan = await applyPolicies(as('dbadmin'), mapping);
    expect(plan.warnings).toEqual([]);
    afterFirstApply = await catalogState();
    const model = await introspect(as('dbadmin'), { schema: S });
    for (const t of TABLES) expect(model.tables.find((x) => x.name === t)?.rls).toEqual({ enabled: true, forced: true });
    const files = model.tables.find((t) => t.name === 'files');
    expect(files?.policies.map((p) => `${p.name}:${p.command}`).sort()).toEqual(['files_rls_delete:DELETE', 'files_rls_insert:INSERT', 'files_rls_select:SELECT', 'files_rls_update:UPDATE']);
    expect(model.tables.find((t) => t.name === 'file_permissions')?.policies.map((p) => p.command).sort()).toEqual(['DELETE', 'INSERT', 'SELECT', 'UPDATE']);
    expect(model.tables.find((t) => t.name === WEIRD_GRANTS)?.policies.map((p) => p.command).sort()).toEqual(['DELETE', 'INSERT', 'SELECT']);
  });

  it('is idempotent: a second apply changes nothing', async () => {
    await applyPolicies(as('dbadmin'), mapping);
    expect(await catalogState()).toEqual(afterFirstApply);
  });

  it('needs its helpers: two policies that query each other directly recurse (why the design uses helpers)', async () => {
    const [d, p] = [q('naive_d'), q('naive_p')];
    await as('dbadmin').query(`
      CREATE TABLE ${d} (id int PRIMARY KEY, owner text NOT NULL DEFAULT session_user);
      CREATE TABLE ${p} (d_id int NOT NULL REFERENCES ${d}(id), grantee text NOT NULL);
      ALTER TABLE ${d} ENABLE ROW LEVEL SECURITY;
      ALTER TABLE ${p} ENABLE ROW LEVEL SECURITY;
      CREATE POLICY s ON ${d} FOR SELECT USING (owner = session_user OR EXISTS (SELECT 1 FROM ${p} x WHERE x.d_id = id AND x.grantee = session_user));
      CREATE POLICY s ON ${p} FOR SELECT USING (grantee = session_user OR EXISTS (SELECT 1 FROM ${d} x WHERE x.id = d_id AND x.owner = session_user));
      GRANT SELECT ON ${d}, ${p} TO ${quoteIdent(G)};`);
    try {
      await expect(as('alice').query(`SELECT * FROM ${d}`)).rejects.toThrow(/infinite recursion detected in policy/);
    } finally {
      await as('dbadmin').query(`DROP TABLE ${p}, ${d}`);
    }
  });

  it('lets everyone create their own rows, and nobody create rows for someone else', async () => {
    for (const [w, n] of [['alice', 'A1'], ['alice', 'A2'], ['bob', 'B1'], ['carol', 'C1']] as const) {
      const [r] = await rows(w, 'INSERT INTO directories (name) VALUES ($1) RETURNING id, owner', [n]);
      expect(r.owner).toBe(w);
      ids[n] = r.id;
    }
    const [f] = await rows('alice', 'INSERT INTO files (directory_id, name, content) VALUES ($1, $2, $3) RETURNING id', [ids.A1, 'AF1', 'secret of alice']);
    ids.AF1 = f.id;
    await rows('carol', 'INSERT INTO files (name, content) VALUES ($1, $2)', ['CF1', 'secret of carol']);
    await expect(as('alice').query("INSERT INTO directories (name, owner) VALUES ('forged', 'bob')")).rejects.toMatchObject({ code: '42501', message: expect.stringMatching(/row-level security/) });
    await expect(as('carol').query("INSERT INTO files (name, owner) VALUES ('forged', 'alice')")).rejects.toMatchObject({ code: '42501' });
  });

  it('lets only the owner share: strangers and grantees cannot grant access to themselves or others', async () => {
    await rows('alice', 'INSERT INTO directory_permissions (directory_id, grantee) VALUES ($1, $2)', [ids.A1, 'bob']);
    await rows('alice', 'INSERT INTO file_permissions (file_id, grantee) VALUES ($1, $2)', [ids.AF1, 'bob']);
    await rows('carol', 'INSERT INTO directory_permissions (directory_id, grantee) VALUES ($1, $2)', [ids.C1, 'bob']);
    // carol (stranger) grants herself alice's directory and file
    await expect(as('carol').query('INSERT INTO directory_permissions (directory_id, grantee) VALUES ($1, $2)', [ids.A1, 'carol'])).rejects.toMatchObject({ code: '42501' });
    await expect(as('carol').query('INSERT INTO file_permissions (file_id, grantee) VALUES ($1, $2)', [ids.AF1, 'carol'])).rejects.toMatchObject({ code: '42501' });
    // bob (grantee) re-shares alice's directory with carol
    await expect(as('bob').query('INSERT INTO directory_permissions (directory_id, grantee) VALUES ($1, $2)', [ids.A1, 'carol'])).rejects.toMatchObject({ code: '42501' });
    // dbadmin owns the table but not the row
    await expect(as('dbadmin').query('INSERT INTO directory_permissions (directory_id, grantee) VALUES ($1, $2)', [ids.A2, 'dbadmin'])).rejects.toMatchObject({ code: '42501' });
    await rows('alice', 'INSERT INTO directory_permissions (directory_id, grantee) VALUES ($1, $2)', [ids.A2, 'carol']);
  });

  it('SELECT on data tables: owner and grantees see a row, strangers do not (and nothing recurses)', async () => {
    expect(await names('alice', 'directories')).toEqual(['A1', 'A2']);
    expect(await names('bob', 'directories')).toEqual(['A1', 'B1', 'C1']);
    expect(await names('carol', 'directories')).toEqual(['A2', 'C1']);
    expect(await names('alice', 'files')).toEqual(['AF1']);
    expect(await names('bob', 'files')).toEqual(['AF1']);
    expect(await names('carol', 'files')).toEqual(['CF1']);
  });

  it('SELECT on permission tables: a grant is seen by its grantee and the owner of the row only', async () => {
    const grants = async (w: Who) =>
      (await rows(w, 'SELECT d.name AS dir, p.grantee FROM directory_permissions p LEFT JOIN directories d ON d.id = p.directory_id ORDER BY 1, 2')).map((r) => `${r.dir ?? '?'}:${r.grantee}`);
    expect(await grants('alice')).toEqual(['A1:bob', 'A2:carol']);
    expect(await grants('bob')).toEqual(['A1:bob', 'C1:bob']);
    expect(await grants('carol')).toEqual(['A2:carol', 'C1:bob']);
    expect((await rows('carol', 'SELECT * FROM file_permissions')).length).toBe(0);
  });

  it("the shared-ids helper finds a user's grants through an index, not by reading everyone's", async () => {
    // Many grants of someone else's folder: a helper that cannot use the grantee index (under FORCE
    // RLS, `grantee = session_user::text` is not leakproof, so it only filters a full scan) reads
    // all of them on every query of every user.
    await as('dbadmin').query(`INSERT INTO directories (name) VALUES ('D-many')`);
    const [{ id }] = await rows('dbadmin', `SELECT id FROM directories WHERE name = 'D-many'`);
    await as('dbadmin').query(`INSERT INTO directory_permissions (directory_id, grantee) SELECT $1, 'g' || i FROM generate_series(1, 3000) i`, [id]);
    await as('dbadmin').query('ANALYZE directory_permissions');
    try {
      await as('bob').query('BEGIN');
      const shared = await rows('bob', `SELECT * FROM ${quoteIdent(S)}.directories_rls_shared_ids('read')`);
      // Rows this transaction read from the table, by sequential scans and through indexes.
      const [stats] = await rows('bob', `SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) AS n FROM pg_stat_xact_user_tables WHERE relid = $1::regclass`, [`${S}.directory_permissions`]);
      await as('bob').query('COMMIT');
      expect(shared.length).toBe(2); // A1 and C1
      expect(Number(stats.n)).toBeLessThan(100);
    } finally {
      await as('bob').query('ROLLBACK').catch(() => undefined);
      await as('dbadmin').query(`DELETE FROM directories WHERE id = $1`, [id]);
    }
  });

  it('a user who sets forwardable.rls_helper themself only narrows their own view', async () => {
    await as('bob').query("SET forwardable.rls_helper = 'on'");
    try {
      expect(await names('bob', 'directories')).toEqual(['B1']);
      expect((await rows('bob', 'SELECT grantee FROM directory_permissions')).map((r) => r.grantee)).toEqual(['bob', 'bob']);
      await expect(as('bob').query('INSERT INTO directory_permissions (directory_id, grantee) VALUES ($1, $2)', [ids.A1, 'carol'])).rejects.toMatchObject({ code: '42501' });
    } finally {
      await as('bob').query('RESET forwardable.rls_helper');
    }
    expect(await names('bob', 'directories')).toEqual(['A1', 'B1', 'C1']);
  });

  /** alice's tree for one test: T (top) > T/sub > T/sub/deep, a file in each; removed at the end. */
  async function aliceTree(tag: string): Promise<Record<'top' | 'sub' | 'deep' | 'fTop' | 'fSub' | 'fDeep', string>> {
    const dir = async (name: string, parent: string | null) => (await rows('alice', 'INSERT INTO directories (name, parent_id) VALUES ($1, $2) RETURNING id', [name, parent]))[0].id as string;
    const file = async (name: string, d: string) => (await rows('alice', 'INSERT INTO files (name, directory_id, content) VALUES ($1, $2, $3) RETURNING id', [name, d, `${name} content`]))[0].id as string;
    const top = await dir(`${tag}`, null);
    const sub = await dir(`${tag}/sub`, top);
    const deep = await dir(`${tag}/deep`, sub);
    return { top, sub, deep, fTop: await file(`${tag}.f0`, top), fSub: await file(`${tag}.f1`, sub), fDeep: await file(`${tag}.f2`, deep) };
  }
  const visible = async (w: Who, table: string, prefix: string) => (await rows(w, `SELECT name FROM ${q(table)} WHERE name LIKE $1 ORDER BY name`, [`${prefix}%`])).map((r) => r.name as string);

  it('a folder grant reaches everything below it (sub-folders and their files); a stranger sees none of it', async () => {
    const t = await aliceTree('T1');
    try {
      expect(await visible('bob', 'directories', 'T1')).toEqual([]);
      await rows('alice', 'INSERT INTO directory_permissions (directory_id, grantee) VALUES ($1, $2)', [t.top, 'bob']);
      expect(await visible('bob', 'directories', 'T1')).toEqual(['T1', 'T1/deep', 'T1/sub']);
      expect(await visible('bob', 'files', 'T1')).toEqual(['T1.f0', 'T1.f1', 'T1.f2']);
      expect(await visible('carol', 'directories', 'T1')).toEqual([]);
      expect(await visible('carol', 'files', 'T1')).toEqual([]);
      // a grant lower down reaches only below it
      await rows('alice', 'INSERT INTO directory_permissions (directory_id, grantee) VALUES ($1, $2)', [t.sub, 'carol']);
      expect(await visible('carol', 'directories', 'T1')).toEqual(['T1/deep', 'T1/sub']);
      expect(await visible('carol', 'files', 'T1')).toEqual(['T1.f1', 'T1.f2']);
      // revoking the top grant ends bob's access to everything below at once
      expect((await as('alice').query('DELETE FROM directory_permissions WHERE directory_id = $1', [t.top])).rowCount).toBe(1);
      expect(await visible('bob', 'directories', 'T1')).toEqual([]);
      expect(await visible('bob', 'files', 'T1')).toEqual([]);
    } finally {
      await as('alice').query('DELETE FROM directories WHERE id = $1', [t.top]);
    }
  });

  it('moving an item out of a shared folder ends the inherited access; a new item inside a shared folder is shared at once', async () => {
    const t = await aliceTree('T2');
    try {
      await rows('alice', 'INSERT INTO directory_permissions (directory_id, grantee) VALUES ($1, $2)', [t.top, 'bob']);
      expect(await visible('bob', 'files', 'T2')).toEqual(['T2.f0', 'T2.f1', 'T2.f2']);
      // the sub-tree moves to the top: bob loses the folder, the folder below it and their files
      expect((await as('alice').query('UPDATE directories SET parent_id = NULL WHERE id = $1', [t.sub])).rowCount).toBe(1);
      expect(await visible('bob', 'directories', 'T2')).toEqual(['T2']);
      expect(await visible('bob', 'files', 'T2')).toEqual(['T2.f0']);
      // a file moves out to the top
      await as('alice').query('UPDATE files SET directory_id = NULL WHERE id = $1', [t.fTop]);
      expect(await visible('bob', 'files', 'T2')).toEqual([]);
      // and back in: the closure follows moves both ways
      await as('alice').query('UPDATE directories SET parent_id = $2 WHERE id = $1', [t.sub, t.top]);
      expect(await visible('bob', 'files', 'T2')).toEqual(['T2.f1', 'T2.f2']);
      await rows('alice', 'INSERT INTO directories (name, parent_id) VALUES ($1, $2)', ['T2/new', t.deep]);
      expect(await visible('bob', 'directories', 'T2')).toEqual(['T2', 'T2/deep', 'T2/new', 'T2/sub']);
    } finally {
      await as('alice').query('DELETE FROM files WHERE id = $1', [t.fTop]);
      await as('alice').query('DELETE FROM directories WHERE id = ANY($1)', [[t.top, t.sub]]);
    }
  });

  it("container check: with SQL on his own connection bob cannot put rows into alice's folder, even one shared with him for writing", async () => {
    const t = await aliceTree('T3');
    try {
      await rows('alice', "INSERT INTO directory_permissions (directory_id, grantee, level) VALUES ($1, 'bob', 'write')", [t.top]);
      await expect(as('bob').query("INSERT INTO files (name, directory_id) VALUES ('planted', $1)", [t.sub])).rejects.toMatchObject({ code: '42501', message: expect.stringMatching(/row-level security/) });
      await expect(as('bob').query("INSERT INTO directories (name, parent_id) VALUES ('planted', $1)", [t.top])).rejects.toMatchObject({ code: '42501' });
      // nor move his own rows in
      const [mine] = await rows('bob', "INSERT INTO files (name) VALUES ('T3.bob') RETURNING id");
      try {
        await expect(as('bob').query('UPDATE files SET directory_id = $2 WHERE id = $1', [mine.id, t.top])).rejects.toMatchObject({ code: '42501' });
      } finally {
        await as('bob').query('DELETE FROM files WHERE id = $1', [mine.id]);
      }
      expect(await visible('alice', 'files', 'T3')).toEqual(['T3.f0', 'T3.f1', 'T3.f2']);
    } finally {
      await as('alice').query('DELETE FROM directories WHERE id = $1', [t.top]);
    }
  });

  it('refuses a folder cycle: into itself or below itself, even by the owner', async () => {
    const t = await aliceTree('T4');
    try {
      await expect(as('alice').query('UPDATE directories SET parent_id = $2 WHERE id = $1', [t.top, t.deep])).rejects.toMatchObject({ code: '23514', message: expect.stringMatching(/cannot be moved into itself or below itself/) });
      await expect(as('alice').query('UPDATE directories SET parent_id = id WHERE id = $1', [t.sub])).rejects.toMatchObject({ code: '23514' });
      // bob's own folders: the same rule on his own connection
      const [a] = await rows('bob', "INSERT INTO directories (name) VALUES ('T4.b1') RETURNING id");
      const [b] = await rows('bob', "INSERT INTO directories (name, parent_id) VALUES ('T4.b2', $1) RETURNING id", [a.id]);
      try {
        await expect(as('bob').query('UPDATE directories SET parent_id = $2 WHERE id = $1', [a.id, b.id])).rejects.toMatchObject({ code: '23514' });
      } finally {
        await as('bob').query('DELETE FROM directories WHERE id = $1', [a.id]);
      }
      expect((await rows('alice', 'SELECT parent_id FROM directories WHERE id = $1', [t.top]))[0].parent_id).toBeNull();
    } finally {
      await as('alice').query('DELETE FROM directories WHERE id = $1', [t.top]);
    }
  });

  it('write grants: edit content and rename, inherited too; never delete, move, give away, re-share or change grants', async () => {
    const t = await aliceTree('T5');
    try {
      await rows('alice', "INSERT INTO directory_permissions (directory_id, grantee, level) VALUES ($1, 'carol', 'write')", [t.sub]);
      await rows('alice', "INSERT INTO directory_permissions (directory_id, grantee, level) VALUES ($1, 'bob', 'read')", [t.top]);
      // carol writes below her grant: a file's content, a folder's name
      expect((await as('carol').query("UPDATE files SET content = 'edited by carol' WHERE id = $1", [t.fDeep])).rowCount).toBe(1);
      expect((await as('carol').query("UPDATE files SET name = 'T5.f2-renamed' WHERE id = $1", [t.fDeep])).rowCount).toBe(1);
      expect((await as('carol').query("UPDATE directories SET name = 'T5/deep-renamed' WHERE id = $1", [t.deep])).rowCount).toBe(1);
      expect((await rows('alice', 'SELECT name, content, owner FROM files WHERE id = $1', [t.fDeep]))[0]).toEqual({ name: 'T5.f2-renamed', content: 'edited by carol', owner: 'alice' });
      // ... but not above it, and a read grantee nowhere
      expect((await as('carol').query("UPDATE files SET content = 'x' WHERE id = $1", [t.fTop])).rowCount).toBe(0);
      expect((await as('bob').query("UPDATE files SET content = 'x' WHERE id = ANY($1)", [[t.fTop, t.fSub, t.fDeep]])).rowCount).toBe(0);
      // never delete
      expect((await as('carol').query('DELETE FROM files WHERE id = $1', [t.fSub])).rowCount).toBe(0);
      expect((await as('carol').query('DELETE FROM directories WHERE id = $1', [t.deep])).rowCount).toBe(0);
      // never move, give away or re-key (the guard trigger)
      await expect(as('carol').query('UPDATE files SET directory_id = NULL WHERE id = $1', [t.fSub])).rejects.toMatchObject({ code: '42501', message: expect.stringMatching(/only the owner/) });
      await expect(as('carol').query('UPDATE directories SET parent_id = $2 WHERE id = $1', [t.deep, t.sub])).resolves.toMatchObject({ rowCount: 1 }); // unchanged parent: no move
      await expect(as('carol').query('UPDATE directories SET parent_id = NULL WHERE id = $1', [t.deep])).rejects.toMatchObject({ code: '42501' });
      await expect(as('carol').query("UPDATE files SET owner = 'carol' WHERE id = $1", [t.fSub])).rejects.toMatchObject({ code: '42501' });
      await expect(as('carol').query('UPDATE files SET id = gen_random_uuid() WHERE id = $1', [t.fSub])).rejects.toMatchObject({ code: '42501' });
      // never re-share, never raise her own or anyone's level
      await expect(as('carol').query("INSERT INTO file_permissions (file_id, grantee, level) VALUES ($1, 'bob', 'write')", [t.fSub])).rejects.toMatchObject({ code: '42501' });
      await expect(as('carol').query("INSERT INTO directory_permissions (directory_id, grantee) VALUES ($1, 'bob')", [t.deep])).rejects.toMatchObject({ code: '42501' });
      expect((await as('bob').query("UPDATE directory_permissions SET level = 'write' WHERE directory_id = $1", [t.top])).rowCount).toBe(0);
      await expect(as('carol').query("UPDATE directory_permissions SET grantee = 'bob' WHERE directory_id = $1", [t.sub])).rejects.toMatchObject({ code: '42501' });
      // the owner changes a level; bob can write from then on
      expect((await as('alice').query("UPDATE directory_permissions SET level = 'write' WHERE directory_id = $1 AND grantee = 'bob'", [t.top])).rowCount).toBe(1);
      expect((await as('bob').query("UPDATE files SET content = 'bob now writes' WHERE id = $1", [t.fTop])).rowCount).toBe(1);
      // a direct write grant on one file
      const [own] = await rows('alice', "INSERT INTO files (name, content) VALUES ('T5.single', 'one') RETURNING id");
      try {
        await rows('alice', "INSERT INTO file_permissions (file_id, grantee, level) VALUES ($1, 'carol', 'write')", [own.id]);
        expect((await as('carol').query("UPDATE files SET content = 'two' WHERE id = $1", [own.id])).rowCount).toBe(1);
        expect((await as('carol').query('DELETE FROM files WHERE id = $1', [own.id])).rowCount).toBe(0);
      } finally {
        await as('alice').query('DELETE FROM files WHERE id = $1', [own.id]);
      }
    } finally {
      await as('alice').query('DELETE FROM directories WHERE id = $1', [t.top]);
    }
  });

  it('inherited grants are found through indexes too: the closure and the grants, not a scan of everyone\'s', async () => {
    // 2,000 folders of dbadmin in a chain of 20 levels, each shared with someone else; bob's
    // question must not read them
    await as('dbadmin').query(`
      DO $$ DECLARE p uuid; BEGIN
        FOR i IN 1..100 LOOP
          p := NULL;
          FOR j IN 1..20 LOOP
            INSERT INTO directories (name, parent_id) VALUES ('X' || i || '-' || j, p) RETURNING id INTO p;
            INSERT INTO directory_permissions (directory_id, grantee) VALUES (p, 'g' || i);
          END LOOP;
        END LOOP;
      END $$`);
    await as('dbadmin').query(`ANALYZE directory_permissions; ANALYZE directories_rls_tree`);
    const t = await aliceTree('T6');
    try {
      await rows('alice', 'INSERT INTO directory_permissions (directory_id, grantee) VALUES ($1, $2)', [t.top, 'bob']);
      await as('bob').query('BEGIN');
      const shared = await rows('bob', `SELECT * FROM ${quoteIdent(S)}.directories_rls_shared_ids('read')`);
      const stats = await rows('bob', `SELECT relname, seq_tup_read + coalesce(idx_tup_fetch, 0) AS n FROM pg_stat_xact_user_tables WHERE relid = ANY($1::regclass[])`, [
        [`${S}.directory_permissions`, `${S}.directories_rls_tree`],
      ]);
      await as('bob').query('COMMIT');
      expect(shared.map((r) => Object.values(r)[0])).toEqual(expect.arrayContaining([t.top, t.sub, t.deep]));
      expect(stats.map((r) => r.relname).sort()).toEqual(['directories_rls_tree', 'directory_permissions']);
      // A scan of everyone's reads the 2,000 foreign grants or their 21,000 closure rows. What an
      // index-driven lookup reads also counts bob's own shares from this file's earlier tests and
      // the closure rows below them (180 closure rows seen with the group-role arm), so the bound
      // is an order of magnitude under a scan rather than a fixed small number.
      for (const r of stats) expect({ table: r.relname, read: Number(r.n) < 1000 }).toEqual({ table: r.relname, read: true });
    } finally {
      await as('bob').query('ROLLBACK').catch(() => undefined);
      await as('alice').query('DELETE FROM directories WHERE id = $1', [t.top]);
      await as('dbadmin').query(`DELETE FROM directories WHERE name LIKE 'X%'`);
    }
  });

  it('UPDATE on data tables: only the owner, and the owner cannot give a row away', async () => {
    expect((await as('bob').query("UPDATE directories SET name = 'hacked' WHERE id = $1", [ids.A1])).rowCount).toBe(0);
    expect((await as('carol').query("UPDATE files SET content = 'hacked' WHERE id = $1", [ids.AF1])).rowCount).toBe(0);
    expect((await as('alice').query("UPDATE directories SET name = 'A1x' WHERE id = $1", [ids.A1])).rowCount).toBe(1);
    await expect(as('alice').query("UPDATE directories SET owner = 'carol' WHERE id = $1", [ids.A1])).rejects.toMatchObject({ code: '42501' });
    await as('alice').query("UPDATE directories SET name = 'A1' WHERE id = $1", [ids.A1]);
  });

  it('UPDATE on permission tables is refused to everyone', async () => {
    for (const w of ['alice', 'bob', 'carol'] as const) {
      await expect(as(w).query("UPDATE directory_permissions SET grantee = 'carol' WHERE directory_id = $1", [ids.A1])).rejects.toMatchObject({ code: '42501', message: expect.stringMatching(/permission denied/) });
    }
  });

  it('DELETE on permission tables: only the owner of the row revokes', async () => {
    expect((await as('bob').query('DELETE FROM directory_permissions WHERE directory_id = $1', [ids.A1])).rowCount).toBe(0);
    expect((await as('carol').query('DELETE FROM directory_permissions WHERE directory_id = $1', [ids.A2])).rowCount).toBe(0);
    expect((await as('alice').query('DELETE FROM directory_permissions WHERE directory_id = $1', [ids.A2])).rowCount).toBe(1);
    expect(await names('carol', 'directories')).toEqual(['C1']);
  });

  it('DELETE on data tables: only the owner', async () => {
    expect((await as('bob').query('DELETE FROM directories WHERE id = $1', [ids.A1])).rowCount).toBe(0);
    expect((await as('carol').query('DELETE FROM directories WHERE id = $1', [ids.A1])).rowCount).toBe(0);
    expect((await as('bob').query('DELETE FROM files WHERE id = $1', [ids.AF1])).rowCount).toBe(0);
    expect((await as('alice').query('DELETE FROM directories WHERE id = $1', [ids.A2])).rowCount).toBe(1);
    expect(await names('alice', 'directories')).toEqual(['A1']);
  });

  it('holds the table owner to the policies too (FORCE)', async () => {
    expect(await names('dbadmin', 'directories')).toEqual([]);
    expect(await names('dbadmin', 'files')).toEqual([]);
    expect((await as('dbadmin').query('UPDATE files SET content = $1', ['x'])).rowCount).toBe(0);
    expect((await as('dbadmin').query('DELETE FROM directories')).rowCount).toBe(0);
    await rows('dbadmin', "INSERT INTO directories (name) VALUES ('D1')");
    expect(await names('dbadmin', 'directories')).toEqual(['D1']);
    expect(await names('alice', 'directories')).toEqual(['A1']);
  });

  it("an injected ' OR 1=1; -- on alice's connection returns only what alice may see", async () => {
    const input = "' OR 1=1; --";
    const res = await as('alice').query(`SELECT name, owner, content FROM files WHERE name = '${input}'`);
    expect(res.rows).toEqual([{ name: 'AF1', owner: 'alice', content: 'secret of alice' }]);
    const dirs = await as('alice').query(`SELECT name FROM directories WHERE name = '${input}'`);
    expect(dirs.rows.map((r) => r.name)).toEqual(['A1']);
    const grants = await as('bob').query(`SELECT grantee FROM directory_permissions WHERE grantee = '${input}'`);
    expect(grants.rows.map((r) => r.grantee).sort()).toEqual(['bob', 'bob']);
  });

  it('works on tables and columns whose names contain quotes, semicolons and $fw$', async () => {
    const W = q(WEIRD);
    const [r] = await rows('alice', `INSERT INTO ${W} (name) VALUES ('w1') RETURNING "i""d" AS id, "o'wn" AS owner`);
    expect(r.owner).toBe('alice');
    expect((await rows('bob', `SELECT name FROM ${W}`)).length).toBe(0);
    await expect(as('carol').query(`INSERT INTO ${q(WEIRD_GRANTS)} ("d$fw$id", "wh""o") VALUES ($1, 'carol')`, [r.id])).rejects.toMatchObject({ code: '42501' });
    await rows('alice', `INSERT INTO ${q(WEIRD_GRANTS)} ("d$fw$id", "wh""o") VALUES ($1, 'bob')`, [r.id]);
    expect((await rows('bob', `SELECT name FROM ${W}`)).map((x) => x.name)).toEqual(['w1']);
    expect((await rows('carol', `SELECT name FROM ${W}`)).length).toBe(0);
  });

  it('revert restores the previous state exactly (RLS flags, grants, indexes), and is idempotent', async () => {
    await revertPolicies(as('dbadmin'), mapping);
    expect(await catalogState()).toEqual(before);
    await revertPolicies(as('dbadmin'), mapping);
    expect(await catalogState()).toEqual(before);
    // directories had RLS enabled (no policy) before: still enabled, no longer forced
    const model = await introspect(as('dbadmin'), { schema: S });
    expect(model.tables.find((t) => t.name === 'directories')?.rls).toEqual({ enabled: true, forced: false });
    expect(model.tables.find((t) => t.name === 'files')?.rls).toEqual({ enabled: false, forced: false });
    // and the group's privileges are gone again (the schema, too): alice cannot read directories
    await expect(as('alice').query(`SELECT * FROM ${q('directories')}`)).rejects.toMatchObject({ code: '42501' });
  });

  it('the generated TypeORM migration applies and reverts cleanly through a DataSource', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rls-migration-'));
    const plan = await planOnDatabase(as('dbadmin'), mapping);
    const file = join(dir, '1763900000000-rls-policies.cjs');
    const text = renderMigration(plan, { timestamp: 1763900000000 });
    writeFileSync(file, ts.transpileModule(text, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText);
    const migration = require(file).RlsPolicies1763900000000;
    const ds = new DataSource({
      type: 'postgres',
      host: 'localhost',
      port: realm.pg.port,
      database: realm.pg.database,
      username: 'dbadmin',
      schema: S,
      migrations: [migration],
      migrationsTableName: 'rls_migrations',
      migrationsTransactionMode: 'all',
      installExtensions: false,
      extra: { stream: gssapiStream({ credential: creds.dbadmin as Credential, hostaddr: '127.0.0.1' }), max: 1 },
    });
    await ds.initialize();
    try {
      // a TypeORM DataSource is a Queryable too (the wizard introspects through it)
      expect((await introspect(ds, { schema: S })).tables.map((t) => t.name).sort()).toEqual(expect.arrayContaining(['directories', 'files']));
      expect((await ds.runMigrations()).map((m) => m.name)).toEqual(['RlsPolicies1763900000000']);
      expect(await catalogState()).toEqual(afterFirstApply);
      expect(await names('bob', 'directories')).toEqual(['A1', 'B1', 'C1']);
      expect(await names('carol', 'directories')).toEqual(['C1']);
      await ds.undoLastMigration();
      expect(await catalogState()).toEqual(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await ds.destroy();
    }
  });
});
