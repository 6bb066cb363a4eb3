import { DataSource } from 'typeorm';
import { Credential } from '@forwardable/gssapi';
import { gssapiStream, roleFromPrincipal } from '@forwardable/pg-gssapi';
import { schemaEntities } from './entities';
import { FilesSchema1763800000000 } from '../migrations/1763800000000-files-schema';

/** Every migration of the schema, in order. */
export const schemaMigrations = [FilesSchema1763800000000];

/** Where to migrate, and with whose ticket. */
export interface MigrateOptions {
  host: string;
  hostaddr?: string;
  port: number;
  database: string;
  /** The operator's own credential (for example from their `kinit` cache). Not disposed here. */
  credential: Credential;
}

/**
 * Run the pending migrations as the operator, over the same GSSAPI path the API uses. The
 * operator must own the database (or the schema); no password is involved anywhere.
 * @returns the names of the migrations that ran.
 */
export async function runMigrations(o: MigrateOptions): Promise<string[]> {
  const ds = new DataSource({
    type: 'postgres',
    host: o.host,
    port: o.port,
    database: o.database,
    username: roleFromPrincipal(o.credential.principal),
    entities: schemaEntities,
    migrations: schemaMigrations,
    migrationsTableName: 'forwardable_migrations',
    migrationsTransactionMode: 'all',
    installExtensions: false,
    extra: { stream: gssapiStream({ credential: o.credential, hostaddr: o.hostaddr }), max: 1 },
  });
  await ds.initialize();
  try {
    const ran = await ds.runMigrations();
    return ran.map((m) => m.name);
  } finally {
    await ds.destroy();
  }
}
