import { HttpTestingController } from '@angular/common/http/testing';
import { TestBed } from '@angular/core/testing';
import { Router } from '@angular/router';
import { RouterTestingHarness } from '@angular/router/testing';
import type { ListingResponse, TreeResponse } from '@forwardable/shared/contracts';
import { ErrorBannerHarness, LoadingHarness } from '@forwardable/web/ui';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FilesPage } from './files-page';
import { aDirectory, aFileSummary, apiError, provideFilesTesting, signIn } from '../../testing/fixtures';

const TREE: TreeResponse = {
  directories: [
    aDirectory({ id: 'd1', name: 'Mine' }),
    aDirectory({ id: 'd2', name: 'From bob', owner: 'bob', access: 'read' }),
  ],
  files: [],
};

function listing(overrides: Partial<ListingResponse> = {}): ListingResponse {
  return { directory: null, directories: [], files: [], page: 1, pageSize: 50, totalFiles: 0, ...overrides };
}

describe('FilesPage', () => {
  let backend: HttpTestingController;
  let harness: RouterTestingHarness;

  beforeEach(async () => {
    TestBed.configureTestingModule({ providers: provideFilesTesting() });
    backend = TestBed.inject(HttpTestingController);
    await signIn();
    harness = await RouterTestingHarness.create();
  });

  afterEach(() => backend.verify());

  async function show(
    url: string,
    answer: ListingResponse,
    expectedQuery = 'directoryId=&page=1&pageSize=50',
  ): Promise<HTMLElement> {
    await harness.navigateByUrl(url, FilesPage);
    backend.expectOne('/api/files/tree').flush(TREE);
    backend.expectOne(`/api/files?${expectedQuery}`).flush(answer);
    await harness.fixture.whenStable();
    return harness.routeNativeElement as HTMLElement;
  }
  const all = (el: HTMLElement, id: string) =>
    Array.from(el.querySelectorAll<HTMLElement>(`[data-testid="${id}"]`));
  const one = <T extends HTMLElement = HTMLElement>(el: HTMLElement, id: string) =>
    el.querySelector<T>(`[data-testid="${id}"]`) as T;

  it('shows loading, then the tree and the top-level listing', async () => {
    await harness.navigateByUrl('/', FilesPage);
    const el = harness.routeNativeElement as HTMLElement;
    expect(new LoadingHarness(el).isLoading()).toBe(true);
    backend.expectOne('/api/files/tree').flush(TREE);
    backend.expectOne('/api/files?directoryId=&page=1&pageSize=50').flush(
      listing({
        directories: TREE.directories,
        files: [aFileSummary({ name: 'todo.txt' })],
        totalFiles: 1,
      }),
    );
    await harness.fixture.whenStable();
    expect(new LoadingHarness(el).isLoading()).toBe(false);
    expect(all(el, 'tree-item').map((i) => i.textContent?.trim())).toEqual([
      expect.stringContaining('All files'),
      expect.stringContaining('From bob'),
      expect.stringContaining('Mine'),
    ]);
    expect(all(el, 'entry').map((e) => e.querySelector('a')?.textContent?.trim())).toEqual([
      '📁 Mine',
      '📁 From bob',
      '📄 todo.txt',
    ]);
  });

  it('offers share and delete only for what the user owns, rename also for what they may edit', async () => {
    const el = await show(
      '/',
      listing({
        directories: [
          ...TREE.directories,
          aDirectory({ id: 'd3', name: 'Team', owner: 'bob', access: 'write' }),
        ],
        files: [
          aFileSummary({ id: 'f1', name: 'mine.txt' }),
          aFileSummary({ id: 'f2', name: 'theirs.txt', owner: 'bob', access: 'read', canEdit: false }),
          aFileSummary({ id: 'f3', name: 'editable.txt', owner: 'bob', access: 'write', canEdit: true }),
        ],
        totalFiles: 3,
      }),
    );
    const rows = all(el, 'entry');
    const buttonsOf = (name: string) =>
      Array.from(rows.find((r) => r.textContent?.includes(name))?.querySelectorAll('button') ?? []).map(
        (b) => b.dataset['testid'],
      );
    expect(buttonsOf('Mine')).toEqual(['rename', 'share', 'delete']);
    expect(buttonsOf('From bob')).toEqual([]);
    expect(buttonsOf('Team')).toEqual(['rename']);
    expect(buttonsOf('mine.txt')).toEqual(['rename', 'share', 'delete']);
    expect(buttonsOf('theirs.txt')).toEqual([]);
    expect(buttonsOf('editable.txt')).toEqual(['rename']);
    expect(rows.find((r) => r.textContent?.includes('editable.txt'))?.textContent).toContain(
      'bob (you can edit)',
    );
  });

  it('renames a file in place (PATCH name), then reloads; shows the refusal when the database says no', async () => {
    const el = await show(
      '/',
      listing({
        files: [aFileSummary({ id: 'f3', name: 'old.txt', owner: 'bob', access: 'write' })],
        totalFiles: 1,
      }),
    );
    one<HTMLButtonElement>(el, 'rename').click();
    await harness.fixture.whenStable();
    const input = one<HTMLInputElement>(el, 'rename-input');
    expect(input.value).toBe('old.txt');
    input.value = 'new.txt';
    input.dispatchEvent(new Event('input'));
    await harness.fixture.whenStable();
    one<HTMLButtonElement>(el, 'rename-save').click();
    const patch = backend.expectOne({ method: 'PATCH', url: '/api/files/f3' });
    expect(patch.request.body).toEqual({ name: 'new.txt' });
    patch.flush(aFileSummary({ id: 'f3', name: 'new.txt' }));
    await harness.fixture.whenStable();
    backend.expectOne('/api/files/tree').flush(TREE);
    backend.expectOne('/api/files?directoryId=&page=1&pageSize=50').flush(
      listing({
        files: [aFileSummary({ id: 'f3', name: 'new.txt', owner: 'bob', access: 'write' })],
        totalFiles: 1,
      }),
    );
    await harness.fixture.whenStable();
    expect(one(el, 'rename-input')).toBeNull();
    expect(all(el, 'entry').map((e) => e.querySelector('a')?.textContent?.trim())).toEqual(['📄 new.txt']);

    one<HTMLButtonElement>(el, 'rename').click();
    await harness.fixture.whenStable();
    one<HTMLButtonElement>(el, 'rename-save').click();
    backend
      .expectOne({ method: 'PATCH', url: '/api/files/f3' })
      .flush(...apiError(403, 'FORBIDDEN', 'you may not change this file'));
    await harness.fixture.whenStable();
    expect(new ErrorBannerHarness(el).message()).toBe('you may not change this file');
  });

  it('renames the folder shown (PATCH /api/directories/:id) for an editor, without owner buttons', async () => {
    const team = aDirectory({ id: 'd3', name: 'Team', owner: 'bob', access: 'write' });
    const el = await show('/?dir=d3', listing({ directory: team }), 'directoryId=d3&page=1&pageSize=50');
    expect(one(el, 'folder-owner').textContent).toContain('you can edit in it');
    expect(one(el, 'new-file')).toBeNull();
    expect(one(el, 'share')).toBeNull();
    one<HTMLButtonElement>(el, 'rename').click();
    await harness.fixture.whenStable();
    const input = one<HTMLInputElement>(el, 'rename-input');
    input.value = 'Team 2';
    input.dispatchEvent(new Event('input'));
    await harness.fixture.whenStable();
    one<HTMLButtonElement>(el, 'rename-save').click();
    const patch = backend.expectOne({ method: 'PATCH', url: '/api/directories/d3' });
    expect(patch.request.body).toEqual({ name: 'Team 2' });
    patch.flush({ ...team, name: 'Team 2' });
    await harness.fixture.whenStable();
    backend.expectOne('/api/files/tree').flush(TREE);
    backend
      .expectOne('/api/files?directoryId=d3&page=1&pageSize=50')
      .flush(listing({ directory: { ...team, name: 'Team 2' } }));
    await harness.fixture.whenStable();
    expect(el.querySelector('h1')?.textContent).toBe('Team 2');
  });

  it("hides create, share and delete inside someone else's folder", async () => {
    const el = await show(
      '/?dir=d2',
      listing({ directory: TREE.directories[1] }),
      'directoryId=d2&page=1&pageSize=50',
    );
    expect(el.querySelector('h1')?.textContent).toBe('From bob');
    expect(one(el, 'new-folder')).toBeNull();
    expect(one(el, 'new-file')).toBeNull();
    expect(one(el, 'share')).toBeNull();
  });

  it('creates a folder in the current folder, then reloads tree and listing', async () => {
    const el = await show(
      '/?dir=d1',
      listing({ directory: TREE.directories[0] }),
      'directoryId=d1&page=1&pageSize=50',
    );
    one(el, 'new-folder').click();
    await harness.fixture.whenStable();
    const input = one<HTMLInputElement>(el, 'new-folder-name');
    expect(input).not.toBeNull();
    input.value = 'Drafts';
    input.dispatchEvent(new Event('input'));
    await harness.fixture.whenStable();
    one<HTMLButtonElement>(el, 'new-folder-submit').click();
    const post = backend.expectOne({ method: 'POST', url: '/api/directories' });
    expect(post.request.body).toEqual({ name: 'Drafts', parentId: 'd1' });
    post.flush(aDirectory({ id: 'd5', name: 'Drafts', parentId: 'd1' }));
    await harness.fixture.whenStable();
    backend.expectOne('/api/files/tree').flush(TREE);
    backend.expectOne('/api/files?directoryId=d1&page=1&pageSize=50').flush(
      listing({
        directory: TREE.directories[0],
        directories: [aDirectory({ id: 'd5', name: 'Drafts', parentId: 'd1' })],
      }),
    );
    await harness.fixture.whenStable();
    expect(one(el, 'new-folder-name')).toBeNull();
    expect(all(el, 'entry').map((e) => e.textContent)).toEqual([expect.stringContaining('Drafts')]);
  });

  it('creates a file with its content', async () => {
    const el = await show('/', listing());
    one(el, 'new-file').click();
    await harness.fixture.whenStable();
    const name = one<HTMLInputElement>(el, 'new-file-name');
    const content = one<HTMLTextAreaElement>(el, 'new-file-content');
    name.value = 'plan.txt';
    name.dispatchEvent(new Event('input'));
    content.value = 'step 1';
    content.dispatchEvent(new Event('input'));
    await harness.fixture.whenStable();
    one<HTMLButtonElement>(el, 'new-file-submit').click();
    const post = backend.expectOne({ method: 'POST', url: '/api/files' });
    expect(post.request.body).toEqual({ name: 'plan.txt', content: 'step 1', directoryId: null });
    post.flush(...apiError(409, 'CONFLICT', 'A file named plan.txt already exists here'));
    await harness.fixture.whenStable();
    expect(new ErrorBannerHarness(el).message()).toBe('A file named plan.txt already exists here');
  });

  it('pages through files', async () => {
    const el = await show('/', listing({ files: [aFileSummary()], totalFiles: 120 }));
    expect(el.querySelector('.pager')?.textContent).toContain('Page 1 of 3');
    expect(one<HTMLButtonElement>(el, 'page-prev').disabled).toBe(true);
    one<HTMLButtonElement>(el, 'page-next').click();
    await harness.fixture.whenStable();
    expect(TestBed.inject(Router).url).toBe('/?page=2');
    backend
      .expectOne('/api/files?directoryId=&page=2&pageSize=50')
      .flush(listing({ files: [aFileSummary()], totalFiles: 120, page: 2 }));
    await harness.fixture.whenStable();
    expect(el.querySelector('.pager')?.textContent).toContain('Page 2 of 3');
  });

  it('shows the API error when the listing fails', async () => {
    await harness.navigateByUrl('/', FilesPage);
    backend.expectOne('/api/files/tree').flush(TREE);
    backend
      .expectOne('/api/files?directoryId=&page=1&pageSize=50')
      .flush(...apiError(503, 'DATABASE_UNAVAILABLE', 'PostgreSQL does not answer', 'Try again in a minute'));
    await harness.fixture.whenStable();
    const banner = new ErrorBannerHarness(harness.routeNativeElement as HTMLElement);
    expect(banner.message()).toBe('PostgreSQL does not answer');
    expect(banner.hint()).toBe('Try again in a minute');
  });

  it('deletes a file after confirmation and reloads', async () => {
    const el = await show(
      '/',
      listing({ files: [aFileSummary({ id: 'f1', name: 'old.txt' })], totalFiles: 1 }),
    );
    one(el, 'delete').click();
    await harness.fixture.whenStable();
    one(el, 'confirm-delete').click();
    backend
      .expectOne({ method: 'DELETE', url: '/api/files/f1' })
      .flush(null, { status: 204, statusText: 'No Content' });
    await harness.fixture.whenStable();
    backend.expectOne('/api/files/tree').flush(TREE);
    backend.expectOne('/api/files?directoryId=&page=1&pageSize=50').flush(listing());
    await harness.fixture.whenStable();
    expect(one(el, 'empty')?.textContent).toContain('empty');
  });
});
