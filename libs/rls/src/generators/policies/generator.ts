/**
 * `nx g @forwardable/rls:policies --mapping=rls.json --directory=libs/api/db/src/migrations`
 * (or `nx g ./libs/rls:policies ...`): write a TypeORM migration with the policies for a mapping.
 *
 * A generator runs without a database connection, so the model comes from the TypeORM entities
 * (`--entities`, default the file browser's); the migration itself records and restores the real
 * RLS state when it runs. To plan against the live database instead, use the CLI (`plan`, `generate`).
 */
import { join, resolve } from 'node:path';
import { Tree, workspaceRoot } from '@nx/devkit';
import { fileBrowserMapping, migrationFileName, modelFromEntityClasses, parseMapping, planPolicies, renderMigration } from '../../index';

/** Options of the `policies` generator (see schema.json). */
export interface PoliciesGeneratorSchema {
  mapping?: string;
  directory?: string;
  entities?: string;
  export?: string;
  timestamp?: number;
}

/** Write `<directory>/<timestamp>-rls-policies.ts`; fails if the mapping does not fit the entities. */
export default async function policiesGenerator(tree: Tree, options: PoliciesGeneratorSchema): Promise<void> {
  const mappingText = options.mapping ? tree.read(options.mapping, 'utf-8') : null;
  if (options.mapping && mappingText === null) throw new Error(`mapping file ${options.mapping} not found (paths are from the workspace root)`);
  const mapping = parseMapping(mappingText === null ? fileBrowserMapping : JSON.parse(mappingText));

  const entitiesPath = options.entities ?? 'libs/api/db/src/lib/entities/index.ts';
  const mod = require(resolve(workspaceRoot, entitiesPath)) as Record<string, unknown>;
  const picked = options.export ? mod[options.export] : Object.values(mod).filter((v) => typeof v === 'function');
  const entities = (Array.isArray(picked) ? picked : [picked]) as (new () => unknown)[];
  if (!entities.length || entities.some((e) => typeof e !== 'function')) throw new Error(`${entitiesPath}${options.export ? ` export ${options.export}` : ''} has no entity classes`);

  const timestamp = options.timestamp ?? Date.now();
  const plan = planPolicies(mapping, await modelFromEntityClasses(entities, { schema: mapping.schema }));
  const file = join(options.directory ?? 'libs/api/db/src/migrations', migrationFileName({ timestamp }));
  if (tree.exists(file)) throw new Error(`${file} already exists`);
  tree.write(file, renderMigration(plan, { timestamp }));
}
