import { HttpTestingController } from '@angular/common/http/testing';
import { TestBed } from '@angular/core/testing';
import { RouterTestingHarness } from '@angular/router/testing';
import { Router } from '@angular/router';
import { ErrorBannerHarness } from '@forwardable/web/ui';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileView } from './file-view';
import { aFile, apiError, provideFilesTesting } from '../../testing/fixtures';
import type { FileDto } from '@forwardable/shared/contracts';

describe('FileView', () => {
  let backend: HttpTestingController;
  let harness: RouterTestingHarness;

  beforeEach(async () => {
    TestBed.configureTestingModule({ providers: provideFilesTesting() });
    backend = TestBed.inject(HttpTestingController);
    harness = await RouterTestingHarness.create();
  });

  afterEach(() => backend.verify());

  async function open(file: FileDto): Promise<HTMLElement> {
    const shown = harness.navigateByUrl(`/files/${file.id}`, FileView);
    await shown;
    backend.expectOne({ method: 'GET', url: `/api/files/${file.id}` }).flush(file);
    await harness.fixture.whenStable();
    return harness.routeNativeElement as HTMLElement;
  }

  const q = <T extends Element = HTMLElement>(el: HTMLElement, id: string) =>
    el.querySelector<T>(`[data-testid="${id}"]`);

  it('shows a loading state until the file arrives', async () => {
    await harness.navigateByUrl('/files/f1', FileView);
    expect(harness.routeNativeElement?.querySelector('[aria-busy="true"]')).not.toBeNull();
    backend.expectOne('/api/files/f1').flush(aFile());
  });

  it("is read-only for a reader, says who shared it, and offers no owner's buttons", async () => {
    const el = await open(aFile({ canEdit: false, access: 'read', owner: 'bob', content: 'shared text' }));
    const textarea = q<HTMLTextAreaElement>(el, 'file-content');
    expect(textarea?.readOnly).toBe(true);
    expect(textarea?.value).toBe('shared text');
    expect(q(el, 'file-readonly')?.textContent).toContain('read-only: shared by bob');
    expect(q(el, 'file-save')).toBeNull();
    expect(q(el, 'share')).toBeNull();
    expect(q(el, 'delete')).toBeNull();
  });

  it('lets an editor (write grant) edit, without share and delete', async () => {
    const el = await open(aFile({ canEdit: true, access: 'write', owner: 'bob', content: 'team text' }));
    expect(q<HTMLTextAreaElement>(el, 'file-content')?.readOnly).toBe(false);
    expect(q(el, 'file-editor')?.textContent).toContain('Shared by bob for editing');
    expect(q(el, 'file-save')).not.toBeNull();
    expect(q(el, 'share')).toBeNull();
    expect(q(el, 'delete')).toBeNull();
  });

  it('lets the owner edit and save (PATCH), then says Saved', async () => {
    const el = await open(aFile({ canEdit: true, content: 'old' }));
    expect(q(el, 'file-readonly')).toBeNull();
    const textarea = q<HTMLTextAreaElement>(el, 'file-content') as HTMLTextAreaElement;
    const save = q<HTMLButtonElement>(el, 'file-save') as HTMLButtonElement;
    expect(textarea.readOnly).toBe(false);
    expect(save.disabled).toBe(true);

    textarea.value = 'new content';
    textarea.dispatchEvent(new Event('input'));
    await harness.fixture.whenStable();
    expect(save.disabled).toBe(false);
    save.click();
    const req = backend.expectOne({ method: 'PATCH', url: '/api/files/f1' });
    expect(req.request.body).toEqual({ content: 'new content' });
    req.flush(aFile({ content: 'new content', size: 11 }));
    await harness.fixture.whenStable();
    expect(el.querySelector('[role="status"]')?.textContent).toContain('Saved.');
    expect(save.disabled).toBe(true);
  });

  it("shows the database's error when saving is refused", async () => {
    const el = await open(aFile({ canEdit: true, content: 'old' }));
    const textarea = q<HTMLTextAreaElement>(el, 'file-content') as HTMLTextAreaElement;
    textarea.value = 'x';
    textarea.dispatchEvent(new Event('input'));
    await harness.fixture.whenStable();
    q<HTMLButtonElement>(el, 'file-save')?.click();
    backend
      .expectOne('/api/files/f1')
      .flush(
        ...apiError(
          403,
          'DATABASE_PERMISSION',
          'new row violates row-level security policy for table "files"',
        ),
      );
    await harness.fixture.whenStable();
    const banner = new ErrorBannerHarness(el);
    expect(banner.message()).toBe('new row violates row-level security policy for table "files"');
  });

  it('shows the API error when the file cannot be read', async () => {
    await harness.navigateByUrl('/files/nope', FileView);
    backend
      .expectOne('/api/files/nope')
      .flush(
        ...apiError(404, 'NOT_FOUND', 'No such file', 'It may have been deleted or not shared with you'),
      );
    await harness.fixture.whenStable();
    const banner = new ErrorBannerHarness(harness.routeNativeElement as HTMLElement);
    expect(banner.message()).toBe('No such file');
    expect(banner.hint()).toBe('It may have been deleted or not shared with you');
  });

  it('deletes after confirmation and returns to the folder', async () => {
    const el = await open(aFile({ canEdit: true, directoryId: 'd7' }));
    q<HTMLButtonElement>(el, 'delete')?.click();
    await harness.fixture.whenStable();
    q<HTMLButtonElement>(el, 'confirm-delete')?.click();
    backend
      .expectOne({ method: 'DELETE', url: '/api/files/f1' })
      .flush(null, { status: 204, statusText: 'No Content' });
    await harness.fixture.whenStable();
    // The folder page asks for its tree and listing once shown.
    backend
      .match(() => true)
      .forEach((r) =>
        r.flush(
          r.request.url.endsWith('tree')
            ? { directories: [], files: [] }
            : { directory: null, directories: [], files: [], page: 1, pageSize: 50, totalFiles: 0 },
        ),
      );
    expect(TestBed.inject(Router).url).toBe('/?dir=d7');
  });

  it('opens the permissions dialog from Share', async () => {
    const el = await open(aFile({ canEdit: true }));
    q<HTMLButtonElement>(el, 'share')?.click();
    await harness.fixture.whenStable();
    expect(q(el, 'permissions-dialog')).not.toBeNull();
    backend.expectOne({ method: 'GET', url: '/api/files/f1/permissions' }).flush([]);
  });
});
