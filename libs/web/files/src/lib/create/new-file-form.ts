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
import { FormControl, FormGroup, ReactiveFormsModule, Validators } from '@angular/forms';
import { type ApiRequestError, toApiRequestError } from '@forwardable/web/auth';
import { ErrorBanner } from '@forwardable/web/ui';
import type { FileDto } from '@forwardable/shared/contracts';
import { FilesApi } from '../data-access/files-api';

/** Creates a text file in `directoryId` (null: the top level). */
@Component({
  selector: 'fw-new-file-form',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [ReactiveFormsModule, ErrorBanner],
  template: `
    <form class="fw-form" aria-label="New file" [formGroup]="form" (ngSubmit)="submit()">
      <label>
        File name
        <input
          #nameInput
          type="text"
          data-testid="new-file-name"
          required
          maxlength="255"
          formControlName="name"
        />
      </label>
      <label>
        Content
        <textarea rows="5" data-testid="new-file-content" formControlName="content"></textarea>
      </label>
      <div class="fw-actions">
        <button
          type="submit"
          class="fw-primary"
          data-testid="new-file-submit"
          [disabled]="busy() || form.invalid"
        >
          {{ busy() ? 'Creating…' : 'Create file' }}
        </button>
        <button type="button" (click)="cancelled.emit()">Cancel</button>
      </div>
      <fw-error-banner [error]="error()" />
    </form>
  `,
})
export class NewFileForm {
  private readonly api = inject(FilesApi);

  readonly directoryId = input<string | null>(null);
  readonly created = output<FileDto>();
  readonly cancelled = output<void>();

  protected readonly form = new FormGroup({
    name: new FormControl('', { nonNullable: true, validators: [Validators.required] }),
    content: new FormControl('', { nonNullable: true }),
  });
  protected readonly busy = signal(false);
  protected readonly error = signal<ApiRequestError | null>(null);
  private readonly nameInput = viewChild.required<ElementRef<HTMLInputElement>>('nameInput');

  constructor() {
    afterNextRender(() => this.nameInput().nativeElement.focus());
  }

  protected submit(): void {
    const { name, content } = this.form.getRawValue();
    if (!name.trim() || this.busy()) return;
    this.busy.set(true);
    this.error.set(null);
    this.api.createFile({ name: name.trim(), content, directoryId: this.directoryId() }).subscribe({
      next: (file) => {
        this.busy.set(false);
        this.form.reset();
        this.created.emit(file);
      },
      error: (e: unknown) => {
        this.busy.set(false);
        this.error.set(toApiRequestError(e));
      },
    });
  }
}
