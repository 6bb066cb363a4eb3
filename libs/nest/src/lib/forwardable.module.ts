import { ConfigurableModuleBuilder, Global, MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import { ThrottlerModule } from '@nestjs/throttler';
import cookieParser from 'cookie-parser';
import type { Request } from 'express';
import { ApiExceptionFilter } from './auth/api-exception.filter';
import { AuthController } from './auth/auth.controller';
import { ForwardableAuthGuard } from './auth/auth.guard';
import { CredentialVault } from './auth/credential-vault';
import { GroupsService } from './auth/groups.service';
import { NegotiateService } from './auth/negotiate.service';
import { NegotiateStrategy } from './auth/negotiate.strategy';
import { AUTH_OPTIONS, AuthOptions } from './auth/options';
import { PasswordLoginService } from './auth/password-login.service';
import { SessionService } from './auth/session.service';
import { UserDb } from './auth/user-db.service';
import { AuthMetrics } from './auth/auth-metrics';
import { MODULE_OPTIONS_TOKEN as DATA_SOURCES_OPTIONS, UserDataSourcesOptions } from './db/options';
import { UserDataSources } from './db/user-data-sources';

/**
 * The user a login attempt counts against: the canonical form of the typed name, so that `carol`,
 * `Carol`, `carol@REALM` and Unicode compatibility or case variants (`ｃａｒｏｌ`, a Kelvin sign for
 * `k`) share one bucket. The realm part is dropped (only the service realm can sign in; another is
 * refused before the KDC is asked). Only a string is a name: anything else is validated, and
 * refused, after the throttle, so it must not throw here.
 */
export function loginThrottleKey(body: unknown): string {
  const name = (body as { username?: unknown } | null | undefined)?.username;
  if (typeof name !== 'string') return '';
  const folded = name.normalize('NFKC').trim();
  const at = folded.lastIndexOf('@');
  // toUpperCase then toLowerCase folds the cases plain lower-casing leaves apart (e.g. ſ and s).
  return (at >= 0 ? folded.slice(0, at) : folded).toUpperCase().toLowerCase().normalize('NFKC');
}

/** Password attempts: per user name and per client address, each per minute. */
export const LOGIN_LIMITS = { perUser: 5, perAddress: 20, windowMs: 60_000 };

/** Everything {@link ForwardableModule} needs: the sign-on settings and where PostgreSQL is. */
export interface ForwardableModuleOptions extends AuthOptions {
  /** The per-user data sources: PostgreSQL as the signed-in user, with no password. */
  database: UserDataSourcesOptions;
}

/** The base class `ConfigurableModuleBuilder` made for {@link ForwardableModule} (its `forRoot` / `forRootAsync`). */
export const {
  ConfigurableModuleClass: ForwardableConfigurableModule,
  MODULE_OPTIONS_TOKEN: FORWARDABLE_OPTIONS,
  OPTIONS_TYPE: FORWARDABLE_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: FORWARDABLE_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<ForwardableModuleOptions>().setClassMethodName('forRoot').build();

/**
 * Kerberos sign-on and per-user database access for a Nest app, in one module:
 *
 * ```ts
 * ForwardableModule.forRoot({ keytab, servicePrincipal, database: { host, port, database, entities } })
 * // or forRootAsync({ inject: [ConfigService], useFactory: (c) => ({ ... }) })
 * ```
 *
 * Installs a global deny-by-default guard (open routes with {@link Public}; state-changing requests
 * need the {@link CSRF_HEADER} header), the JSON error filter, cookie parsing, and the routes
 * `GET auth/me`, `POST auth/logout` and `POST auth/login` (under the app's global prefix).
 * Inject {@link UserDb} to get the signed-in user's own TypeORM `DataSource`.
 */
@Global()
@Module({
  imports: [
    PassportModule,
    ThrottlerModule.forRoot({
      throttlers: [
        { name: 'address', ttl: LOGIN_LIMITS.windowMs, limit: LOGIN_LIMITS.perAddress },
        {
          name: 'username',
          ttl: LOGIN_LIMITS.windowMs,
          limit: LOGIN_LIMITS.perUser,
          getTracker: (req: Record<string, unknown>) => `user:${loginThrottleKey((req as unknown as Request).body)}`,
        },
      ],
    }),
  ],
  controllers: [AuthController],
  providers: [
    { provide: AUTH_OPTIONS, useFactory: (o: ForwardableModuleOptions): AuthOptions => o, inject: [FORWARDABLE_OPTIONS] },
    { provide: DATA_SOURCES_OPTIONS, useFactory: (o: ForwardableModuleOptions) => o.database, inject: [FORWARDABLE_OPTIONS] },
    UserDataSources,
    NegotiateService,
    SessionService,
    CredentialVault,
    GroupsService,
    PasswordLoginService,
    NegotiateStrategy,
    UserDb,
    AuthMetrics,
    { provide: APP_GUARD, useClass: ForwardableAuthGuard },
    { provide: APP_FILTER, useClass: ApiExceptionFilter },
  ],
  exports: [AUTH_OPTIONS, SessionService, CredentialVault, NegotiateService, UserDb, UserDataSources, AuthMetrics],
})
export class ForwardableModule extends ForwardableConfigurableModule implements NestModule {
  /** Session cookies are read by the strategy; cookie-parser leaves already-parsed requests alone. */
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(cookieParser()).forRoutes('{*path}');
  }
}
