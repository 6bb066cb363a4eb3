import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  AcceptorContext,
  acquireServiceCredential,
  Credential,
  decodeNegotiateToken,
  destroyCache,
  GssError,
  GssUsageError,
  InitiatorContext,
} from '../index';
import { curlNegotiate, handshake, pgGssLogin, RealmEnv, RealmKdb, useRealm, userCredential } from '../testing/realm';

// The basics must hold with either KDB: run the whole file against db2 and ldap.
describe.each<RealmKdb>(['db2', 'ldap'])('accepting real Kerberos clients (%s KDB)', (kdb) => {
  let realm: RealmEnv;
  let service: Credential;

  beforeAll(async () => {
    realm = useRealm(kdb);
    service = await acquireServiceCredential({ keytab: realm.httpKeytab, principal: `HTTP/localhost@${realm.realm}`, usage: 'accept' });
  });
  afterAll(() => service?.dispose());

  it('accepts a kinit user, names alice, and returns a mutual-auth token the client accepts', async () => {
    const alice = await userCredential(realm, 'alice');
    const client = new InitiatorContext({ credential: alice.cred, target: 'HTTP@localhost', mutual: true, mech: 'spnego' });
    const acceptor = new AcceptorContext(service);
    try {
      const { accepted, clientComplete } = await handshake(client, acceptor);
      expect(accepted.complete).toBe(true);
      expect(accepted.principal).toBe(`alice@${realm.realm}`);
      expect(accepted.mech).toBe('spnego');
      expect(accepted.mechOid).toBe('1.2.840.113554.1.2.2');
      expect(accepted.flags.mutual).toBe(true);
      expect(accepted.token).toBeInstanceOf(Buffer);
      expect(clientComplete).toBe(true);
      expect(accepted.lifetime).toBeGreaterThan(60);
      expect(accepted.delegation).toBe('none');
      expect(accepted.delegated).toBeNull();
    } finally {
      acceptor.dispose();
      client.dispose();
      alice.dispose();
    }
  });

  it('accepts raw krb5 tokens as well as SPNEGO ones', async () => {
    const bob = await userCredential(realm, 'bob');
    const client = new InitiatorContext({ credential: bob.cred, target: 'HTTP@localhost', mech: 'krb5' });
    const acceptor = new AcceptorContext(service);
    try {
      const { accepted, clientComplete } = await handshake(client, acceptor);
      expect(accepted.principal).toBe(`bob@${realm.realm}`);
      expect(accepted.mech).toBe('krb5');
      expect(clientComplete).toBe(true);
    } finally {
      acceptor.dispose();
      client.dispose();
      bob.dispose();
    }
  });

  it('authenticates curl --negotiate (an independent client) through an HTTP server', async () => {
    const seen: string[] = [];
    const server: Server = createServer((req, res) => {
      void (async () => {
        const header = req.headers.authorization;
        if (!header) {
          res.writeHead(401, { 'WWW-Authenticate': 'Negotiate' }).end('no ticket');
          return;
        }
        const acceptor = new AcceptorContext(service);
        try {
          const r = await acceptor.step(decodeNegotiateToken(header));
          seen.push(`${r.delegation}`);
          r.delegated?.dispose();
          const headers: Record<string, string> = r.token ? { 'WWW-Authenticate': `Negotiate ${r.token.toString('base64')}` } : {};
          res.writeHead(r.complete ? 200 : 401, headers).end(r.complete ? `hello ${r.principal}` : 'continue');
        } catch (e) {
          res.writeHead(401, { 'WWW-Authenticate': 'Negotiate' }).end(e instanceof GssError ? e.code : 'error');
        } finally {
          acceptor.dispose();
        }
      })();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://localhost:${(server.address() as AddressInfo).port}/`;
    const carol = await userCredential(realm, 'carol');
    try {
      const ok = await curlNegotiate(realm, carol.cache, url, ['--delegation', 'always']);
      expect(ok).toEqual({ status: 200, body: `hello carol@${realm.realm}` });
      // The accept-only service credential receives curl's forwarded TGT.
      expect(seen).toEqual(['forwarded']);
    } finally {
      carol.dispose();
      await new Promise((r) => server.close(r));
    }
  });

  it('receives a forwarded TGT, stores it in MEMORY, reloads it and logs in to PostgreSQL as the user', async () => {
    const alice = await userCredential(realm, 'alice');
    const client = new InitiatorContext({ credential: alice.cred, target: 'HTTP@localhost', delegate: true, mech: 'spnego' });
    const acceptor = new AcceptorContext(service);
    let delegated: Credential | null = null;
    try {
      const { accepted } = await handshake(client, acceptor);
      delegated = accepted.delegated;
      expect(accepted.delegation).toBe('forwarded');
      expect(accepted.flags.delegate).toBe(true);
      expect(accepted.ticketForwardable).toBe(true);
      expect(delegated?.kind).toBe('forwarded');
      expect(delegated?.principal).toBe(`alice@${realm.realm}`);
      expect(delegated?.impersonator).toBeNull();
      expect(delegated?.expiresAt?.getTime()).toBeGreaterThan(Date.now() + 60_000);

      const stored = await (delegated as Credential).store();
      expect(stored.name).toMatch(/^MEMORY:fw-[0-9a-f]{32}$/);
      const reloaded = await Credential.fromCache(stored.name, 'forwarded');
      try {
        expect(reloaded.principal).toBe(`alice@${realm.realm}`);
        const pg = new InitiatorContext({ credential: reloaded, target: 'postgres@localhost' });
        await expect(pgGssLogin(realm.pg.port, 'alice', realm.pg.database, pg)).resolves.toBe('ok');
        pg.dispose();
        // The ticket is alice's: PostgreSQL refuses it for bob.
        const pgBob = new InitiatorContext({ credential: reloaded, target: 'postgres@localhost' });
        await expect(pgGssLogin(realm.pg.port, 'bob', realm.pg.database, pgBob)).resolves.toMatch(/GSSAPI authentication failed for user "bob"/);
        pgBob.dispose();
      } finally {
        reloaded.dispose();
        await stored.destroy();
      }
      // Destroyed means gone: loading it again finds no cache.
      await expect(Credential.fromCache(stored.name, 'forwarded')).rejects.toMatchObject({ code: 'ERR_GSS_NO_CREDENTIALS' });
    } finally {
      delegated?.dispose();
      acceptor.dispose();
      client.dispose();
      alice.dispose();
    }
  });

  it('gets no delegated credential from a non-forwardable TGT, and says so', async () => {
    const bob = await userCredential(realm, 'bob', ['-F']);
    // The client asks for delegation; MIT silently sends nothing when the TGT is not forwardable.
    const client = new InitiatorContext({ credential: bob.cred, target: 'HTTP@localhost', delegate: true, mech: 'spnego' });
    const acceptor = new AcceptorContext(service);
    try {
      const { accepted } = await handshake(client, acceptor);
      expect(accepted.principal).toBe(`bob@${realm.realm}`);
      expect(accepted.delegated).toBeNull();
      expect(accepted.delegation).toBe('none');
      expect(accepted.ticketForwardable).toBe(false);
    } finally {
      acceptor.dispose();
      client.dispose();
      bob.dispose();
    }
  });

  it('refuses a replayed token with a ReplayError', async () => {
    const alice = await userCredential(realm, 'alice');
    const client = new InitiatorContext({ credential: alice.cred, target: 'HTTP@localhost', mech: 'spnego' });
    const first = new AcceptorContext(service);
    const second = new AcceptorContext(service);
    try {
      const { firstToken, accepted } = await handshake(client, first);
      expect(accepted.complete).toBe(true);
      const err = await second.step(firstToken).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GssError);
      expect(err).toMatchObject({ code: 'ERR_GSS_REPLAY', name: 'ReplayError' });
      expect((err as GssError).message).toMatch(/already used/);
      expect((err as GssError).minorText).toMatch(/Request is a replay/);
    } finally {
      first.dispose();
      second.dispose();
      client.dispose();
      alice.dispose();
    }
  });

  it('stores FILE caches 0600 in a 0700 directory, and destroy() removes them', async () => {
    const alice = await userCredential(realm, 'alice');
    const client = new InitiatorContext({ credential: alice.cred, target: 'HTTP@localhost', delegate: true });
    const acceptor = new AcceptorContext(service);
    const own = mkdtempSync(join(tmpdir(), 'fw-test-'));
    try {
      const { accepted } = await handshake(client, acceptor);
      const delegated = accepted.delegated as Credential;
      const stored = await delegated.store({ type: 'FILE' });
      expect(stored.name).toBe(`FILE:${stored.path}`);
      expect(statSync(stored.path as string).mode & 0o777).toBe(0o600);
      expect(statSync(dirname(stored.path as string)).mode & 0o777).toBe(0o700);
      // A tool reading the file (here our own loader) sees alice.
      const viaFile = await Credential.fromCache(stored.name, 'forwarded');
      expect(viaFile.principal).toBe(`alice@${realm.realm}`);
      viaFile.dispose();
      await expect(stored.destroy()).resolves.toBe(true);
      expect(existsSync(stored.path as string)).toBe(false);
      expect(existsSync(dirname(stored.path as string))).toBe(false);
      await expect(stored.destroy()).resolves.toBe(false);

      // A directory of our own with group/other access is refused, a private one is used.
      await expect(delegated.store({ type: 'FILE', dir: tmpdir() })).rejects.toMatchObject({ code: 'ERR_GSS_UNSAFE_DIRECTORY' });
      const inOwn = await delegated.store({ type: 'FILE', dir: own });
      expect(dirname(inOwn.path as string)).toBe(own);
      expect(statSync(inOwn.path as string).mode & 0o777).toBe(0o600);
      // Owned by the credential: disposing the credential destroys the file.
      delegated.dispose();
      expect(existsSync(inOwn.path as string)).toBe(false);
      await expect(inOwn.destroy()).resolves.toBe(false);
    } finally {
      rmSync(own, { recursive: true, force: true });
      acceptor.dispose();
      client.dispose();
      alice.dispose();
    }
  });

  it('really destroys MEMORY caches: dispose() of the owner, destroy(), destroyCache()', async () => {
    const alice = await userCredential(realm, 'alice');
    try {
      const owned = await alice.cred.store();
      const detached = await alice.cred.store({ detach: true });
      alice.cred.dispose();
      // The owned cache went with the credential; the detached one survives it.
      await expect(Credential.fromCache(owned.name, 'password')).rejects.toMatchObject({ code: 'ERR_GSS_NO_CREDENTIALS' });
      const again = await Credential.fromCache(detached.name, 'password');
      expect(again.principal).toBe(`alice@${realm.realm}`);
      again.dispose();
      await expect(destroyCache(detached.name)).resolves.toBe(true);
      await expect(destroyCache(detached.name)).resolves.toBe(false);
      await expect(Credential.fromCache(detached.name, 'password')).rejects.toMatchObject({ code: 'ERR_GSS_NO_CREDENTIALS' });
    } finally {
      alice.dispose();
    }
  });

  it('exports and imports a delegated credential, which still reaches PostgreSQL', async () => {
    const dbadmin = await userCredential(realm, 'dbadmin');
    const client = new InitiatorContext({ credential: dbadmin.cred, target: 'HTTP@localhost', delegate: true });
    const acceptor = new AcceptorContext(service);
    try {
      const { accepted } = await handshake(client, acceptor);
      const blob = await (accepted.delegated as Credential).export();
      accepted.delegated?.dispose();
      expect(blob.length).toBeGreaterThan(100);
      await expect(Credential.import(blob, 'proxy')).rejects.toMatchObject({ code: 'ERR_GSS_KIND_MISMATCH' });
      const imported = await Credential.import(blob, 'forwarded');
      blob.fill(0);
      expect(imported.principal).toBe(`dbadmin@${realm.realm}`);
      const pg = new InitiatorContext({ credential: imported, target: 'postgres@localhost' });
      await expect(pgGssLogin(realm.pg.port, 'dbadmin', realm.pg.database, pg)).resolves.toBe('ok');
      pg.dispose();
      imported.dispose();
    } finally {
      acceptor.dispose();
      client.dispose();
      dbadmin.dispose();
    }
  });

  it('refuses use after dispose, twice-disposed is fine, and overlapping steps are refused', async () => {
    const alice = await userCredential(realm, 'alice');
    try {
      const client = new InitiatorContext({ credential: alice.cred, target: 'HTTP@localhost' });
      const acceptor = new AcceptorContext(service);
      const { token } = await client.step(null);
      const first = acceptor.step(token as Buffer);
      await expect(acceptor.step(token as Buffer)).rejects.toMatchObject({ code: 'ERR_GSS_CONTEXT_BUSY' });
      await expect(first).resolves.toMatchObject({ complete: true });
      await expect(acceptor.step(token as Buffer)).rejects.toMatchObject({ code: 'ERR_GSS_CONTEXT_COMPLETE' });
      acceptor.dispose();
      acceptor.dispose();
      await expect(acceptor.step(token as Buffer)).rejects.toMatchObject({ code: 'ERR_GSS_DISPOSED' });
      client.dispose();

      const cred = await Credential.fromCache(alice.cache.name, 'password');
      cred.dispose();
      cred.dispose();
      expect(cred.disposed).toBe(true);
      expect(cred.principal).toBe(`alice@${realm.realm}`);
      await expect(cred.store()).rejects.toMatchObject({ code: 'ERR_GSS_DISPOSED' });
      await expect(cred.export()).rejects.toBeInstanceOf(GssUsageError);
      expect(() => new InitiatorContext({ credential: cred, target: 'postgres@localhost' })).toThrow(TypeError);
      expect(() => new AcceptorContext(cred)).toThrow(expect.objectContaining({ code: 'ERR_GSS_DISPOSED' }));
    } finally {
      alice.dispose();
    }
  });

  it('refuses to start a step on a context whose credential was disposed', async () => {
    const alice = await userCredential(realm, 'alice');
    const client = new InitiatorContext({ credential: alice.cred, target: 'HTTP@localhost' });
    alice.cred.dispose();
    await expect(client.step(null)).rejects.toMatchObject({ code: 'ERR_GSS_DISPOSED' });
    client.dispose();
    alice.dispose();
  });
});
