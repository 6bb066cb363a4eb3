import { DatePipe } from '@angular/common';
import { ChangeDetectionStrategy, Component, computed, inject, input, signal } from '@angular/core';
import { takeUntilDestroyed, toObservable } from '@angular/core/rxjs-interop';
import { Router, RouterLink } from '@angular/router';
import { type ApiRequestError, toApiRequestError } from '@forwardable/web/auth';
import { ErrorBanner, Loading } from '@forwardable/web/ui';
import type { FileDto } from '@forwardable/shared/contracts';
import { catchError, map, of, switchMap, tap } from 'rxjs';
import { FilesApi } from '../data-access/files-api';
import { PermissionsDialog } from '../permissions/permissions-dialog';
import { formatSize } from '../format';

/**
 * One file: its content, editable by its owner (Save, Share, Delete); read-only for a reader,
 * with a note saying who shared it.
 */
@Component({
  selector: 'fw-file-view',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [DatePipe, RouterLink, ErrorBanner, Loading, PermissionsDialog],
  templateUrl: './file-view.html',
  styles: `
    .file-view h1 {
      margin: 0.25rem 0;
      font-size: 1.4rem;
      overflow-wrap: anywhere;
    }
    textarea {
      width: 100%;
      min-height: 16rem;
      font-family: ui-monospace, monospace;
      box-sizing: border-box;
    }
    textarea[readonly] {
      background: #f3f4f6;
    }
  `,
})
export class FileView {
  private readonly api = inject(FilesApi);
  private readonly router = inject(Router);

  /** Route parameter `:id`. */
  readonly id = input.required<string>();

  protected readonly file = signal<FileDto | null>(null);
  protected readonly loadError = signal<ApiRequestError | null>(null);
  protected readonly actionError = signal<ApiRequestError | null>(null);
  protected readonly loading = signal(true);
  protected readonly content = signal('');
  protected readonly saving = signal(false);
  protected readonly saved = signal(false);
  protected readonly sharing = signal(false);
  protected readonly confirmingDelete = signal(false);
  protected readonly dirty = computed(() => {
    const file = this.file();
    return !!file && file.canEdit && this.content() !== file.content;
  });
  protected readonly formatSize = formatSize;

  constructor() {
    toObservable(this.id)
      .pipe(
        tap(() => {
          this.loading.set(true);
          this.loadError.set(null);
          this.saved.set(false);
        }),
        switchMap((id) =>
          this.api.file(id).pipe(
            map((file) => ({ file, error: null })),
            catchError((e: unknown) => of({ file: null, error: toApiRequestError(e) })),
          ),
        ),
        takeUntilDestroyed(),
      )
      .subscribe(({ file, error }) => {
        this.loading.set(false);
        this.file.set(file);
        this.content.set(file?.content ?? '');
        this.loadError.set(error);
      });
  }

  protected edit(event: Event): void {
    this.content.set((event.target as HTMLTextAreaElement).value);
    this.saved.set(false);
  }

  protected save(): void {
    const file = this.file();
    if (!file || this.saving()) return;
    this.saving.set(true);
    this.actionError.set(null);
    this.api.updateFile(file.id, { content: this.content() }).subscribe({
      next: (updated) => {
        this.saving.set(false);
        this.saved.set(true);
        this.file.set(updated);
        this.content.set(updated.content);
      },
      error: (e: unknown) => {
        this.saving.set(false);
        this.actionError.set(toApiRequestError(e));
      },
    });
  }

  protected remove(): void {
    const file = this.file();
    if (!file) return;
    this.actionError.set(null);
    this.api.deleteFile(file.id).subscribe({
      next: () => void this.router.navigate(['/'], { queryParams: { dir: file.directoryId ?? undefined } }),
      error: (e: unknown) => {
        this.confirmingDelete.set(false);
        this.actionError.set(toApiRequestError(e));
      },
    });
  }
}
