import { AcceptorContext, acquireServiceCredential, Credential, DelegationRefusedError, GssError, InitiatorContext } from '../index';
import { handshake, pgGssLogin, RealmEnv, useRealm, userCredential } from '../testing/realm';

// Constrained delegation needs the LDAP KDB (DB2 refuses S4U2proxy): HTTP/localhost may
// delegate to postgres/localhost only (krbAllowedToDelegateTo), so other/localhost is refused.
describe('S4U2proxy (ldap KDB)', () => {
  let realm: RealmEnv;
  let service: Credential;

  beforeAll(async () => {
    realm = useRealm('ldap');
    service = await acquireServiceCredential({ keytab: realm.httpKeytab, principal: 'HTTP@localhost', usage: 'both' });
  });
  afterAll(() => service?.dispose());

  async function accept(user: 'alice' | 'bob' | 'carol', opts: { delegate: boolean; kinitFlags?: string[] }) {
    const u = await userCredential(realm, user, opts.kinitFlags ?? []);
    const client = new InitiatorContext({ credential: u.cred, target: 'HTTP@localhost', delegate: opts.delegate, mech: 'spnego' });
    const acceptor = new AcceptorContext(service);
    try {
      return (await handshake(client, acceptor)).accepted;
    } finally {
      acceptor.dispose();
      client.dispose();
      u.dispose();
    }
  }

  it('the service credential can initiate (usage both) and names the service', () => {
    expect(service.kind).toBe('service');
    expect(service.usage).toBe('both');
    expect(service.principal).toBe(`HTTP/localhost@${realm.realm}`);
  });

  it('turns a non-delegating token into a proxy credential that logs in to PostgreSQL as the user', async () => {
    const accepted = await accept('alice', { delegate: false });
    const proxy = accepted.delegated as Credential;
    try {
      expect(accepted.delegation).toBe('proxy');
      expect(proxy.kind).toBe('proxy');
      expect(proxy.principal).toBe(`alice@${realm.realm}`);
      expect(proxy.impersonator).toBe(`HTTP/localhost@${realm.realm}`);
      const pg = new InitiatorContext({ credential: proxy, target: 'postgres@localhost' });
      await expect(pgGssLogin(realm.pg.port, 'alice', realm.pg.database, pg)).resolves.toBe('ok');
      pg.dispose();
    } finally {
      proxy?.dispose();
    }
  });

  it('is refused by the KDC for any other target, with an error that says why', async () => {
    const accepted = await accept('bob', { delegate: false });
    const proxy = accepted.delegated as Credential;
    const other = new InitiatorContext({ credential: proxy, target: 'other@localhost' });
    try {
      const err = await other.step(null).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DelegationRefusedError);
      expect(err).toMatchObject({ code: 'ERR_GSS_DELEGATION_REFUSED', routine: 'gss_init_sec_context' });
      expect((err as GssError).message).toMatch(/not allowed to delegate to it/);
      expect((err as GssError).message).toMatch(/other@localhost/);
      expect((err as GssError).minorText).toMatch(/KDC can't fulfill requested option/);
    } finally {
      other.dispose();
      proxy.dispose();
    }
  });

  it('survives store/reload as a proxy credential and cannot be passed off as a forwarded TGT', async () => {
    const accepted = await accept('carol', { delegate: false });
    const proxy = accepted.delegated as Credential;
    const stored = await proxy.store({ detach: true });
    proxy.dispose();
    try {
      await expect(Credential.fromCache(stored.name, 'forwarded')).rejects.toMatchObject({ code: 'ERR_GSS_KIND_MISMATCH' });
      const reloaded = await Credential.fromCache(stored.name, 'proxy');
      expect(reloaded.principal).toBe(`carol@${realm.realm}`);
      const pg = new InitiatorContext({ credential: reloaded, target: 'postgres@localhost' });
      await expect(pgGssLogin(realm.pg.port, 'carol', realm.pg.database, pg)).resolves.toBe('ok');
      pg.dispose();
      reloaded.dispose();
    } finally {
      await stored.destroy();
    }
  });

  it('prefers a real forwarded TGT over a proxy credential when the client delegates', async () => {
    const accepted = await accept('alice', { delegate: true });
    try {
      expect(accepted.delegation).toBe('forwarded');
      expect(accepted.delegated?.kind).toBe('forwarded');
      expect(accepted.delegated?.impersonator).toBeNull();
      // A real TGT is not limited by the KDC's delegation list.
      const other = new InitiatorContext({ credential: accepted.delegated as Credential, target: 'other@localhost' });
      await expect(other.step(null)).resolves.toMatchObject({ complete: false });
      other.dispose();
    } finally {
      accepted.delegated?.dispose();
    }
  });

  it('returns no proxy credential for a non-forwardable ticket (the KDC would refuse it)', async () => {
    const accepted = await accept('bob', { delegate: false, kinitFlags: ['-F'] });
    expect(accepted.principal).toBe(`bob@${realm.realm}`);
    expect(accepted.ticketForwardable).toBe(false);
    expect(accepted.delegation).toBe('none');
    expect(accepted.delegated).toBeNull();
  });
});
