/**
 * Test harness for the API: the real wiring (createApp) on a random port, configured for a test
 * realm, and HTTP clients (curl with real Negotiate, fetch) whose answers are parsed.
 */
import { INestApplication, LoggerService } from '@nestjs/common';
import { spawn } from 'node:child_process';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Credential, InitiatorContext } from '@forwardable/gssapi';
import { runMigrations } from '@forwardable/api/db';
import { kinit, RealmEnv, runWithRealmAsync, TicketCache } from '@forwardable/testing/realm';
import { CSRF_HEADER, CSRF_VALUE, SESSION_COOKIE } from '@forwardable/shared/contracts';
import { createApp } from '../app/bootstrap';
import { ApiConfig, loadConfig } from '../app/config';

/** Every line the API logs, to prove no secret ever reaches a log. */
export class CapturingLogger implements LoggerService {
  readonly lines: string[] = [];
  log(...m: unknown[]) { this.lines.push(m.map(String).join(' ')); }
  error(...m: unknown[]) { this.lines.push(m.map(String).join(' ')); }
  warn(...m: unknown[]) { this.lines.push(m.map(String).join(' ')); }
  debug(...m: unknown[]) { this.lines.push(m.map(String).join(' ')); }
  verbose(...m: unknown[]) { this.lines.push(m.map(String).join(' ')); }
}

/** The API's environment (FORWARDABLE_*) for a test realm. */
export function envFor(realm: RealmEnv, extra: Record<string, string> = {}): Record<string, string> {
  return {
    FORWARDABLE_KEYTAB: realm.httpKeytab,
    FORWARDABLE_SERVICE_PRINCIPAL: realm.servicePrincipal,
    FORWARDABLE_KRB5_CONFIG: realm.krb5Config,
    FORWARDABLE_RCACHE_DIR: realm.rcacheDir,
    FORWARDABLE_DELEGATION: realm.kdb === 'db2' ? 'unconstrained' : 'constrained',
    FORWARDABLE_PG_HOST: 'localhost',
    FORWARDABLE_PG_HOSTADDR: '127.0.0.1',
    FORWARDABLE_PG_PORT: String(realm.pg.port),
    FORWARDABLE_PG_DATABASE: realm.pg.database,
    // db2 realms have no directory: admins come from the list. ldap realms: from LDAP groups.
    ...(realm.kdb === 'ldap'
      ? {
          FORWARDABLE_LDAP_URL: realm.vars.FORWARDABLE_LDAP_URL,
          FORWARDABLE_LDAP_BASE: realm.vars.FORWARDABLE_LDAP_BASE,
          FORWARDABLE_LDAP_GROUPS_BASE: realm.vars.FORWARDABLE_LDAP_GROUPS_BASE,
          FORWARDABLE_LDAP_BIND_DN: realm.vars.FORWARDABLE_LDAP_BIND_DN,
          FORWARDABLE_LDAP_BIND_PASSWORD: realm.vars.FORWARDABLE_LDAP_BIND_PASSWORD,
        }
      : { FORWARDABLE_ADMINS: 'dbadmin' }),
    ...extra,
  };
}

export function configFor(realm: RealmEnv, extra: Record<string, string> = {}): ApiConfig {
  return loadConfig(envFor(realm, extra));
}

/**
 * The API as a separate process (apps/api/src/main.ts under ts-node): for tests that need two
 * replicas, since Passport's strategy registry is process-wide.
 */
/** How long {@link startApiProcess} waits for /api/health. */
const START_TIMEOUT_MS = 100_000;

export async function startApiProcess(realm: RealmEnv, port: number, extra: Record<string, string> = {}): Promise<{ url: string; stop(): Promise<void> }> {
  const root = join(__dirname, '../../../..');
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register', join(root, 'apps/api/src/main.ts')], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', TS_NODE_PROJECT: join(root, 'apps/api/tsconfig.app.json'), ...envFor(realm, { FORWARDABLE_PORT: String(port), ...extra }) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = `http://localhost:${port}`;
  // ts-node transpiles the whole API at start: seconds on a quiet machine, far more on a busy
  // 2-core CI box. Waiting is not a performance claim; a process that exits fails at once.
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the API process exited: ${stderr}`);
    const ok = await fetch(`${url}/api/health`).then((r) => r.ok, () => false);
    if (ok) {
      return {
        url,
        stop: () =>
          new Promise<void>((resolve) => {
            // Nest ends a graceful shutdown by re-raising the signal: then only signalCode is set.
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      };
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill('SIGKILL');
  throw new Error(`the API process did not answer in ${START_TIMEOUT_MS / 1000} s: ${stderr}`);
}

export interface Api {
  app: INestApplication;
  url: string;
  logs: CapturingLogger;
  close(): Promise<void>;
}

export async function startApi(config: ApiConfig): Promise<Api> {
  const logs = new CapturingLogger();
  const app = await createApp(config, { logger: logs });
  await app.listen(0, '127.0.0.1');
  const port = (app.getHttpServer().address() as AddressInfo).port;
  // The SPN has a host name: clients must use localhost, not 127.0.0.1 (KERBEROS-NOTES.md).
  return { app, url: `http://localhost:${port}`, logs, close: () => app.close() };
}

export interface HttpResult {
  status: number;
  headers: Record<string, string[]>;
  body: Record<string, unknown>;
}

/** curl -i, parsed; with --negotiate when a ticket cache is given. */
export async function curl(realm: RealmEnv, url: string, opts: { cc?: TicketCache; delegate?: boolean; cookie?: string; method?: string; headers?: Record<string, string>; json?: unknown } = {}): Promise<HttpResult> {
  const args = ['-s', '-i', '-X', opts.method ?? 'GET'];
  if (opts.cc) args.push('--negotiate', '-u', ':');
  if (opts.delegate) args.push('--delegation', 'always');
  if (opts.cookie) args.push('-H', `Cookie: ${SESSION_COOKIE}=${opts.cookie}`);
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  if (opts.json !== undefined) args.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(opts.json));
  args.push(url);
  const r = await runWithRealmAsync(realm, 'curl', args, { ccache: opts.cc ?? { name: `FILE:${realm.dir}/run/no-such-cache`, path: '', destroy: () => undefined } });
  return parseHttp(r.stdout);
}

/** The last response of a curl -i transcript (a Negotiate exchange prints the 401 first). */
export function parseHttp(raw: string): HttpResult {
  const parts = raw.split(/\r?\n\r?\n/);
  let i = 0;
  while (i + 1 < parts.length && /^HTTP\/\S+ (401|100)\b/.test(parts[i]) && /^HTTP\//.test(parts[i + 1])) i++;
  const [statusLine, ...headerLines] = parts[i].split(/\r?\n/);
  const headers: Record<string, string[]> = {};
  for (const l of headerLines) {
    const c = l.indexOf(':');
    if (c > 0) (headers[l.slice(0, c).toLowerCase()] ??= []).push(l.slice(c + 1).trim());
  }
  const text = parts.slice(i + 1).join('\n\n');
  let body: Record<string, unknown> = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = { raw: text };
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

export function sessionCookie(r: HttpResult): { value: string; attrs: string } {
  const line = (r.headers['set-cookie'] ?? []).find((c) => c.startsWith(`${SESSION_COOKIE}=`));
  if (!line) throw new Error(`no session cookie in ${JSON.stringify(r.headers)}`);
  const [pair, ...attrs] = line.split(';');
  return { value: pair.slice(SESSION_COOKIE.length + 1), attrs: attrs.join(';') };
}

/** A Negotiate token made by our own initiator from a user's ticket cache. */
export async function tokenFor(cc: TicketCache, target = 'HTTP@localhost', delegate = true): Promise<string> {
  const cred = await Credential.fromCache(cc.name, 'password');
  const ctx = new InitiatorContext({ credential: cred, target, mech: 'spnego', delegate, mutual: true });
  try {
    const out = await ctx.step(null);
    return (out.token as Buffer).toString('base64');
  } finally {
    ctx.dispose();
    cred.dispose();
  }
}

export async function fetchJson(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : {} };
}

/** JSON request with the CSRF header and an optional session cookie. */
export function call(url: string, method: string, opts: { cookie?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = { [CSRF_HEADER]: CSRF_VALUE };
  if (opts.cookie) headers.cookie = `${SESSION_COOKIE}=${opts.cookie}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  return fetchJson(url, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
}

/** Password sign-in; returns the session cookie's value. */
export async function passwordSession(api: Api, username: string, password: string): Promise<string> {
  const res = await fetch(`${api.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', [CSRF_HEADER]: CSRF_VALUE },
    body: JSON.stringify({ username, password }),
  });
  if (res.status !== 200) throw new Error(`login as ${username} failed: ${res.status} ${await res.text()}`);
  const set = res.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`)) ?? '';
  return set.split(';')[0].slice(SESSION_COOKIE.length + 1);
}

/** Migrate the realm's database as dbadmin, with a ticket (as an operator would). */
export async function migrateAsDbadmin(realm: RealmEnv): Promise<void> {
  const tgt = kinit(realm, 'dbadmin');
  const cred = await Credential.fromCache(tgt.name, 'password');
  try {
    await runMigrations({ host: 'localhost', hostaddr: '127.0.0.1', port: realm.pg.port, database: realm.pg.database, credential: cred });
  } finally {
    cred.dispose();
    tgt.destroy();
  }
}
