import { Global, Module } from '@nestjs/common';
import { ConfigurableModuleClass } from './options';
import { UserDataSources } from './user-data-sources';

/**
 * Per-user PostgreSQL access: `UserDataSourcesModule.forRoot({ host, port, database, entities })`
 * (or `forRootAsync` with a factory reading validated configuration).
 */
@Global()
@Module({ providers: [UserDataSources], exports: [UserDataSources] })
export class UserDataSourcesModule extends ConfigurableModuleClass {}
