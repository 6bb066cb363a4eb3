/**
 * A real Chromium that signs in with HTTP Negotiate from a Kerberos ticket cache: the driver lives
 * in @forwardable/testing/browsers (shared with the interoperability matrix).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';

export { CHROMIUM, openChromium as openBrowser } from '@forwardable/testing/browsers';
export type { UserBrowser } from '@forwardable/testing/browsers';

/** Save a screenshot as a test artefact under tmp/e2e-screenshots. */
export async function screenshot(page: Page, root: string, name: string): Promise<void> {
  const dir = join(root, 'tmp/e2e-screenshots');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}
