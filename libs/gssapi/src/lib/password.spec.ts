import { BadPasswordError, ClientNotFoundError, GssError, InitiatorContext, KdcUnverifiedError, KeytabMissingError, passwordLogin } from '../index';
import { ensureRogueRealm, pgGssLogin, RealmEnv, useRealm } from '../testing/realm';

describe('password login with KDC verification', () => {
  let realm: RealmEnv;
  let rogue: RealmEnv;

  beforeAll(() => {
    realm = useRealm('db2');
    // A rogue-KDC stand-in: the same realm name and principal names, different keys.
    rogue = ensureRogueRealm();
  });

  const login = (password: string | Buffer, extra: Partial<Parameters<typeof passwordLogin>[0]> = {}) =>
    passwordLogin({ username: 'alice', password, keytab: realm.httpKeytab, servicePrincipal: `HTTP/localhost@${realm.realm}`, ...extra });

  it('logs in with the right password, and the credential reaches PostgreSQL', async () => {
    const cred = await login(realm.passwords.alice);
    try {
      expect(cred.kind).toBe('password');
      expect(cred.principal).toBe(`alice@${realm.realm}`);
      expect(cred.expiresAt?.getTime()).toBeGreaterThan(Date.now() + 60_000);
      const pg = new InitiatorContext({ credential: cred, target: 'postgres@localhost' });
      await expect(pgGssLogin(realm.pg.port, 'alice', realm.pg.database, pg)).resolves.toBe('ok');
      pg.dispose();
    } finally {
      cred.dispose();
    }
  });

  it('accepts the password as a Buffer and the service as host-based', async () => {
    const cred = await login(Buffer.from(realm.passwords.alice), { servicePrincipal: 'HTTP@localhost' });
    expect(cred.principal).toBe(`alice@${realm.realm}`);
    cred.dispose();
  });

  it('refuses a wrong password with BadPasswordError', async () => {
    const err = await login(`${realm.passwords.alice}x`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadPasswordError);
    expect(err).toMatchObject({ code: 'ERR_GSS_BAD_PASSWORD' });
    // Never echo the password.
    expect((err as Error).message).not.toContain(realm.passwords.alice);
  });

  it('refuses an unknown user with ClientNotFoundError', async () => {
    await expect(passwordLogin({ username: 'mallory', password: 'x', keytab: realm.httpKeytab, servicePrincipal: 'HTTP@localhost' }))
      .rejects.toBeInstanceOf(ClientNotFoundError);
  });

  it('refuses a login from a KDC that does not know our service key (rogue KDC)', async () => {
    // The rogue KDC accepts its own password for "alice"; without verification that would be a login.
    const unverified = await passwordLogin({ username: 'alice', password: rogue.passwords.alice, krb5Config: rogue.krb5Config, verifyKdc: false });
    expect(unverified.principal).toBe(`alice@${realm.realm}`);
    unverified.dispose();
    const err = await passwordLogin({ username: 'alice', password: rogue.passwords.alice, krb5Config: rogue.krb5Config, keytab: realm.httpKeytab, servicePrincipal: 'HTTP@localhost' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KdcUnverifiedError);
    expect((err as GssError).message).toMatch(/rogue KDC/);
    // The real KDC's password is wrong for the rogue one.
    await expect(passwordLogin({ username: 'alice', password: realm.passwords.alice, krb5Config: rogue.krb5Config, keytab: realm.httpKeytab, servicePrincipal: 'HTTP@localhost' }))
      .rejects.toBeInstanceOf(BadPasswordError);
  });

  it('refuses to verify with a missing keytab, saying so, before sending the password', async () => {
    const err = await login(realm.passwords.alice, { keytab: '/nonexistent/http.keytab' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeytabMissingError);
    expect((err as GssError).message).toMatch(/keytab \/nonexistent\/http.keytab does not exist/);
    expect((err as GssError).minorText).toMatch(/No such file or directory/);
  });

  it('refuses caller mistakes with TypeErrors', async () => {
    await expect(login('')).rejects.toMatchObject({ code: 'ERR_GSS_INVALID_ARG', name: 'GssUsageError' });
    await expect(login('a\0b')).rejects.toMatchObject({ code: 'ERR_GSS_INVALID_ARG' });
    await expect(passwordLogin({ username: 'alice', password: 'x' })).rejects.toBeInstanceOf(TypeError);
    await expect(login(42 as unknown as string)).rejects.toBeInstanceOf(TypeError);
  });
});
