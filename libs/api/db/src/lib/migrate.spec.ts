/**
 * The schema is migrated by dbadmin with a ticket, not a password. (The per-user data sources,
 * and the proof that the API has no database identity of its own, are tested beside their code in
 * libs/nest/src/lib/db/user-data-sources.spec.ts.)
 */
import { Credential } from '@forwardable/gssapi';
import { ensureRealm, kinit, RealmEnv } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import { runMigrations } from '../index';

describe.each(['db2', 'ldap'] as const)('migrations (%s realm)', (kdb) => {
  let realm: RealmEnv;

  beforeAll(() => {
    realm = ensureRealm(kdb);
    useRealm(realm);
  });

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
});
