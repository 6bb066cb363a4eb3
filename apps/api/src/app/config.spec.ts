import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './config';

// The link to PostgreSQL (#17): a remote server gets GSSAPI encryption or the API does not start.
describe('FORWARDABLE_PG_GSSENCMODE and the loopback rule', () => {
  let dir: string;
  let base: Record<string, string>;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fwd-config-'));
    writeFileSync(join(dir, 'http.keytab'), 'not read here');
    base = {
      FORWARDABLE_KEYTAB: join(dir, 'http.keytab'),
      FORWARDABLE_SERVICE_PRINCIPAL: 'HTTP/app.example.com@EXAMPLE.COM',
      FORWARDABLE_PG_DATABASE: 'app',
    };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const problems = (env: Record<string, string>): string => {
    try {
      loadConfig({ ...base, ...env });
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    throw new Error('expected a ConfigError');
  };

  it('defaults to prefer on loopback and to require for a remote server', () => {
    expect(loadConfig({ ...base, FORWARDABLE_PG_HOST: 'localhost' }).pg.gssencmode).toBe('prefer');
    expect(loadConfig({ ...base, FORWARDABLE_PG_HOST: 'db.example.com', FORWARDABLE_PG_HOSTADDR: '127.0.0.1' }).pg.gssencmode).toBe('prefer');
    const remote = loadConfig({ ...base, FORWARDABLE_PG_HOST: 'db.example.com' });
    expect(remote.pg.gssencmode).toBe('require');
    expect(remote.pg.cleartextWarning).toBeUndefined();
    expect(loadConfig({ ...base, FORWARDABLE_PG_HOST: 'localhost', FORWARDABLE_PG_HOSTADDR: '10.1.2.3' }).pg.gssencmode).toBe('require');
  });

  it('refuses to start with prefer to a remote server (it could fall back to cleartext), saying what to set', () => {
    const msg = problems({ FORWARDABLE_PG_HOST: 'db.example.com', FORWARDABLE_PG_GSSENCMODE: 'prefer' });
    expect(msg).toMatch(/FORWARDABLE_PG_GSSENCMODE=prefer, FORWARDABLE_PG_SSLMODE=\(default\): PostgreSQL at db.example.com is not on loopback.*use "require".*hostgssenc/);
  });

  it('accepts an explicit disable to a remote server, with a loud warning to log', () => {
    const c = loadConfig({ ...base, FORWARDABLE_PG_HOST: 'db.example.com', FORWARDABLE_PG_GSSENCMODE: 'disable' });
    expect(c.pg.gssencmode).toBe('disable');
    expect(c.pg.cleartextWarning).toMatch(/DISABLED.*cleartext.*gssencmode=require/);
  });

  it('refuses an unknown mode with libpq\'s names', () => {
    expect(problems({ FORWARDABLE_PG_HOST: 'localhost', FORWARDABLE_PG_GSSENCMODE: 'always' })).toMatch(/FORWARDABLE_PG_GSSENCMODE=always must be one of disable, prefer, require/);
  });

  it('accepts a remote server with TLS required instead (FORWARDABLE_PG_SSLMODE), GSSAPI encryption still tried first', () => {
    const c = loadConfig({ ...base, FORWARDABLE_PG_HOST: 'db.example.com', FORWARDABLE_PG_SSLMODE: 'verify-full', FORWARDABLE_PG_SSLROOTCERT: __filename });
    expect(c.pg).toMatchObject({ gssencmode: 'prefer', sslmode: 'verify-full', sslrootcert: __filename });
    expect(c.pg.cleartextWarning).toBeUndefined();
    expect(loadConfig({ ...base, FORWARDABLE_PG_HOST: 'localhost' }).pg.sslmode).toBe('prefer');
  });

  it('refuses bad TLS settings, saying what to set', () => {
    expect(problems({ FORWARDABLE_PG_HOST: 'localhost', FORWARDABLE_PG_SSLMODE: 'allow' })).toMatch(/FORWARDABLE_PG_SSLMODE=allow must be one of disable, prefer, require, verify-ca, verify-full/);
    expect(problems({ FORWARDABLE_PG_HOST: 'db.example.com', FORWARDABLE_PG_SSLMODE: 'verify-ca' })).toMatch(/needs sslrootcert \(FORWARDABLE_PG_SSLROOTCERT\)/);
    expect(problems({ FORWARDABLE_PG_HOST: 'localhost', FORWARDABLE_PG_SSLROOTCERT: '/nonexistent/ca.crt' })).toMatch(/FORWARDABLE_PG_SSLROOTCERT=\/nonexistent\/ca.crt does not exist/);
    expect(problems({ FORWARDABLE_PG_HOST: 'db.example.com', FORWARDABLE_PG_GSSENCMODE: 'prefer', FORWARDABLE_PG_SSLMODE: 'prefer' })).toMatch(/not on loopback.*sslmode "verify-full"/);
  });

  // The connection scheduler (#19): defaults, explicit values, and bad values refused with the variable named.
  it('reads the scheduler settings: slice, per-user queue bound and queue deadline', () => {
    expect(loadConfig({ ...base, FORWARDABLE_PG_HOST: 'localhost' }).pg).toMatchObject({ sliceMs: 250, maxQueuePerUser: 64, queueTimeoutMs: 10_000 });
    const c = loadConfig({ ...base, FORWARDABLE_PG_HOST: 'localhost', FORWARDABLE_PG_SLICE_MS: '100', FORWARDABLE_PG_MAX_QUEUE_PER_USER: '8', FORWARDABLE_PG_QUEUE_TIMEOUT_MS: '2000' });
    expect(c.pg).toMatchObject({ sliceMs: 100, maxQueuePerUser: 8, queueTimeoutMs: 2000 });
    expect(problems({ FORWARDABLE_PG_HOST: 'localhost', FORWARDABLE_PG_SLICE_MS: '0' })).toMatch(/FORWARDABLE_PG_SLICE_MS/);
    expect(problems({ FORWARDABLE_PG_HOST: 'localhost', FORWARDABLE_PG_MAX_QUEUE_PER_USER: 'lots' })).toMatch(/FORWARDABLE_PG_MAX_QUEUE_PER_USER/);
  });

  // Hot standbys for reads (#19): host[:port] list, the link rule per host, the primary's address only with its name.
  it('reads FORWARDABLE_PG_READ_HOSTS: ports default to the primary\'s, each host gets its own link protection', () => {
    expect(loadConfig({ ...base, FORWARDABLE_PG_HOST: 'localhost' }).pg.readHosts).toEqual([]);
    const c = loadConfig({ ...base, FORWARDABLE_PG_HOST: 'localhost', FORWARDABLE_PG_HOSTADDR: '127.0.0.1', FORWARDABLE_PG_READ_HOSTS: 'localhost:5433, db-standby.example.com' });
    expect(c.pg.readHosts).toEqual([
      { host: 'localhost', hostaddr: '127.0.0.1', port: 5433, gssencmode: 'prefer', sslmode: 'prefer' },
      { host: 'db-standby.example.com', hostaddr: undefined, port: undefined, gssencmode: 'require', sslmode: 'prefer' },
    ]);
  });

  it('refuses a malformed read host, and prefer to a remote one, naming FORWARDABLE_PG_READ_HOSTS', () => {
    expect(problems({ FORWARDABLE_PG_HOST: 'localhost', FORWARDABLE_PG_READ_HOSTS: 'postgres://standby' })).toMatch(/FORWARDABLE_PG_READ_HOSTS: "postgres:\/\/standby" is not host\[:port\]/);
    expect(problems({ FORWARDABLE_PG_HOST: 'localhost', FORWARDABLE_PG_READ_HOSTS: 'standby:99999' })).toMatch(/FORWARDABLE_PG_READ_HOSTS: "standby:99999"/);
    expect(problems({ FORWARDABLE_PG_HOST: 'localhost', FORWARDABLE_PG_GSSENCMODE: 'prefer', FORWARDABLE_PG_READ_HOSTS: 'db-standby.example.com' })).toMatch(/FORWARDABLE_PG_READ_HOSTS: db-standby.example.com: .*not on loopback/);
  });

  // Name case (#20): exact by default; lower for AD-style principals; anything else stops the API.
  it('reads FORWARDABLE_USERNAME_CASE: exact by default, lower on request, anything else refused with the allowed values', () => {
    expect(loadConfig({ ...base, FORWARDABLE_PG_HOST: 'localhost' }).usernameCase).toBe('exact');
    expect(loadConfig({ ...base, FORWARDABLE_PG_HOST: 'localhost', FORWARDABLE_USERNAME_CASE: 'lower' }).usernameCase).toBe('lower');
    expect(problems({ FORWARDABLE_PG_HOST: 'localhost', FORWARDABLE_USERNAME_CASE: 'insensitive' })).toMatch(/FORWARDABLE_USERNAME_CASE=insensitive must be one of exact, lower.*krb_caseins_users = on/);
  });
});
