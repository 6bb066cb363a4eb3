import { Controller, Get, Header, OnModuleInit } from '@nestjs/common';
import { Counter, Gauge, Registry } from 'prom-client';
import { AuthMetrics, CredentialVault, Public, UserDataSources } from '@forwardable/nest';

/**
 * `GET /api/metrics`: Prometheus text format. Negotiations, failures by reason, password sign-ins,
 * sessions with a credential on this replica, per-user pools and their connections. Counts only:
 * no principal names, no tokens. Unauthenticated (for a scraper), so only mounted when
 * FORWARDABLE_METRICS is on: keep the path internal at the proxy.
 */
@Controller()
export class MetricsController implements OnModuleInit {
  // One registry per app instance (not prom-client's global one): tests run several apps in one process.
  private readonly registry = new Registry();

  constructor(
    private readonly auth: AuthMetrics,
    private readonly vault: CredentialVault,
    private readonly pools: UserDataSources,
  ) {}

  onModuleInit(): void {
    const auth = this.auth;
    const vault = this.vault;
    const pools = this.pools;
    const r = [this.registry];
    new Counter({
      name: 'forwardable_negotiations_total', help: 'Successful HTTP Negotiate sign-ins', registers: r,
      collect() { this.reset(); this.inc(auth.negotiations); },
    });
    new Counter({
      name: 'forwardable_password_logins_total', help: 'Successful password sign-ins (KDC verified)', registers: r,
      collect() { this.reset(); this.inc(auth.passwordLogins); },
    });
    new Counter({
      name: 'forwardable_auth_failures_total', help: 'Refused sign-ins by reason (API error code)', labelNames: ['reason'], registers: r,
      collect() { this.reset(); for (const [reason, n] of auth.failures) this.inc({ reason }, n); },
    });
    new Gauge({ name: 'forwardable_sessions', help: 'Sessions whose credential this replica holds', registers: r, collect() { this.set(vault.size); } });
    new Gauge({ name: 'forwardable_user_pools', help: 'Open per-user database pools', registers: r, collect() { this.set(pools.stats().users); } });
    new Gauge({ name: 'forwardable_db_connections', help: 'Database connections held by the per-user pools', registers: r, collect() { this.set(pools.stats().connections); } });
    new Counter({
      name: 'forwardable_pool_events_total', help: 'Per-user pool opens, reuses and closes by cause', labelNames: ['event'], registers: r,
      collect() { this.reset(); for (const [event, n] of Object.entries(pools.stats().counters)) this.inc({ event }, n); },
    });
    // Hot standbys (FORWARDABLE_PG_READ_HOSTS): where reads went, and which standby is out of service.
    new Counter({
      name: 'forwardable_db_reads_total', help: 'Reads by where they were served: standby, primary, afterWrite (own write not replayed yet), fallbacks (standby failed)', labelNames: ['served'], registers: r,
      collect() { this.reset(); for (const [served, n] of Object.entries(pools.stats().reads)) this.inc({ served }, n); },
    });
    new Gauge({
      name: 'forwardable_db_standby_down', help: 'Whether a read standby is out of service (down, lagging, promoted)', labelNames: ['host'], registers: r,
      collect() { this.reset(); for (const s of pools.stats().standbys) this.set({ host: s.host }, s.down ? 1 : 0); },
    });
  }

  @Public()
  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
