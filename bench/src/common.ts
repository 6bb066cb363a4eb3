/** Shared helpers of the benchmark: environment, Kerberos clients, statistics, superuser SQL. */
import { execFileSync } from 'node:child_process';
import { configureKerberos, Credential, InitiatorContext, passwordLogin } from '@forwardable/gssapi';

export function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`bench: ${name} is not set (run through bench/run.sh)`);
  return v;
}

let configured = false;
export function kerberos(): void {
  if (configured) return;
  configureKerberos({ krb5Config: env('KRB5_CONFIG'), replayCacheDir: env('KRB5RCACHEDIR') });
  configured = true;
}

/** Run `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i], i);
      }
    }),
  );
  return out;
}

/** A TGT per user (what a signed-in workstation holds), from the users' password, KDC verified. */
export async function userTickets(names: string[], password: string): Promise<Map<string, Credential>> {
  kerberos();
  const creds = await pool(names, 16, (username) =>
    passwordLogin({ username, password, keytab: env('FORWARDABLE_HTTP_KEYTAB'), servicePrincipal: env('FORWARDABLE_SERVICE_PRINCIPAL') }),
  );
  return new Map(names.map((n, i) => [n, creds[i]]));
}

/** A fresh SPNEGO token for HTTP@localhost, as a browser sends it (`Authorization: Negotiate ...`). */
export async function negotiateToken(tgt: Credential): Promise<Buffer> {
  const ctx = new InitiatorContext({ credential: tgt, target: 'HTTP@localhost', mutual: false, mech: 'spnego' });
  try {
    const r = await ctx.step();
    if (!r.token) throw new Error('no initiator token');
    return r.token;
  } finally {
    ctx.dispose();
  }
}

export async function negotiateHeader(tgt: Credential): Promise<string> {
  return `Negotiate ${(await negotiateToken(tgt)).toString('base64')}`;
}

export function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export function summarize(samples: number[]): { n: number; p50: number; p99: number; mean: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { n: s.length, p50: r(quantile(s, 0.5)), p99: r(quantile(s, 0.99)), mean: r(s.reduce((a, b) => a + b, 0) / (s.length || 1)), max: r(s[s.length - 1] ?? NaN) };
}

export const ms = (t0: bigint, t1: bigint) => Number(t1 - t0) / 1e6;

/** SQL as the cluster superuser, over the private socket (peer auth). Returns unaligned rows. */
export function superSql(sql: string | string[]): string {
  return execFileSync(
    'runuser',
    ['-u', env('FORWARDABLE_PG_SUPERUSER'), '--', 'env', '-u', 'PGHOSTADDR', 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1',
      '-h', env('FORWARDABLE_PG_SOCKET_DIR'), '-p', env('FORWARDABLE_PG_PORT'), '-d', 'forwardable', ...[sql].flat().flatMap((c) => ['-c', c])],
    { encoding: 'utf8' },
  ).trim();
}

/** Resident set size of a process in bytes (/proc/<pid>/status VmRSS). */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(require('node:fs').readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}
