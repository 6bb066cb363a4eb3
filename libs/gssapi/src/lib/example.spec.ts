import { ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { curlNegotiate, kinit, realmProcessEnv, RealmEnv, useRealm } from '../testing/realm';

// The README's example must run as documented: start it, sign in with curl, stop it.
describe('README example (examples/negotiate-server.ts)', () => {
  let realm: RealmEnv;
  let child: ChildProcess | undefined;

  beforeAll(() => {
    realm = useRealm('db2');
  });
  afterAll(() => {
    child?.kill('SIGTERM');
  });

  it('serves Negotiate: 401 without a ticket, 200 with the user name and the forwarded TGT with one', async () => {
    const repo = resolve(__dirname, '../../../..');
    child = spawn(process.execPath, [join(repo, 'node_modules/ts-node/dist/bin.js'), '--transpile-only', '-r', 'tsconfig-paths/register', 'libs/gssapi/examples/negotiate-server.ts'], {
      cwd: repo,
      env: realmProcessEnv(realm, { TS_NODE_PROJECT: 'libs/gssapi/tsconfig.lib.json', PORT: '0' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d) => (stderr += d));
    const url = await new Promise<string>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`the example did not start: ${stderr}`)), 30_000);
      child?.stdout?.on('data', (d: Buffer) => {
        const m = /listening on (\S+)/.exec(d.toString());
        if (m) {
          clearTimeout(timer);
          res(m[1]);
        }
      });
      child?.on('exit', (code) => rej(new Error(`the example exited (${code}): ${stderr}`)));
    });
    const alice = kinit(realm, 'alice');
    const nobody = { name: 'FILE:/nonexistent/ccache', path: '/nonexistent/ccache', destroy: () => undefined };
    try {
      await expect(curlNegotiate(realm, nobody, url)).resolves.toMatchObject({ status: 401 });
      await expect(curlNegotiate(realm, alice, url, ['--delegation', 'always'])).resolves.toEqual({
        status: 200,
        body: `hello alice@${realm.realm} (delegation: forwarded)\n`,
      });
    } finally {
      alice.destroy();
    }
  });
});
