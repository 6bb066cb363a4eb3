import { HttpTestingController } from '@angular/common/http/testing';
import { ComponentFixture, TestBed } from '@angular/core/testing';
import { ErrorBannerHarness } from '@forwardable/web/ui';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqlPage } from './sql-page';
import { apiError, provideFilesTesting } from '../../testing/fixtures';

describe('SqlPage', () => {
  let backend: HttpTestingController;
  let fixture: ComponentFixture<SqlPage>;
  let el: HTMLElement;
  const byId = <T extends HTMLElement = HTMLElement>(id: string) =>
    el.querySelector<T>(`[data-testid="${id}"]`) as T;

  beforeEach(async () => {
    TestBed.configureTestingModule({ providers: provideFilesTesting() });
    backend = TestBed.inject(HttpTestingController);
    fixture = TestBed.createComponent(SqlPage);
    el = fixture.nativeElement;
    await fixture.whenStable();
  });

  afterEach(() => backend.verify());

  it('runs the query (POST /api/sql) and shows the rows, who ran it, and NULLs', async () => {
    expect(byId<HTMLTextAreaElement>('sql-input').value).toBe('SELECT * FROM files');
    byId('sql-run').click();
    const req = backend.expectOne({ method: 'POST', url: '/api/sql' });
    expect(req.request.body).toEqual({ sql: 'SELECT * FROM files' });
    expect(req.request.headers.get('x-requested-with')).toBe('forwardable');
    req.flush({
      user: 'bob',
      columns: ['name', 'owner'],
      rows: [
        ['plan.txt', 'alice'],
        ['mine.txt', null],
      ],
      truncated: true,
      limits: { rows: 2, timeoutMs: 3000, cellChars: 2000 },
    });
    await fixture.whenStable();
    expect(byId('sql-status').textContent?.replace(/\s+/g, ' ').trim()).toBe(
      '2 rows as bob (the first 2 only).',
    );
    expect(Array.from(el.querySelectorAll('th')).map((t) => t.textContent?.trim())).toEqual([
      'name',
      'owner',
    ]);
    expect(
      Array.from(el.querySelectorAll('[data-testid="sql-row"]')).map((r) =>
        Array.from(r.querySelectorAll('td')).map((td) => td.textContent?.trim()),
      ),
    ).toEqual([
      ['plan.txt', 'alice'],
      ['mine.txt', 'NULL'],
    ]);
  });

  it("shows PostgreSQL's refusal and no stale rows", async () => {
    const input = byId<HTMLTextAreaElement>('sql-input');
    input.value = 'DELETE FROM files';
    input.dispatchEvent(new Event('input'));
    await fixture.whenStable();
    byId('sql-run').click();
    backend
      .expectOne('/api/sql')
      .flush(
        ...apiError(
          400,
          'INVALID_INPUT',
          'PostgreSQL: syntax error at or near "DELETE"',
          'Only one query runs here',
        ),
      );
    await fixture.whenStable();
    const banner = new ErrorBannerHarness(el);
    expect(banner.message()).toBe('PostgreSQL: syntax error at or near "DELETE"');
    expect(byId('sql-result')).toBeNull();
  });
});
