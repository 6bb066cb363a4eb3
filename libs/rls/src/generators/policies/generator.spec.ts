/** The Nx generator writes the same migration the library renders, from a mapping file in the tree. */
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import policiesGenerator from './generator';

describe('policies generator', () => {
  it('writes <timestamp>-rls-policies.ts from a mapping file, validated against the entities', async () => {
    const tree = createTreeWithEmptyWorkspace();
    tree.write('rls.json', JSON.stringify({ tables: [{ table: 'files', ownerColumn: 'owner', permission: { table: 'file_permissions', fkColumn: 'file_id', granteeColumn: 'grantee' } }] }));
    await policiesGenerator(tree, { mapping: 'rls.json', directory: 'libs/api/db/src/migrations', timestamp: 1763900000000 });
    const text = tree.read('libs/api/db/src/migrations/1763900000000-rls-policies.ts', 'utf-8') as string;
    expect(text).toContain('export class RlsPolicies1763900000000 implements MigrationInterface');
    expect(text).toContain('CREATE POLICY "files_rls_select" ON "public"."files" AS PERMISSIVE FOR SELECT TO PUBLIC');
    expect(text).not.toContain('directories');
    await expect(policiesGenerator(tree, { mapping: 'rls.json', directory: 'libs/api/db/src/migrations', timestamp: 1763900000000 })).rejects.toThrow(/already exists/);
  });

  it('refuses a mapping that does not fit the entities, and a missing file', async () => {
    const tree = createTreeWithEmptyWorkspace();
    tree.write('bad.json', JSON.stringify({ tables: [{ table: 'files', ownerColumn: 'content; DROP TABLE files' }] }));
    await expect(policiesGenerator(tree, { mapping: 'bad.json', directory: 'out' })).rejects.toThrow(/no column "content; DROP TABLE files"/);
    await expect(policiesGenerator(tree, { mapping: 'nope.json', directory: 'out' })).rejects.toThrow(/not found/);
    expect(tree.children('out')).toEqual([]);
  });
});
