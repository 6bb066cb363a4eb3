/**
 * The whole chain as a user lives it: a real Chromium with a real Kerberos ticket opens the app,
 * signs in silently, delegates, and sees only what PostgreSQL allows. The API and the SPA are the
 * built artefacts (dist/), started by tools/scripts/stack.sh on a test realm.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { ensureRealm, kinit, RealmEnv, repoRoot, TicketCache } from '@forwardable/testing/realm';
import { openBrowser, screenshot, UserBrowser } from './support/browser';

function stack(cmd: 'up' | 'down', realm: RealmEnv, delegation: 'constrained' | 'unconstrained'): void {
  execFileSync('bash', [join(repoRoot, 'tools/scripts/stack.sh'), cmd, '--dir', realm.dir, '--delegation', delegation], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: process.env,
    timeout: 120_000,
  });
}

async function bannerText(page: Page): Promise<string> {
  return (await page.getByTestId('banner').innerText()).replace(/\s+/g, ' ').trim();
}

describe.each([
  ['ldap', 'constrained', false],
  ['db2', 'unconstrained', true],
] as const)('sign-on in Chromium (%s realm, %s delegation)', (kdb, mode, delegatePref) => {
  let realm: RealmEnv;
  const tickets: TicketCache[] = [];
  const browsers: UserBrowser[] = [];
  const tag = randomUUID().slice(0, 6);
  const shot = (page: Page, name: string) => screenshot(page, repoRoot, `${mode}-${name}`);

  async function browserFor(user: 'alice' | 'bob' | 'carol' | 'dbadmin' | null, delegate = delegatePref): Promise<UserBrowser> {
    let cc: TicketCache | null = null;
    if (user) {
      cc = kinit(realm, user);
      tickets.push(cc);
    }
    const b = await openBrowser(realm, cc, delegate);
    browsers.push(b);
    return b;
  }

  beforeAll(() => {
    realm = ensureRealm(kdb);
    stack('up', realm, mode);
  });
  afterAll(async () => {
    await Promise.allSettled(browsers.map((b) => b.close()));
    tickets.forEach((t) => t.destroy());
    if (realm) stack('down', realm, mode);
  });

  it('alice signs in without a prompt, creates a folder and a file and shares it with bob; bob reads it read-only; carol sees neither', async () => {
    const alice = await browserFor('alice');
    await alice.page.goto(realm.url);
    const kind = mode === 'constrained' ? 'Kerberos, constrained delegation' : 'Kerberos, delegated';
    await alice.page.getByTestId('banner').getByText(kind).waitFor();
    expect(await bannerText(alice.page)).toContain(`You are signed in as alice — ${kind}`);
    await shot(alice.page, 'alice-signed-in');

    const folder = `e2e-${tag}`;
    await alice.page.getByTestId('new-folder').click();
    await alice.page.getByTestId('new-folder-name').fill(folder);
    await alice.page.getByTestId('new-folder-submit').click();
    await alice.page.getByRole('link', { name: folder }).click();
    await alice.page.getByTestId('new-file').click();
    await alice.page.getByTestId('new-file-name').fill(`plan-${tag}.txt`);
    await alice.page.getByTestId('new-file-content').fill('the plan, for bob to read');
    await alice.page.getByTestId('new-file-submit').click();
    await alice.page.getByRole('link', { name: `plan-${tag}.txt` }).click();
    await alice.page.getByTestId('file-view').waitFor();
    const fileUrl = alice.page.url();
    expect(fileUrl).toMatch(/\/files\/[0-9a-f-]{36}$/);
    await alice.page.getByTestId('file-view').getByTestId('share').click();
    await alice.page.getByTestId('grantee').fill('bob');
    await alice.page.getByTestId('grant').click();
    await alice.page.getByTestId('permission-row').filter({ hasText: 'bob' }).waitFor();
    await shot(alice.page, 'alice-shared');

    const bob = await browserFor('bob');
    await bob.page.goto(fileUrl);
    await bob.page.getByTestId('file-readonly').waitFor();
    expect(await bob.page.getByTestId('file-content').inputValue()).toBe('the plan, for bob to read');
    expect(await bob.page.getByTestId('file-content').getAttribute('readonly')).not.toBeNull();
    expect(await bob.page.getByTestId('file-save').count()).toBe(0);
    expect(await bannerText(bob.page)).toContain('signed in as bob');
    await shot(bob.page, 'bob-read-only');

    const carol = await browserFor('carol');
    await carol.page.goto(realm.url);
    await carol.page.getByTestId('tree').waitFor();
    expect(await carol.page.getByTestId('tree').innerText()).not.toContain(folder);
    await carol.page.goto(fileUrl);
    await carol.page.getByTestId('error').waitFor();
    expect(await carol.page.getByTestId('file-view').count()).toBe(0);
    await shot(carol.page, 'carol-not-found');

    // The classic injection finds nothing extra: bob sees the one shared file and nothing else.
    await bob.page.goto(`${realm.url}search`);
    await bob.page.getByTestId('search-input').fill("' OR 1=1; --");
    await bob.page.getByTestId('search-submit').click();
    await bob.page.waitForLoadState('networkidle');
    expect(await bob.page.getByTestId('search-result').count()).toBe(0);
    await bob.page.getByTestId('search-input').fill(tag);
    await bob.page.getByTestId('search-submit').click();
    await bob.page.getByTestId('search-result').first().waitFor();
    expect(await bob.page.getByTestId('search-result').allInnerTexts()).toEqual([expect.stringContaining(`plan-${tag}.txt`)]);
    await shot(bob.page, 'bob-search');
  });

  it('logout, then a fresh visit signs in again silently', async () => {
    const alice = await browserFor('alice');
    await alice.page.goto(realm.url);
    await alice.page.getByTestId('sign-out').click();
    await alice.page.waitForURL(/sign-in/);
    await alice.page.goto(realm.url);
    await alice.page.getByTestId('banner').getByText('alice').waitFor();
    expect(await bannerText(alice.page)).toContain('signed in as alice');
  });

  it('without a ticket shows the sign-in page; a wrong password is refused and bob\'s password works', async () => {
    const none = await browserFor(null);
    await none.page.goto(realm.url);
    await none.page.getByTestId('no-ticket').waitFor();
    await none.page.getByTestId('kerberos-help').waitFor();
    await shot(none.page, 'no-ticket');
    await none.page.getByTestId('login-username').fill('bob');
    await none.page.getByTestId('login-password').fill('certainly-not-his-password');
    await none.page.getByTestId('login-submit').click();
    await none.page.getByTestId('login-error').waitFor();
    expect(await none.page.getByTestId('login-error').innerText()).toMatch(/wrong user name or password/);
    await none.page.getByTestId('login-password').fill(realm.passwords.bob);
    await none.page.getByTestId('login-submit').click();
    await none.page.getByTestId('banner').getByText('password sign-in').waitFor();
    expect(await bannerText(none.page)).toContain('signed in as bob — password sign-in');
    await shot(none.page, 'bob-password');
  });

  it('the setup wizard previews and applies policies for dbadmin, and is refused to alice', async () => {
    const admin = await browserFor('dbadmin');
    await admin.page.goto(realm.url);
    await admin.page.getByTestId('admin-setup').click();
    await admin.page.getByTestId('wizard-target').getByText('forwardable').first().waitFor();
    expect(await admin.page.getByTestId('wizard-target').innerText()).toContain('dbadmin');
    await admin.page.getByTestId('wizard-next').click();
    await admin.page.getByTestId('wizard-models').waitFor();
    // Protect exactly the files table, with its permission table (once the tables are there).
    await admin.page.locator('[data-testid=wizard-table][data-table=files]').waitFor();
    for (const table of await admin.page.getByTestId('wizard-table').all()) {
      const name = await table.getAttribute('data-table');
      const box = table.locator('legend input[type=checkbox]');
      if (await box.isDisabled()) continue;
      await box.setChecked(name === 'files');
    }
    const files = admin.page.locator('[data-testid=wizard-table][data-table=files]');
    await files.getByTestId('owner-column').selectOption('owner');
    await files.getByTestId('permission-table').selectOption('file_permissions');
    await files.getByTestId('grantee-column').selectOption('grantee');
    await admin.page.getByTestId('wizard-to-preview').click();
    await admin.page.getByTestId('wizard-preview').waitFor().catch(async (e) => {
      throw new Error(`${e.message}\npage: ${await admin.page.locator('main').innerText()}`);
    });
    const sql = await admin.page.getByTestId('wizard-preview').innerText();
    expect(sql).toMatch(/ALTER TABLE "public"\."files" FORCE ROW LEVEL SECURITY/);
    expect(sql).toMatch(/CREATE POLICY "files_rls_select"/);
    await shot(admin.page, 'wizard-preview');
    await admin.page.getByTestId('wizard-apply').click();
    await admin.page.getByTestId('wizard-result').waitFor();
    expect(await admin.page.getByTestId('wizard-result').innerText()).toMatch(/Applied: \d+ statements ran/);
    await shot(admin.page, 'wizard-applied');

    const alice = await browserFor('alice');
    await alice.page.goto(realm.url);
    await alice.page.getByTestId('banner').waitFor();
    expect(await alice.page.getByTestId('admin-setup').count()).toBe(0);
    await alice.page.goto(`${realm.url}admin/setup`);
    await alice.page.waitForLoadState('networkidle');
    expect(await alice.page.getByTestId('wizard-target').count()).toBe(0);
    const status = await alice.page.evaluate(async () => (await fetch('/api/rls/models')).status);
    expect(status).toBe(403);
  });
});
