import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { DataSourceOptions } from 'typeorm';
import type { GssEncMode, SslMode } from '@forwardable/pg-gssapi';

/**
 * A PostgreSQL hot standby that serves reads (`UserDataSources.read`): the same database, reached
 * with the user's own credential exactly like the primary (its service principal is
 * `postgres/<host>`, so give the name its keytab was made for). Unset fields follow the primary's.
 */
export interface ReadHostOptions {
  /** Host name in the standby's service principal (`postgres/<host>`). */
  host: string;
  /** Connect to this IP instead of resolving `host`. */
  hostaddr?: string;
  /** Default: the primary's port. */
  port?: number;
  /** Default: the primary's `gssencmode` (the same link protection rules apply). */
  gssencmode?: GssEncMode;
  /** Default: the primary's `sslmode`. */
  sslmode?: SslMode;
}

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
  /**
   * Hot standbys for reads (`FORWARDABLE_PG_READ_HOSTS`). Each has its own scheduler with the caps
   * above (`maxUsers`, `maxConnections` are per host). Writes, transactions and a user's reads
   * right after their own writes stay on the primary; see `UserDataSources.read`.
   */
  readHosts?: ReadHostOptions[];
  /**
   * Whether the primary is one more member of the read set (`FORWARDABLE_PG_READ_PRIMARY`): users
   * are spread over the primary and the standbys by a hash of their principal, so one standby
   * doubles the connection budget for reads. `false`: reads go to the standbys only (the primary
   * keeps its budget for writes), and to the primary only when no standby is usable. Default true.
   */
  primaryServesReads?: boolean;
  /**
   * A standby whose replay is further behind the WAL it received than this, or that receives no WAL
   * (its link to the primary is down), serves no reads until it recovers. Default 16 MiB.
   */
  maxReplayLagBytes?: number;
  /** How often a standby's state (in recovery, streaming, replay lag) is checked, on a reader's own connection. Default 1000 ms. */
  standbyCheckIntervalMs?: number;
  /** After a standby failed (down, lagging, promoted), reads stay on the primary this long before trying it again. Default 5000 ms. */
  standbyRetryMs?: number;
}

/** `forRoot` / `forRootAsync` of `UserDataSourcesModule`, and the injection token of its options. */
export const { ConfigurableModuleClass, MODULE_OPTIONS_TOKEN, OPTIONS_TYPE, ASYNC_OPTIONS_TYPE } =
  new ConfigurableModuleBuilder<UserDataSourcesOptions>().setClassMethodName('forRoot').build();
