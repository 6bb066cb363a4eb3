/**
 * The interoperability matrix (docs/interop.md): KDC {MIT DB2, MIT LDAP, Samba AD} x client
 * {Chromium, Firefox ESR, curl} x delegation {forwarded TGT, S4U2proxy}. In every cell alice's
 * real client signs in to the real API with Negotiate, the API reaches PostgreSQL as alice with
 * the delegated credential, and row-level security shows her rows and never bob's. The one cell
 * family that cannot work (S4U2proxy on the DB2 KDB) must fail with the clear error instead.
 *
 * Bounded in time: one realm per KDC (shared with the other suites), one API per KDC and mode,
 * one short-lived browser per cell.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { ensureRealm, kinit, RealmEnv, RealmKdb, TicketCache } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import { openNegotiatingBrowser, FetchedJson } from '@forwardable/testing/browsers';
import type { SearchResponse, MeResponse } from '@forwardable/shared/contracts';
import { Api, call, configFor, curl, migrateAsDbadmin, passwordSession, sessionCookie, startApi } from '../testing/api-harness';

type Client = 'chromium' | 'firefox' | 'curl';
type Mode = 'forwarded' | 'proxy';

const KDCS: RealmKdb[] = ['db2', 'ldap', 'samba-ad'];
const MODES: Mode[] = ['forwarded', 'proxy'];
const CLIENTS: Client[] = ['chromium', 'firefox', 'curl'];

/** A page of the API's origin for the browsers to fetch from (the SPA's place). */
const webDir = mkdtempSync(join(tmpdir(), 'fw-interop-web-'));
writeFileSync(join(webDir, 'index.html'), '<!doctype html><title>Forwardable interop</title><p>interop</p>');
afterAll(() => rmSync(webDir, { recursive: true, force: true }));

/** What a client saw: `/api/auth/me`, then a query of the files (`filesPath`) with the session it got. */
interface CellResult {
  me: FetchedJson;
  files: FetchedJson;
}

async function viaCurl(realm: RealmEnv, api: Api, cc: TicketCache, mode: Mode, filesPath: string): Promise<CellResult> {
  const me = await curl(realm, `${api.url}/api/auth/me`, { cc, delegate: mode === 'forwarded' });
  if (me.status !== 200) return { me, files: { status: 0, body: null } };
  const files = await call(`${api.url}${filesPath}`, 'GET', { cookie: sessionCookie(me).value });
  return { me, files };
}

async function viaBrowser(name: 'chromium' | 'firefox', realm: RealmEnv, api: Api, cc: TicketCache, mode: Mode, filesPath: string): Promise<CellResult> {
  const browser = await openNegotiatingBrowser(name, realm, cc, mode === 'forwarded');
  try {
    const [me, files] = await browser.fetchFromPage(`${api.url}/`, ['/api/auth/me', filesPath]);
    return { me, files };
  } finally {
    await browser.close();
  }
}

describe.each(KDCS)('interoperability matrix: %s KDC', (kdc) => {
  let realm: RealmEnv;
  const tag = randomUUID().slice(0, 8);
  const aliceFile = `interop-alice-${tag}.txt`;
  const bobFile = `interop-bob-${tag}.txt`;
  let seeded = false;

  beforeAll(async () => {
    realm = ensureRealm(kdc);
    useRealm(realm);
    await migrateAsDbadmin(realm);
  });

  describe.each(MODES)('%s delegation', (mode) => {
    let api: Api;
    const applies = !(kdc === 'db2' && mode === 'proxy');

    beforeAll(async () => {
      useRealm(realm);
      api = await startApi(configFor(realm, { FORWARDABLE_DELEGATION: mode === 'proxy' ? 'constrained' : 'unconstrained', FORWARDABLE_WEB_DIR: webDir }));
      if (!seeded) {
        // One file each, made over password sessions: the cells then show whose rows they see.
        for (const [user, name] of [['alice', aliceFile], ['bob', bobFile]] as const) {
          const cookie = await passwordSession(api, user, realm.passwords[user]);
          const made = await call(`${api.url}/api/files`, 'POST', { cookie, body: { name, content: `${user}'s ${tag}` } });
          expect(made.status).toBe(201);
        }
        seeded = true;
      }
    });
    afterAll(() => api?.close());

    const title = applies
      ? "alice signs in, reaches PostgreSQL as alice and sees her rows, not bob's"
      : 'is refused with the clear error: the DB2 KDB cannot do S4U2proxy';

    it.each(CLIENTS)(`%s: ${title}`, async (client) => {
      const cc = kinit(realm, 'alice');
      try {
        // A search for this run's tag: the realm is shared with other suites, so alice may own
        // more files than one listing page holds; the search still runs as alice, under RLS.
        const filesPath = `/api/search?q=${tag}`;
        const r = client === 'curl' ? await viaCurl(realm, api, cc, mode, filesPath) : await viaBrowser(client, realm, api, cc, mode, filesPath);
        if (!applies) {
          // Sign-in works (the acceptor always returns a proxy credential); the KDC refuses the
          // S4U2proxy request when the API opens the user's connection, and the user is told so.
          expect(r.me.status).toBe(200);
          expect(r.files.status).toBe(503);
          expect(r.files.body).toMatchObject({ code: 'DATABASE_UNAVAILABLE' });
          const hint = String((r.files.body as { hint?: unknown }).hint);
          expect(hint).toContain("KDC can't fulfill requested option");
          expect(hint).toMatch(/not allowed to delegate to it/);
          expect(hint).toMatch(/DB2 KDB cannot do S4U2proxy/);
          return;
        }
        expect(r.me.status).toBe(200);
        const me = r.me.body as MeResponse;
        expect(me).toMatchObject({ user: 'alice', principal: `alice@${realm.realm}`, delegation: mode });
        expect(r.files.status).toBe(200);
        const names = (r.files.body as SearchResponse).files.map((f) => f.name);
        expect(names).toContain(aliceFile);
        expect(names).not.toContain(bobFile);
      } finally {
        cc.destroy();
      }
    });
  });
});
