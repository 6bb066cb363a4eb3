/**
 * Sharing a folder with a directory group, in a real Chromium against the built API and SPA
 * (tools/scripts/stack.sh) on the db2 realm (issue #20): alice types the group into the sharing
 * dialog's "User or group" field; bob, a member, opens a file inside the folder and reads it;
 * carol, not a member, finds neither; after alice revokes the grant, bob no longer sees it. The
 * group is what `forwardable-roles sync` makes of a directory group: a NOLOGIN role in
 * forwardable_managed with its members granted it (the RLS helpers count a grant to it for them).
 */
import { randomUUID } from 'node:crypto';
import type { Page } from 'playwright-core';
import { ensureRealm, kinit, RealmEnv, repoRoot, superuserSql, TicketCache } from '@forwardable/testing/realm';
import { openBrowser, screenshot, UserBrowser } from './support/browser';
import { expectNeitherFolderNorFile, stack } from './support/stack';

describe('sharing a folder with a directory group (Chromium, db2 realm)', () => {
  let realm: RealmEnv;
  const tag = randomUUID().slice(0, 6);
  const group = `engineering_${tag}`;
  const tickets: TicketCache[] = [];
  const browsers: UserBrowser[] = [];
  const shot = (page: Page, name: string) => screenshot(page, repoRoot, `group-share-${name}`);

  async function browserFor(user: 'alice' | 'bob' | 'carol'): Promise<UserBrowser> {
    const cc = kinit(realm, user);
    tickets.push(cc);
    const b = await openBrowser(realm, cc, true);
    browsers.push(b);
    return b;
  }

  beforeAll(() => {
    realm = ensureRealm('db2');
    stack('up', realm);
    superuserSql(
      realm,
      `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'forwardable_managed') THEN CREATE ROLE forwardable_managed NOLOGIN; END IF; END $$;
       CREATE ROLE "${group}" NOLOGIN IN ROLE forwardable_managed; GRANT "${group}" TO bob`,
    );
  });
  afterAll(async () => {
    await Promise.allSettled(browsers.map((b) => b.close()));
    tickets.forEach((t) => t.destroy());
    if (realm) {
      // Grants to the group go first: a role that grants still name cannot be dropped.
      superuserSql(realm, `DELETE FROM directory_permissions WHERE grantee = '${group}'; DELETE FROM file_permissions WHERE grantee = '${group}'`, realm.pg.database);
      superuserSql(realm, `DROP ROLE IF EXISTS "${group}"`);
      stack('down', realm);
    }
  });

  it('alice shares a folder with a group; bob (a member) reads a file inside it, carol (not one) does not; after the revoke bob does not either', async () => {
    const folder = `team-${tag}`;
    const doc = `roadmap-${tag}.txt`;

    const alice = await browserFor('alice');
    await alice.page.goto(realm.url);
    await alice.page.getByTestId('banner').getByText('alice').waitFor();
    await alice.page.getByTestId('new-folder').click();
    await alice.page.getByTestId('new-folder-name').fill(folder);
    await alice.page.getByTestId('new-folder-submit').click();
    await alice.page.getByRole('link', { name: folder }).click();
    await alice.page.getByRole('heading', { name: folder }).waitFor();
    await alice.page.getByTestId('new-file').click();
    await alice.page.getByTestId('new-file-name').fill(doc);
    await alice.page.getByTestId('new-file-content').fill('the roadmap, for engineering');
    await alice.page.getByTestId('new-file-submit').click();
    await alice.page.getByRole('link', { name: doc }).click();
    await alice.page.getByTestId('file-view').waitFor();
    const fileUrl = alice.page.url();
    expect(fileUrl).toMatch(/\/files\/[0-9a-f-]{36}$/);
    await alice.page.getByRole('link', { name: /Back to the folder/ }).click();
    await alice.page.getByRole('heading', { name: folder }).waitFor();

    // The folder, not the file: the group reaches the file through the folder's grant.
    await alice.page.getByRole('button', { name: 'Share folder' }).click();
    await alice.page.getByLabel('User or group').fill(group);
    await alice.page.getByTestId('grant').click();
    const row = alice.page.getByTestId('permission-row').filter({ hasText: group });
    await row.getByText('can read').waitFor();
    await shot(alice.page, 'alice-shared-with-group');
    await alice.page.keyboard.press('Escape');

    // bob is in the group: into the folder, opens the file, reads it read-only
    const bob = await browserFor('bob');
    await bob.page.goto(realm.url);
    await bob.page.getByRole('link', { name: folder }).click();
    await bob.page.getByRole('link', { name: doc }).click();
    await bob.page.getByTestId('file-readonly').waitFor();
    expect(await bob.page.getByTestId('file-content').inputValue()).toBe('the roadmap, for engineering');
    expect(await bob.page.getByTestId('file-save').count()).toBe(0);
    await shot(bob.page, 'bob-reads-as-member');

    // carol is not: neither the folder nor the file exists for her
    const carol = await browserFor('carol');
    await expectNeitherFolderNorFile(carol.page, realm, folder, fileUrl);
    await shot(carol.page, 'carol-not-a-member');

    // alice revokes the group's grant in the same dialog
    await alice.page.getByRole('button', { name: 'Share folder' }).click();
    await row.getByTestId('revoke').click();
    await alice.page.getByTestId('no-permissions').waitFor();
    expect(await alice.page.getByTestId('permission-row').filter({ hasText: group }).count()).toBe(0);
    await alice.page.keyboard.press('Escape');

    // bob, same browser and session: the file and the folder are gone for him
    await bob.page.goto(fileUrl);
    await bob.page.getByTestId('error').waitFor();
    expect(await bob.page.getByTestId('file-view').count()).toBe(0);
    await bob.page.goto(realm.url);
    await bob.page.getByTestId('tree').waitFor();
    expect(await bob.page.getByTestId('tree').innerText()).not.toContain(folder);
    await shot(bob.page, 'bob-after-revoke');
  });
});
