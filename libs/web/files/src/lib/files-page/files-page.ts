import { ChangeDetectionStrategy, Component, computed, inject, input, signal } from '@angular/core';
import { takeUntilDestroyed, toObservable } from '@angular/core/rxjs-interop';
import { DatePipe } from '@angular/common';
import { Router, RouterLink } from '@angular/router';
import { type ApiRequestError, AuthService, toApiRequestError } from '@forwardable/web/auth';
import { ErrorBanner, Loading } from '@forwardable/web/ui';
import { FormControl, ReactiveFormsModule, Validators } from '@angular/forms';
import type { Access, ListingResponse, TreeResponse } from '@forwardable/shared/contracts';
import { Observable, catchError, map, of, switchMap, tap } from 'rxjs';
import { FilesApi, type ShareKind } from '../data-access/files-api';
import { FileTree } from '../tree/file-tree';
import { NewFolderForm } from '../create/new-folder-form';
import { NewFileForm } from '../create/new-file-form';
import { PermissionsDialog } from '../permissions/permissions-dialog';
import { formatSize } from '../format';

type Loaded<T> = { value: T; error: null } | { value: null; error: ApiRequestError };

/**
 * The file browser's main page: the folder tree beside one folder's listing (query parameters
 * `dir` and `page`), with create, share and delete for what the user owns, and rename for what
 * they own or may edit (a write grant, on the item or a folder above it).
 */
@Component({
  selector: 'fw-files-page',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [
    DatePipe,
    RouterLink,
    ErrorBanner,
    Loading,
    FileTree,
    NewFolderForm,
    NewFileForm,
    PermissionsDialog,
    ReactiveFormsModule,
  ],
  templateUrl: './files-page.html',
  styleUrl: './files-page.css',
})
export class FilesPage {
  private readonly api = inject(FilesApi);
  private readonly auth = inject(AuthService);
  private readonly router = inject(Router);

  /** Query parameter: the folder shown (absent: the top level). */
  readonly dir = input<string>();
  /** Query parameter: the page of files (1-based). */
  readonly page = input<string>();

  protected readonly pageSize = 50;
  protected readonly directoryId = computed(() => this.dir() || null);
  protected readonly pageNumber = computed(() => Math.max(1, Math.floor(Number(this.page())) || 1));

  protected readonly tree = signal<TreeResponse | null>(null);
  protected readonly treeError = signal<ApiRequestError | null>(null);
  protected readonly listing = signal<ListingResponse | null>(null);
  protected readonly listingError = signal<ApiRequestError | null>(null);
  protected readonly loading = signal(true);
  /** Failure of a create/delete the user just tried. */
  protected readonly actionError = signal<ApiRequestError | null>(null);
  protected readonly creating = signal<'folder' | 'file' | null>(null);
  protected readonly sharing = signal<{ kind: ShareKind; id: string; name: string } | null>(null);
  /** Item awaiting "really delete?" (`files:<id>` or `directories:<id>`). */
  protected readonly confirmingDelete = signal<string | null>(null);
  protected readonly formatSize = formatSize;
  /** Item being renamed (`files:<id>` or `directories:<id>`), and its new name. */
  protected readonly renaming = signal<string | null>(null);
  protected readonly newName = new FormControl('', {
    nonNullable: true,
    validators: [Validators.required, Validators.maxLength(255), Validators.pattern(/^[^/\0]+$/)],
  });

  private readonly reloads = signal(0);
  protected readonly me = computed(() => this.auth.me()?.user ?? null);
  protected readonly canCreateHere = computed(() => {
    if (!this.directoryId()) return true;
    const directory = this.listing()?.directory;
    return !!directory && this.owns(directory);
  });
  protected readonly totalPages = computed(() => {
    const l = this.listing();
    return l ? Math.max(1, Math.ceil(l.totalFiles / l.pageSize)) : 1;
  });

  constructor() {
    this.loadTree();
    toObservable(computed(() => ({ dir: this.directoryId(), page: this.pageNumber(), n: this.reloads() })))
      .pipe(
        tap(() => {
          this.loading.set(true);
          this.listingError.set(null);
        }),
        switchMap(({ dir, page }) => settle(this.api.listing(dir, page, this.pageSize))),
        takeUntilDestroyed(),
      )
      .subscribe((result) => {
        this.loading.set(false);
        this.listing.set(result.value);
        this.listingError.set(result.error);
      });
  }

  /** Owners create inside, share, delete and move; the database decides, this only hides what would be refused. */
  protected owns(item: { access: Access }): boolean {
    return item.access === 'owner';
  }

  /** Owners and editors (write grants) rename. */
  protected canRename(item: { access: Access }): boolean {
    return item.access !== 'read';
  }

  protected startRename(kind: ShareKind, id: string, name: string): void {
    this.actionError.set(null);
    this.newName.setValue(name);
    this.renaming.set(`${kind}:${id}`);
  }

  protected rename(event: Event, kind: ShareKind, id: string): void {
    event.preventDefault();
    const name = this.newName.value.trim();
    if (!name || this.newName.invalid) return;
    const request: Observable<unknown> =
      kind === 'files' ? this.api.updateFile(id, { name }) : this.api.updateDirectory(id, { name });
    request.subscribe({
      next: () => {
        this.renaming.set(null);
        this.refresh();
      },
      error: (e: unknown) => this.actionError.set(toApiRequestError(e)),
    });
  }

  protected goTo(directoryId: string | null, page = 1): void {
    this.creating.set(null);
    this.renaming.set(null);
    this.confirmingDelete.set(null);
    void this.router.navigate(['/'], {
      queryParams: { dir: directoryId ?? undefined, page: page > 1 ? page : undefined },
    });
  }

  protected openFile(id: string): void {
    void this.router.navigate(['/files', id]);
  }

  protected toggleCreate(what: 'folder' | 'file'): void {
    this.creating.update((current) => (current === what ? null : what));
  }

  protected created(): void {
    this.creating.set(null);
    this.refresh();
  }

  protected share(kind: ShareKind, id: string, name: string): void {
    this.sharing.set({ kind, id, name });
  }

  protected remove(kind: ShareKind, id: string): void {
    this.actionError.set(null);
    const request = kind === 'files' ? this.api.deleteFile(id) : this.api.deleteDirectory(id);
    request.subscribe({
      next: () => {
        this.confirmingDelete.set(null);
        const current = this.listing()?.directory;
        if (kind === 'directories' && current?.id === id) this.goTo(current.parentId);
        this.refresh();
      },
      error: (e: unknown) => {
        this.confirmingDelete.set(null);
        this.actionError.set(toApiRequestError(e));
      },
    });
  }

  private refresh(): void {
    this.reloads.update((n) => n + 1);
    this.loadTree();
  }

  private loadTree(): void {
    this.api.tree().subscribe({
      next: (tree) => {
        this.tree.set(tree);
        this.treeError.set(null);
      },
      error: (e: unknown) => this.treeError.set(toApiRequestError(e)),
    });
  }
}

/** Value or typed error, never a failed stream (so one failure does not end the listing). */
function settle<T>(source: Observable<T>): Observable<Loaded<T>> {
  return source.pipe(
    map((value) => ({ value, error: null })),
    catchError((e: unknown) => of({ value: null, error: toApiRequestError(e) })),
  );
}
