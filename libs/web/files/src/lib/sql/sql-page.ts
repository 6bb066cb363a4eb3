import { ChangeDetectionStrategy, Component, inject, signal } from '@angular/core';
import { FormControl, ReactiveFormsModule, Validators } from '@angular/forms';
import { type ApiRequestError, toApiRequestError } from '@forwardable/web/auth';
import { ErrorBanner, Loading } from '@forwardable/web/ui';
import type { SqlResponse } from '@forwardable/shared/contracts';
import { FilesApi } from '../data-access/files-api';

/**
 * "Run SQL as yourself": the containment demo. Whatever the user types runs on their own
 * PostgreSQL connection (read-only, time- and row-capped by the API), so even `SELECT * FROM files`
 * returns only the rows row-level security gives them: what an SQL injection in the application
 * could reach, shown directly.
 */
@Component({
  selector: 'fw-sql-page',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [ReactiveFormsModule, ErrorBanner, Loading],
  template: `
    <h1>Run SQL as yourself</h1>
    <p class="fw-muted">
      Your query runs on your own database connection, as your own role, in a read-only transaction. Row-level
      security answers it exactly as it answers the application: try
      <code>SELECT * FROM files</code> and you get your files and those shared with you, nothing else.
    </p>
    <form class="sql-form" (submit)="run($event)">
      <label for="sql-input">SQL (one query)</label>
      <textarea id="sql-input" data-testid="sql-input" spellcheck="false" [formControl]="sql"></textarea>
      <button type="submit" class="fw-primary" data-testid="sql-run" [disabled]="running() || sql.invalid">
        {{ running() ? 'Running…' : 'Run' }}
      </button>
    </form>
    <fw-error-banner [error]="error()" />
    @if (running()) {
      <fw-loading label="Running…" />
    } @else if (result(); as r) {
      <p role="status" data-testid="sql-status">
        {{ r.rows.length }} {{ r.rows.length === 1 ? 'row' : 'rows' }} as <strong>{{ r.user }}</strong
        >{{ r.truncated ? ' (the first ' + r.limits.rows + ' only)' : '' }}.
      </p>
      <div class="sql-result">
        <table data-testid="sql-result">
          <thead>
            <tr>
              @for (c of r.columns; track $index) {
                <th scope="col">{{ c }}</th>
              }
            </tr>
          </thead>
          <tbody>
            @for (row of r.rows; track $index) {
              <tr data-testid="sql-row">
                @for (v of row; track $index) {
                  <td [class.null]="v === null">{{ v === null ? 'NULL' : v }}</td>
                }
              </tr>
            }
          </tbody>
        </table>
      </div>
    }
  `,
  styles: `
    .sql-form {
      display: grid;
      gap: 0.5rem;
      justify-items: start;
    }
    textarea {
      width: 100%;
      min-height: 6rem;
      font-family: ui-monospace, monospace;
      box-sizing: border-box;
    }
    .sql-result {
      overflow-x: auto;
    }
    table {
      border-collapse: collapse;
      font-size: 0.9rem;
    }
    th,
    td {
      border: 1px solid #e3e3e3;
      padding: 0.25rem 0.5rem;
      text-align: left;
      vertical-align: top;
      max-width: 30rem;
      overflow-wrap: anywhere;
    }
    td.null {
      color: #777;
      font-style: italic;
    }
  `,
})
export class SqlPage {
  private readonly api = inject(FilesApi);

  protected readonly sql = new FormControl('SELECT * FROM files', {
    nonNullable: true,
    validators: [Validators.required],
  });
  protected readonly result = signal<SqlResponse | null>(null);
  protected readonly error = signal<ApiRequestError | null>(null);
  protected readonly running = signal(false);

  protected run(event: Event): void {
    event.preventDefault();
    if (this.running() || this.sql.invalid) return;
    this.running.set(true);
    this.error.set(null);
    this.api.runSql(this.sql.value).subscribe({
      next: (result) => {
        this.running.set(false);
        this.result.set(result);
      },
      error: (e: unknown) => {
        this.running.set(false);
        this.result.set(null);
        this.error.set(toApiRequestError(e));
      },
    });
  }
}
