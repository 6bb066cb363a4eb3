import { createServer } from 'node:net';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { randomBytes } from 'node:crypto';
import {
  AcceptorContext,
  acquireServiceCredential,
  BadPasswordError,
  ClientRevokedError,
  Credential,
  destroyCache,
  GssError,
  InitiatorContext,
  KdcUnreachableError,
  PasswordExpiredError,
  passwordLogin,
  ReplayError,
} from '../index';
import { __classifyForTest, __krb5CodesForTest } from './errors';
import { loadNative } from './load';
import { handshake, kadminLocal, RealmEnv, useRealm, userCredential } from '../testing/realm';

/** A full garbage collection, also when jest runs without --expose-gc. */
function gcFunction(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

const nextTurn = () => new Promise((r) => setImmediate(r));

/**
 * Collect until `gone()` holds, then give native finalizers (run from setImmediate) their turn.
 * `gone()` must not run in the same turn as a collection: WeakRef.deref() keeps its target alive
 * until the current turn ends.
 */
async function collectUntil(gone: () => boolean): Promise<void> {
  const gc = gcFunction();
  let collected = false;
  for (let i = 0; i < 50 && !collected; i++) {
    await nextTurn();
    gc();
    await nextTurn();
    collected = gone();
  }
  expect(collected).toBe(true);
  for (let i = 0; i < 5; i++) {
    gc();
    await nextTurn();
  }
}

/** A port nothing listens on (bound, then released). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('binding edges: credential lifetime, cache destruction, secrets, error codes', () => {
  let realm: RealmEnv;
  let service: Credential;
  let dir: string;
  const spn = () => `HTTP/localhost@${realm.realm}`;

  beforeAll(async () => {
    realm = useRealm('db2');
    service = await acquireServiceCredential({ keytab: realm.httpKeytab, principal: spn(), usage: 'accept' });
    dir = mkdtempSync(join(tmpdir(), 'fw-gss-edges-'));
  });
  afterAll(() => {
    service?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A throwaway principal of our own (the demo users are shared with other suites). */
  function addUser(password: string, extra = ''): string {
    const name = `edge${randomBytes(6).toString('hex')}`;
    kadminLocal(realm, `addprinc +requires_preauth ${extra} -pw ${password} ${name}`);
    return name;
  }

  it('a collected Credential does not break a context that still uses it', async () => {
    let ref: WeakRef<Credential> | undefined;
    const acceptor = new AcceptorContext(service);
    // The credential only ever lives in this function: afterwards, the context is all that uses it.
    const start = async () => {
      const cred = await passwordLogin({ username: 'alice', password: realm.passwords.alice, keytab: realm.httpKeytab, servicePrincipal: spn() });
      ref = new WeakRef(cred);
      const client = new InitiatorContext({ credential: cred, target: 'HTTP@localhost', mutual: true });
      const first = await client.step(null);
      return { client, token: first.token as Buffer };
    };
    const { client, token } = await start();
    try {
      await collectUntil(() => ref?.deref() === undefined);
      const accepted = await acceptor.step(token);
      expect(accepted.complete).toBe(true);
      expect(accepted.principal).toBe(`alice@${realm.realm}`);
      // The mutual-auth reply completes the context on the client, whose credential is gone from JS.
      const last = await client.step(accepted.token as Buffer);
      expect(last.complete).toBe(true);
    } finally {
      client.dispose();
      acceptor.dispose();
    }
  });

  it('a collected Credential still lets a new-born context start (first step after GC)', async () => {
    let ref: WeakRef<Credential> | undefined;
    const make = async () => {
      const cred = await passwordLogin({ username: 'bob', password: realm.passwords.bob, keytab: realm.httpKeytab, servicePrincipal: spn() });
      ref = new WeakRef(cred);
      return new InitiatorContext({ credential: cred, target: 'HTTP@localhost' });
    };
    const client = await make();
    const acceptor = new AcceptorContext(service);
    try {
      await collectUntil(() => ref?.deref() === undefined);
      const { accepted } = await handshake(client, acceptor);
      expect(accepted.principal).toBe(`bob@${realm.realm}`);
    } finally {
      client.dispose();
      acceptor.dispose();
    }
  });

  it('a forgotten Credential still releases its handle and destroys the caches it owns once collected', async () => {
    let ref: WeakRef<Credential> | undefined;
    const make = async () => {
      const cred = await passwordLogin({ username: 'carol', password: realm.passwords.carol, keytab: realm.httpKeytab, servicePrincipal: spn() });
      ref = new WeakRef(cred);
      return (await cred.store()).name; // owned by the credential
    };
    const name = await make();
    await collectUntil(() => ref?.deref() === undefined);
    await expect(Credential.fromCache(name, 'password')).rejects.toMatchObject({ code: 'ERR_GSS_NO_CREDENTIALS' });
  });

  it('destroyCache() waits for a load from the cache that is still running, off the event loop', async () => {
    const alice = await userCredential(realm, 'alice');
    try {
      const stored = await alice.cred.store({ detach: true });
      // Started first, still on the worker pool when destroyCache() is called.
      const loading = Credential.fromCache(stored.name, 'password');
      const destroying = destroyCache(stored.name);
      expect(destroying).toBeInstanceOf(Promise);
      const loaded = await loading;
      expect(loaded.principal).toBe(`alice@${realm.realm}`);
      loaded.dispose();
      await expect(destroying).resolves.toBe(true);
      await expect(Credential.fromCache(stored.name, 'password')).rejects.toMatchObject({ code: 'ERR_GSS_NO_CREDENTIALS' });
      await expect(destroyCache(stored.name)).resolves.toBe(false);
    } finally {
      alice.dispose();
    }
  });

  it('destroyCache() waits for a context step whose credential reads that cache', async () => {
    const alice = await userCredential(realm, 'alice');
    const acceptor = new AcceptorContext(service);
    try {
      const stored = await alice.cred.store({ type: 'FILE', detach: true });
      const reader = await Credential.fromCache(stored.name, 'password');
      const client = new InitiatorContext({ credential: reader, target: 'HTTP@localhost' });
      // The first step gets a service ticket with the TGT in the cache.
      const stepping = client.step(null);
      const destroying = destroyCache(stored.name);
      const first = await stepping;
      expect(first.token).not.toBeNull();
      await expect(destroying).resolves.toBe(true);
      expect(existsSync(stored.path as string)).toBe(false);
      const accepted = await acceptor.step(first.token as Buffer);
      expect(accepted.principal).toBe(`alice@${realm.realm}`);
      client.dispose();
      reader.dispose();
      await stored.destroy();
    } finally {
      acceptor.dispose();
      alice.dispose();
    }
  });

  it('logs in with long passwords (the native copy grows past its first allocation)', async () => {
    // 200 ASCII characters plus multi-byte UTF-8: lengths no small-buffer path handles.
    const password = `${'Lo0ng-pässwörd-'.repeat(13)}ü€`;
    const user = addUser(password);
    const cred = await passwordLogin({ username: user, password, keytab: realm.httpKeytab, servicePrincipal: spn() });
    expect(cred.principal).toBe(`${user}@${realm.realm}`);
    cred.dispose();
    // One character short or one more: refused, so every byte reached the KDC.
    await expect(passwordLogin({ username: user, password: password.slice(0, -1), keytab: realm.httpKeytab, servicePrincipal: spn() }))
      .rejects.toBeInstanceOf(BadPasswordError);
    await expect(passwordLogin({ username: user, password: `${password}x`, keytab: realm.httpKeytab, servicePrincipal: spn() }))
      .rejects.toBeInstanceOf(BadPasswordError);
  });

  it('reads a WRFILE: keytab for KDC verification', async () => {
    const cred = await passwordLogin({ username: 'alice', password: realm.passwords.alice, keytab: `WRFILE:${realm.httpKeytab}`, servicePrincipal: spn() });
    expect(cred.principal).toBe(`alice@${realm.realm}`);
    cred.dispose();
  });

  describe('error classification by krb5 code', () => {
    const K = __krb5CodesForTest;

    it('uses the codes the addon itself reports', () => {
      const c = loadNative().constants;
      expect(K.PREAUTH_FAILED).toBe(c.KRB5KDC_ERR_PREAUTH_FAILED);
      expect(K.C_PRINCIPAL_UNKNOWN).toBe(c.KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN);
      expect(K.KEY_EXP).toBe(c.KRB5KDC_ERR_KEY_EXP);
      expect(K.CLIENT_REVOKED).toBe(c.KRB5KDC_ERR_CLIENT_REVOKED);
      expect(K.KDC_UNREACH).toBe(c.KRB5_KDC_UNREACH);
      expect(K.REALM_CANT_RESOLVE).toBe(c.KRB5_REALM_CANT_RESOLVE);
      expect(K.KT_NOTFOUND).toBe(c.KRB5_KT_NOTFOUND);
      expect(K.REPEAT).toBe(c.KRB5KRB_AP_ERR_REPEAT);
      expect(K.SKEW).toBe(c.KRB5KRB_AP_ERR_SKEW);
    });

    it('the captured code decides, whatever the text says', () => {
      const base = { major: 0xd0000, minor: 7, routine: 'gss_accept_sec_context', majorText: 'Unspecified GSS failure', minorText: 'Clock skew too great' };
      expect(__classifyForTest({ ...base, krb5Code: K.REPEAT }, { operation: 'accept' }).code).toBe('ERR_GSS_REPLAY');
      expect(__classifyForTest({ ...base, routine: 'krb5_get_init_creds_password', krb5Code: K.KEY_EXP }, { operation: 'password' }).code).toBe('ERR_GSS_PASSWORD_EXPIRED');
      expect(__classifyForTest({ ...base, routine: 'krb5_get_init_creds_password', krb5Code: K.CLIENT_REVOKED }, { operation: 'password' }).code).toBe('ERR_GSS_CLIENT_REVOKED');
    });

    it('falls back to the text for a remapped (SPNEGO) minor code with no captured code', () => {
      const remapped = { major: 0xd0000, minor: 3, routine: 'gss_accept_sec_context', majorText: 'Unspecified GSS failure', krb5Code: null };
      expect(__classifyForTest({ ...remapped, minorText: 'Request is a replay' }, { operation: 'accept' }).code).toBe('ERR_GSS_REPLAY');
      expect(__classifyForTest({ ...remapped, minorText: 'Clock skew too great' }, { operation: 'accept' }).code).toBe('ERR_GSS_CLOCK_SKEW');
      expect(__classifyForTest({ ...remapped, routine: 'krb5_get_init_creds_password', minorText: 'Password has expired' }, { operation: 'password' }).code).toBe('ERR_GSS_PASSWORD_EXPIRED');
      expect(__classifyForTest({ ...remapped, minorText: 'something new' }, { operation: 'accept' }).code).toBe('ERR_GSS_FAILURE');
    });

    it('a replayed krb5 token carries the krb5 code, and the failed accept returns an error token', async () => {
      const alice = await userCredential(realm, 'alice');
      const client = new InitiatorContext({ credential: alice.cred, target: 'HTTP@localhost', mech: 'krb5', mutual: true });
      const first = new AcceptorContext(service);
      const second = new AcceptorContext(service);
      try {
        const { firstToken } = await handshake(client, first);
        const err = (await second.step(firstToken).catch((e: unknown) => e)) as GssError;
        expect(err).toBeInstanceOf(ReplayError);
        expect(err.krb5Code).toBe(K.REPEAT);
        // A KRB-ERROR for the client (GSS framing: [APPLICATION 0], then the krb5 OID).
        expect(err.token).toBeInstanceOf(Buffer);
        expect((err.token as Buffer)[0]).toBe(0x60);
        expect(JSON.stringify(err)).not.toContain((err.token as Buffer).toString('base64'));
      } finally {
        first.dispose();
        second.dispose();
        client.dispose();
        alice.dispose();
      }
    });

    it('an unreachable KDC is known by its code (KRB5_KDC_UNREACH)', async () => {
      const port = await closedPort();
      const conf = join(dir, 'down.conf');
      writeFileSync(conf, `[libdefaults]\n default_realm = ${realm.realm}\n dns_lookup_kdc = false\n dns_lookup_realm = false\n\n[realms]\n ${realm.realm} = {\n  kdc = 127.0.0.1:${port}\n }\n`);
      const err = (await passwordLogin({ username: 'alice', password: 'whatever', krb5Config: conf, verifyKdc: false }).catch((e: unknown) => e)) as GssError;
      expect(err).toBeInstanceOf(KdcUnreachableError);
      expect(err.krb5Code).toBe(K.KDC_UNREACH);
    });

    it('an expired password is PasswordExpiredError (KRB5KDC_ERR_KEY_EXP)', async () => {
      const user = addUser('Expired-pw-1', '-pwexpire "2001-01-01 00:00:00 UTC"');
      const err = (await passwordLogin({ username: user, password: 'Expired-pw-1', keytab: realm.httpKeytab, servicePrincipal: spn() }).catch((e: unknown) => e)) as GssError;
      expect(err).toBeInstanceOf(PasswordExpiredError);
      expect(err.krb5Code).toBe(K.KEY_EXP);
    });

    it('a locked-out account is ClientRevokedError (KRB5KDC_ERR_CLIENT_REVOKED)', async () => {
      const policy = `edgelock${randomBytes(4).toString('hex')}`;
      kadminLocal(realm, `addpol -maxfailure 1 -lockoutduration "1 hour" -failurecountinterval "1 hour" ${policy}`);
      const user = addUser('Locked-pw-1', `-policy ${policy}`);
      await expect(passwordLogin({ username: user, password: 'wrong', keytab: realm.httpKeytab, servicePrincipal: spn() }))
        .rejects.toBeInstanceOf(BadPasswordError);
      const err = (await passwordLogin({ username: user, password: 'Locked-pw-1', keytab: realm.httpKeytab, servicePrincipal: spn() }).catch((e: unknown) => e)) as GssError;
      expect(err).toBeInstanceOf(ClientRevokedError);
      expect(err.krb5Code).toBe(K.CLIENT_REVOKED);
      expect(err.message).toMatch(/locked out/);
    });
  });
});
