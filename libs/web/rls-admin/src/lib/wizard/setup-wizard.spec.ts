import { provideHttpClient, withInterceptors } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { ComponentFixture, TestBed } from '@angular/core/testing';
import { apiErrorInterceptor, csrfInterceptor } from '@forwardable/web/auth';
import type { RlsModelsResponse } from '@forwardable/shared/contracts';
import { ErrorBannerHarness, LoadingHarness } from '@forwardable/web/ui';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SetupWizard } from './setup-wizard';

const MODELS: RlsModelsResponse = {
  tables: [
    {
      table: 'files',
      primaryKey: ['id'],
      ownerCandidates: ['owner', 'created_by'],
      permissionCandidates: [
        {
          table: 'file_permissions',
          fkColumn: 'file_id',
          granteeCandidates: ['grantee', 'granted_by', 'level'],
        },
        { table: 'file_shares', fkColumn: 'file', granteeCandidates: ['role_name'] },
      ],
      parentCandidates: [{ column: 'directory_id', table: 'directories' }],
      rls: { enabled: false, forced: false },
      policies: [],
    },
    {
      table: 'directories',
      primaryKey: ['id'],
      ownerCandidates: ['owner'],
      permissionCandidates: [],
      parentCandidates: [{ column: 'parent_id', table: 'directories' }],
      rls: { enabled: true, forced: true },
      policies: ['directories_owner'],
    },
    {
      table: 'audit_log',
      primaryKey: ['id'],
      ownerCandidates: [],
      permissionCandidates: [],
      parentCandidates: [],
      rls: { enabled: false, forced: false },
      policies: [],
    },
  ],
};

describe('SetupWizard', () => {
  let backend: HttpTestingController;
  let fixture: ComponentFixture<SetupWizard>;
  let el: HTMLElement;

  const byId = <T extends HTMLElement = HTMLElement>(id: string, root: ParentNode = el) =>
    root.querySelector<T>(`[data-testid="${id}"]`) as T;
  const table = (name: string) =>
    el.querySelector<HTMLElement>(`[data-testid="wizard-table"][data-table="${name}"]`) as HTMLElement;
  const stable = () => fixture.whenStable();
  const choose = async (select: HTMLSelectElement, value: string) => {
    select.value = value;
    select.dispatchEvent(new Event('change'));
    await stable();
  };

  beforeEach(async () => {
    TestBed.configureTestingModule({
      providers: [
        provideHttpClient(withInterceptors([csrfInterceptor, apiErrorInterceptor])),
        provideHttpClientTesting(),
      ],
    });
    backend = TestBed.inject(HttpTestingController);
    fixture = TestBed.createComponent(SetupWizard);
    el = fixture.nativeElement;
    await stable();
  });

  afterEach(() => backend.verify());

  async function toModels() {
    backend
      .expectOne({ method: 'GET', url: '/api/rls/target' })
      .flush({ database: 'forwardable', schema: 'public', user: 'admin' });
    await stable();
    byId('wizard-next').click();
    await stable();
    backend.expectOne({ method: 'GET', url: '/api/rls/models' }).flush(MODELS);
    await stable();
  }

  it('starts with the target: database, schema, and the admin as the role', async () => {
    expect(new LoadingHarness(el).isLoading()).toBe(true);
    backend.expectOne('/api/rls/target').flush({ database: 'forwardable', schema: 'public', user: 'admin' });
    await stable();
    const target = byId('wizard-target');
    expect(target.textContent).toContain('forwardable');
    expect(target.textContent).toContain('public');
    expect(target.textContent).toContain('admin');
    expect(el.querySelector('[aria-current="step"]')?.textContent).toContain('Target');
  });

  it('offers each table with its owner and permission candidates', async () => {
    await toModels();
    expect(byId('wizard-models')).not.toBeNull();
    expect(el.querySelector('[aria-current="step"]')?.textContent).toContain('Tables');
    const files = table('files');
    expect(Array.from(byId<HTMLSelectElement>('owner-column', files).options).map((o) => o.value)).toEqual([
      'owner',
      'created_by',
    ]);
    expect(
      Array.from(byId<HTMLSelectElement>('permission-table', files).options).map((o) => o.value),
    ).toEqual(['', 'file_permissions', 'file_shares']);
    expect(table('directories').textContent).toContain('policies: directories_owner');
    const audit = table('audit_log');
    expect(audit.querySelector<HTMLInputElement>('input[type="checkbox"]')?.disabled).toBe(true);
    expect(byId('owner-column', audit)).toBeNull();
  });

  it('walks target → models → SQL preview → apply → result with the chosen mapping', async () => {
    await toModels();
    const files = table('files');
    await choose(byId<HTMLSelectElement>('owner-column', files), 'created_by');
    await choose(byId<HTMLSelectElement>('permission-table', files), 'file_permissions');
    expect(Array.from(byId<HTMLSelectElement>('grantee-column', files).options).map((o) => o.value)).toEqual([
      'grantee',
      'granted_by',
      'level',
    ]);
    await choose(byId<HTMLSelectElement>('grantee-column', files), 'granted_by');
    // the level column is offered among the other string columns, never the grantee itself
    expect(Array.from(byId<HTMLSelectElement>('level-column', files).options).map((o) => o.value)).toEqual([
      '',
      'grantee',
      'level',
    ]);
    await choose(byId<HTMLSelectElement>('level-column', files), 'level');
    // no container: directories stay out of this mapping
    expect(
      Array.from(byId<HTMLSelectElement>('parent', files).options).map((o) => o.textContent?.trim()),
    ).toEqual(['Nothing (no inherited access)', 'directory_id → directories']);
    await choose(byId<HTMLSelectElement>('parent', files), '');
    // Leave directories out.
    const dirs = table('directories').querySelector<HTMLInputElement>(
      'input[type="checkbox"]',
    ) as HTMLInputElement;
    dirs.click();
    await stable();

    byId('wizard-to-preview').click();
    const preview = backend.expectOne({ method: 'POST', url: '/api/rls/preview' });
    const mapping = {
      tables: [
        {
          table: 'files',
          ownerColumn: 'created_by',
          permission: {
            table: 'file_permissions',
            fkColumn: 'file_id',
            granteeColumn: 'granted_by',
            levelColumn: 'level',
          },
        },
      ],
    };
    expect(preview.request.body).toEqual(mapping);
    preview.flush({
      sql: 'ALTER TABLE files ENABLE ROW LEVEL SECURITY;\nCREATE POLICY files_owner ON files USING (created_by = current_user);',
    });
    await stable();
    const pre = byId('wizard-preview');
    expect(pre.tagName).toBe('PRE');
    expect(pre.textContent).toContain(
      'CREATE POLICY files_owner ON files USING (created_by = current_user);',
    );

    byId('wizard-apply').click();
    const apply = backend.expectOne({ method: 'POST', url: '/api/rls/apply' });
    expect(apply.request.body).toEqual(mapping);
    apply.flush({ applied: true, statements: 2 });
    await stable();
    expect(byId('wizard-result').textContent).toContain('Applied: 2 statements ran.');
    expect(byId('wizard-preview')).toBeNull();
  });

  it('sends the group role when one is given', async () => {
    await toModels();
    const role = byId<HTMLInputElement>('group-role');
    role.value = ' staff ';
    role.dispatchEvent(new Event('input'));
    await stable();
    byId('wizard-to-preview').click();
    const preview = backend.expectOne('/api/rls/preview');
    expect(preview.request.body).toEqual({
      // The proposal: each table with an owner column, through its own permission table with its
      // level column, inside its container (directories are a tree).
      tables: [
        {
          table: 'files',
          ownerColumn: 'owner',
          permission: {
            table: 'file_permissions',
            fkColumn: 'file_id',
            granteeColumn: 'grantee',
            levelColumn: 'level',
          },
          parent: { column: 'directory_id', table: 'directories' },
        },
        { table: 'directories', ownerColumn: 'owner', parent: { column: 'parent_id', table: 'directories' } },
      ],
      groupRole: 'staff',
    });
    preview.flush({ sql: 'SELECT 1;' });
  });

  it("shows the database's refusal verbatim and stays on the preview", async () => {
    await toModels();
    byId('wizard-to-preview').click();
    backend.expectOne('/api/rls/preview').flush({ sql: 'ALTER TABLE files ENABLE ROW LEVEL SECURITY;' });
    await stable();
    byId('wizard-apply').click();
    backend.expectOne('/api/rls/apply').flush(
      {
        statusCode: 403,
        code: 'DATABASE_PERMISSION',
        message: 'must be owner of table files',
        hint: 'Run the wizard as the role that owns the tables',
      },
      { status: 403, statusText: 'Forbidden' },
    );
    await stable();
    const banner = new ErrorBannerHarness(el);
    expect(banner.message()).toBe('must be owner of table files');
    expect(banner.hint()).toBe('Run the wizard as the role that owns the tables');
    expect(byId('wizard-preview')).not.toBeNull();
    expect(byId('wizard-result')).toBeNull();
  });

  it('cannot preview with no table chosen', async () => {
    await toModels();
    for (const name of ['files', 'directories']) {
      table(name).querySelector<HTMLInputElement>('input[type="checkbox"]')?.click();
      await stable();
    }
    expect(byId<HTMLButtonElement>('wizard-to-preview').disabled).toBe(true);
  });
});
