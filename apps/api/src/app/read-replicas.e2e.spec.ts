/**
 * The file browser with a hot standby for reads (FORWARDABLE_PG_READ_HOSTS, issue #19), over
 * real HTTP on the realm with a streaming standby: a file created is listed at once (read-after-
 * write), listings and the SQL console are served by the standby, and RLS there hides what it
 * hides on the primary, a raw query included.
 */
import { randomUUID } from 'node:crypto';
import { ensureStandbyRealm, RealmEnv, standbyView, superuserSql } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import { UserDataSources } from '@forwardable/nest';
import type { FileDto, ListingResponse, SearchResponse, SqlResponse } from '@forwardable/shared/contracts';
import { Api, call, configFor, migrateAsDbadmin, passwordSession, startApi } from '../testing/api-harness';

async function eventually(check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('files API with a hot standby for reads (db2 realm --pg-standby)', () => {
  let realm: RealmEnv;
  let api: Api;
  let alice: string;
  let bob: string;
  const tag = randomUUID().slice(0, 8);
  const u = (p: string) => `${api.url}/api${p}`;
  const reads = () => api.app.get(UserDataSources).stats().reads;

  beforeAll(async () => {
    realm = ensureStandbyRealm();
    useRealm(realm);
    await migrateAsDbadmin(realm);
    // Standby only (the primary not in the read set): every read of these users is the standby's when it is usable.
    api = await startApi(configFor(realm, { FORWARDABLE_PG_READ_HOSTS: `localhost:${realm.pgStandbyPort}`, FORWARDABLE_PG_READ_PRIMARY: 'false', FORWARDABLE_METRICS: 'true' }));
    [alice, bob] = await Promise.all([passwordSession(api, 'alice', realm.passwords.alice), passwordSession(api, 'bob', realm.passwords.bob)]);
  }, 120_000);
  afterAll(() => api?.close());

  it('a file created is in the listing, the file view and search at once (read-after-write), 10 times in a row', async () => {
    const dir = await call(u('/directories'), 'POST', { cookie: alice, body: { name: `raw-${tag}` } });
    expect(dir.status).toBe(201);
    for (let i = 0; i < 10; i++) {
      const name = `raw-${tag}-${i}.txt`;
      const created = await call(u('/files'), 'POST', { cookie: alice, body: { name, directoryId: dir.body.id, content: `v${i}` } });
      expect(created.status).toBe(201);
      const id = (created.body as unknown as FileDto).id;
      const listed = (await call(u(`/files?directoryId=${dir.body.id}`), 'GET', { cookie: alice })).body as unknown as ListingResponse;
      expect(listed.files.map((f) => f.id)).toContain(id);
      expect(listed.totalFiles).toBe(i + 1);
      expect((await call(u(`/files/${id}`), 'GET', { cookie: alice })).body).toMatchObject({ id, content: `v${i}` });
      const found = (await call(u(`/search?q=${encodeURIComponent(name)}`), 'GET', { cookie: alice })).body as unknown as SearchResponse;
      expect(found.files.map((f) => f.id)).toEqual([id]);
    }
    // Those reads waited for nothing: the ones the standby had not caught up with went to the primary.
    expect(reads().afterWrite + reads().standby).toBeGreaterThanOrEqual(30);
  }, 120_000);

  it('bob\'s SQL console runs on the standby as bob, and RLS there hides alice\'s unshared file, whatever the query says', async () => {
    const secret = `alice-only-${tag}`;
    const created = await call(u('/files'), 'POST', { cookie: alice, body: { name: `${secret}.txt`, content: secret } });
    expect(created.status).toBe(201);
    // The standby has the row (as its superuser sees it): hiding it is RLS's work there.
    await eventually(() => superuserSql(standbyView(realm), `SELECT count(*) FROM files WHERE content = '${secret}'`, realm.pg.database)[0] === '1');
    const sql = async (q: string) => (await call(u('/sql'), 'POST', { cookie: bob, body: { sql: q } })).body as unknown as SqlResponse;
    const where = await sql('SELECT pg_is_in_recovery()::text AS standby, inet_server_port()::text AS port, session_user::text AS u');
    expect(where.rows).toEqual([['true', String(realm.pgStandbyPort), 'bob']]);
    const raw = await sql(`SELECT name, content FROM files WHERE owner = 'alice' OR true`);
    expect(JSON.stringify(raw.rows)).not.toContain(secret);
    const found = (await call(u(`/search?q=${secret}`), 'GET', { cookie: bob })).body as unknown as SearchResponse;
    expect(found.files).toEqual([]);
    expect((await call(u(`/files/${(created.body as unknown as FileDto).id}`), 'GET', { cookie: bob })).status).toBe(404);
    expect(reads().standby).toBeGreaterThan(0);
    expect(api.app.get(UserDataSources).stats().standbys).toEqual([expect.objectContaining({ host: `localhost:${realm.pgStandbyPort}`, down: null })]);
    // The same, as an operator's scraper sees it.
    const metrics = await (await fetch(`${api.url}/api/metrics`)).text();
    const served = /^forwardable_db_reads_total\{served="standby"\} (\d+)$/m.exec(metrics);
    expect(Number(served?.[1])).toBeGreaterThan(0);
    expect(metrics).toContain(`forwardable_db_standby_down{host="localhost:${realm.pgStandbyPort}"} 0`);
  }, 120_000);
});
