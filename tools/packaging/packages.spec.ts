/**
 * The published packages as a user gets them: `npm pack` of each built package (dist/libs/*),
 * installed with `npm install` into an empty scratch project in a temporary directory (third-party
 * dependencies from the npm registry, preferring the local cache), then used there: the native
 * addon is compiled from source at install, the CLI runs, and the example app
 * (examples/expense-reports) passes its own tests against the real test realm.
 *
 * `npm test` builds the packages before jest runs; alone: `npx nx test packaging`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureRealm, kinit, realmProcessEnv, repoRoot, superuserSql } from '@forwardable/testing/realm';

const PACKAGES = ['gssapi', 'pg-gssapi', 'rls', 'nest'] as const;
const DATABASE = 'expense_reports';
/** The example's tests (test/expense-reports.spec.ts): all must run and pass. */
const EXAMPLE_TESTS = 9;

interface PackResult {
  name: string;
  version: string;
  filename: string;
  files: { path: string }[];
}

const work = mkdtempSync(join(tmpdir(), 'forwardable-pack-'));
const app = join(work, 'expense-reports');
const packed = new Map<string, PackResult>();
const npmEnv = { ...process.env, npm_config_nodedir: process.env['npm_config_nodedir'] ?? '/usr', npm_config_update_notifier: 'false' };

function packOf(p: string): PackResult {
  const r = packed.get(p);
  if (!r) throw new Error(`@forwardable/${p} was not packed`);
  return r;
}

function npm(args: string[], cwd: string, timeout = 300_000): string {
  const r = spawnSync('npm', args, { cwd, env: npmEnv, encoding: 'utf8', timeout, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed (exit ${r.status}${r.signal ? `, ${r.signal}` : ''}):\n${r.stderr || r.stdout}`);
  return r.stdout;
}

beforeAll(() => {
  for (const p of PACKAGES) {
    const dir = join(repoRoot, 'dist/libs', p);
    if (!existsSync(join(dir, 'package.json'))) throw new Error(`${dir} is not built: run 'npx nx run-many -t build -p ${PACKAGES.join(' ')}'`);
    const [result] = JSON.parse(npm(['pack', dir, '--json', '--pack-destination', work, '--loglevel=error'], work)) as PackResult[];
    packed.set(p, result);
  }
  // The example, as a user would copy it: its own package.json, with the packages from the tarballs.
  cpSync(join(repoRoot, 'examples/expense-reports'), app, {
    recursive: true,
    filter: (src) => !/[/\\](node_modules|dist|project\.json|eslint\.config\.mjs)$/.test(src),
  });
  const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'));
  for (const [p, r] of packed) {
    const spec = `file:${join(work, r.filename)}`;
    for (const field of ['dependencies', 'devDependencies']) if (pkg[field]?.[r.name]) pkg[field][r.name] = spec;
    // Tarball installs are approved by their spec; registry installs by name (already in the file).
    if (p === 'gssapi') pkg.allowScripts[spec] = true;
  }
  writeFileSync(join(app, 'package.json'), JSON.stringify(pkg, null, 2));
  npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], app, 420_000);
}, 600_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('npm pack of each package', () => {
  it.each(PACKAGES)('@forwardable/%s has its types, docs, licence and exports', (p) => {
    const r = packOf(p);
    const files = r.files.map((f) => f.path);
    expect(r.name).toBe(`@forwardable/${p}`);
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'CHANGELOG.md', 'LICENSE', 'src/index.js', 'src/index.d.ts']));
    const manifest = JSON.parse(readFileSync(join(repoRoot, 'dist/libs', p, 'package.json'), 'utf8'));
    expect(manifest).toMatchObject({ license: 'MIT', types: './src/index.d.ts', exports: { '.': { types: './src/index.d.ts', default: './src/index.js' } } });
    expect(manifest.private).toBeUndefined();
    // Nothing of the workspace leaks in: no TypeScript sources, no specs, no prebuilt binaries.
    expect(files.filter((f) => /\.spec\.|(?<!\.d)\.ts$|\.node$/.test(f))).toEqual([]);
  });

  it('@forwardable/gssapi ships its C++ sources and binding.gyp, and builds at install', () => {
    const files = packOf('gssapi').files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['binding.gyp', 'src/native/addon.cc', 'src/native/common.h']));
    expect(existsSync(join(app, 'node_modules/@forwardable/gssapi/build/Release/gssapi.node'))).toBe(true);
  });
});

describe('installed into an empty project', () => {
  it('every package loads by its name and offers its entry points', () => {
    const out = execFileSync(
      'node',
      [
        '-e',
        `require('reflect-metadata');
         const g = require('@forwardable/gssapi'), p = require('@forwardable/pg-gssapi'),
               r = require('@forwardable/rls'), n = require('@forwardable/nest');
         console.log([typeof g.Credential.fromCache, typeof p.gssapiStream, typeof r.planPolicies,
                      typeof n.ForwardableModule.forRoot, typeof n.ForwardableModule.forRootAsync, typeof n.Public, typeof n.CurrentUser].join(','));`,
      ],
      { cwd: app, encoding: 'utf8' },
    );
    expect(out.trim()).toBe(Array(7).fill('function').join(','));
  });

  it("the example app's own tests pass against the real realm (approver sees only shared reports, employee only their own)", () => {
    const realm = ensureRealm('db2');
    superuserSql(realm, `DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    superuserSql(realm, `CREATE DATABASE ${DATABASE} OWNER dbadmin`);
    const results = join(work, 'example-results.json');
    const r = spawnSync(join(app, 'node_modules/.bin/jest'), ['--ci', '--json', `--outputFile=${results}`], {
      cwd: app,
      env: { ...process.env, EXPENSES_REALM_ENV: join(realm.dir, 'realm.env'), EXPENSES_PG_DATABASE: DATABASE },
      encoding: 'utf8',
      timeout: 300_000,
    });
    if (!existsSync(results)) throw new Error(`the example's jest did not run (exit ${r.status}):\n${r.stderr}`);
    const report = JSON.parse(readFileSync(results, 'utf8')) as {
      numPassedTests: number;
      numFailedTests: number;
      numRuntimeErrorTestSuites: number;
      testResults: { assertionResults: { fullName: string; status: string; failureMessages: string[] }[] }[];
    };
    const failures = report.testResults.flatMap((s) => s.assertionResults.filter((a) => a.status !== 'passed').map((a) => `${a.fullName}: ${a.failureMessages.join('\n')}`));
    expect({ failures, stderr: report.numRuntimeErrorTestSuites ? r.stderr : '' }).toEqual({ failures: [], stderr: '' });
    expect(report.numPassedTests).toBe(EXAMPLE_TESTS);
    expect(r.status).toBe(0);
  });

  it('the forwardable-rls CLI, as installed, plans the policies on the migrated database with the operator\'s ticket', () => {
    const realm = ensureRealm('db2');
    const dbadmin = kinit(realm, 'dbadmin');
    try {
      const r = spawnSync(join(app, 'node_modules/.bin/forwardable-rls'), ['plan', '--mapping', 'rls-mapping.json'], {
        cwd: app,
        env: realmProcessEnv(realm, { KRB5CCNAME: dbadmin.name, FORWARDABLE_PG_DATABASE: DATABASE }),
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain('CREATE POLICY "expense_reports_rls_select" ON "public"."expense_reports"');
      expect(r.stdout).toContain('CREATE POLICY "report_approvers_rls_insert" ON "public"."report_approvers"');
      expect(r.status).toBe(0);
    } finally {
      dbadmin.destroy();
    }
  });
});
