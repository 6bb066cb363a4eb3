/**
 * The built API and SPA on a test realm (tools/scripts/stack.sh), for the browser specs: `up`
 * before the first page, `down` after the last. Both throw with the script's stderr on failure.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { RealmEnv, repoRoot } from '@forwardable/testing/realm';

export function stack(cmd: 'up' | 'down', realm: RealmEnv, delegation: 'constrained' | 'unconstrained' = 'unconstrained'): void {
  execFileSync('bash', [join(repoRoot, 'tools/scripts/stack.sh'), cmd, '--dir', realm.dir, '--delegation', delegation], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: process.env,
    timeout: 120_000,
  });
}

/**
 * What a user without access sees of a folder and a file in it: the folder is not in the tree,
 * and the file's own URL shows the error page, not the file.
 */
export async function expectNeitherFolderNorFile(page: Page, realm: RealmEnv, folder: string, fileUrl: string): Promise<void> {
  await page.goto(realm.url);
  await page.getByTestId('tree').waitFor();
  expect(await page.getByTestId('tree').innerText()).not.toContain(folder);
  await page.goto(fileUrl);
  await page.getByTestId('error').waitFor();
  expect(await page.getByTestId('file-view').count()).toBe(0);
}
