import { DatePipe } from '@angular/common';
import { ChangeDetectionStrategy, Component, computed, effect, inject, input, signal } from '@angular/core';
import { takeUntilDestroyed, toObservable } from '@angular/core/rxjs-interop';
import { FormControl, ReactiveFormsModule } from '@angular/forms';
import { Router, RouterLink } from '@angular/router';
import { type ApiRequestError, toApiRequestError } from '@forwardable/web/auth';
import { ErrorBanner, Loading } from '@forwardable/web/ui';
import type { SearchResponse } from '@forwardable/shared/contracts';
import { EMPTY, catchError, filter, map, switchMap, tap } from 'rxjs';
import { FilesApi } from '../data-access/files-api';
import { formatSize } from '../format';

/** Searches the names and contents of the files the user may read (query parameter `q`). */
@Component({
  selector: 'fw-search-page',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [DatePipe, RouterLink, ReactiveFormsModule, ErrorBanner, Loading],
  template: `
    <h1>Search</h1>
    <form class="search-form" role="search" (submit)="submit($event)">
      <label for="search-input" class="fw-visually-hidden">Search files</label>
      <input
        id="search-input"
        type="search"
        data-testid="search-input"
        placeholder="File name or text"
        [formControl]="query"
      />
      <button type="submit" class="fw-primary" data-testid="search-submit">Search</button>
    </form>
    <fw-error-banner [error]="error()" />
    @if (loading()) {
      <fw-loading label="Searching…" />
    } @else if (result(); as r) {
      <p role="status">
        {{ r.files.length }} {{ r.files.length === 1 ? 'file matches' : 'files match' }} “{{ r.query }}”.
      </p>
      <ul class="entries">
        @for (f of r.files; track f.id) {
          <li class="entry" data-testid="search-result">
            <a class="entry__name" [routerLink]="['/files', f.id]">{{ f.name }}</a>
            <span class="fw-muted"
              >{{ f.access === 'owner' ? 'yours' : 'shared by ' + f.owner }} · {{ formatSize(f.size) }} ·
              {{ f.updatedAt | date: 'medium' }}</span
            >
          </li>
        }
      </ul>
    }
  `,
  styles: `
    .search-form {
      display: flex;
      gap: 0.5rem;
      flex-wrap: wrap;
    }
    .search-form input {
      flex: 1 1 12rem;
    }
    .entries {
      list-style: none;
      padding: 0;
    }
    .entry {
      display: flex;
      flex-wrap: wrap;
      gap: 0.25rem 0.75rem;
      padding: 0.5rem 0.25rem;
      border-bottom: 1px solid #e5e9ee;
    }
    .entry__name {
      font-weight: 600;
      overflow-wrap: anywhere;
    }
  `,
})
export class SearchPage {
  private readonly api = inject(FilesApi);
  private readonly router = inject(Router);

  /** Query parameter: what to search for. */
  readonly q = input<string>();

  protected readonly query = new FormControl('', { nonNullable: true });
  protected readonly result = signal<SearchResponse | null>(null);
  protected readonly error = signal<ApiRequestError | null>(null);
  protected readonly loading = signal(false);
  protected readonly formatSize = formatSize;
  private readonly searches = signal(0);

  constructor() {
    effect(() => this.query.setValue(this.q() ?? ''));
    toObservable(computed(() => ({ q: this.q(), n: this.searches() })))
      .pipe(
        tap(() => {
          this.error.set(null);
          this.result.set(null);
        }),
        map(({ q }) => q?.trim() ?? ''),
        filter((q) => q !== ''),
        tap(() => this.loading.set(true)),
        switchMap((q) =>
          this.api.search(q).pipe(
            catchError((e: unknown) => {
              this.loading.set(false);
              this.error.set(toApiRequestError(e));
              return EMPTY;
            }),
          ),
        ),
        takeUntilDestroyed(),
      )
      .subscribe((result) => {
        this.loading.set(false);
        this.result.set(result);
      });
  }

  protected submit(event: Event): void {
    event.preventDefault();
    const q = this.query.value.trim();
    if (!q) return;
    // The same words again: search again (the files may have changed since).
    if (q === this.q()) this.searches.update((n) => n + 1);
    else void this.router.navigate(['/search'], { queryParams: { q } });
  }
}
