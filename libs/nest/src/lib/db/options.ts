import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { DataSourceOptions } from 'typeorm';
import type { GssEncMode, SslMode } from '@forwardable/pg-gssapi';

/** Configuration of {@link UserDataSources}. There is deliberately no user and no password. */
export interface UserDataSourcesOptions {
  /** Host name in PostgreSQL's service principal (`postgres/<host>`). */
  host: string;
  /** Connect to this IP instead of resolving `host`. */
  hostaddr?: string;
  port: number;
  database: string;
  /** `krbsrvname` of the server, default `postgres`. */
  serviceName?: string;
  /**
   * GSSAPI transport encryption (libpq's `gssencmode`): default `prefer` on loopback and `require`
   * to any other host; `prefer` to a remote host is refused (see `linkProtectionPolicy`).
   */
  gssencmode?: GssEncMode;
  /**
   * TLS (libpq's `sslmode`), tried when GSSAPI encryption is off or refused; default `prefer`.
   * `require`, `verify-ca` or `verify-full` also satisfy the rule for a remote host.
   */
  sslmode?: SslMode;
  /** PEM file of the CA for the server's certificate (libpq's `sslrootcert`); needed by `verify-*`. */
  sslrootcert?: string;
  /** TypeORM entities of the application. */
  entities?: DataSourceOptions['entities'];
  /** Most users with an open pool at once; beyond it users wait in a FIFO queue (see {@link UserDataSources}). Default 100. */
  maxUsers?: number;
  /** Connections one user's pool may hold; 1 for pools opened while other users wait. Default 2. */
  connectionsPerUser?: number;
  /** Most connections over all pools. Default 200 (keep under PostgreSQL's max_connections). */
  maxConnections?: number;
  /** A pool unused this long is closed. Default 300 000 ms. */
  idleTimeoutMs?: number;
  /** How often idle pools are looked for. Default 10 000 ms. */
  sweepIntervalMs?: number;
  /** Give up connecting after this long. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /**
   * Time slice: a pool serves its user at least this long after opening before it may be evicted
   * for a waiting user. Default 250 ms (about 10x the measured Kerberos + PostgreSQL connect cost).
   */
  sliceMs?: number;
  /** Most requests one user may have waiting (for a slot or a connection); more are a 503. Default 64. */
  maxQueuePerUser?: number;
  /** A request not admitted within this long is a 503 "try again". Default 10 000 ms. */
  queueTimeoutMs?: number;
}

/** `forRoot` / `forRootAsync` of `UserDataSourcesModule`, and the injection token of its options. */
export const { ConfigurableModuleClass, MODULE_OPTIONS_TOKEN, OPTIONS_TYPE, ASYNC_OPTIONS_TYPE } =
  new ConfigurableModuleBuilder<UserDataSourcesOptions>().setClassMethodName('forRoot').build();
