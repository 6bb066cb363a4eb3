/**
 * Real browsers that sign in with HTTP Negotiate from a Kerberos ticket cache, as a user's browser
 * would: Debian's Chromium (driven by playwright-core) and Debian's Firefox ESR (driven by
 * puppeteer-core over WebDriver BiDi, which stock Firefox speaks; Playwright's Firefox needs a
 * patched build). No browser is downloaded. Facts behind the settings are in
 * shared/KERBEROS-NOTES.md: a fresh Chromium profile needs its `Local State` seeded, delegation is
 * a pref in both browsers, and the SPN host must be `localhost`.
 *
 * The settings are the ones an administrator deploys as policies (docs/interop.md):
 * Chromium `AuthServerAllowlist` / `AuthNegotiateDelegateAllowlist`, Firefox
 * `network.negotiate-auth.trusted-uris` / `network.negotiate-auth.delegation-uris`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrowserContext, chromium, Page } from 'playwright-core';
import puppeteer from 'puppeteer-core';
import type { RealmEnv, TicketCache } from '@forwardable/testing/realm';

export const CHROMIUM = process.env.FORWARDABLE_CHROMIUM ?? '/usr/bin/chromium';
export const FIREFOX = process.env.FORWARDABLE_FIREFOX ?? '/usr/bin/firefox-esr';

/** The browsers of the interoperability matrix. */
export type BrowserName = 'chromium' | 'firefox';

/** A Chromium for one user (Playwright objects, for tests that click through the SPA). */
export interface UserBrowser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** The Kerberos environment of a browser process: the realm's profile and the user's cache. */
function kerberosEnv(realm: RealmEnv, ticket: TicketCache | null, profile: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: profile,
    KRB5_CONFIG: realm.krb5Config,
    // A path that does not exist means "no ticket": an empty file would crash Chromium's network service.
    KRB5CCNAME: ticket ? ticket.name : `FILE:${join(profile, 'no-ticket-here')}`,
  };
}

/**
 * Start Chromium for one user.
 * @param ticket - the user's ticket cache, or null for a browser with no ticket at all.
 * @param delegate - allow delegation to localhost (unconstrained mode needs it).
 */
export async function openChromium(realm: RealmEnv, ticket: TicketCache | null, delegate: boolean): Promise<UserBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'fw-chromium-'));
  const auth: Record<string, string> = { server_allowlist: 'localhost' };
  if (delegate) auth.negotiate_delegate_whitelist = 'localhost';
  writeFileSync(join(profile, 'Local State'), JSON.stringify({ net: { received_http_auth_negotiate_headers: true }, auth }));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      env: kerberosEnv(realm, ticket, profile),
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
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Firefox preferences for Negotiate against `localhost`, plus quiet ones (no update checks,
 * telemetry or other background traffic in a test). The first two (three with delegation) are
 * what an administrator sets by policy.
 */
export function firefoxPrefs(delegate: boolean): Record<string, string | boolean | number> {
  return {
    'network.negotiate-auth.trusted-uris': 'localhost',
    ...(delegate ? { 'network.negotiate-auth.delegation-uris': 'localhost' } : {}),
    'app.update.enabled': false,
    'app.normandy.enabled': false,
    'browser.shell.checkDefaultBrowser': false,
    'datareporting.policy.dataSubmissionEnabled': false,
    'datareporting.healthreport.uploadEnabled': false,
    'toolkit.telemetry.enabled': false,
    'network.captive-portal-service.enabled': false,
    'network.connectivity-service.enabled': false,
    'browser.safebrowsing.update.enabled': false,
    'extensions.update.enabled': false,
  };
}

/** What a browser fetched from the API's origin: status and parsed JSON body. */
export interface FetchedJson {
  status: number;
  body: unknown;
}

/**
 * One user's browser, for the interoperability matrix: it opens a page of the API's origin and
 * fetches API paths from it, as the SPA does, so the browser's own Negotiate code answers the
 * 401 challenge (ambient authentication works for fetch as for navigation).
 */
export interface NegotiatingBrowser {
  readonly name: BrowserName;
  /** Open `pageUrl`, then fetch each path in turn from that page (same origin, cookies kept). */
  fetchFromPage(pageUrl: string, paths: string[]): Promise<FetchedJson[]>;
  close(): Promise<void>;
}

/** Runs in the page: sequential same-origin fetches, bodies parsed when they are JSON. */
async function fetchAll(paths: string[]): Promise<{ status: number; text: string }[]> {
  const out: { status: number; text: string }[] = [];
  for (const p of paths) {
    const res = await fetch(p, { credentials: 'same-origin' });
    out.push({ status: res.status, text: await res.text() });
  }
  return out;
}

function parse(results: { status: number; text: string }[]): FetchedJson[] {
  return results.map((r) => {
    try {
      return { status: r.status, body: r.text ? JSON.parse(r.text) : null };
    } catch {
      return { status: r.status, body: { raw: r.text.slice(0, 500) } };
    }
  });
}

/**
 * Start a browser for one user.
 * @param ticket - the user's ticket cache, or null for none.
 * @param delegate - let the browser delegate (forward the TGT) to localhost.
 */
export async function openNegotiatingBrowser(name: BrowserName, realm: RealmEnv, ticket: TicketCache | null, delegate: boolean): Promise<NegotiatingBrowser> {
  if (name === 'chromium') {
    const b = await openChromium(realm, ticket, delegate);
    return {
      name,
      async fetchFromPage(pageUrl, paths) {
        await b.page.goto(pageUrl);
        return parse(await b.page.evaluate(fetchAll, paths));
      },
      close: () => b.close(),
    };
  }
  const profile = mkdtempSync(join(tmpdir(), 'fw-firefox-'));
  try {
    const browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath: FIREFOX,
      headless: true,
      userDataDir: profile,
      env: kerberosEnv(realm, ticket, profile),
      extraPrefsFirefox: firefoxPrefs(delegate),
      timeout: 60_000,
    });
    const page = await browser.newPage();
    page.setDefaultTimeout(20_000);
    return {
      name,
      async fetchFromPage(pageUrl, paths) {
        await page.goto(pageUrl);
        return parse(await page.evaluate(fetchAll, paths));
      },
      close: async () => {
        await browser.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}
