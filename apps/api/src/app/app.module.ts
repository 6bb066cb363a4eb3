import { DynamicModule, Module } from '@nestjs/common';
import { ServeStaticModule } from '@nestjs/serve-static';
import { ForwardableModule, RedisSessionStore } from '@forwardable/nest';
import { schemaEntities } from '@forwardable/api/db';
import { FilesModule } from '@forwardable/api/files';
import { RlsAdminModule } from '@forwardable/api/rls-admin';
import { AppController } from './app.controller';
import { MetricsController } from './metrics.controller';
import { GracefulShutdown } from './graceful-shutdown';
import type { ApiConfig } from './config';

/** The API's root module: wiring only; features live in libs/api/*. */
@Module({})
export class AppModule {
  static register(config: ApiConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ForwardableModule.forRoot({
          keytab: config.keytab,
          servicePrincipal: config.servicePrincipal,
          delegation: config.delegation,
          allowedRealms: config.allowedRealms,
          usernameCase: config.usernameCase,
          sessionMaxAgeMs: config.sessionMaxAgeMs,
          maxSessionsPerUser: config.maxSessionsPerUser,
          secureCookies: config.secureCookies,
          credentialStore: config.credentialStore,
          fileCacheDir: config.credentialDir,
          admins: config.admins,
          adminGroup: config.adminGroup,
          ldap: config.ldap,
          sessionStore: config.redisUrl ? new RedisSessionStore(config.redisUrl) : undefined,
          passwordLogin: { enabled: config.passwordLogin, verifyKdc: config.verifyKdc, redirectTo: config.loginRedirect },
          database: {
            host: config.pg.host,
            hostaddr: config.pg.hostaddr,
            port: config.pg.port,
            database: config.pg.database,
            gssencmode: config.pg.gssencmode,
            sslmode: config.pg.sslmode,
            sslrootcert: config.pg.sslrootcert,
            entities: schemaEntities,
            maxUsers: config.pg.maxUsers,
            connectionsPerUser: config.pg.connectionsPerUser,
            maxConnections: config.pg.maxConnections,
            sliceMs: config.pg.sliceMs,
            maxQueuePerUser: config.pg.maxQueuePerUser,
            queueTimeoutMs: config.pg.queueTimeoutMs,
            readHosts: config.pg.readHosts,
            primaryServesReads: config.pg.primaryServesReads,
          },
        }),
        FilesModule,
        RlsAdminModule,
        ...(config.webDir
          ? [ServeStaticModule.forRoot({ rootPath: config.webDir, exclude: ['/api/{*path}'] })]
          : []),
      ],
      // Metrics are unauthenticated counters for a scraper: only when asked for (FORWARDABLE_METRICS).
      controllers: config.metrics ? [AppController, MetricsController] : [AppController],
      providers: [GracefulShutdown],
    };
  }
}
