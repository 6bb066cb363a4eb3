/**
 * The whole chain as a user lives it: a real Chromium with a real Kerberos ticket opens the app,
 * signs in silently, delegates, and sees only what PostgreSQL allows. The API and the SPA are the
 * built artefacts (dist/), started by tools/scripts/stack.sh on a test realm.
 */
import { randomUUID } from 'node:crypto';
import type { Page } from 'playwright-core';
import { ensureRealm, kinit, RealmEnv, repoRoot, TicketCache } from '@forwardable/testing/realm';
import { openBrowser, screenshot, UserBrowser } from './support/browser';
import { expectNeitherFolderNorFile, stack } from './support/stack';

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
    await expectNeitherFolderNorFile(carol.page, realm, folder, fileUrl);
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

  it('alice shares a folder, bob for editing and carol for reading: both reach a file in its sub-folder; bob edits and renames it, carol only reads; alice sees who has what', async () => {
    const alice = await browserFor('alice');
    await alice.page.goto(realm.url);
    const team = `team-${tag}`;
    const doc = `doc-${tag}.txt`;
    await alice.page.getByTestId('new-folder').click();
    await alice.page.getByTestId('new-folder-name').fill(team);
    await alice.page.getByTestId('new-folder-submit').click();
    await alice.page.getByRole('link', { name: team }).click();
    await alice.page.getByRole('heading', { name: team }).waitFor();
    await alice.page.getByTestId('new-folder').click();
    await alice.page.getByTestId('new-folder-name').fill('drafts');
    await alice.page.getByTestId('new-folder-submit').click();
    await alice.page.getByRole('link', { name: 'drafts' }).click();
    await alice.page.getByRole('heading', { name: 'drafts' }).waitFor();
    await alice.page.getByTestId('new-file').click();
    await alice.page.getByTestId('new-file-name').fill(doc);
    await alice.page.getByTestId('new-file-content').fill('v1 by alice');
    await alice.page.getByTestId('new-file-submit').click();
    await alice.page.getByRole('link', { name: doc }).waitFor();
    await alice.page.getByRole('link', { name: /Up to parent folder/ }).click();
    await alice.page.getByRole('heading', { name: team }).waitFor();

    await alice.page.getByRole('button', { name: 'Share folder' }).click();
    for (const [who, level, label] of [['bob', 'write', 'can edit'], ['carol', 'read', 'can read']] as const) {
      await alice.page.getByTestId('grantee').fill(who);
      await alice.page.getByTestId('grant-level').selectOption(level);
      await alice.page.getByTestId('grant').click();
      await alice.page.getByTestId('permission-row').filter({ hasText: who }).getByText(label).waitFor();
    }
    await shot(alice.page, 'alice-shared-folder');
    await alice.page.keyboard.press('Escape');

    // bob: into the folder, into the sub-folder, edits the file, renames it
    const bob = await browserFor('bob');
    await bob.page.goto(realm.url);
    await bob.page.getByRole('link', { name: team }).click();
    await bob.page.getByRole('link', { name: 'drafts' }).click();
    await bob.page.getByRole('link', { name: doc }).click();
    await bob.page.getByTestId('file-editor').waitFor();
    expect(await bob.page.getByTestId('delete').count()).toBe(0);
    await bob.page.getByTestId('file-content').fill('v2 by bob');
    await bob.page.getByTestId('file-save').click();
    await bob.page.getByText('Saved.').waitFor();
    await bob.page.getByRole('link', { name: /Back to the folder/ }).click();
    await bob.page.getByRole('heading', { name: 'drafts' }).waitFor();
    await bob.page.getByRole('button', { name: `Rename ${doc}` }).click();
    await bob.page.getByTestId('rename-input').fill(`bob-${doc}`);
    await bob.page.getByTestId('rename-save').click();
    await bob.page.getByRole('link', { name: `bob-${doc}` }).waitFor();
    expect(await bob.page.getByRole('button', { name: `Delete bob-${doc}` }).count()).toBe(0);
    await shot(bob.page, 'bob-edited-in-shared-folder');

    // carol reads bob's version, read-only
    const carol = await browserFor('carol');
    await carol.page.goto(realm.url);
    await carol.page.getByRole('link', { name: team }).click();
    await carol.page.getByRole('link', { name: 'drafts' }).click();
    await carol.page.getByRole('link', { name: `bob-${doc}` }).waitFor();
    expect(await carol.page.getByTestId('rename').count()).toBe(0);
    await carol.page.getByRole('link', { name: `bob-${doc}` }).click();
    await carol.page.getByTestId('file-readonly').waitFor();
    expect(await carol.page.getByTestId('file-content').inputValue()).toBe('v2 by bob');
    expect(await carol.page.getByTestId('file-save').count()).toBe(0);

    // "Run SQL as yourself": carol's own query sees the shared folder's file, not alice's plan
    // (shared with bob only) nor anything else with this run's tag
    await carol.page.getByTestId('nav-sql').click();
    await carol.page.getByTestId('sql-input').fill(`SELECT name, owner FROM files WHERE name LIKE '%${tag}%' ORDER BY name`);
    await carol.page.getByTestId('sql-run').click();
    await carol.page.getByTestId('sql-status').waitFor();
    expect(await carol.page.getByTestId('sql-status').innerText()).toMatch(/1 row as carol/);
    expect(await carol.page.getByTestId('sql-row').allInnerTexts()).toEqual([expect.stringMatching(new RegExp(`bob-${doc}\\s+alice`))]);
    await carol.page.getByTestId('sql-input').fill('DELETE FROM files');
    await carol.page.getByTestId('sql-run').click();
    await carol.page.getByTestId('error').waitFor();
    await shot(carol.page, 'carol-sql');

    // alice sees the inherited grants on the file, through the folder
    await alice.page.getByRole('link', { name: 'drafts' }).click();
    await alice.page.getByRole('button', { name: `Share bob-${doc}` }).click();
    await alice.page.getByTestId('inherited-row').first().waitFor();
    expect((await alice.page.getByTestId('inherited-row').allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim())).toEqual([
      `bob can edit, through folder “${team}”`,
      `carol can read, through folder “${team}”`,
    ]);
    await shot(alice.page, 'alice-inherited-grants');
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
    // Protect the file browser's tables as its own mapping does (once the tables are there): the
    // realm's database is shared with the other tests, which rely on inherited grants and levels.
    await admin.page.locator('[data-testid=wizard-table][data-table=files]').waitFor();
    for (const table of await admin.page.getByTestId('wizard-table').all()) {
      const name = await table.getAttribute('data-table');
      const box = table.locator('legend input[type=checkbox]');
      if (await box.isDisabled()) continue;
      await box.setChecked(name === 'files' || name === 'directories');
    }
    for (const [t, perm, parent] of [['directories', 'directory_permissions', 'parent_id directories'], ['files', 'file_permissions', 'directory_id directories']] as const) {
      const row = admin.page.locator(`[data-testid=wizard-table][data-table=${t}]`);
      await row.getByTestId('owner-column').selectOption('owner');
      await row.getByTestId('permission-table').selectOption(perm);
      await row.getByTestId('grantee-column').selectOption('grantee');
      await row.getByTestId('level-column').selectOption('level');
      await row.getByTestId('parent').selectOption(parent);
    }
    await admin.page.getByTestId('wizard-to-preview').click();
    await admin.page.getByTestId('wizard-preview').waitFor().catch(async (e) => {
      throw new Error(`${e.message}\npage: ${await admin.page.locator('main').innerText()}`);
    });
    const sql = await admin.page.getByTestId('wizard-preview').innerText();
    expect(sql).toMatch(/ALTER TABLE "public"\."files" FORCE ROW LEVEL SECURITY/);
    expect(sql).toMatch(/CREATE POLICY "files_rls_select"/);
    expect(sql).toMatch(/"directory_id" IN \(SELECT "public"\."directories_rls_shared_ids"\('read'\)\)/);
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
