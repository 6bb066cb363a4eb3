/**
 * The built SPA under the API's Content-Security-Policy, in a real Chromium: it signs in, renders
 * with its stylesheet applied, and the browser reports no violation (a blocked script, style or
 * event handler would show up as a `securitypolicyviolation` event or a console error).
 */
import { ensureRealm, kinit, RealmEnv, TicketCache } from '@forwardable/testing/realm';
import { openBrowser, UserBrowser } from './support/browser';
import { stack } from './support/stack';

describe('the SPA under the Content-Security-Policy (db2 realm)', () => {
  let realm: RealmEnv;
  let ticket: TicketCache | undefined;
  let browser: UserBrowser | undefined;

  beforeAll(() => {
    realm = ensureRealm('db2');
    stack('up', realm);
  });
  afterAll(async () => {
    await browser?.close();
    ticket?.destroy();
    if (realm) stack('down', realm);
  });

  it('signs alice in and renders with its styles, with no CSP violation', async () => {
    ticket = kinit(realm, 'alice');
    browser = await openBrowser(realm, ticket, true);
    const { page } = browser;
    const consoleErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) consoleErrors.push(m.text());
    });
    // Recorded in the page from its first script on, read back at the end.
    await page.addInitScript(() => {
      const w = window as unknown as { __cspViolations: string[] };
      w.__cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => w.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    const response = await page.goto(realm.url);
    const csp = (await response?.allHeaders())?.['content-security-policy'] ?? '';
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("script-src 'self'");
    await page.getByTestId('banner').getByText('Kerberos, delegated').waitFor();
    expect(await page.getByTestId('banner').innerText()).toContain('alice');
    // The global stylesheet applied: the body no longer has the browser's default 8px margin.
    expect(await page.evaluate(() => getComputedStyle(document.body).margin)).not.toBe('8px');
    const violations = await page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations);
    expect(violations).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});
