import {
  ChangeDetectionStrategy,
  Component,
  ElementRef,
  Injector,
  OnInit,
  afterNextRender,
  computed,
  inject,
  signal,
  viewChild,
} from '@angular/core';
import { type ApiRequestError, toApiRequestError } from '@forwardable/web/auth';
import { ErrorBanner, Loading } from '@forwardable/web/ui';
import type {
  RlsApplyResponse,
  RlsMappingRequest,
  RlsModel,
  RlsPermissionCandidate,
  RlsTargetResponse,
} from '@forwardable/shared/contracts';
import { Observable } from 'rxjs';
import { RlsApi } from '../data-access/rls-api';

export type WizardStep = 'target' | 'models' | 'preview' | 'result';

/** The admin's choice for one table while the form is being filled in. */
interface TableChoice {
  include: boolean;
  ownerColumn: string;
  /** Name of the chosen permission table ('' for none). */
  permissionTable: string;
  granteeColumn: string;
  /** Column holding each grant's level (`read`/`write`), '' when every grant reads. */
  levelColumn: string;
  /** The container, as `column table` ('' for none): its grants reach the rows inside it. */
  parent: string;
}

const STEPS: { id: WizardStep; label: string }[] = [
  { id: 'target', label: 'Target' },
  { id: 'models', label: 'Tables' },
  { id: 'preview', label: 'SQL preview' },
  { id: 'result', label: 'Result' },
];

/**
 * Sets up row-level security in four steps: the target database (as the admin's own role),
 * the tables with their owner column, optional permission table (with an optional level column
 * for read/write grants) and optional container (whose grants reach the rows inside it), the SQL
 * the API would run,
 * then applying it. Database errors (403 DATABASE_PERMISSION) are shown exactly as PostgreSQL
 * worded them.
 */
@Component({
  selector: 'fw-setup-wizard',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [ErrorBanner, Loading],
  templateUrl: './setup-wizard.html',
  styleUrl: './setup-wizard.css',
})
export class SetupWizard implements OnInit {
  private readonly api = inject(RlsApi);
  private readonly injector = inject(Injector);

  protected readonly steps = STEPS;
  protected readonly step = signal<WizardStep>('target');
  protected readonly target = signal<RlsTargetResponse | null>(null);
  protected readonly models = signal<RlsModel[] | null>(null);
  protected readonly choices = signal<Record<string, TableChoice>>({});
  protected readonly groupRole = signal('');
  protected readonly sql = signal<string | null>(null);
  protected readonly result = signal<RlsApplyResponse | null>(null);
  protected readonly error = signal<ApiRequestError | null>(null);
  protected readonly busy = signal(false);
  protected readonly stepIndex = computed(() => STEPS.findIndex((s) => s.id === this.step()));

  /** The request for preview and apply, built from the choices. */
  protected readonly mapping = computed<RlsMappingRequest>(() => {
    const choices = this.choices();
    const tables = (this.models() ?? [])
      .filter((m) => choices[m.table]?.include && choices[m.table].ownerColumn)
      .map((m) => {
        const c = choices[m.table];
        const permission = m.permissionCandidates.find((p) => p.table === c.permissionTable);
        const parent = m.parentCandidates.find((p) => `${p.column} ${p.table}` === c.parent);
        return {
          table: m.table,
          ownerColumn: c.ownerColumn,
          ...(permission && c.granteeColumn
            ? {
                permission: {
                  table: permission.table,
                  fkColumn: permission.fkColumn,
                  granteeColumn: c.granteeColumn,
                  ...(c.levelColumn ? { levelColumn: c.levelColumn } : {}),
                },
              }
            : {}),
          ...(parent ? { parent } : {}),
        };
      });
    const groupRole = this.groupRole().trim();
    return groupRole ? { tables, groupRole } : { tables };
  });
  protected readonly canPreview = computed(() => this.mapping().tables.length > 0 && !this.busy());

  private readonly stepHeading = viewChild<ElementRef<HTMLElement>>('stepHeading');

  ngOnInit(): void {
    this.run(this.api.target(), (target) => this.target.set(target));
  }

  protected toModels(): void {
    this.go('models');
    if (this.models()) return;
    this.run(this.api.models(), ({ tables }) => {
      this.models.set(tables);
      // A sensible first proposal: protect the tables with a one-column key and an `owner`
      // column, each through its own permission table (one that references it and no other
      // table), with a `level` column of that table as the grants' level and a foreign key to
      // itself (a tree) or else to another such table as the container; everything else starts
      // unticked for the admin to decide.
      const permissionTables = new Set(tables.flatMap((m) => m.permissionCandidates.map((p) => p.table)));
      const dataTables = new Set(tables.filter((m) => !permissionTables.has(m.table)).map((m) => m.table));
      this.choices.set(
        Object.fromEntries(
          tables.map((m) => {
            const own = m.permissionCandidates.find(
              (p) => p.table.startsWith(m.table.replace(/s$/, '')) && p.granteeCandidates.length > 0,
            );
            const permission = own ?? m.permissionCandidates[0];
            const ownerColumn = m.ownerCandidates.includes('owner') ? 'owner' : (m.ownerCandidates[0] ?? '');
            const parent =
              m.parentCandidates.find((p) => p.table === m.table) ??
              m.parentCandidates.find((p) => dataTables.has(p.table));
            return [
              m.table,
              {
                include:
                  m.ownerCandidates.includes('owner') &&
                  m.primaryKey.length === 1 &&
                  !permissionTables.has(m.table),
                ownerColumn,
                permissionTable: own?.table ?? '',
                granteeColumn: permission?.granteeCandidates[0] ?? '',
                levelColumn: own?.granteeCandidates.includes('level') ? 'level' : '',
                parent: parent ? `${parent.column} ${parent.table}` : '',
              },
            ];
          }),
        ),
      );
    });
  }

  protected toPreview(): void {
    this.run(this.api.preview(this.mapping()), ({ sql }) => {
      this.sql.set(sql);
      this.go('preview');
    });
  }

  protected apply(): void {
    this.run(this.api.apply(this.mapping()), (result) => {
      this.result.set(result);
      this.go('result');
    });
  }

  protected go(step: WizardStep): void {
    this.error.set(null);
    this.step.set(step);
    // Move focus to the new step's heading, so keyboard and screen-reader users follow along.
    afterNextRender(() => this.stepHeading()?.nativeElement.focus(), { injector: this.injector });
  }

  protected choice(table: string): TableChoice {
    return this.choices()[table];
  }

  protected update(table: string, change: Partial<TableChoice>): void {
    this.choices.update((all) => ({ ...all, [table]: { ...all[table], ...change } }));
  }

  protected choosePermission(model: RlsModel, table: string): void {
    const candidate = model.permissionCandidates.find((p) => p.table === table);
    this.update(model.table, {
      permissionTable: table,
      granteeColumn: candidate?.granteeCandidates[0] ?? '',
      levelColumn: '',
    });
  }

  protected permissionOf(model: RlsModel): RlsPermissionCandidate | undefined {
    return model.permissionCandidates.find((p) => p.table === this.choice(model.table)?.permissionTable);
  }

  protected value(event: Event): string {
    return (event.target as HTMLInputElement | HTMLSelectElement).value;
  }

  protected checked(event: Event): boolean {
    return (event.target as HTMLInputElement).checked;
  }

  private run<T>(request: Observable<T>, done: (value: T) => void): void {
    this.busy.set(true);
    this.error.set(null);
    request.subscribe({
      next: (value) => {
        this.busy.set(false);
        done(value);
      },
      error: (e: unknown) => {
        this.busy.set(false);
        this.error.set(toApiRequestError(e));
      },
    });
  }
}
