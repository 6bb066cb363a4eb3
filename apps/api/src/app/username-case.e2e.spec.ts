/**
 * FORWARDABLE_USERNAME_CASE on a real realm (issue #20): a mixed-case principal, `Dana_<tag>@REALM`
 * (as Active Directory hands out `Alice@REALM`), with the role `dana_<tag>` that `realm add-users`
 * makes for it. With `lower` she signs in (Negotiate and the password form) as `dana_<tag>`, her
 * queries run as that role under RLS, and a share typed `Dana_<tag>` or `dana_<tag>` reaches her;
 * PostgreSQL lets her ticket in as the lower-case role only with `krb_caseins_users = on`. With
 * `exact` (the default) her role would be `Dana_<tag>`, which does not exist: a 403 that names it.
 * Its own realm (ensureCaseRealm), so that turning krb_caseins_users off for one test touches no
 * other suite.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { UserDataSources } from '@forwardable/nest';
import { ensureCaseRealm, kinit, RealmEnv, repoRoot, runWithRealm, superuserSql, TicketCache } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import { CSRF_HEADER, CSRF_VALUE, type FileDto, type ListingResponse, type SqlResponse } from '@forwardable/shared/contracts';
import { Api, call, configFor, curl, migrateAsDbadmin, passwordSession, sessionCookie, startApi } from '../testing/api-harness';

describe('FORWARDABLE_USERNAME_CASE with a mixed-case principal (db2 realm, krb_caseins_users = on)', () => {
  let realm: RealmEnv;
  const tag = randomUUID().slice(0, 6);
  const dana = `Dana_${tag}`;
  const role = dana.toLowerCase();
  const password = randomBytes(12).toString('base64url');
  const tickets: TicketCache[] = [];

  beforeAll(async () => {
    realm = ensureCaseRealm();
    useRealm(realm);
    await migrateAsDbadmin(realm);
    // The realm tool's own way to add her: principal Dana_<tag>, role dana_<tag> in forwardable_users.
    const added = runWithRealm(realm, 'bash', [join(repoRoot, 'tools/realm/realm.sh'), 'add-users', '--quiet', '--dir', realm.dir, '--password', password, dana]);
    if (added.status !== 0) throw new Error(`realm add-users ${dana}: ${added.stderr}`);
    expect(superuserSql(realm, 'SHOW krb_caseins_users')).toEqual(['on']);
  });
  afterAll(() => tickets.forEach((t) => t.destroy()));

  const ticketOf = (user: string, pw: string): TicketCache => {
    const t = kinit(realm, user, [], pw);
    tickets.push(t);
    return t;
  };

  describe('lower', () => {
    let api: Api;
    const u = (p: string) => `${api.url}/api${p}`;
    beforeAll(async () => {
      // A mixed-case admin group name, as a directory may spell it: group names follow the rule too.
      api = await startApi(configFor(realm, { FORWARDABLE_USERNAME_CASE: 'lower', FORWARDABLE_ADMIN_GROUP: 'Forwardable-Admins' }));
    });
    afterAll(() => api?.close());

    it('Negotiate: her session and /api/auth/me say the lower-cased name; she reads and writes as that role under RLS', async () => {
      const r = await curl(realm, u('/auth/me'), { cc: ticketOf(dana, password), delegate: true });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ user: role, principal: `${dana}@${realm.realm}` });
      const cookie = sessionCookie(r).value;

      const sql = await call(u('/sql'), 'POST', { cookie, body: { sql: 'SELECT session_user::text, current_user::text' } });
      expect(sql.status).toBe(200);
      expect(sql.body as unknown as SqlResponse).toMatchObject({ user: role, rows: [[role, role]] });

      const made = await call(u('/files'), 'POST', { cookie, body: { name: `dana-notes-${tag}.txt`, content: 'her own' } });
      expect(made.status).toBe(201);
      expect(made.body).toMatchObject({ owner: role, canEdit: true });
      const mine = (await call(u('/files'), 'GET', { cookie })).body as unknown as ListingResponse;
      expect(mine.files.map((f) => f.name)).toContain(`dana-notes-${tag}.txt`);
      // RLS still binds her: dbadmin's database holds alice's files too, none of which she sees.
      expect(mine.files.every((f) => f.owner === role)).toBe(true);
    });

    it('password form: "Dana_<tag>" signs in (the lower-case principal does not exist, so the name as typed is tried) as the same role', async () => {
      const cookie = await passwordSession(api, dana, password);
      const me = await call(u('/auth/me'), 'GET', { cookie });
      expect(me.body).toMatchObject({ user: role, principal: `${dana}@${realm.realm}`, delegation: 'password' });
      const sql = await call(u('/sql'), 'POST', { cookie, body: { sql: 'SELECT session_user::text' } });
      expect((sql.body as unknown as SqlResponse).rows).toEqual([[role]]);
      // A wrong password is one refusal, whatever the case of the name.
      const wrong = await fetch(u('/auth/login'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', [CSRF_HEADER]: CSRF_VALUE },
        body: JSON.stringify({ username: dana, password: 'not-her-password' }),
      });
      expect(wrong.status).toBe(401);
    });

    it('a share typed "Dana_<tag>" or "dana_<tag>" is a grant to her role and reaches her; revoking by either name ends it', async () => {
      const alice = await passwordSession(api, 'alice', realm.passwords.alice);
      const danaCookie = await passwordSession(api, dana, password);
      const folder = (await call(u('/directories'), 'POST', { cookie: alice, body: { name: `for-dana-${tag}` } })).body;
      const f = (await call(u('/files'), 'POST', { cookie: alice, body: { name: `brief-${tag}.txt`, directoryId: folder.id, content: 'for dana' } })).body as unknown as FileDto;
      const g = (await call(u('/files'), 'POST', { cookie: alice, body: { name: `memo-${tag}.txt`, content: 'also for dana' } })).body as unknown as FileDto;
      expect((await call(u(`/files/${f.id}`), 'GET', { cookie: danaCookie })).status).toBe(404);

      const byMixed = await call(u(`/directories/${folder.id}/permissions`), 'POST', { cookie: alice, body: { grantee: dana } });
      expect(byMixed.status).toBe(201);
      expect(byMixed.body).toMatchObject({ grantee: role });
      const byLower = await call(u(`/files/${g.id}/permissions`), 'POST', { cookie: alice, body: { grantee: role } });
      expect(byLower.status).toBe(201);
      expect(byLower.body).toMatchObject({ grantee: role });
      expect((await call(u(`/files/${f.id}`), 'GET', { cookie: danaCookie })).body).toMatchObject({ content: 'for dana', access: 'read' });
      expect((await call(u(`/files/${g.id}`), 'GET', { cookie: danaCookie })).body).toMatchObject({ content: 'also for dana' });

      expect((await call(u(`/directories/${folder.id}/permissions/${encodeURIComponent(dana.toUpperCase())}`), 'DELETE', { cookie: alice })).status).toBe(204);
      expect((await call(u(`/files/${g.id}/permissions/${encodeURIComponent(dana)}`), 'DELETE', { cookie: alice })).status).toBe(204);
      expect((await call(u(`/files/${f.id}`), 'GET', { cookie: danaCookie })).status).toBe(404);
      expect((await call(u(`/files/${g.id}`), 'GET', { cookie: danaCookie })).status).toBe(404);
    });

    it('group names on the session are role names in the same case: the admin group Forwardable-Admins is forwardable-admins', async () => {
      const cookie = await passwordSession(api, 'dbadmin', realm.passwords.dbadmin);
      expect((await call(u('/auth/me'), 'GET', { cookie })).body).toMatchObject({ user: 'dbadmin', groups: ['forwardable-admins'], isAdmin: true });
    });

    it('without krb_caseins_users PostgreSQL refuses her ticket for the lower-case role: a 503 that says what to set, not a 500', async () => {
      const cookie = await passwordSession(api, dana, password);
      const setCaseins = async (value: 'on' | 'off') => {
        superuserSql(realm, value === 'off' ? 'ALTER SYSTEM SET krb_caseins_users = off' : 'ALTER SYSTEM RESET krb_caseins_users');
        superuserSql(realm, 'SELECT pg_reload_conf()');
        // The postmaster applies the reload by itself; new backends (this check's too) then see it.
        for (let i = 0; i < 50 && superuserSql(realm, 'SHOW krb_caseins_users')[0] !== value; i++) await new Promise((r) => setTimeout(r, 100));
        expect(superuserSql(realm, 'SHOW krb_caseins_users')).toEqual([value]);
      };
      await setCaseins('off');
      try {
        // Her pool from the earlier tests would still serve her: open a new one.
        await api.app.get(UserDataSources).release(role);
        const r = await call(u('/files'), 'GET', { cookie });
        expect(r.status).toBe(503);
        expect(String(r.body.hint)).toMatch(/krb_caseins_users = on/);
      } finally {
        await setCaseins('on');
      }
      expect((await call(u('/files'), 'GET', { cookie })).status).toBe(200);
    });
  });

  describe('exact (the default)', () => {
    let api: Api;
    const u = (p: string) => `${api.url}/api${p}`;
    beforeAll(async () => {
      api = await startApi(configFor(realm));
    });
    afterAll(() => api?.close());

    it('her role is the name as written: she signs in, and her first query is a 403 naming the missing role "Dana_<tag>"', async () => {
      const r = await curl(realm, u('/auth/me'), { cc: ticketOf(dana, password), delegate: true });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ user: dana });
      const cookie = sessionCookie(r).value;
      const files = await call(u('/files'), 'GET', { cookie });
      expect(files.status).toBe(403);
      expect(files.body).toMatchObject({ code: 'NO_DATABASE_ROLE' });
      expect(String(files.body.hint)).toContain(`PostgreSQL has no role "${dana}"`);
    });

    it('a share typed "Dana_<tag>" names no role: a 400 saying so, and the lower-case name still works', async () => {
      const alice = await passwordSession(api, 'alice', realm.passwords.alice);
      const f = (await call(u('/files'), 'POST', { cookie: alice, body: { name: `exact-${tag}.txt`, content: 'x' } })).body as unknown as FileDto;
      const mixed = await call(u(`/files/${f.id}/permissions`), 'POST', { cookie: alice, body: { grantee: dana } });
      expect(mixed.status).toBe(400);
      expect(String(mixed.body.message)).toContain(`there is no user or group "${dana}"`);
      const lower = await call(u(`/files/${f.id}/permissions`), 'POST', { cookie: alice, body: { grantee: role } });
      expect(lower.body).toMatchObject({ grantee: role });
    });
  });

  it('an unknown FORWARDABLE_USERNAME_CASE stops the API at start, naming the allowed values', () => {
    expect(() => configFor(realm, { FORWARDABLE_USERNAME_CASE: 'upper' })).toThrow(/FORWARDABLE_USERNAME_CASE=upper must be one of exact, lower/);
  });
});
