/**
 * The API over TLS to PostgreSQL (FORWARDABLE_PG_SSLMODE=verify-full, GSSAPI encryption off),
 * against a realm whose PostgreSQL offers TLS (`realm up --pg-tls`): the per-user backends are on
 * TLS and GSS-authenticated as PostgreSQL itself reports, and the doctor names the protection.
 */
import { ensureTlsRealm, RealmEnv, superuserSql } from '@forwardable/testing/realm';
import { useRealm } from '@forwardable/testing/delegation';
import { Api, call, configFor, migrateAsDbadmin, passwordSession, startApi } from '../testing/api-harness';
import { runDoctor } from './doctor';

describe('API with TLS to PostgreSQL (sslmode verify-full, Kerberos inside TLS)', () => {
  let realm: RealmEnv;
  let api: Api;
  let tlsEnv: Record<string, string>;

  beforeAll(async () => {
    realm = ensureTlsRealm();
    useRealm(realm);
    await migrateAsDbadmin(realm);
    tlsEnv = {
      FORWARDABLE_PG_GSSENCMODE: 'disable',
      FORWARDABLE_PG_SSLMODE: 'verify-full',
      FORWARDABLE_PG_SSLROOTCERT: realm.vars.FORWARDABLE_PG_SSLROOTCERT as string,
    };
    api = await startApi(configFor(realm, tlsEnv));
  });
  afterAll(() => api?.close());

  it("alice's backends are on TLS and GSS-authenticated, not GSS-encrypted (pg_stat_ssl, pg_stat_gssapi)", async () => {
    const alice = await passwordSession(api, 'alice', realm.passwords.alice);
    const listing = await call(`${api.url}/api/files`, 'GET', { cookie: alice });
    expect(listing.status).toBe(200);
    const rows = superuserSql(
      realm,
      `SELECT s.ssl, g.gss_authenticated, g.encrypted FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) JOIN pg_stat_gssapi g USING (pid)
        WHERE a.usename = 'alice' AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()`,
    );
    expect(rows.length).toBeGreaterThan(0);
    expect(new Set(rows)).toEqual(new Set(['t|t|f']));
  });

  it('the doctor reports tls with protocol and cipher, certificate and host name verified', async () => {
    const checks = await runDoctor(configFor(realm, tlsEnv));
    expect(checks.map((c) => [c.name, c.ok])).toEqual([['keytab', true], ['kdc', true], ['postgresql', true], ['postgresql-link', true]]);
    expect(checks[3].detail).toMatch(/^TLS-encrypted \(tls: TLSv1\.[23], \S+; certificate and host name verified; gssencmode=disable, sslmode=verify-full\)$/);
  });

  it('the doctor says when the certificate was not verified (sslmode prefer without a root certificate)', async () => {
    const checks = await runDoctor(configFor(realm, { FORWARDABLE_PG_GSSENCMODE: 'disable', FORWARDABLE_PG_SSLMODE: 'prefer' }));
    expect(checks[3]).toEqual({ name: 'postgresql-link', ok: true, detail: expect.stringMatching(/^TLS-encrypted \(tls: TLSv1\.[23], \S+; certificate NOT verified; gssencmode=disable, sslmode=prefer\)$/) });
  });
});
