import { HttpTestingController } from '@angular/common/http/testing';
import { TestBed } from '@angular/core/testing';
import { Router } from '@angular/router';
import { RouterTestingHarness } from '@angular/router/testing';
import { ErrorBannerHarness } from '@forwardable/web/ui';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SearchPage } from './search-page';
import { aFileSummary, apiError, provideFilesTesting } from '../../testing/fixtures';

describe('SearchPage', () => {
  let backend: HttpTestingController;
  let harness: RouterTestingHarness;

  beforeEach(async () => {
    TestBed.configureTestingModule({ providers: provideFilesTesting() });
    backend = TestBed.inject(HttpTestingController);
    harness = await RouterTestingHarness.create();
  });

  afterEach(() => backend.verify());

  it('searches what was typed and lists the matches', async () => {
    await harness.navigateByUrl('/search', SearchPage);
    const el = harness.routeNativeElement as HTMLElement;
    const input = el.querySelector<HTMLInputElement>('[data-testid="search-input"]') as HTMLInputElement;
    input.value = 'budget';
    input.dispatchEvent(new Event('input'));
    el.querySelector<HTMLButtonElement>('[data-testid="search-submit"]')?.click();
    await harness.fixture.whenStable();
    expect(TestBed.inject(Router).url).toBe('/search?q=budget');
    const req = backend.expectOne((r) => r.url === '/api/search');
    expect(req.request.params.get('q')).toBe('budget');
    req.flush({
      query: 'budget',
      files: [
        aFileSummary({ id: 'f1', name: 'budget.txt' }),
        aFileSummary({ id: 'f2', name: 'plan.txt', owner: 'bob', access: 'read', canEdit: false }),
      ],
    });
    await harness.fixture.whenStable();
    const results = Array.from(el.querySelectorAll('[data-testid="search-result"]'));
    expect(results.map((r) => r.querySelector('a')?.textContent)).toEqual(['budget.txt', 'plan.txt']);
    expect(results[0].querySelector('a')?.getAttribute('href')).toBe('/files/f1');
    expect(results[1].textContent).toContain('shared by bob');
    expect(el.querySelector('[role="status"]')?.textContent).toContain('2 files match');
  });

  it('runs the search in the URL and shows API errors', async () => {
    await harness.navigateByUrl('/search?q=x', SearchPage);
    const el = harness.routeNativeElement as HTMLElement;
    expect(el.querySelector<HTMLInputElement>('[data-testid="search-input"]')?.value).toBe('x');
    backend
      .expectOne((r) => r.url === '/api/search')
      .flush(...apiError(400, 'INVALID_INPUT', 'The query is too short', 'Type at least 2 characters'));
    await harness.fixture.whenStable();
    expect(new ErrorBannerHarness(el).hint()).toBe('Type at least 2 characters');
  });
});
