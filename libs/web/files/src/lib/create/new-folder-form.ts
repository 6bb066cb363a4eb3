import {
  ChangeDetectionStrategy,
  Component,
  ElementRef,
  afterNextRender,
  inject,
  input,
  output,
  signal,
  viewChild,
} from '@angular/core';
import { FormControl, ReactiveFormsModule, Validators } from '@angular/forms';
import { type ApiRequestError, toApiRequestError } from '@forwardable/web/auth';
import { ErrorBanner } from '@forwardable/web/ui';
import type { DirectoryDto } from '@forwardable/shared/contracts';
import { FilesApi } from '../data-access/files-api';

/** Creates a folder in `parentId` (null: the top level). */
@Component({
  selector: 'fw-new-folder-form',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [ReactiveFormsModule, ErrorBanner],
  template: `
    <form class="fw-form" aria-label="New folder" (submit)="submit($event)">
      <label>
        Folder name
        <input
          #nameInput
          type="text"
          data-testid="new-folder-name"
          required
          maxlength="255"
          [formControl]="name"
        />
      </label>
      <div class="fw-actions">
        <button
          type="submit"
          class="fw-primary"
          data-testid="new-folder-submit"
          [disabled]="busy() || name.invalid"
        >
          {{ busy() ? 'Creating…' : 'Create folder' }}
        </button>
        <button type="button" (click)="cancelled.emit()">Cancel</button>
      </div>
      <fw-error-banner [error]="error()" />
    </form>
  `,
})
export class NewFolderForm {
  private readonly api = inject(FilesApi);

  readonly parentId = input<string | null>(null);
  readonly created = output<DirectoryDto>();
  readonly cancelled = output<void>();

  protected readonly name = new FormControl('', { nonNullable: true, validators: [Validators.required] });
  protected readonly busy = signal(false);
  protected readonly error = signal<ApiRequestError | null>(null);
  private readonly nameInput = viewChild.required<ElementRef<HTMLInputElement>>('nameInput');

  constructor() {
    afterNextRender(() => this.nameInput().nativeElement.focus());
  }

  protected submit(event: Event): void {
    event.preventDefault();
    const name = this.name.value.trim();
    if (!name || this.busy()) return;
    this.busy.set(true);
    this.error.set(null);
    this.api.createDirectory({ name, parentId: this.parentId() }).subscribe({
      next: (directory) => {
        this.busy.set(false);
        this.name.reset();
        this.created.emit(directory);
      },
      error: (e: unknown) => {
        this.busy.set(false);
        this.error.set(toApiRequestError(e));
      },
    });
  }
}
