/**
 * The module-boundary rule is only worth something if it fails on a wrong import. These lint
 * deliberately bad files (in memory, at paths inside real projects) with the workspace's own
 * ESLint config, and a good one, and check the verdicts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '../..');

// ESLint loads its flat config with a dynamic import, which jest's VM refuses: run the real CLI.
async function boundaryErrors(filePath: string, code: string): Promise<string[]> {
  const r = spawnSync(
    process.execPath,
    [join(root, 'node_modules/eslint/bin/eslint.js'), '--format', 'json', '--stdin', '--stdin-filename', filePath],
    { cwd: root, input: code, encoding: 'utf8', env: { ...process.env, NX_DAEMON: 'false' } },
  );
  if (!r.stdout) throw new Error(`eslint failed: ${r.stderr}`);
  const [result] = JSON.parse(r.stdout) as { messages: { ruleId: string | null; message: string }[] }[];
  return result.messages.filter((m) => m.ruleId === '@nx/enforce-module-boundaries').map((m) => m.message);
}

describe('module boundaries', () => {
  beforeAll(() => {
    // The rule reads the cached project graph; make sure it exists and is current.
    execFileSync('npx', ['nx', 'show', 'projects'], { cwd: root, env: { ...process.env, NX_DAEMON: 'false' }, stdio: 'ignore' });
  });

  it('rejects the server stack imported into the Angular app', async () => {
    const errors = await boundaryErrors('apps/web/src/app/bad-import.ts', "import { Controller } from '@nestjs/common';\nexport const c = Controller;\n");
    expect(errors).toEqual(['A project tagged with "scope:web" is not allowed to import "@nestjs/common"']);
  });

  it('rejects a server-side workspace library imported into the Angular app', async () => {
    const errors = await boundaryErrors('apps/web/src/app/bad-import.ts', "import { kinit } from '@forwardable/testing/realm';\nexport const x = kinit;\n");
    expect(errors.join('\n')).toMatch(/tagged with "scope:web" can only depend on libs tagged with "scope:web", "scope:shared"/);
  });

  it('rejects Angular imported into the API', async () => {
    const errors = await boundaryErrors('apps/api/src/app/bad-import.ts', "import { Component } from '@angular/core';\nexport const c = Component;\n");
    expect(errors).toEqual(['A project tagged with "scope:api" is not allowed to import "@angular/core"']);
  });

  it('accepts an allowed import', async () => {
    const errors = await boundaryErrors('apps/api/src/app/good-import.ts', "import { Controller } from '@nestjs/common';\nexport const c = Controller;\n");
    expect(errors).toEqual([]);
  });
});
