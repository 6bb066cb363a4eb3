/**
 * Constrained delegation must not let the web service act as a user who never signed in. With its
 * own keytab, HTTP/localhost can ask the KDC for a ticket to itself "on behalf of" anyone
 * (S4U2self, protocol transition); because it lacks ok_to_auth_as_delegate, the KDC marks that
 * ticket non-forwardable, and S4U2proxy to PostgreSQL with it is refused. Only the forwardable
 * service ticket a user's own client presents (the evidence ticket) opens PostgreSQL as that user.
 *
 * Driven with MIT's own kvno (`-U` = S4U2self, `-P` = then S4U2proxy) against the real LDAP-KDB
 * KDC: the binding has no S4U2self call, and kvno asks the KDC exactly what a compromised web
 * service could ask. The KDC's log names the reason it refused.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureRealm, RealmEnv, runWithRealm, TicketCache } from '@forwardable/testing/realm';

describe('S4U2self for a user who did not sign in (constrained mode, LDAP realm)', () => {
  let realm: RealmEnv;
  let dir: string;
  const caches: Record<'http' | 'probe', TicketCache> = {} as never;
  const kdcLog = () => join(realm.dir, 'log', 'krb5kdc.log');

  beforeAll(() => {
    realm = ensureRealm('ldap');
    dir = mkdtempSync(join(tmpdir(), 'fw-s4u-'));
    const services = { http: [realm.httpKeytab, 'HTTP/localhost'], probe: [realm.vars.FORWARDABLE_S4U_PROBE_KEYTAB, 's4u-probe/localhost'] } as const;
    for (const [k, [keytab, name]] of Object.entries(services) as [keyof typeof services, readonly [string, string]][]) {
      caches[k] = { name: `FILE:${join(dir, `${k}.ccache`)}`, path: join(dir, `${k}.ccache`), destroy: () => undefined };
      const r = runWithRealm(realm, 'kinit', ['-k', '-t', keytab, `${name}@${realm.realm}`], { ccache: caches[k] });
      if (r.status !== 0) throw new Error(`kinit ${name}: ${r.stderr}`);
    }
  });
  afterAll(() => dir && rmSync(dir, { recursive: true, force: true }));

  /** What the KDC logged while `work` ran. */
  function kdcLines(work: () => void): string {
    const from = statSync(kdcLog()).size;
    work();
    return readFileSync(kdcLog()).subarray(from).toString('utf8');
  }

  it('gives HTTP/localhost only a non-forwardable ticket to itself for carol (S4U2self)', () => {
    const r = runWithRealm(realm, 'kvno', ['-U', 'carol', `HTTP/localhost@${realm.realm}`], { ccache: caches.http });
    expect(r.status).toBe(0);
    const list = runWithRealm(realm, 'klist', ['-f'], { ccache: caches.http }).stdout;
    const entry = /HTTP\/localhost@\S+\n\s+for client carol@\S+.*Flags: (\w+)/.exec(list);
    expect(entry).not.toBeNull();
    expect(entry?.[1]).not.toContain('F');
  });

  it('refuses HTTP/localhost a ticket to postgres/localhost as carol (S4U2self then S4U2proxy): EVIDENCE_TKT_NOT_FORWARDABLE', () => {
    let r: ReturnType<typeof runWithRealm> | undefined;
    const log = kdcLines(() => {
      r = runWithRealm(realm, 'kvno', ['-U', 'carol', '-P', `postgres/localhost@${realm.realm}`], { ccache: caches.http });
    });
    expect(r?.status).not.toBe(0);
    expect(r?.stderr).toContain(`KDC can't fulfill requested option postgres/localhost@${realm.realm}: constrained delegation failed`);
    expect(log).toMatch(new RegExp(`EVIDENCE_TKT_NOT_FORWARDABLE.*HTTP/localhost@${realm.realm} for postgres/localhost@${realm.realm}`));
    // No ticket for PostgreSQL reached the cache.
    expect(runWithRealm(realm, 'klist', [], { ccache: caches.http }).stdout).not.toContain('postgres/localhost');
  });

  it('control: the same request succeeds for a service the KDC trusts for protocol transition, so the refusal is the policy', () => {
    const r = runWithRealm(realm, 'kvno', ['-U', 'carol', '-P', `postgres/localhost@${realm.realm}`], { ccache: caches.probe });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`postgres/localhost@${realm.realm}: kvno =`);
  });
});
