import { Controller, DynamicModule, Get, Module } from '@nestjs/common';
import { ForwardableModule, Public } from '@forwardable/nest';
import { entities } from './entities';
import { ReportsController } from './reports.controller';
import type { ExpenseConfig } from './config';

/** An open route: the global guard of ForwardableModule denies everything else without a session. */
@Controller('health')
export class HealthController {
  @Public()
  @Get()
  health(): { status: 'ok' } {
    return { status: 'ok' };
  }
}

/** The expense-report service: Kerberos sign-on and per-user connections from `@forwardable/nest`. */
@Module({})
export class AppModule {
  static forRoot(config: ExpenseConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        // forRootAsync: how a real app reads validated configuration (ConfigService, a vault, ...).
        ForwardableModule.forRootAsync({
          useFactory: async () => ({
            keytab: config.keytab,
            servicePrincipal: config.servicePrincipal,
            delegation: config.delegation,
            kerberos: { krb5Config: config.krb5Config, replayCacheDir: config.replayCacheDir },
            database: { host: config.pg.host, hostaddr: config.pg.hostaddr, port: config.pg.port, database: config.pg.database, entities },
          }),
        }),
      ],
      controllers: [ReportsController, HealthController],
    };
  }
}
