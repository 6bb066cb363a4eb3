/**
 * Return to the page first asked for after a password sign-in, in a real Chromium against the
 * built API and SPA (tools/scripts/stack.sh): a browser without a ticket opens the setup wizard,
 * is sent to the sign-in page, signs in with dbadmin's password and lands on the wizard. A sign-in
 * link crafted to send the user elsewhere afterwards keeps them on this site.
 */
import { ensureRealm, RealmEnv } from '@forwardable/testing/realm';
import { openBrowser, UserBrowser } from './support/browser';
import { stack } from './support/stack';

describe('return to the page first asked for after a password sign-in (Chromium, db2 realm)', () => {
  let realm: RealmEnv;
  const browsers: UserBrowser[] = [];

  beforeAll(() => {
    realm = ensureRealm('db2');
    stack('up', realm);
  });
  afterAll(async () => {
    await Promise.allSettled(browsers.map((b) => b.close()));
    if (realm) stack('down', realm);
  });

  async function signInWithPassword(b: UserBrowser, user: 'dbadmin' | 'bob'): Promise<void> {
    await b.page.getByTestId('no-ticket').waitFor();
    await b.page.getByTestId('login-username').fill(user);
    await b.page.getByTestId('login-password').fill(realm.passwords[user]);
    await b.page.getByTestId('login-submit').click();
    await b.page.getByTestId('banner').getByText('password sign-in').waitFor();
  }

  it('a browser without a ticket that opened the setup wizard is back on the wizard after signing in', async () => {
    const b = await openBrowser(realm, null, false);
    browsers.push(b);
    await b.page.goto(new URL('admin/setup', realm.url).href);
    await b.page.waitForURL(/\/sign-in\?returnTo=%2Fadmin%2Fsetup$/);
    await signInWithPassword(b, 'dbadmin');
    await b.page.waitForURL(/\/admin\/setup$/);
    expect(new URL(b.page.url()).pathname).toBe('/admin/setup');
  });

  it('a crafted sign-in link cannot send the signed-in user to another site', async () => {
    const b = await openBrowser(realm, null, false);
    browsers.push(b);
    await b.page.goto(new URL('sign-in?returnTo=%2F%2Fevil.example%2Fphish', realm.url).href);
    await signInWithPassword(b, 'bob');
    // The banner can show before the router has left the sign-in page: wait for the navigation,
    // wherever it goes (to another site too, so that the assertions below can fail on it).
    await b.page.waitForURL((u) => !u.pathname.startsWith('/sign-in'));
    const landed = new URL(b.page.url());
    expect(landed.origin).toBe(new URL(realm.url).origin);
    expect(landed.pathname).toBe('/');
  });
});
