/**
 * Per-user data sources against the real realm: every session's queries run as its own user,
 * pools are bounded and closed (checked in pg_stat_activity, as the database superuser sees it),
 * and the schema is migrated by dbadmin with a ticket, not a password.
 */
import { Test } from '@nestjs/testing';
import { INestApplicationContext } from '@nestjs/common';
import { Credential } from '@forwardable/gssapi';
import { ensureRealm, kinit, RealmEnv, repoRoot, runWithRealm, superuserSql } from '@forwardable/testing/realm';
import { delegatedCredential, DelegationMode, useRealm } from '@forwardable/testing/delegation';
import { PgAuthError } from '@forwardable/pg-gssapi';
import { CredentialExpiredError, UserDataSources, UserDataSourcesModule, UserDataSourcesOptions } from '@forwardable/nest';
import { runMigrations, schemaEntities, File } from '../index';

/** Backends of our application (`application_name = forwardable`) per role, as the superuser sees them. */
function connectionsByRole(realm: RealmEnv): Record<string, number> {
  const lines = superuserSql(
    realm,
    "SELECT usename || '=' || count(*) FROM pg_stat_activity WHERE application_name = 'forwardable' GROUP BY usename",
  );
  return Object.fromEntries(lines.map((l) => [l.split('=')[0], Number(l.split('=')[1])]));
}

async function eventually(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startModule(realm: RealmEnv, extra: Partial<UserDataSourcesOptions> = {}): Promise<INestApplicationContext> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      UserDataSourcesModule.forRoot({
        host: 'localhost',
        hostaddr: '127.0.0.1',
        port: realm.pg.port,
        database: realm.pg.database,
        entities: schemaEntities,
        ...extra,
      }),
    ],
  }).compile();
  // close() runs onApplicationShutdown, which must close every pool.
  await moduleRef.init();
  return moduleRef;
}

describe.each([
  ['db2', 'forwarded'],
  ['ldap', 'proxy'],
] as const)('UserDataSources (%s realm, %s credentials)', (kdb, mode: DelegationMode) => {
  let realm: RealmEnv;
  let alice: Credential;
  let bob: Credential;

  beforeAll(async () => {
    realm = ensureRealm(kdb);
    useRealm(realm);
    alice = await delegatedCredential(realm, 'alice', mode);
    bob = await delegatedCredential(realm, 'bob', mode);
  });
  afterAll(() => {
    alice?.dispose();
    bob?.dispose();
  });
  beforeEach(() => useRealm(realm));

  it('migrates the schema as dbadmin with a ticket, then again finds nothing to do', async () => {
    const tgt = kinit(realm, 'dbadmin');
    const cred = await Credential.fromCache(tgt.name, 'password');
    try {
      const target = { host: 'localhost', hostaddr: '127.0.0.1', port: realm.pg.port, database: realm.pg.database, credential: cred };
      const first = await runMigrations(target);
      const second = await runMigrations(target);
      // The realm may be shared with an earlier suite: either we applied it now or it was there.
      expect(first.length + second.length).toBeLessThanOrEqual(2);
      expect(second).toEqual([]);
    } finally {
      cred.dispose();
      tgt.destroy();
    }
  });

  it('gives each session a data source connected as its own user, reused within the session', async () => {
    const app = await startModule(realm);
    const sources = app.get(UserDataSources);
    try {
      const a = await sources.get('session-a', alice);
      const b = await sources.get('session-b', bob);
      expect(await a.query('SELECT session_user AS u')).toEqual([{ u: 'alice' }]);
      expect(await b.query('SELECT session_user AS u')).toEqual([{ u: 'bob' }]);
      expect(await sources.get('session-a', alice)).toBe(a);
      expect(sources.stats().counters).toMatchObject({ opens: 2, reuses: 1 });
      // The schema's entities work on the user's connection; owner comes from session_user.
      const saved = await a.getRepository(File).save({ name: `note-${Date.now()}-${mode}.txt`, directoryId: null, content: 'hi' });
      const row = await a.getRepository(File).findOneByOrFail({ id: saved.id });
      expect(row.owner).toBe('alice');
      await a.getRepository(File).delete({ id: saved.id });
    } finally {
      await app.close();
    }
    expect(connectionsByRole(realm)).toEqual({});
  });

  it('creates one pool for two simultaneous first requests of a session', async () => {
    const app = await startModule(realm);
    const sources = app.get(UserDataSources);
    try {
      const [x, y] = await Promise.all([sources.get('s1', alice), sources.get('s1', alice)]);
      expect(x).toBe(y);
      expect(sources.stats().counters.opens).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('keeps 50 sessions x 20 concurrent queries each on the right user', async () => {
    const names = Array.from({ length: 50 }, (_, i) => `dsload${kdb}${i}`);
    const pw = 'ds-load-password';
    const add = runWithRealm(realm, 'bash', [`${repoRoot}/tools/realm/realm.sh`, 'add-users', '--dir', realm.dir, '--password', pw, ...names]);
    expect(add.status).toBe(0);
    const creds = await Promise.all(names.map((n) => delegatedCredential(realm, n, mode, pw)));
    const app = await startModule(realm, { maxUsers: 100, maxConnections: 150 });
    const sources = app.get(UserDataSources);
    try {
      const results = await Promise.all(
        creds.flatMap((c, i) =>
          Array.from({ length: 20 }, async () => {
            const ds = await sources.get(`load-${i}`, c);
            const [row] = await ds.query('SELECT session_user AS u');
            return row.u === names[i];
          }),
        ),
      );
      expect(results.filter((ok) => !ok)).toHaveLength(0);
      expect(results).toHaveLength(1000);
      expect(sources.stats().counters.opens).toBe(50);
    } finally {
      await app.close();
      creds.forEach((c) => c.dispose());
    }
    expect(connectionsByRole(realm)).toEqual({});
  });

  it('evicts the least recently used user when the user cap is reached', async () => {
    const app = await startModule(realm, { maxUsers: 1 });
    const sources = app.get(UserDataSources);
    try {
      await (await sources.get('a', alice)).query('SELECT 1');
      expect(connectionsByRole(realm).alice).toBeGreaterThan(0);
      await (await sources.get('b', bob)).query('SELECT 1');
      expect(sources.stats()).toMatchObject({ users: 1, counters: { evictions: 1 } });
      await eventually(() => !connectionsByRole(realm).alice);
      expect(connectionsByRole(realm).bob).toBeGreaterThan(0);
    } finally {
      await app.close();
    }
  });

  it('never opens past the user cap when many users arrive at once, and lets in-flight queries finish', async () => {
    // Regression (found by the benchmark): with every slot still opening, makeRoom gave up and
    // opened past the cap; and evicting a pool in use broke the query running on it.
    const names = Array.from({ length: 10 }, (_, i) => `capload${kdb}${i}`);
    const add = runWithRealm(realm, 'bash', [`${repoRoot}/tools/realm/realm.sh`, 'add-users', '--dir', realm.dir, '--password', 'cap-pw', ...names]);
    expect(add.status).toBe(0);
    const creds = await Promise.all(names.map((n) => delegatedCredential(realm, n, mode, 'cap-pw')));
    const app = await startModule(realm, { maxUsers: 3 });
    const sources = app.get(UserDataSources);
    let peak = 0;
    // Pools being closed still hold connections: they count against the cap until gone.
    const sampler = setInterval(() => (peak = Math.max(peak, sources.stats().users + sources.stats().closing)), 5);
    try {
      const results = await Promise.all(
        creds.map(async (c, i) => {
          const ds = await sources.get(`cap-${i}`, c);
          const [row] = await ds.query('SELECT session_user AS u, pg_sleep(0.05)');
          return row.u === names[i];
        }),
      );
      expect(results).toEqual(names.map(() => true));
      expect(peak).toBeLessThanOrEqual(3);
      expect(sources.stats()).toMatchObject({ counters: { opens: 10, evictions: 7 } });
    } finally {
      clearInterval(sampler);
      await app.close();
      creds.forEach((c) => c.dispose());
    }
  });

  it('closes idle pools', async () => {
    const app = await startModule(realm, { idleTimeoutMs: 200, sweepIntervalMs: 50 });
    const sources = app.get(UserDataSources);
    try {
      await (await sources.get('a', alice)).query('SELECT 1');
      expect(connectionsByRole(realm).alice).toBeGreaterThan(0);
      await eventually(() => sources.stats().counters.idleClosed === 1);
      await eventually(() => !connectionsByRole(realm).alice);
    } finally {
      await app.close();
    }
  });

  it('closes the pool on release (logout) and refuses a disposed credential', async () => {
    const app = await startModule(realm);
    const sources = app.get(UserDataSources);
    const own = await delegatedCredential(realm, 'carol', mode);
    try {
      await (await sources.get('c', own)).query('SELECT 1');
      await sources.release('c');
      await eventually(() => !connectionsByRole(realm).carol);
      own.dispose();
      await expect(sources.get('c', own)).rejects.toBeInstanceOf(CredentialExpiredError);
      expect(sources.stats().counters.released).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('closes the pool of a credential that expires', async () => {
    // A short-lived ticket: the KDC issues it for 10 s, and the pool must not outlive it.
    const tgt = kinit(realm, 'carol', ['-l', '10s']);
    const short = await Credential.fromCache(tgt.name, 'password');
    const app = await startModule(realm, { sweepIntervalMs: 100 });
    const sources = app.get(UserDataSources);
    try {
      expect((short.expiresAt?.getTime() ?? Infinity) - Date.now()).toBeLessThanOrEqual(11_000);
      await (await sources.get('short', short)).query('SELECT 1');
      expect(connectionsByRole(realm).carol).toBeGreaterThan(0);
      await eventually(() => sources.stats().counters.expiredClosed === 1, 15_000);
      await eventually(() => !connectionsByRole(realm).carol);
      await expect(sources.get('short', short)).rejects.toBeInstanceOf(CredentialExpiredError);
    } finally {
      await app.close();
      short.dispose();
      tgt.destroy();
    }
  });

  it('a user with no database role gets a clear error, and no pool is kept', async () => {
    runWithRealm(realm, 'bash', [`${repoRoot}/tools/realm/realm.sh`, 'add-users', '--dir', realm.dir, '--password', 'frank-pw', '--no-role', 'frank']);
    const frank = await delegatedCredential(realm, 'frank', mode, 'frank-pw');
    const app = await startModule(realm);
    const sources = app.get(UserDataSources);
    try {
      const err = await sources.get('f', frank).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PgAuthError);
      expect((err as PgAuthError).code).toBe('PG_ROLE_MISSING');
      expect(sources.stats().users).toBe(0);
    } finally {
      await app.close();
      frank.dispose();
    }
  });
});

describe('the API has no database identity of its own', () => {
  it('no password gets anyone in: without a Kerberos credential PostgreSQL refuses even its owner', () => {
    const realm = ensureRealm('db2');
    const r = runWithRealm(realm, 'psql', ['-X', '-w', '-h', 'localhost', '-p', String(realm.pg.port), '-U', 'dbadmin', '-d', 'forwardable', '-c', 'SELECT 1'], {
      env: { KRB5CCNAME: `FILE:${realm.dir}/run/no-such-cache`, PGPASSWORD: 'any-password-at-all', PGHOSTADDR: '127.0.0.1' },
    });
    expect(r.status).not.toBe(0);
    // Without a ticket libpq cannot set up GSSAPI encryption, and pg_hba (hostgssenc only) has no
    // line for an unencrypted connection: refused before any password could be asked for.
    expect(r.stderr).toMatch(/GSSAPI|no pg_hba\.conf entry for host .* no encryption/);
    expect(r.stderr).not.toMatch(/password authentication failed/);
  });
});
