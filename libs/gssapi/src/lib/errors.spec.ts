import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  AcceptorContext,
  acquireServiceCredential,
  ClockSkewError,
  Credential,
  GssError,
  InitiatorContext,
  KeytabMissingError,
  KeytabNoKeyError,
  KeytabUnreadableError,
  KeyVersionMismatchError,
  ServerNotFoundError,
} from '../index';
import { __classifyForTest, toGssError } from './errors';
import { handshake, RealmEnv, useRealm, userCredential } from '../testing/realm';

/** Add `delta` to every key version number in a keytab (file format: MIT keytab v0x502). */
function bumpKvno(keytab: Buffer, delta: number): Buffer {
  const out = Buffer.from(keytab);
  expect(out.readUInt16BE(0)).toBe(0x0502);
  let off = 2;
  while (off + 4 <= out.length) {
    const size = out.readInt32BE(off);
    off += 4;
    if (size <= 0) {
      off += -size; // a hole left by a deleted entry
      continue;
    }
    const end = off + size;
    let p = off;
    const components = out.readUInt16BE(p);
    p += 2;
    for (let i = 0; i < components + 1; i++) p += 2 + out.readUInt16BE(p); // realm + components
    p += 4 + 4; // name type, timestamp
    out[p] = (out[p] + delta) & 0xff; // 8-bit kvno
    p += 1;
    p += 2; // key type
    p += 2 + out.readUInt16BE(p); // key
    if (end - p >= 4) out.writeUInt32BE(out.readUInt32BE(p) + delta, p); // 32-bit kvno
    off = end;
  }
  return out;
}

describe('errors that say what to do', () => {
  let realm: RealmEnv;
  let dir: string;

  beforeAll(() => {
    realm = useRealm('db2');
    dir = mkdtempSync(join(tmpdir(), 'fw-gss-err-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names a missing keytab', async () => {
    const err = await acquireServiceCredential({ keytab: join(dir, 'nope.keytab'), usage: 'accept' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeytabMissingError);
    expect((err as GssError).message).toMatch(/does not exist: export the service key once/);
    expect((err as GssError).minorText).toMatch(/No such file or directory/);
  });

  it('names an unreadable keytab (Permission denied)', async () => {
    const keytab = join(dir, 'locked.keytab');
    copyFileSync(realm.httpKeytab, keytab);
    if (process.getuid?.() !== 0) {
      writeFileSync(keytab, readFileSync(realm.httpKeytab), { mode: 0o000 });
      await expect(acquireServiceCredential({ keytab, usage: 'accept' })).rejects.toMatchObject({ code: 'ERR_GSS_KEYTAB_UNREADABLE' });
      return;
    }
    // Root reads everything: ask as an unprivileged user instead, in a child process. The child
    // loads a copy of the addon from a world-readable directory (the checkout may be private to
    // root) and prints the raw native failure; this process maps it as the library does.
    const box = mkdtempSync(join(tmpdir(), 'fw-unreadable-'));
    chmodSync(box, 0o755);
    try {
      const addon = join(box, 'gssapi.node');
      copyFileSync(resolve(__dirname, '../../build/Release/gssapi.node'), addon);
      chmodSync(addon, 0o755);
      const script = `const m = { exports: {} }; process.dlopen(m, ${JSON.stringify(addon)});
        m.exports.acquireServiceCredential({ keytab: ${JSON.stringify(realm.httpKeytab)}, usage: 'accept' })
          .then(() => console.log('{"code":"none"}'), (e) => console.log(JSON.stringify({ ...e, message: e.message })));`;
      const out = await new Promise<string>((res, rej) =>
        execFile(process.execPath, ['-e', script], {
          cwd: box,
          uid: 65534,
          gid: 65534,
          env: { PATH: process.env.PATH ?? '', KRB5_CONFIG: realm.krb5Config },
          timeout: 30_000,
        }, (e, stdout, stderr) => (e ? rej(new Error(`${e.message}\n${stderr}`)) : res(stdout))),
      );
      const raw = JSON.parse(out.trim().split('\n').pop() as string);
      expect(raw.minorText).toMatch(/Permission denied/);
      const mapped = toGssError(raw, { operation: 'acquire', keytab: realm.httpKeytab });
      expect(mapped).toBeInstanceOf(KeytabUnreadableError);
      expect(mapped.message).toMatch(/is not readable by uid/);
    } finally {
      rmSync(box, { recursive: true, force: true });
    }
  });

  it('names a keytab without the requested principal', async () => {
    const err = await acquireServiceCredential({ keytab: realm.httpKeytab, principal: `postgres/localhost@${realm.realm}`, usage: 'accept' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeytabNoKeyError);
    expect((err as GssError).message).toMatch(/has no usable key for postgres\/localhost/);
  });

  it('names a stale keytab (key version mismatch) when accepting a real token', async () => {
    const stale = join(dir, 'stale.keytab');
    writeFileSync(stale, bumpKvno(readFileSync(realm.httpKeytab), 5), { mode: 0o600 });
    // With a principal MIT looks the key up by version; without one it tries every key in the
    // keytab regardless of version, and a re-versioned copy of the right key would still work.
    const service = await acquireServiceCredential({ keytab: stale, principal: `HTTP/localhost@${realm.realm}`, usage: 'accept' });
    const alice = await userCredential(realm, 'alice');
    const client = new InitiatorContext({ credential: alice.cred, target: 'HTTP@localhost' });
    const acceptor = new AcceptorContext(service);
    try {
      const err = await handshake(client, acceptor).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KeyVersionMismatchError);
      expect((err as GssError).message).toMatch(/re-export the keytab/);
      expect((err as GssError).minorText).toMatch(/kvno \d+/);
    } finally {
      acceptor.dispose();
      client.dispose();
      alice.dispose();
      service.dispose();
    }
  });

  it('classifies a SPNEGO-wrapped failure, whose minor code MIT remapped, by its text (the fallback)', async () => {
    const stale = join(dir, 'stale-spnego.keytab');
    writeFileSync(stale, bumpKvno(readFileSync(realm.httpKeytab), 5), { mode: 0o600 });
    const service = await acquireServiceCredential({ keytab: stale, principal: `HTTP/localhost@${realm.realm}`, usage: 'accept' });
    const alice = await userCredential(realm, 'alice');
    const client = new InitiatorContext({ credential: alice.cred, target: 'HTTP@localhost', mech: 'spnego' });
    const acceptor = new AcceptorContext(service);
    try {
      const err = (await handshake(client, acceptor).catch((e: unknown) => e)) as GssError;
      expect(err).toBeInstanceOf(KeyVersionMismatchError);
      // No krb5 code survived SPNEGO (a small remapped minor, an extended message): the text decided.
      expect(err.krb5Code).toBeNull();
      expect(err.minor).toBeLessThan(0x1000000); // krb5 table codes are 0x96c73a00 and up
      expect(err.minorText).toMatch(/kvno \d+/);
    } finally {
      acceptor.dispose();
      client.dispose();
      alice.dispose();
      service.dispose();
    }
  });

  it('names an unknown target service (Server not found in Kerberos database)', async () => {
    const alice = await userCredential(realm, 'alice');
    // 127.0.0.1 is not in any SPN: the classic libpq mistake.
    const client = new InitiatorContext({ credential: alice.cred, target: 'postgres@127.0.0.1' });
    try {
      const err = await client.step(null).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ServerNotFoundError);
      expect((err as GssError).message).toMatch(/not an IP address/);
      expect((err as GssError).minorText).toMatch(/not found in Kerberos database/);
    } finally {
      client.dispose();
      alice.dispose();
    }
  });

  it('refuses a cache that does not exist as NoCredentialsError', async () => {
    await expect(Credential.fromCache(`FILE:${join(dir, 'none')}`, 'forwarded')).rejects.toMatchObject({ code: 'ERR_GSS_NO_CREDENTIALS', name: 'NoCredentialsError' });
  });

  it('maps clock skew by code and by text (the KDC in the test realm shares our clock)', () => {
    const skew = { major: 0xd0000, minor: 0x96c73a25, routine: 'gss_accept_sec_context', majorText: 'Unspecified GSS failure', minorText: 'Clock skew too great', minorKind: 'krb5' };
    expect(__classifyForTest(skew, { operation: 'accept' }).code).toBe(ClockSkewError.name === 'ClockSkewError' ? 'ERR_GSS_CLOCK_SKEW' : '');
    expect(__classifyForTest({ ...skew, minor: 100004 }, { operation: 'accept' }).code).toBe('ERR_GSS_CLOCK_SKEW');
    expect(__classifyForTest({ ...skew, minorText: 'something else' }, { operation: 'accept' }).code).toBe('ERR_GSS_CLOCK_SKEW');
    expect(__classifyForTest({ ...skew, minor: 1, minorText: 'something else' }, { operation: 'accept' }).code).toBe('ERR_GSS_FAILURE');
  });

  it('refuses caller mistakes with TypeError and a code', async () => {
    await expect(acquireServiceCredential({ keytab: '', usage: 'accept' })).rejects.toMatchObject({ code: 'ERR_GSS_INVALID_ARG' });
    await expect(acquireServiceCredential({ keytab: realm.httpKeytab, usage: 'initiate' as 'accept' })).rejects.toBeInstanceOf(TypeError);
    await expect(Credential.fromCache('KEYRING:x', 'forwarded')).rejects.toBeInstanceOf(TypeError);
    await expect(Credential.fromCache('MEMORY:x', 'other' as 'proxy')).rejects.toBeInstanceOf(TypeError);
    const service = await acquireServiceCredential({ keytab: realm.httpKeytab, usage: 'accept' });
    expect(() => new InitiatorContext({ credential: service, target: 'postgres@localhost' })).toThrow(TypeError);
    const alice = await userCredential(realm, 'alice');
    expect(() => new InitiatorContext({ credential: alice.cred, target: 'not a target' })).toThrow(expect.objectContaining({ code: 'ERR_GSS_INVALID_ARG' }));
    expect(() => new AcceptorContext(alice.cred)).toThrow(TypeError);
    expect(() => new (Credential as unknown as new (...a: unknown[]) => Credential)(Symbol('x'), null, 'forwarded')).toThrow(TypeError);
    alice.dispose();
    service.dispose();
  });
});
