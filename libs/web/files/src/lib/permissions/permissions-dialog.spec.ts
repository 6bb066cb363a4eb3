import { HttpTestingController } from '@angular/common/http/testing';
import { ComponentFixture, TestBed } from '@angular/core/testing';
import { DialogHarness, ErrorBannerHarness } from '@forwardable/web/ui';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PermissionsDialog } from './permissions-dialog';
import { apiError, provideFilesTesting } from '../../testing/fixtures';

describe('PermissionsDialog', () => {
  let backend: HttpTestingController;
  let fixture: ComponentFixture<PermissionsDialog>;
  let el: HTMLElement;
  let closed = 0;

  const rows = () =>
    Array.from(el.querySelectorAll('[data-testid="permission-row"]')).map(
      (r) => r.querySelector('strong')?.textContent,
    );

  beforeEach(async () => {
    TestBed.configureTestingModule({ providers: provideFilesTesting() });
    backend = TestBed.inject(HttpTestingController);
    fixture = TestBed.createComponent(PermissionsDialog);
    fixture.componentRef.setInput('kind', 'directories');
    fixture.componentRef.setInput('targetId', 'd1');
    fixture.componentRef.setInput('name', 'Reports');
    closed = 0;
    fixture.componentInstance.closed.subscribe(() => closed++);
    el = fixture.nativeElement;
    await fixture.whenStable();
    backend.expectOne({ method: 'GET', url: '/api/directories/d1/permissions' }).flush([
      { grantee: 'bob', level: 'read', grantedAt: '2025-01-01T00:00:00Z' },
      { grantee: 'carol', level: 'write', grantedAt: '2025-01-02T00:00:00Z' },
      {
        grantee: 'erin',
        level: 'read',
        grantedAt: '2025-01-02T00:00:00Z',
        inheritedFrom: { id: 'd0', name: 'Company' },
      },
    ]);
    await fixture.whenStable();
  });

  afterEach(() => backend.verify());

  const levels = () =>
    Array.from(el.querySelectorAll('[data-testid="permission-level"]')).map((r) => r.textContent?.trim());
  const inheritedRows = () =>
    Array.from(el.querySelectorAll('[data-testid="inherited-row"]')).map((r) =>
      r.textContent?.replace(/\s+/g, ' ').trim(),
    );

  it('is a dialog titled with the name, listing who has what, direct and inherited', () => {
    const dialog = new DialogHarness(el, 'permissions-dialog');
    expect(dialog.isOpen()).toBe(true);
    expect(dialog.title()).toBe('Share “Reports”');
    expect(rows()).toEqual(['bob', 'carol']);
    expect(levels()).toEqual(['can read', 'can edit']);
    expect(inheritedRows()).toEqual(['erin can read, through folder “Company”']);
    // inherited grants are changed on their folder, not here
    expect(el.querySelectorAll('[data-testid="inherited-row"] button').length).toBe(0);
  });

  it('grants at the chosen level, and changes the level of an existing grant', async () => {
    const input = el.querySelector<HTMLInputElement>('[data-testid="grantee"]') as HTMLInputElement;
    const select = el.querySelector<HTMLSelectElement>('[data-testid="grant-level"]') as HTMLSelectElement;
    input.value = 'dave';
    input.dispatchEvent(new Event('input'));
    select.value = 'write';
    select.dispatchEvent(new Event('change'));
    await fixture.whenStable();
    el.querySelector<HTMLButtonElement>('[data-testid="grant"]')?.click();
    const req = backend.expectOne({ method: 'POST', url: '/api/directories/d1/permissions' });
    expect(req.request.body).toEqual({ grantee: 'dave', level: 'write' });
    req.flush({ grantee: 'dave', level: 'write', grantedAt: '2025-01-03T00:00:00Z' });
    await fixture.whenStable();
    expect(rows()).toEqual(['bob', 'carol', 'dave']);
    expect(select.value).toBe('read');

    (
      el.querySelector('[data-testid="permission-row"] [data-testid="toggle-level"]') as HTMLButtonElement
    ).click();
    const change = backend.expectOne({ method: 'POST', url: '/api/directories/d1/permissions' });
    expect(change.request.body).toEqual({ grantee: 'bob', level: 'write' });
    change.flush({ grantee: 'bob', level: 'write', grantedAt: '2025-01-01T00:00:00Z' });
    await fixture.whenStable();
    expect(rows()).toEqual(['carol', 'dave', 'bob']);
    expect(levels()).toEqual(['can edit', 'can edit', 'can edit']);
    expect(inheritedRows().length).toBe(1);
  });

  it('grants by user name', async () => {
    const input = el.querySelector<HTMLInputElement>('[data-testid="grantee"]') as HTMLInputElement;
    const grant = el.querySelector<HTMLButtonElement>('[data-testid="grant"]') as HTMLButtonElement;
    expect(grant.disabled).toBe(true);
    input.value = ' dave ';
    input.dispatchEvent(new Event('input'));
    await fixture.whenStable();
    grant.click();
    const req = backend.expectOne({ method: 'POST', url: '/api/directories/d1/permissions' });
    expect(req.request.body).toEqual({ grantee: 'dave', level: 'read' });
    req.flush({ grantee: 'dave', level: 'read', grantedAt: '2025-01-03T00:00:00Z' });
    await fixture.whenStable();
    expect(rows()).toEqual(['bob', 'carol', 'dave']);
    expect(input.value).toBe('');
  });

  it('shows why a grant failed', async () => {
    const input = el.querySelector<HTMLInputElement>('[data-testid="grantee"]') as HTMLInputElement;
    input.value = 'nobody';
    input.dispatchEvent(new Event('input'));
    await fixture.whenStable();
    el.querySelector<HTMLButtonElement>('[data-testid="grant"]')?.click();
    backend
      .expectOne('/api/directories/d1/permissions')
      .flush(
        ...apiError(400, 'INVALID_INPUT', 'No user named nobody', 'Use the user name without the realm'),
      );
    await fixture.whenStable();
    const banner = new ErrorBannerHarness(el);
    expect(banner.message()).toBe('No user named nobody');
    expect(banner.hint()).toBe('Use the user name without the realm');
    expect(rows()).toEqual(['bob', 'carol']);
  });

  it('revokes', async () => {
    const bobRow = el.querySelector('[data-testid="permission-row"]') as HTMLElement;
    bobRow.querySelector<HTMLButtonElement>('[data-testid="revoke"]')?.click();
    backend
      .expectOne({ method: 'DELETE', url: '/api/directories/d1/permissions/bob' })
      .flush(null, { status: 204, statusText: 'No Content' });
    await fixture.whenStable();
    expect(rows()).toEqual(['carol']);
  });

  it('closes on Escape', () => {
    new DialogHarness(el, 'permissions-dialog').pressEscape();
    expect(closed).toBe(1);
  });
});
