/**
 * A real Chromium (Debian's /usr/bin/chromium, driven by playwright-core: no browser download)
 * that signs in with HTTP Negotiate from a Kerberos ticket cache, as a user's browser would.
 * Facts behind the flags are in shared/KERBEROS-NOTES.md: a fresh profile needs its
 * `Local State` seeded, delegation is a Local State pref, and the SPN host must be `localhost`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrowserContext, chromium, Page } from 'playwright-core';
import type { RealmEnv, TicketCache } from '@forwardable/testing/realm';

export const CHROMIUM = process.env.FORWARDABLE_CHROMIUM ?? '/usr/bin/chromium';

export interface UserBrowser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/**
 * Start a browser for one user.
 * @param ticket - the user's ticket cache, or null for a browser with no ticket at all.
 * @param delegate - allow delegation to localhost (unconstrained mode needs it).
 */
export async function openBrowser(realm: RealmEnv, ticket: TicketCache | null, delegate: boolean): Promise<UserBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'fw-chromium-'));
  const auth: Record<string, string> = { server_allowlist: 'localhost' };
  if (delegate) auth.negotiate_delegate_whitelist = 'localhost';
  writeFileSync(join(profile, 'Local State'), JSON.stringify({ net: { received_http_auth_negotiate_headers: true }, auth }));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: profile,
    KRB5_CONFIG: realm.krb5Config,
    // A path that does not exist means "no ticket": an empty file would crash the network service.
    KRB5CCNAME: ticket ? ticket.name : `FILE:${join(profile, 'no-ticket-here')}`,
  };
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    env,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--auth-server-allowlist=localhost',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);
  return {
    context,
    page,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Save a screenshot as a test artefact under tmp/e2e-screenshots. */
export async function screenshot(page: Page, root: string, name: string): Promise<void> {
  const dir = join(root, 'tmp/e2e-screenshots');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}
