/**
 * The file browser over real HTTP, on the real realm, with the schema and its RLS policies
 * migrated by dbadmin: alice creates and shares, bob reads but cannot edit, carol sees nothing,
 * and no search ever returns another user's files. The controllers never filter by user.
 */
import { randomUUID } from 'node:crypto';
import { ensureRealm, kinit, RealmEnv, repoRoot, runWithRealm, superuserSql } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import type { FileDto, FileSummaryDto, ListingResponse, PermissionDto, SearchResponse, SqlResponse, TreeResponse } from '@forwardable/shared/contracts';
import { fileBrowserMapping } from '@forwardable/rls';
import { listingStatements } from '@forwardable/api/files';
import { Credential } from '@forwardable/gssapi';
import { gssapiClientConfig } from '@forwardable/pg-gssapi';
import { Client } from 'pg';
import { Api, call, configFor, curl, migrateAsDbadmin, passwordSession, sessionCookie, startApi } from '../testing/api-harness';

describe('files API (db2 realm, RLS decides)', () => {
  let realm: RealmEnv;
  let api: Api;
  let alice: string;
  let bob: string;
  let carol: string;
  const tag = randomUUID().slice(0, 8);

  beforeAll(async () => {
    realm = ensureRealm('db2');
    useRealm(realm);
    await migrateAsDbadmin(realm);
    api = await startApi(configFor(realm));
    [alice, bob, carol] = await Promise.all([
      passwordSession(api, 'alice', realm.passwords.alice),
      passwordSession(api, 'bob', realm.passwords.bob),
      passwordSession(api, 'carol', realm.passwords.carol),
    ]);
  });
  afterAll(() => api?.close());

  const u = (p: string) => `${api.url}/api${p}`;

  it('alice creates, shares with bob; bob reads but cannot edit; carol sees nothing; revoke ends it', async () => {
    const dir = await call(u('/directories'), 'POST', { cookie: alice, body: { name: `projects-${tag}` } });
    expect(dir.status).toBe(201);
    expect(dir.body).toMatchObject({ name: `projects-${tag}`, owner: 'alice', parentId: null });
    const created = await call(u('/files'), 'POST', { cookie: alice, body: { name: `plan-${tag}.txt`, directoryId: dir.body.id, content: 'secret plan' } });
    expect(created.status).toBe(201);
    const file = created.body as unknown as FileDto;
    expect(file).toMatchObject({ owner: 'alice', canEdit: true, content: 'secret plan', size: 11 });

    // Before sharing, bob and carol cannot tell it exists: 404, not 403.
    expect((await call(u(`/files/${file.id}`), 'GET', { cookie: bob })).status).toBe(404);

    const grant = await call(u(`/files/${file.id}/permissions`), 'POST', { cookie: alice, body: { grantee: 'bob' } });
    expect(grant.status).toBe(201);
    expect(grant.body.grantee).toBe('bob');
    const perms = await call(u(`/files/${file.id}/permissions`), 'GET', { cookie: alice });
    expect((perms.body as unknown as { grantee: string }[]).map((p) => p.grantee)).toEqual(['bob']);

    // The file sits in alice's private folder: bob finds it at his top level.
    const bobTop = (await call(u('/files'), 'GET', { cookie: bob })).body as unknown as ListingResponse;
    expect(bobTop.files.map((f) => f.id)).toContain(file.id);
    expect(bobTop.directories.map((d) => d.id)).not.toContain(dir.body.id);
    const asBob = await call(u(`/files/${file.id}`), 'GET', { cookie: bob });
    expect(asBob.status).toBe(200);
    expect(asBob.body).toMatchObject({ content: 'secret plan', owner: 'alice', canEdit: false });
    const edit = await call(u(`/files/${file.id}`), 'PATCH', { cookie: bob, body: { content: 'bob was here' } });
    expect(edit.status).toBe(403);
    expect((await call(u(`/files/${file.id}`), 'DELETE', { cookie: bob })).status).toBe(403);
    // A grantee cannot pass access on: the database refuses (RLS WITH CHECK), and says so.
    const pass = await call(u(`/files/${file.id}/permissions`), 'POST', { cookie: bob, body: { grantee: 'carol' } });
    expect(pass.status).toBe(403);
    expect(pass.body.code).toBe('DATABASE_PERMISSION');
    expect(String(pass.body.message)).toMatch(/row-level security/);
    expect((await call(u(`/files/${file.id}`), 'GET', { cookie: alice })).body.content).toBe('secret plan');

    expect((await call(u(`/files/${file.id}`), 'GET', { cookie: carol })).status).toBe(404);
    const carolTree = (await call(u('/files/tree'), 'GET', { cookie: carol })).body as unknown as TreeResponse;
    expect(carolTree.files.some((f) => f.id === file.id)).toBe(false);
    expect(carolTree.directories.some((d) => d.id === dir.body.id)).toBe(false);

    const owned = await call(u(`/files/${file.id}`), 'PATCH', { cookie: alice, body: { content: 'revised plan' } });
    expect(owned.status).toBe(200);
    expect(owned.body.content).toBe('revised plan');

    expect((await call(u(`/files/${file.id}/permissions/bob`), 'DELETE', { cookie: alice })).status).toBe(204);
    expect((await call(u(`/files/${file.id}`), 'GET', { cookie: bob })).status).toBe(404);
  });

  it('folder sharing shares the contents: bob reads a file in the folder and in its sub-folder, carol nothing; revoke on the folder ends it all at once', async () => {
    const top = (await call(u('/directories'), 'POST', { cookie: alice, body: { name: `shared-${tag}` } })).body;
    const sub = (await call(u('/directories'), 'POST', { cookie: alice, body: { name: 'sub', parentId: top.id } })).body;
    const f1 = (await call(u('/files'), 'POST', { cookie: alice, body: { name: `in-top-${tag}.txt`, directoryId: top.id, content: 'top secret' } })).body;
    const f2 = (await call(u('/files'), 'POST', { cookie: alice, body: { name: `in-sub-${tag}.txt`, directoryId: sub.id, content: 'sub secret' } })).body;
    expect((await call(u(`/files/${f2.id}`), 'GET', { cookie: bob })).status).toBe(404);

    const grant = await call(u(`/directories/${top.id}/permissions`), 'POST', { cookie: alice, body: { grantee: 'bob' } });
    expect(grant.status).toBe(201);
    expect(grant.body).toMatchObject({ grantee: 'bob', level: 'read' });

    // bob finds the folder at his top level and walks into it
    const bobTop = (await call(u('/files'), 'GET', { cookie: bob })).body as unknown as ListingResponse;
    expect(bobTop.directories.find((d) => d.id === top.id)).toMatchObject({ owner: 'alice', access: 'read' });
    const inTop = (await call(u(`/files?directoryId=${top.id}`), 'GET', { cookie: bob })).body as unknown as ListingResponse;
    expect(inTop.directories.map((d) => d.name)).toEqual(['sub']);
    expect(inTop.files.map((f) => f.name)).toEqual([`in-top-${tag}.txt`]);
    const inSub = (await call(u(`/files?directoryId=${sub.id}`), 'GET', { cookie: bob })).body as unknown as ListingResponse;
    expect(inSub.files.map((f) => f.name)).toEqual([`in-sub-${tag}.txt`]);
    expect((await call(u(`/files/${f2.id}`), 'GET', { cookie: bob })).body).toMatchObject({ content: 'sub secret', access: 'read', canEdit: false });
    expect((await call(u(`/files/${f2.id}`), 'PATCH', { cookie: bob, body: { content: 'bob was here' } })).status).toBe(403);

    // carol sees none of it
    for (const path of [`/files/${f1.id}`, `/files/${f2.id}`, `/files?directoryId=${top.id}`, `/files?directoryId=${sub.id}`]) {
      expect((await call(u(path), 'GET', { cookie: carol })).status).toBe(404);
    }
    const carolTree = (await call(u('/files/tree'), 'GET', { cookie: carol })).body as unknown as TreeResponse;
    expect(carolTree.directories.some((d) => [top.id, sub.id].includes(d.id))).toBe(false);
    expect(carolTree.files.some((f) => [f1.id, f2.id].includes(f.id))).toBe(false);

    // the owner sees the inherited grant on the file in the sub-folder
    const perms = (await call(u(`/files/${f2.id}/permissions`), 'GET', { cookie: alice })).body as unknown as PermissionDto[];
    expect(perms.map((p) => ({ grantee: p.grantee, level: p.level, from: p.inheritedFrom?.name }))).toEqual([{ grantee: 'bob', level: 'read', from: `shared-${tag}` }]);

    // moving a file out of the shared folder ends bob's access to it
    expect((await call(u(`/files/${f1.id}`), 'PATCH', { cookie: alice, body: { directoryId: null } })).body).toMatchObject({ directoryId: null });
    expect((await call(u(`/files/${f1.id}`), 'GET', { cookie: bob })).status).toBe(404);

    expect((await call(u(`/directories/${top.id}/permissions/bob`), 'DELETE', { cookie: alice })).status).toBe(204);
    for (const path of [`/files/${f2.id}`, `/files?directoryId=${top.id}`, `/files?directoryId=${sub.id}`]) {
      expect((await call(u(path), 'GET', { cookie: bob })).status).toBe(404);
    }
  });

  it('sharing with a directory group: bob (a member) reads inside the folder, carol (not one) sees nothing; leaving the group ends it', async () => {
    // What forwardable-roles sync makes of a directory group: a NOLOGIN role in forwardable_managed.
    const eng = `eng_${tag}`;
    const plain = `plain_${tag}`;
    superuserSql(realm, `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'forwardable_managed') THEN CREATE ROLE forwardable_managed NOLOGIN; END IF; END $$;
      CREATE ROLE "${eng}" NOLOGIN IN ROLE forwardable_managed; GRANT "${eng}" TO bob; CREATE ROLE "${plain}" NOLOGIN; GRANT "${plain}" TO bob`);
    try {
      const top = (await call(u('/directories'), 'POST', { cookie: alice, body: { name: `group-share-${tag}` } })).body;
      const f = (await call(u('/files'), 'POST', { cookie: alice, body: { name: `team-plan-${tag}.txt`, directoryId: top.id, content: 'for the team' } })).body;
      // a NOLOGIN role the role tool does not manage is not a group one can share with
      const refused = await call(u(`/directories/${top.id}/permissions`), 'POST', { cookie: alice, body: { grantee: plain } });
      expect(refused.status).toBe(400);
      expect(String(refused.body.message)).toMatch(/nor a directory group managed by forwardable-roles/);

      const grant = await call(u(`/directories/${top.id}/permissions`), 'POST', { cookie: alice, body: { grantee: eng } });
      expect(grant.status).toBe(201);
      expect(grant.body).toMatchObject({ grantee: eng, level: 'read' });
      expect((await call(u(`/files/${f.id}`), 'GET', { cookie: bob })).body).toMatchObject({ content: 'for the team', access: 'read', canEdit: false });
      const inTop = (await call(u(`/files?directoryId=${top.id}`), 'GET', { cookie: bob })).body as unknown as ListingResponse;
      expect(inTop.files.map((x) => x.id)).toEqual([f.id]);
      expect((await call(u(`/files/${f.id}`), 'PATCH', { cookie: bob, body: { content: 'bob was here' } })).status).toBe(403);
      expect((await call(u(`/files/${f.id}`), 'GET', { cookie: carol })).status).toBe(404);
      expect((await call(u(`/files?directoryId=${top.id}`), 'GET', { cookie: carol })).status).toBe(404);

      // Removing bob from the group role ends his access at his next query (same session, same pool).
      superuserSql(realm, `REVOKE "${eng}" FROM bob`);
      expect((await call(u(`/files/${f.id}`), 'GET', { cookie: bob })).status).toBe(404);
      expect((await call(u(`/files?directoryId=${top.id}`), 'GET', { cookie: bob })).status).toBe(404);
      expect((await call(u(`/files/${f.id}`), 'GET', { cookie: alice })).body.content).toBe('for the team');
    } finally {
      superuserSql(realm, `DROP ROLE IF EXISTS "${eng}"; DROP ROLE IF EXISTS "${plain}"`);
    }
  });

  it('a write share: bob edits and renames inside the folder, but cannot delete, move, add, re-share or change grants', async () => {
    const top = (await call(u('/directories'), 'POST', { cookie: alice, body: { name: `team-${tag}` } })).body;
    const sub = (await call(u('/directories'), 'POST', { cookie: alice, body: { name: 'drafts', parentId: top.id } })).body;
    const f = (await call(u('/files'), 'POST', { cookie: alice, body: { name: `draft-${tag}.txt`, directoryId: sub.id, content: 'v1' } })).body;
    expect((await call(u(`/directories/${top.id}/permissions`), 'POST', { cookie: alice, body: { grantee: 'bob', level: 'read' } })).status).toBe(201);
    // the same grant again at another level changes the level
    const up = await call(u(`/directories/${top.id}/permissions`), 'POST', { cookie: alice, body: { grantee: 'bob', level: 'write' } });
    expect(up.body).toMatchObject({ grantee: 'bob', level: 'write' });
    expect(((await call(u(`/directories/${top.id}/permissions`), 'GET', { cookie: alice })).body as unknown as PermissionDto[]).map((p) => `${p.grantee}:${p.level}`)).toEqual(['bob:write']);
    expect((await call(u(`/directories/${top.id}/permissions`), 'POST', { cookie: alice, body: { grantee: 'bob', level: 'admin' } })).status).toBe(400);
    // a null level is "not given": read (was a 500, found by the fuzz suite)
    expect((await call(u(`/directories/${top.id}/permissions`), 'POST', { cookie: alice, body: { grantee: 'carol', level: null } })).body).toMatchObject({ level: 'read' });
    expect((await call(u(`/directories/${top.id}/permissions/carol`), 'DELETE', { cookie: alice })).status).toBe(204);
    // a null name is "not given", never NOT NULL violated (was a 500, found by the fuzz suite)
    expect((await call(u(`/files/${f.id}`), 'PATCH', { cookie: alice, body: { name: null } })).status).toBe(400);
    expect((await call(u(`/directories/${sub.id}`), 'PATCH', { cookie: alice, body: { name: null } })).status).toBe(400);

    expect((await call(u(`/files/${f.id}`), 'GET', { cookie: bob })).body).toMatchObject({ access: 'write', canEdit: true });
    const edited = await call(u(`/files/${f.id}`), 'PATCH', { cookie: bob, body: { content: 'v2 by bob', name: `draft-bob-${tag}.txt` } });
    expect(edited.status).toBe(200);
    expect(edited.body).toMatchObject({ content: 'v2 by bob', name: `draft-bob-${tag}.txt`, owner: 'alice' });
    const renamed = await call(u(`/directories/${sub.id}`), 'PATCH', { cookie: bob, body: { name: 'drafts-2' } });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: 'drafts-2', owner: 'alice', access: 'write' });

    expect((await call(u(`/files/${f.id}`), 'DELETE', { cookie: bob })).status).toBe(403);
    expect((await call(u(`/directories/${sub.id}`), 'DELETE', { cookie: bob })).status).toBe(403);
    const move = await call(u(`/files/${f.id}`), 'PATCH', { cookie: bob, body: { directoryId: null } });
    expect(move.status).toBe(403);
    expect((await call(u(`/directories/${sub.id}`), 'PATCH', { cookie: bob, body: { parentId: null } })).status).toBe(403);
    expect((await call(u('/files'), 'POST', { cookie: bob, body: { name: 'planted.txt', directoryId: top.id } })).status).toBe(403);
    const reshare = await call(u(`/files/${f.id}/permissions`), 'POST', { cookie: bob, body: { grantee: 'carol', level: 'write' } });
    expect(reshare.status).toBe(403);
    expect(reshare.body.code).toBe('DATABASE_PERMISSION');
    expect((await call(u(`/directories/${top.id}/permissions`), 'POST', { cookie: bob, body: { grantee: 'carol' } })).status).toBe(403);
    expect((await call(u(`/directories/${top.id}/permissions/bob`), 'DELETE', { cookie: bob })).status).toBe(404);
    expect((await call(u(`/files/${f.id}`), 'GET', { cookie: carol })).status).toBe(404);

    // the owner still moves, and the database refuses a folder inside itself
    const cycle = await call(u(`/directories/${top.id}`), 'PATCH', { cookie: alice, body: { parentId: sub.id } });
    expect(cycle.status).toBe(400);
    expect(String(cycle.body.message)).toMatch(/cannot be moved into itself or below itself/);
    expect((await call(u(`/directories/${sub.id}`), 'PATCH', { cookie: alice, body: { parentId: null, name: `drafts-top-${tag}` } })).body).toMatchObject({ parentId: null, name: `drafts-top-${tag}` });
    // out of the write-shared folder: bob's write access ends with the move
    expect((await call(u(`/files/${f.id}`), 'PATCH', { cookie: bob, body: { content: 'v3' } })).status).toBe(404);
  });

  it('refuses grants to superusers, group roles and unknown names with a clear 400', async () => {
    const f = (await call(u('/files'), 'POST', { cookie: alice, body: { name: `grantees-${tag}.txt` } })).body;
    const grant = (grantee: string) => call(u(`/files/${f.id}/permissions`), 'POST', { cookie: alice, body: { grantee } });
    const su = await grant(realm.pg.superuser);
    expect(su.status).toBe(400);
    expect(String(su.body.message)).toMatch(/superuser or bypasses row-level security/);
    const group = await grant('forwardable_users');
    expect(group.status).toBe(400);
    expect(String(group.body.message)).toMatch(/not a user of this application/);
    expect((await grant('no_such_role')).body.message).toMatch(/no user or group "no_such_role"/);
    expect(((await call(u(`/files/${f.id}/permissions`), 'GET', { cookie: alice })).body as unknown as PermissionDto[]).length).toBe(0);
  });

  it('run SQL as yourself: SELECT * FROM files returns only what RLS allows; writes, several statements and long queries are refused', async () => {
    const secret = (await call(u('/files'), 'POST', { cookie: alice, body: { name: `sql-secret-${tag}.txt`, content: 'alice only' } })).body;
    const sql = (cookie: string, text: string) => call(u('/sql'), 'POST', { cookie, body: { sql: text } });
    for (const [who, cookie] of [['alice', alice], ['bob', bob], ['carol', carol]] as const) {
      const r = await sql(cookie, 'SELECT * FROM files;');
      expect(r.status).toBe(200);
      const body = r.body as unknown as SqlResponse;
      expect(body.user).toBe(who);
      expect(body.columns).toEqual(expect.arrayContaining(['id', 'owner', 'content']));
      // exactly as many files as the tree shows this user (the same policies; a count is one row, never capped)
      const tree = (await call(u('/files/tree'), 'GET', { cookie })).body as unknown as TreeResponse;
      const [[count]] = ((await sql(cookie, 'SELECT count(*) FROM files')).body as unknown as SqlResponse).rows;
      expect(Number(count)).toBe(tree.files.length);
      if (!body.truncated) expect(body.rows.map((row) => row[body.columns.indexOf('id')]).sort()).toEqual(tree.files.map((f) => f.id).sort());
      // alice's secret exists for alice only
      const mine = ((await sql(cookie, `SELECT id, content FROM files WHERE name = 'sql-secret-${tag}.txt'`)).body as unknown as SqlResponse).rows;
      expect(mine).toEqual(who === 'alice' ? [[secret.id, 'alice only']] : []);
    }
    const inj = await sql(bob, "SELECT name FROM files WHERE name = '' OR 1=1");
    expect((inj.body as unknown as SqlResponse).rows.flat()).not.toContain(`sql-secret-${tag}.txt`);

    const refused = async (text: string, pattern: RegExp) => {
      const r = await sql(alice, text);
      expect(r.status).toBe(400);
      expect(r.body.code).toBe('INVALID_INPUT');
      expect(String(r.body.message)).toMatch(pattern);
    };
    await refused(`DELETE FROM files WHERE id = '${secret.id}'`, /syntax error/);
    await refused(`SELECT 1; DELETE FROM files WHERE id = '${secret.id}'`, /multiple commands/);
    await refused(`COMMIT; DELETE FROM files WHERE id = '${secret.id}'`, /syntax error|multiple commands/);
    await refused(`WITH d AS (DELETE FROM files WHERE id = '${secret.id}' RETURNING id) SELECT * FROM d`, /data-modifying|read-only/);
    await refused('SELECT * FROM no_such_table', /no_such_table/);
    const started = Date.now();
    await refused('SELECT pg_sleep(30)', /longer than 3 s/);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect((await call(u(`/files/${secret.id}`), 'GET', { cookie: alice })).body).toMatchObject({ content: 'alice only' });

    const many = (await sql(alice, 'SELECT g, repeat($$x$$, 5000) AS big FROM generate_series(1, 1000) g')).body as unknown as SqlResponse;
    expect(many.rows.length).toBe(many.limits.rows);
    expect(many.truncated).toBe(true);
    expect(many.rows[0][1]?.length).toBe(many.limits.cellChars + 1);
    // a session advisory lock taken by the query does not outlive it on the pooled connection
    await sql(alice, 'SELECT pg_advisory_lock(424242)');
    expect(((await sql(alice, 'SELECT count(*) FROM pg_locks WHERE locktype = $$advisory$$ AND objid = 424242')).body as unknown as SqlResponse).rows).toEqual([['0']]);
    // a setting changed by the query is rolled back with it: the next query sees the default again
    await sql(alice, "SELECT set_config('forwardable.rls_helper', 'on', false)");
    expect((await call(u(`/files/${secret.id}`), 'GET', { cookie: alice })).status).toBe(200);
    expect(((await sql(alice, "SELECT current_setting('statement_timeout')")).body as unknown as SqlResponse).rows).toEqual([['3s']]);
    expect((await call(u('/sql'), 'POST', { cookie: alice, body: { sql: '' } })).status).toBe(400);
    // NUL would make PostgreSQL drop the connection (a 503, found by the fuzz suite): refused first
    expect((await call(u('/sql'), 'POST', { cookie: alice, body: { sql: 'SELECT 1\u0000' } })).status).toBe(400);
  });

  it('never returns another user\'s files from search, even for an injection attempt', async () => {
    await call(u('/files'), 'POST', { cookie: alice, body: { name: `alice-only-${tag}.txt`, content: `needle-${tag}` } });
    await call(u('/files'), 'POST', { cookie: carol, body: { name: `carol-only-${tag}.txt`, content: `needle-${tag}` } });
    for (const [who, cookie] of [['alice', alice], ['bob', bob], ['carol', carol]] as const) {
      for (const q of [`needle-${tag}`, "' OR 1=1; --", '%', '_']) {
        const r = await call(u(`/search?q=${encodeURIComponent(q)}`), 'GET', { cookie });
        expect(r.status).toBe(200);
        const files = (r.body as unknown as SearchResponse).files;
        // Every hit is the user's own or shared with them: compare with what the tree shows.
        const tree = (await call(u('/files/tree'), 'GET', { cookie })).body as unknown as TreeResponse;
        const visible = new Set(tree.files.map((f) => f.id));
        expect(files.filter((f: FileSummaryDto) => !visible.has(f.id))).toEqual([]);
        if (q === `needle-${tag}`) expect(files.map((f) => f.owner)).toEqual(who === 'bob' ? [] : [who]);
      }
    }
    // The injection text is searched for literally: nobody's content contains it.
    const inj = await call(u(`/search?q=${encodeURIComponent("' OR 1=1; --")}`), 'GET', { cookie: alice });
    expect((inj.body as unknown as SearchResponse).files).toEqual([]);
  });

  it('pages large folders', async () => {
    const dir = await call(u('/directories'), 'POST', { cookie: alice, body: { name: `big-${tag}` } });
    for (let i = 0; i < 7; i++) {
      expect((await call(u('/files'), 'POST', { cookie: alice, body: { name: `f${i}.txt`, directoryId: dir.body.id } })).status).toBe(201);
    }
    const page3 = (await call(u(`/files?directoryId=${dir.body.id}&page=3&pageSize=3`), 'GET', { cookie: alice })).body as unknown as ListingResponse;
    expect(page3).toMatchObject({ page: 3, pageSize: 3, totalFiles: 7 });
    expect(page3.files.map((f) => f.name)).toEqual(['f6.txt']);
    expect((await call(u(`/files?directoryId=${dir.body.id}`), 'GET', { cookie: bob })).status).toBe(404);
  });

  it('answers bad input with 400, conflicts with 409, unknown grantees with 400', async () => {
    expect((await call(u('/files'), 'POST', { cookie: alice, body: { name: 'a/b' } })).status).toBe(400);
    expect((await call(u('/files'), 'POST', { cookie: alice, body: { name: 7 } })).status).toBe(400);
    expect((await call(u('/files'), 'POST', { cookie: alice, body: { name: 'x', owner: 'bob' } })).status).toBe(400);
    expect((await call(u('/files/not-a-uuid'), 'GET', { cookie: alice })).status).toBe(400);
    const first = await call(u('/files'), 'POST', { cookie: alice, body: { name: `dup-${tag}.txt` } });
    expect(first.status).toBe(201);
    const dup = await call(u('/files'), 'POST', { cookie: alice, body: { name: `dup-${tag}.txt` } });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('CONFLICT');
    const nobody = await call(u(`/files/${first.body.id}/permissions`), 'POST', { cookie: alice, body: { grantee: 'nobody' } });
    expect(nobody.status).toBe(400);
    expect(String(nobody.body.message)).toMatch(/no user or group "nobody"/);
    // Someone else's folder is not a place to create files.
    const bobDir = await call(u('/directories'), 'POST', { cookie: bob, body: { name: `bobs-${tag}` } });
    expect((await call(u('/files'), 'POST', { cookie: alice, body: { name: 'intruder.txt', directoryId: bobDir.body.id } })).status).toBe(404);
  });

  it('answers malformed and oversized bodies with a JSON 4xx', async () => {
    const headers = { 'content-type': 'application/json', 'x-requested-with': 'forwardable', cookie: `fw_session=${alice}` };
    const broken = await fetch(u('/files'), { method: 'POST', headers, body: '{"name": ' });
    expect(broken.status).toBe(400);
    expect((await broken.json()).code).toBe('INVALID_INPUT');
    const huge = await fetch(u('/files'), { method: 'POST', headers, body: JSON.stringify({ name: 'big.txt', content: 'x'.repeat(3 * 1024 * 1024) }) });
    expect(huge.status).toBe(413);
    expect((await huge.json()).code).toBe('INVALID_INPUT');
  });

  it('tells a user without a database role so, with 403 instead of a crash', async () => {
    runWithRealm(realm, 'bash', [`${repoRoot}/tools/realm/realm.sh`, 'add-users', '--dir', realm.dir, '--password', 'gina-pw', '--no-role', 'gina']);
    const gina = await passwordSession(api, 'gina', 'gina-pw');
    const r = await call(u('/files/tree'), 'GET', { cookie: gina });
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('NO_DATABASE_ROLE');
  });

  it('serves the setup wizard to admins only, on their own connection', async () => {
    const notAdmin = await call(u('/rls/models'), 'GET', { cookie: alice });
    expect(notAdmin.status).toBe(403);
    expect(notAdmin.body.code).toBe('NOT_ADMIN');
    const admin = await passwordSession(api, 'dbadmin', realm.passwords.dbadmin);
    const target = await call(u('/rls/target'), 'GET', { cookie: admin });
    expect(target.body).toEqual({ database: 'forwardable', schema: 'public', user: 'dbadmin' });
    const models = await call(u('/rls/models'), 'GET', { cookie: admin });
    const files = (models.body.tables as { table: string; permissionCandidates: { table: string }[]; rls: { forced: boolean } }[]).find((t) => t.table === 'files');
    expect(files?.permissionCandidates.map((p) => p.table)).toEqual(['file_permissions']);
    expect(files?.rls.forced).toBe(true);
    // The file browser's own mapping (re-applying it is idempotent): the realm's database is shared
    // with the other suites, which rely on its inherited folder grants and levels.
    const mapping = { tables: fileBrowserMapping.tables };
    const preview = await call(u('/rls/preview'), 'POST', { cookie: admin, body: mapping });
    expect(preview.status).toBe(200);
    expect(String(preview.body.sql)).toMatch(/FORCE ROW LEVEL SECURITY/);
    const apply = await call(u('/rls/apply'), 'POST', { cookie: admin, body: mapping });
    expect(apply.status).toBe(200);
    expect(apply.body.applied).toBe(true);
    const bad = await call(u('/rls/preview'), 'POST', { cookie: admin, body: { tables: [{ table: 'files"; DROP TABLE files; --', ownerColumn: 'owner' }] } });
    expect(bad.status).toBe(400);
    // A non-owner admin would get PostgreSQL's own error; alice is refused before that by the guard.
    expect((await call(u('/rls/apply'), 'POST', { cookie: alice, body: mapping })).status).toBe(403);
  });
  it("lists the top level from what the user can see, not by reading every user's rows (#19); the answer is the plain query's", async () => {
    // 5,000 other users with a folder and 4 top-level files each, some shared among them: what a
    // company's other users own. bob's top level must not read them.
    const other = `zz${tag}-`;
    superuserSql(
      realm,
      `INSERT INTO directories (name, owner) SELECT 'folder', '${other}' || i FROM generate_series(1, 5000) i;
       INSERT INTO files (name, owner, content) SELECT format('doc-%s.txt', j), '${other}' || i, 'lorem ipsum' FROM generate_series(1, 5000) i, generate_series(1, 4) j;
       INSERT INTO file_permissions (file_id, grantee) SELECT id, '${other}' || (substr(owner, ${other.length + 1})::int % 5000 + 1) FROM files WHERE owner LIKE '${other}%' AND name = 'doc-1.txt';
       INSERT INTO directory_permissions (directory_id, grantee) SELECT id, '${other}' || (substr(owner, ${other.length + 1})::int % 5000 + 1) FROM directories WHERE owner LIKE '${other}%';
       ANALYZE directories; ANALYZE files; ANALYZE file_permissions; ANALYZE directory_permissions`,
      realm.pg.database,
    );
    const group = `grp_${tag}`;
    superuserSql(realm, `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'forwardable_managed') THEN CREATE ROLE forwardable_managed NOLOGIN; END IF; END $$;
      CREATE ROLE "${group}" NOLOGIN IN ROLE forwardable_managed; GRANT "${group}" TO bob`);
    const tgt = kinit(realm, 'bob');
    const cred = await Credential.fromCache(tgt.name, 'password');
    const pg = new Client(gssapiClientConfig(cred, { host: 'localhost', hostaddr: '127.0.0.1', port: realm.pg.port, database: realm.pg.database }));
    pg.on('error', () => undefined); // a dropped connection fails the next query instead
    try {
      await pg.connect();
      // What bob has, and what is shared with him, in every shape the top level handles.
      const post = async (cookie: string, path: string, body: Record<string, unknown>) => {
        const r = await call(u(path), 'POST', { cookie, body });
        expect({ path, status: r.status }).toEqual({ path, status: 201 });
        return r.body as { id: string };
      };
      const own = await post(bob, '/files', { name: `scale-own-${tag}.txt` });
      const ownDir = await post(bob, '/directories', { name: `scale-own-dir-${tag}` });
      const inOwnDir = await post(bob, '/files', { name: `scale-in-own-dir-${tag}.txt`, directoryId: ownDir.id });
      const hidden = await post(alice, '/directories', { name: `scale-hidden-${tag}` });
      const sharedInHidden = await post(alice, '/files', { name: `scale-shared-in-hidden-${tag}.txt`, directoryId: hidden.id });
      await post(alice, `/files/${sharedInHidden.id}/permissions`, { grantee: 'bob' });
      const sharedSub = await post(alice, '/directories', { name: `scale-shared-sub-${tag}`, parentId: hidden.id });
      await post(alice, `/directories/${sharedSub.id}/permissions`, { grantee: 'bob' });
      const inSharedSub = await post(alice, '/files', { name: `scale-in-shared-sub-${tag}.txt`, directoryId: sharedSub.id });
      const sharedTop = await post(alice, '/directories', { name: `scale-shared-top-${tag}` });
      await post(alice, `/directories/${sharedTop.id}/permissions`, { grantee: 'bob', level: 'write' });
      const inSharedTop = await post(alice, '/files', { name: `scale-in-shared-top-${tag}.txt`, directoryId: sharedTop.id });
      const toGroup = await post(alice, '/files', { name: `scale-to-group-${tag}.txt` });
      await post(alice, `/files/${toGroup.id}/permissions`, { grantee: group });
      const revoked = await post(alice, '/files', { name: `scale-revoked-${tag}.txt` });
      await post(alice, `/files/${revoked.id}/permissions`, { grantee: 'bob' });
      expect((await call(u(`/files/${revoked.id}/permissions/bob`), 'DELETE', { cookie: alice })).status).toBe(204);

      // The plain queries (before #19): only RLS filters, every row of the table is read.
      const plainFiles = (await pg.query(`SELECT id FROM files WHERE directory_id IS NULL OR directory_id NOT IN (SELECT id FROM directories) ORDER BY name, id`)).rows.map((r) => r.id as string);
      const plainDirs = (await pg.query(`SELECT id FROM directories WHERE parent_id IS NULL OR parent_id NOT IN (SELECT id FROM directories) ORDER BY name, id`)).rows.map((r) => r.id as string);
      // ... which see what they should, so that the comparison below compares something
      expect(plainFiles).toEqual(expect.arrayContaining([own.id, sharedInHidden.id, toGroup.id]));
      for (const id of [inOwnDir.id, inSharedSub.id, inSharedTop.id, revoked.id]) expect(plainFiles).not.toContain(id);
      expect(plainDirs).toEqual(expect.arrayContaining([ownDir.id, sharedSub.id, sharedTop.id]));
      expect(plainDirs).not.toContain(hidden.id);

      // The API's answer, every page of it, is the plain queries' answer.
      const pageSize = 3;
      const first = (await call(u(`/files?pageSize=${pageSize}`), 'GET', { cookie: bob })).body as unknown as ListingResponse;
      expect(first.totalFiles).toBe(plainFiles.length);
      expect(first.directories.map((d) => d.id)).toEqual(plainDirs);
      const pages = [first];
      for (let page = 2; (page - 1) * pageSize < plainFiles.length; page++) {
        pages.push((await call(u(`/files?page=${page}&pageSize=${pageSize}`), 'GET', { cookie: bob })).body as unknown as ListingResponse);
      }
      expect(pages.flatMap((p) => p.files.map((f) => f.id))).toEqual(plainFiles);
      expect(pages.every((p) => p.totalFiles === plainFiles.length)).toBe(true);
      expect(first.directories.find((d) => d.id === sharedTop.id)?.access).toBe('write');

      // What the product's statements read, counted by PostgreSQL for this transaction only (the
      // counters are read before and after inside it, so earlier statements do not count).
      const held = superuserSql(realm, `SELECT (SELECT count(*) FROM files) || ' ' || (SELECT count(*) FROM directories)`, realm.pg.database)[0].split(' ').map(Number);
      expect(held[0]).toBeGreaterThan(20_000);
      expect(held[1]).toBeGreaterThan(5_000);
      const reads = async (run: () => Promise<unknown>) => {
        const stats = `SELECT relname, seq_tup_read + coalesce(idx_tup_fetch, 0) AS n FROM pg_stat_xact_user_tables WHERE schemaname = 'public' AND relname IN ('files', 'directories') ORDER BY relname`;
        await pg.query('BEGIN');
        try {
          const before = (await pg.query(stats)).rows;
          await run();
          const after = (await pg.query(stats)).rows;
          return Object.fromEntries(after.map((r, i) => [r.relname as string, Number(r.n) - Number(before[i].n)]));
        } finally {
          await pg.query('COMMIT');
        }
      };
      const sql = listingStatements(undefined, 1, 50);
      const product = await reads(async () => {
        for (const q of [sql.directories, sql.files, sql.count]) await pg.query(q, sql.params);
      });
      const plain = await reads(() => pg.query(`SELECT count(*) FROM files WHERE directory_id IS NULL OR directory_id NOT IN (SELECT id FROM directories)`));
      // The plain query reads every row (that is the bug, and it shows the counters count); the
      // product's statements read an order of magnitude less than the tables hold.
      expect(plain.files).toBeGreaterThanOrEqual(held[0]);
      expect(product.files).toBeGreaterThan(0);
      expect(product.files).toBeLessThan(held[0] / 10);
      expect(product.directories).toBeLessThan(held[1] / 10);
    } finally {
      await pg.end().catch(() => undefined);
      cred.dispose();
      tgt.destroy();
      superuserSql(realm, `DELETE FROM files WHERE owner LIKE '${other}%'; DELETE FROM directories WHERE owner LIKE '${other}%'`, realm.pg.database);
      superuserSql(realm, `REVOKE "${group}" FROM bob`);
      superuserSql(realm, `DELETE FROM file_permissions WHERE grantee = '${group}'`, realm.pg.database);
      superuserSql(realm, `DROP ROLE IF EXISTS "${group}"`);
    }
  });
});

describe('files API with constrained delegation (ldap realm, proxy credentials)', () => {
  it('creates and lists files as the user through S4U2proxy', async () => {
    const realm = ensureRealm('ldap');
    useRealm(realm);
    await migrateAsDbadmin(realm);
    const api = await startApi(configFor(realm));
    const cc = kinit(realm, 'alice');
    try {
      const me = await curl(realm, `${api.url}/api/auth/me`, { cc });
      expect(me.body.delegation).toBe('proxy');
      const cookie = sessionCookie(me).value;
      const name = `proxy-${randomUUID().slice(0, 8)}.txt`;
      const created = await call(`${api.url}/api/files`, 'POST', { cookie, body: { name, content: 'via S4U2proxy' } });
      expect(created.status).toBe(201);
      expect(created.body.owner).toBe('alice');
      const tree = (await call(`${api.url}/api/files/tree`, 'GET', { cookie })).body as unknown as TreeResponse;
      expect(tree.files.map((f) => f.name)).toContain(name);
    } finally {
      cc.destroy();
      await api.close();
    }
  });
});
