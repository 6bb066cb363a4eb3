import { Client } from 'pg';
import { acquireServiceCredential, configureKerberos, Credential } from '@forwardable/gssapi';
import { gssapiClientConfig, isLoopbackTarget, PgAuthError, type GssapiStream, type PgLinkProtection } from '@forwardable/pg-gssapi';
import type { ApiConfig } from './config';

/** One check's verdict. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/**
 * `doctor`: check a deployment's Kerberos and PostgreSQL set-up the way the API will use it, and
 * say what to fix. Keytab and SPN, KDC reachability (which also proves the clock is within the
 * realm's skew), and that PostgreSQL speaks GSSAPI with a working server keytab.
 */
export async function runDoctor(config: ApiConfig): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });
  if (config.krb5Config || config.replayCacheDir) configureKerberos({ krb5Config: config.krb5Config, replayCacheDir: config.replayCacheDir });

  let acceptor: Credential | null = null;
  try {
    acceptor = await acquireServiceCredential({ keytab: config.keytab, principal: config.servicePrincipal, usage: 'accept' });
    add('keytab', true, `${config.keytab} holds a key for ${config.servicePrincipal}`);
  } catch (e) {
    add('keytab', false, (e as Error).message);
  } finally {
    acceptor?.dispose();
  }

  // A TGT for the service from its keytab: the KDC answers, the key is current, clocks agree.
  let service: Credential | null = null;
  try {
    service = await acquireServiceCredential({ keytab: config.keytab, principal: config.servicePrincipal, usage: 'both' });
    add('kdc', true, `the KDC issued ${config.servicePrincipal} a ticket (so it is reachable and the clocks agree)`);
  } catch (e) {
    add('kdc', false, `${(e as Error).message}${/skew/i.test((e as Error).message) ? '' : ' (a clock skew would also show here)'}`);
  }

  if (service) {
    // The service is no database user: PostgreSQL accepting the GSS exchange and then refusing
    // the role proves pg_hba uses gss and the server's keytab works.
    // The same factory, and so the same link protection, as every per-user connection.
    let stream: GssapiStream | null = null;
    const client = new Client({
      ...gssapiClientConfig(service, { ...config.pg }, { user: 'forwardable_doctor', onConnection: (s) => (stream = s) }),
      connectionTimeoutMillis: 10_000,
    });
    let reached = false;
    try {
      await client.connect();
      add('postgresql', true, 'connected');
      reached = true;
    } catch (e) {
      if (e instanceof PgAuthError && (e.code === 'PG_GSSAPI_REJECTED' || e.code === 'PG_ROLE_MISSING')) {
        add('postgresql', true, `${config.pg.host}:${config.pg.port} accepts Kerberos (GSSAPI) and its keytab works`);
        reached = true;
      } else {
        add('postgresql', false, (e as Error).message);
      }
    } finally {
      await client.end().catch(() => undefined);
    }
    if (reached) {
      add('postgresql-link', ...linkVerdict(stream as GssapiStream | null, config));
    }
    service.dispose();
  } else {
    add('postgresql', false, 'not checked: no service ticket (fix the kdc check first)');
  }
  return checks;
}

/** The doctor's verdict on what protected its connection, as every per-user connection is protected. */
function linkVerdict(stream: GssapiStream | null, config: ApiConfig): [boolean, string] {
  const protection: PgLinkProtection = stream?.protection ?? 'none';
  const mode = `gssencmode=${config.pg.gssencmode}, sslmode=${config.pg.sslmode}`;
  if (protection === 'gssenc') return [true, `GSSAPI-encrypted (gss-encryption: confidentiality and integrity, ${mode})`];
  const tls = stream?.tlsInfo;
  if (protection === 'tls' && tls) {
    const checked = config.pg.sslmode === 'verify-full' ? 'certificate and host name verified' : tls.verified ? 'certificate chain verified, host name not checked' : 'certificate NOT verified';
    return [tls.verified || isLoopbackTarget(config.pg), `TLS-encrypted (tls: ${tls.protocol}, ${tls.cipher}; ${checked}; ${mode})`];
  }
  if (isLoopbackTarget(config.pg)) return [true, `not encrypted (none, ${mode}); acceptable on loopback only`];
  return [
    false,
    `NOT encrypted (none, ${mode}): queries and rows cross the network in cleartext; set FORWARDABLE_PG_GSSENCMODE=require and add a ` +
      `"hostgssenc" line to pg_hba.conf, or FORWARDABLE_PG_SSLMODE=verify-full with a "hostssl" line`,
  ];
}
