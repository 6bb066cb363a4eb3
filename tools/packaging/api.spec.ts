/**
 * Public API stability: each package's API report (libs/<pkg>/<pkg>.api.md, API Extractor over the
 * built .d.ts) must match the code, so a change to a public signature is a deliberate, reviewed
 * change of the report (`npx nx run packaging:api-report-update`).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '@forwardable/testing/realm';

describe('API reports', () => {
  it.each(['gssapi', 'pg-gssapi', 'rls', 'nest'])('the checked-in API report of @forwardable/%s matches the built package', (p) => {
    const r = spawnSync('node', [join(repoRoot, 'tools/packaging/api-report.mjs'), '--only', p], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
    expect(`${r.stdout}${r.stderr}`).toContain(`OK ${p}:`);
    expect(r.status).toBe(0);
  });
});
