/** Per-user TypeORM data sources: PostgreSQL as the signed-in user, with no database password. */
export { UserDataSources, CredentialExpiredError, PoolCapacityError, type UserDataSourceCounters } from './lib/user-data-sources';
export { UserDataSourcesModule } from './lib/user-data-sources.module';
export { type UserDataSourcesOptions, MODULE_OPTIONS_TOKEN as USER_DATA_SOURCES_OPTIONS } from './lib/options';
export { Directory, File, DirectoryPermission, FilePermission, schemaEntities } from './lib/entities';
export { runMigrations, schemaMigrations, type MigrateOptions } from './lib/migrate';
