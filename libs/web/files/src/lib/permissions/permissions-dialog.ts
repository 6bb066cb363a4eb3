import { ChangeDetectionStrategy, Component, OnInit, inject, input, output, signal } from '@angular/core';
import { FormControl, ReactiveFormsModule, Validators } from '@angular/forms';
import { type ApiRequestError, toApiRequestError } from '@forwardable/web/auth';
import { Dialog, ErrorBanner, Loading } from '@forwardable/web/ui';
import type { PermissionDto } from '@forwardable/shared/contracts';
import { FilesApi, type ShareKind } from '../data-access/files-api';

/** Who may read a file or folder: lists the grants, grants by user name, revokes. Owners only. */
@Component({
  selector: 'fw-permissions-dialog',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [Dialog, ErrorBanner, Loading, ReactiveFormsModule],
  templateUrl: './permissions-dialog.html',
  styles: `
    .grants {
      list-style: none;
      padding: 0;
      margin: 0.75rem 0;
    }
    .grants li {
      display: flex;
      justify-content: space-between;
      align-items: center;
      gap: 0.5rem;
      padding: 0.35rem 0;
      border-bottom: 1px solid #e3e3e3;
    }
    .grant-form {
      display: flex;
      flex-wrap: wrap;
      gap: 0.5rem;
      align-items: end;
    }
    .grant-form label {
      flex: 1 1 12rem;
    }
  `,
})
export class PermissionsDialog implements OnInit {
  private readonly api = inject(FilesApi);

  readonly kind = input.required<ShareKind>();
  readonly targetId = input.required<string>();
  readonly name = input.required<string>();
  readonly closed = output<void>();

  protected readonly grants = signal<PermissionDto[] | null>(null);
  protected readonly error = signal<ApiRequestError | null>(null);
  protected readonly busy = signal(false);
  protected readonly grantee = new FormControl('', { nonNullable: true, validators: [Validators.required] });

  ngOnInit(): void {
    this.api.permissions(this.kind(), this.targetId()).subscribe({
      next: (grants) => this.grants.set(grants),
      error: (e: unknown) => {
        this.grants.set([]);
        this.error.set(toApiRequestError(e));
      },
    });
  }

  protected grant(event: Event): void {
    event.preventDefault();
    const grantee = this.grantee.value.trim();
    if (!grantee || this.busy()) return;
    this.busy.set(true);
    this.error.set(null);
    this.api.grant(this.kind(), this.targetId(), grantee).subscribe({
      next: (permission) => {
        this.busy.set(false);
        this.grants.update((list) => [
          ...(list ?? []).filter((p) => p.grantee !== permission.grantee),
          permission,
        ]);
        this.grantee.reset();
      },
      error: (e: unknown) => {
        this.busy.set(false);
        this.error.set(toApiRequestError(e));
      },
    });
  }

  protected revoke(grantee: string): void {
    this.busy.set(true);
    this.error.set(null);
    this.api.revoke(this.kind(), this.targetId(), grantee).subscribe({
      next: () => {
        this.busy.set(false);
        this.grants.update((list) => (list ?? []).filter((p) => p.grantee !== grantee));
      },
      error: (e: unknown) => {
        this.busy.set(false);
        this.error.set(toApiRequestError(e));
      },
    });
  }
}
