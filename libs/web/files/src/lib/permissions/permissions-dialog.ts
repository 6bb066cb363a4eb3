import {
  ChangeDetectionStrategy,
  Component,
  OnInit,
  computed,
  inject,
  input,
  output,
  signal,
} from '@angular/core';
import { FormControl, ReactiveFormsModule, Validators } from '@angular/forms';
import { type ApiRequestError, toApiRequestError } from '@forwardable/web/auth';
import { Dialog, ErrorBanner, Loading } from '@forwardable/web/ui';
import type { AccessLevel, PermissionDto } from '@forwardable/shared/contracts';
import { FilesApi, type ShareKind } from '../data-access/files-api';

/**
 * Who has access to a file or folder, and at which level: its own grants (change level, revoke)
 * and those inherited from the folders above it (changed on that folder). Grants by user name at
 * `read` or `write`. Owners only; the database refuses everyone else.
 */
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
    .grants .inherited {
      color: #555;
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
  protected readonly level = new FormControl<AccessLevel>('read', { nonNullable: true });
  /** Grants on the item itself; the inherited ones are listed apart and changed on their folder. */
  protected readonly direct = computed(() => (this.grants() ?? []).filter((p) => !p.inheritedFrom));
  protected readonly inherited = computed(() => (this.grants() ?? []).filter((p) => !!p.inheritedFrom));

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
    this.setLevel(grantee, this.level.value, () => {
      this.grantee.reset();
      this.level.reset();
    });
  }

  /** Grant, or change the level of an existing grant (the API answers both with the grant). */
  protected setLevel(grantee: string, level: AccessLevel, done?: () => void): void {
    this.busy.set(true);
    this.error.set(null);
    this.api.grant(this.kind(), this.targetId(), grantee, level).subscribe({
      next: (permission) => {
        this.busy.set(false);
        this.grants.update((list) => {
          const others = (list ?? []).filter((p) => p.inheritedFrom || p.grantee !== permission.grantee);
          return [...others, permission];
        });
        done?.();
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
        this.grants.update((list) => (list ?? []).filter((p) => p.inheritedFrom || p.grantee !== grantee));
      },
      error: (e: unknown) => {
        this.busy.set(false);
        this.error.set(toApiRequestError(e));
      },
    });
  }
}
