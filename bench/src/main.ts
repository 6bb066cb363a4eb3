/**
 * npm run bench (through bench/run.sh, which starts the realm and the API and prepares the data):
 * cold path, event-loop delay, memory and LRU behaviour, and steady-state HTTP load of three back
 * ends. Prints a table, writes tmp/bench/results.json and refreshes the table in bench/README.md.
 * It reports; it never fails on timing.
 */
import 'reflect-metadata';
import { ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { Client } from 'pg';
import { AcceptorContext, acquireServiceCredential, Credential, InitiatorContext } from '@forwardable/gssapi';
import { gssapiClientConfig } from '@forwardable/pg-gssapi';
import { OWN_OR_SHARED_FILES } from '@forwardable/api/files';
import { encryptionCost, encryptionTable } from './encryption';
import { env, kerberos, ms, negotiateHeader, negotiateToken, pool, rssOf, summarize, superSql, userTickets } from './common';

const REPO = resolve(__dirname, '../..');
const REALM_DIR = env('FORWARDABLE_REALM_DIR');
const API = `http://127.0.0.1:${env('FORWARDABLE_PORT')}`;
const BENCH_PORT = Number(env('FORWARDABLE_PORT')) + 1;
const BENCH = `http://127.0.0.1:${BENCH_PORT}`;
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
/**
 * `scheduler`: only the closed-loop reads and the open-loop cells (issue #19); `overhead`: only (a)
 * and (a') reads, see {@link overhead}; `standby`: only the read-replica cells (one hot standby
 * against none, and the shared pool).
 */
const ONLY = process.env.BENCH_ONLY;
const NS = (process.env.BENCH_USERS ?? (ONLY === 'overhead' ? '10 100' : '1 10 100 500')).split(/\s+/).filter(Boolean).map(Number);
const COLD_ITERATIONS = Number(process.env.BENCH_COLD_ITERATIONS ?? 200);
const ENCRYPTION_ITERATIONS = Number(process.env.BENCH_ENCRYPTION_ITERATIONS ?? 100);
const ALL_USERS = env('BENCH_USERS_LIST').trim().split(/\s+/);
/** The closed-loop cells and the in-process cells use the first 500 users. */
const USERS = ALL_USERS.slice(0, 500);
/** Open loop: signed-in users, total Poisson arrival rate (req/s) and seconds per cell. */
const SIGNED_IN = Math.min(Number(process.env.BENCH_SIGNED_IN ?? 5000), ALL_USERS.length);
const RATE = Number(process.env.BENCH_RATE ?? 200);
const OPEN_DURATION = Number(process.env.BENCH_OPEN_DURATION ?? 10);
const PG = { host: env('FORWARDABLE_PG_HOST'), hostaddr: env('FORWARDABLE_PG_HOSTADDR'), port: Number(env('FORWARDABLE_PG_PORT')), database: env('FORWARDABLE_PG_DATABASE') };
/*
 * The cold path's query, as the user (RLS) and as the shared pool's role (the application filters).
 * Both start from what the user can see, as the product's listing does since #19
 * (libs/api/files/src/lib/listing-sql.ts): the user's own rows by the owner index and the rows shared
 * with them as an array of keys, beside the visibility rule; before, both scanned every user's rows.
 */
const LISTING_SQL = `SELECT id, directory_id, name, owner, octet_length(content) AS size, updated_at FROM files WHERE directory_id IS NULL AND ${OWN_OR_SHARED_FILES} ORDER BY name, id LIMIT 50`;
const LISTING_SQL_B = `SELECT id, directory_id, name, owner, octet_length(content) AS size, updated_at FROM files WHERE directory_id IS NULL AND (owner = $1 OR id = ANY (ARRAY(SELECT file_id FROM file_permissions WHERE grantee = $1))) ORDER BY name, id LIMIT 50`;

const say = (s: string) => process.stderr.write(`bench: ${s}\n`);
const results: Record<string, unknown> = {};
let tickets: Map<string, Credential>;

// ------------------------------------------------------------------------------------ HTTP helpers
async function signIn(base: string, path: string, user: string, cookieName: string): Promise<string> {
  const r = await fetch(base + path, { headers: { authorization: await negotiateHeader(tickets.get(user)!) } });
  await r.arrayBuffer();
  const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0];
  if (r.status !== 200 || !cookie.startsWith(`${cookieName}=`)) throw new Error(`sign-in of ${user} at ${base}${path}: HTTP ${r.status}`);
  return cookie;
}

interface Cell { rps: number; p50: number; p99: number; ok: number; non2xx: number; errors: number; timeouts: number }

/** Called right before and right after the measured part of a cell (not the warm-up). */
interface CellHooks { before?(): void; after?(): void }

async function load(base: string, path: string, method: 'GET' | 'POST', cookies: string[], duration = DURATION, hooks: CellHooks = {}): Promise<Cell> {
  // Warm-up outside the measurement: one GET per user, so that pools are open (where they fit).
  await pool(cookies, 16, async (cookie) => (await fetch(base + path, { headers: { cookie } })).arrayBuffer());
  let next = 0;
  hooks.before?.();
  const r = await autocannon({
    url: base + path,
    method,
    connections: cookies.length,
    duration,
    timeout: 30,
    idReplacement: method === 'POST',
    body: method === 'POST' ? JSON.stringify({ name: 'w-[<id>]', content: 'written by the benchmark' }) : undefined,
    setupClient: (client: { setHeaders(h: Record<string, string>): void }) => {
      client.setHeaders({ cookie: cookies[next++ % cookies.length], 'content-type': 'application/json', 'x-requested-with': 'forwardable' });
    },
  } as autocannon.Options);
  hooks.after?.();
  const ok = r['2xx'];
  return { rps: Math.round((ok / r.duration) * 10) / 10, p50: r.latency.p50, p99: r.latency.p99, ok, non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts };
}

interface OpenCell { rate: number; offered: number; achieved: number; ok: number; late: number; errors: number; p50: number; p99: number }

/**
 * Open loop: requests arrive as a Poisson process at `rate` per second in all, each from a user
 * picked at random among `cookies` (signed-in users with sparse requests), whether or not the
 * earlier ones were answered. Reports the achieved rate (2xx answered within the cell, per second of it; answers after the
 * cell are counted apart as `late`: a drained backlog is not capacity), latency of
 * the 2xx answers, and errors (non-2xx, failures, 30 s timeouts).
 */
async function openLoop(base: string, path: string, cookies: string[], rate: number, duration = OPEN_DURATION): Promise<OpenCell> {
  const latencies: number[] = [];
  let ok = 0;
  let late = 0;
  let errors = 0;
  let offered = 0;
  const inflight: Promise<void>[] = [];
  const t0 = performance.now();
  const end = t0 + duration * 1000;
  let next = t0;
  for (;;) {
    next += (-Math.log(1 - Math.random()) / rate) * 1000;
    if (next >= end) break;
    // Timers are coarse: when late, send at once (the arrival times stay those of the process).
    const wait = next - performance.now();
    if (wait >= 1) await sleep(wait);
    offered++;
    const cookie = cookies[Math.floor(Math.random() * cookies.length)];
    const sent = performance.now();
    inflight.push(
      fetch(base + path, { headers: { cookie }, signal: AbortSignal.timeout(30_000) }).then(
        async (r) => {
          await r.arrayBuffer();
          const done = performance.now();
          if (r.status >= 200 && r.status < 300) {
            // Achieved = answers within the cell: a backlog drained after it is not capacity.
            if (done <= end) ok++;
            else late++;
            latencies.push(done - sent);
          } else errors++;
        },
        () => void errors++,
      ),
    );
  }
  await Promise.all(inflight);
  const s = summarize(latencies);
  return { rate, offered, achieved: Math.round((ok / duration) * 10) / 10, ok, late, errors, p50: round(s.p50), p99: round(s.p99) };
}

async function resetWrites(): Promise<void> {
  // Requests still in flight when autocannon stops may commit after a first DELETE: wait, then delete.
  await sleep(1500);
  superSql([`DELETE FROM public.files WHERE name LIKE 'w-%'`, `DELETE FROM bench_rls.files WHERE name LIKE 'w-%'`, 'VACUUM ANALYZE public.files', 'VACUUM ANALYZE bench_rls.files']);
}

const stack = (cmd: 'up' | 'down', extraEnv: Record<string, string> = {}) =>
  execFileSync('bash', [join(REPO, 'tools/scripts/stack.sh'), cmd, '--dir', REALM_DIR], { cwd: REPO, env: { ...process.env, ...extraEnv }, stdio: ['ignore', 'ignore', 'inherit'] });
const apiPid = () => Number(readFileSync(join(REALM_DIR, 'app/api.pid'), 'utf8').trim());
const pgConnections = (app: string) => Number(superSql(`SELECT count(*) FROM pg_stat_activity WHERE application_name = '${app}' AND backend_type = 'client backend'`));
const pgConnectionsAsync = (app: string, port = env('FORWARDABLE_PG_PORT')) =>
  new Promise<number>((res) =>
    execFile('runuser', ['-u', env('FORWARDABLE_PG_SUPERUSER'), '--', 'env', '-u', 'PGHOSTADDR', 'psql', '-X', '-At', '-h', env('FORWARDABLE_PG_SOCKET_DIR'), '-p', port, '-d', 'forwardable',
      '-c', `SELECT count(*) FROM pg_stat_activity WHERE application_name = '${app}' AND backend_type = 'client backend'`], (err, out) => res(err ? 0 : Number(String(out).trim()))),
  );
const sleep = (n: number) => new Promise((r) => setTimeout(r, n));

/** CPU time (ms) a process has used so far, from /proc/<pid>/stat (utime + stime, in clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * Wait until a server is idle before the next cell: requests autocannon gave up on (its timeout)
 * may still be queued there, e.g. after 500 users thrashed the per-user pools, and would be
 * measured as the next cell's cost (seen: the first write cell ran at a few requests/s).
 */
async function settle(pid: number): Promise<void> {
  let quiet = 0;
  let last = cpuMs(pid);
  for (let i = 0; i < 120 && quiet < 2; i++) {
    await sleep(250);
    const now = cpuMs(pid);
    quiet = now - last <= 25 ? quiet + 1 : 0; // at most 10 % of one core over 250 ms
    last = now;
  }
}

// ------------------------------------------------------------------------- 2. cold path, in-process
async function coldPath(): Promise<void> {
  say(`cold path: ${COLD_ITERATIONS} new users' first request, per phase, vs SCRAM connect + query (in-process)`);
  const service = await acquireServiceCredential({ keytab: env('FORWARDABLE_HTTP_KEYTAB'), principal: env('FORWARDABLE_SERVICE_PRINCIPAL'), usage: 'both' });
  const phases: Record<string, number[]> = { accept: [], s4u2proxy: [], pgConnect: [], query: [], total: [], warmQuery: [] };
  const scram: Record<string, number[]> = { connect: [], query: [], total: [] };
  const password = env('BENCH_APP_PASSWORD');
  for (let i = 0; i < COLD_ITERATIONS + 10; i++) {
    const warm = i < 10; // the first few warm up code paths and are not recorded
    const user = USERS[i % USERS.length];
    const token = await negotiateToken(tickets.get(user)!); // the browser's work, not the server's
    // (a) Forwardable: accept + delegation + GSSAPI connect + query.
    const t0 = process.hrtime.bigint();
    const ctx = new AcceptorContext(service);
    const acc = await ctx.step(token);
    ctx.dispose();
    const proxy = acc.delegated!;
    const t1 = process.hrtime.bigint();
    // The S4U2proxy TGS-REQ happens in the first gss_init_sec_context to postgres; the ticket it
    // gets stays in the proxy credential's cache, so the connect below does not ask again.
    const init = new InitiatorContext({ credential: proxy, target: `postgres@${PG.host}` });
    await init.step();
    init.dispose();
    const t2 = process.hrtime.bigint();
    const client = new Client({ ...gssapiClientConfig(proxy, PG), application_name: 'bench-cold' } as never);
    await client.connect();
    const t3 = process.hrtime.bigint();
    await client.query(LISTING_SQL);
    const t4 = process.hrtime.bigint();
    await client.query(LISTING_SQL);
    const t5 = process.hrtime.bigint();
    await client.end();
    proxy.dispose();
    // (b) SCRAM: the shared pool's application role opening a connection, same query.
    const s0 = process.hrtime.bigint();
    const sc = new Client({ host: PG.hostaddr, port: PG.port, database: PG.database, user: 'bench_app', password, application_name: 'bench-cold' });
    await sc.connect();
    const s1 = process.hrtime.bigint();
    await sc.query(LISTING_SQL_B, [user]);
    const s2 = process.hrtime.bigint();
    await sc.end();
    if (warm) continue;
    phases.accept.push(ms(t0, t1));
    phases.s4u2proxy.push(ms(t1, t2));
    phases.pgConnect.push(ms(t2, t3));
    phases.query.push(ms(t3, t4));
    phases.total.push(ms(t0, t4));
    phases.warmQuery.push(ms(t4, t5));
    scram.connect.push(ms(s0, s1));
    scram.query.push(ms(s1, s2));
    scram.total.push(ms(s0, s2));
  }
  service.dispose();
  const a = Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, summarize(v)]));
  const b = Object.fromEntries(Object.entries(scram).map(([k, v]) => [k, summarize(v)]));
  results.cold = { iterations: COLD_ITERATIONS, forwardable: a, scram: b, ratioP50: round(a.total.p50 / b.total.p50), ratioP99: round(a.total.p99 / b.total.p99) };
}

// ------------------------------------------------------- 3. event-loop delay, 200 concurrent, in-process
async function eventLoop(): Promise<void> {
  const n = 200;
  say(`event-loop delay under ${n} concurrent negotiations (accept + S4U2proxy), in-process`);
  const service = await acquireServiceCredential({ keytab: env('FORWARDABLE_HTTP_KEYTAB'), principal: env('FORWARDABLE_SERVICE_PRINCIPAL'), usage: 'both' });
  const tokens = await pool(USERS.slice(0, n), 16, (u) => negotiateToken(tickets.get(u)!));
  const h = monitorEventLoopDelay({ resolution: 1 });
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 1);
  h.enable();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    tokens.map(async (tok) => {
      const ctx = new AcceptorContext(service);
      const r = await ctx.step(tok);
      ctx.dispose();
      const init = new InitiatorContext({ credential: r.delegated!, target: `postgres@${PG.host}` });
      await init.step();
      init.dispose();
      r.delegated!.dispose();
    }),
  );
  const wall = ms(t0, process.hrtime.bigint());
  h.disable();
  clearInterval(ticker);
  service.dispose();
  const msOf = (ns: number) => round(ns / 1e6);
  results.eventLoop = { negotiations: n, wallMs: round(wall), perSecond: round((n / wall) * 1000), delayMs: { p50: msOf(h.percentile(50)), p99: msOf(h.percentile(99)), max: msOf(h.max) }, timerTicks: ticks };
}

const round = (x: number) => Math.round(x * 100) / 100;

// -------------------------------------------------------------------- product API: (a) end to end
async function product(): Promise<{ cookies: string[]; listing: string }> {
  const pid = apiPid();
  say(`product API (pid ${pid}): ${USERS.length} sessions by Negotiate, memory per idle session and per pool`);
  // Warm the code paths (first negotiation, LDAP client, first pool) before measuring memory.
  const warm = await pool(USERS.slice(0, 20), 8, (u) => signIn(API, '/api/auth/me', u, 'fw_session'));
  for (const c of warm.slice(0, 5)) await (await fetch(`${API}/api/files`, { headers: { cookie: c } })).arrayBuffer();
  await sleep(1000);
  const rss0 = rssOf(pid);
  const cookies = await pool(USERS, 16, (u) => signIn(API, '/api/auth/me', u, 'fw_session'));
  await sleep(1000);
  const rss1 = rssOf(pid);
  if (ONLY === 'scheduler') return productScheduler(cookies);
  const poolUsers = Math.min(100, cookies.length);
  const conns0 = pgConnections('forwardable');
  for (const c of cookies.slice(0, poolUsers)) await (await fetch(`${API}/api/files`, { headers: { cookie: c } })).arrayBuffer();
  await sleep(1000);
  const rss2 = rssOf(pid);
  const conns1 = pgConnections('forwardable');
  const listing = await (await fetch(`${API}/api/files`, { headers: { cookie: cookies[9] } })).text();
  results.memory = {
    product: {
      idleSessions: cookies.length,
      bytesPerIdleSession: Math.round((rss1 - rss0) / cookies.length),
      openPools: poolUsers,
      pgConnectionsOpened: conns1 - conns0,
      bytesPerOpenPool: Math.round((rss2 - rss1) / poolUsers),
      rss: { beforeSessions: rss0, afterSessions: rss1, afterPools: rss2 },
    },
  };

  const steady: Record<string, Cell> = {};
  for (const kind of ['read', 'write'] as const) {
    for (const n of NS) {
      if (n > cookies.length) continue;
      say(`product (a) ${kind} N=${n}`);
      steady[`${kind}:${n}`] = await load(API, '/api/files', kind === 'read' ? 'GET' : 'POST', cookies.slice(0, n));
      if (kind === 'write') await resetWrites();
      await settle(apiPid());
    }
  }
  results.product = steady;

  // Cold first request over HTTP: Negotiate on GET /api/files (new session, new pool) vs warm.
  say('product cold first request over HTTP (Negotiate + session + S4U2proxy + PG connect + listing)');
  const cold: number[] = [];
  const warmLat: number[] = [];
  for (let i = 0; i < 100; i++) {
    const user = USERS[(i + 200) % USERS.length];
    const header = await negotiateHeader(tickets.get(user)!);
    const t0 = process.hrtime.bigint();
    const r = await fetch(`${API}/api/files`, { headers: { authorization: header } });
    await r.arrayBuffer();
    const t1 = process.hrtime.bigint();
    const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0];
    const w = await fetch(`${API}/api/files`, { headers: { cookie } });
    await w.arrayBuffer();
    const t2 = process.hrtime.bigint();
    if (r.status !== 200 || w.status !== 200) throw new Error(`cold request: HTTP ${r.status}/${w.status}`);
    cold.push(ms(t0, t1));
    warmLat.push(ms(t1, t2));
  }
  results.productCold = { firstRequest: summarize(cold), secondRequest: summarize(warmLat) };

  // 200 concurrent negotiations against the API, while /api/health is probed every 10 ms.
  say('product: 200 concurrent negotiations, /api/health latency meanwhile');
  const headers = await pool(USERS.slice(0, 200), 16, (u) => negotiateHeader(tickets.get(u)!));
  const probes: number[] = [];
  let probing = true;
  const prober = (async () => {
    while (probing) {
      const t = process.hrtime.bigint();
      await (await fetch(`${API}/api/health`)).arrayBuffer();
      probes.push(ms(t, process.hrtime.bigint()));
      await sleep(10);
    }
  })();
  await sleep(200);
  const before = [...probes];
  const t0 = process.hrtime.bigint();
  const statuses = await Promise.all(headers.map(async (h) => (await fetch(`${API}/api/auth/me`, { headers: { authorization: h } })).status));
  const wall = ms(t0, process.hrtime.bigint());
  probing = false;
  await prober;
  results.productNegotiationBurst = {
    negotiations: 200,
    ok: statuses.filter((s) => s === 200).length,
    wallMs: round(wall),
    healthIdle: summarize(before),
    healthDuringBurst: summarize(probes.slice(before.length)),
  };
  return { cookies, listing };
}

/** The scheduler cells of the product API: 500 closed-loop readers, then the open loop at 1x and 2x. */
async function productScheduler(cookies: string[]): Promise<{ cookies: string[]; listing: string }> {
  const listing = await (await fetch(`${API}/api/files`, { headers: { cookie: cookies[9] } })).text();
  const steady: Record<string, Cell> = {};
  for (const n of NS) {
    if (n > cookies.length) continue;
    say(`product (a) read N=${n}`);
    steady[`read:${n}`] = await load(API, '/api/files', 'GET', cookies.slice(0, n));
    await settle(apiPid());
  }
  results.product = steady;
  say(`product: ${SIGNED_IN} users sign in (Negotiate) for the open loop`);
  const more = await pool(ALL_USERS.slice(cookies.length, SIGNED_IN), 16, (u) => signIn(API, '/api/auth/me', u, 'fw_session'));
  const everyone = [...cookies, ...more];
  const open: Record<string, OpenCell> = {};
  for (const rate of [RATE, 2 * RATE]) {
    say(`product (a) open loop ${rate} req/s over ${everyone.length} users`);
    open[`a:${rate}`] = await openLoop(API, '/api/files', everyone, rate);
    await settle(apiPid());
  }
  results.openLoop = { ...(results.openLoop as object), ...open };
  return { cookies, listing };
}

// ------------------------------------------------------------------- the bench server: (a') (b) (c)
async function startBenchServer(extraEnv: Record<string, string> = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register', join(__dirname, 'server.ts')], {
    cwd: REPO,
    env: { ...process.env, ...extraEnv, BENCH_SERVER_PORT: String(BENCH_PORT) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  // Up to 60 s: ts-node compiles the server first, slow on a loaded machine.
  for (let i = 0; i < 300; i++) {
    await sleep(200);
    if (child.exitCode !== null) throw new Error('the bench server exited');
    try {
      await (await fetch(`${BENCH}/stats`)).arrayBuffer();
      return child;
    } catch {
      /* not yet */
    }
  }
  child.kill('SIGTERM');
  throw new Error('the bench server did not start');
}

async function backends(productListing: string): Promise<void> {
  const child = await startBenchServer();
  try {
    say(`bench server (pid ${child.pid}): ${USERS.length} sessions by Negotiate`);
    const warm = await pool(USERS.slice(0, 20), 8, (u) => signIn(BENCH, '/auth', u, 'fw_bench'));
    for (const c of warm.slice(0, 5)) for (const b of 'abc') await (await fetch(`${BENCH}/${b}/api/files`, { headers: { cookie: c } })).arrayBuffer();
    const cookies = await pool(USERS, 16, (u) => signIn(BENCH, '/auth', u, 'fw_bench'));
    // Same answer from every back end (and from the product API) for the same user.
    const bodies = await Promise.all([...'abc'].map(async (b) => (await fetch(`${BENCH}/${b}/api/files`, { headers: { cookie: cookies[9] } })).text()));
    const same = bodies.every((x) => x === productListing);
    results.equivalence = { user: USERS[9], identicalListing: same, bytes: bodies.map((x) => x.length), productBytes: productListing.length };
    if (!same) say('WARNING: the back ends do not return identical listings (see results.json equivalence)');
    const steady: Record<string, Cell> = {};
    for (const kind of ONLY === 'scheduler' ? (['read'] as const) : (['read', 'write'] as const)) {
      for (const n of NS) {
        if (n > cookies.length) continue;
        for (const b of ['b', 'c', 'a']) {
          say(`bench server (${b === 'a' ? "a'" : b}) ${kind} N=${n}`);
          steady[`${b}:${kind}:${n}`] = await load(BENCH, `/${b}/api/files`, kind === 'read' ? 'GET' : 'POST', cookies.slice(0, n));
          if (kind === 'write') await resetWrites();
          await settle(child.pid as number);
        }
      }
    }
    results.backends = steady;
    if (ONLY === 'scheduler') {
      say(`bench server: ${SIGNED_IN} users sign in (Negotiate) for the open loop`);
      const more = await pool(ALL_USERS.slice(cookies.length, SIGNED_IN), 16, (u) => signIn(BENCH, '/auth', u, 'fw_bench'));
      const everyone = [...cookies, ...more];
      const open: Record<string, OpenCell> = {};
      for (const rate of [RATE, 2 * RATE]) {
        for (const b of ['b', 'c', 'a']) {
          say(`bench server (${b === 'a' ? "a'" : b}) open loop ${rate} req/s over ${everyone.length} users`);
          open[`${b === 'a' ? "a'" : b}:${rate}`] = await openLoop(BENCH, `/${b}/api/files`, everyone, rate);
          await settle(child.pid as number);
        }
      }
      results.openLoop = { ...(results.openLoop as object), ...open };
    }
    const stats = (await (await fetch(`${BENCH}/stats`)).json()) as Record<string, unknown>;
    results.benchServerStats = stats;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

// ------------------------------------------------------- the product API's own overhead: (a) vs (a')
interface OverheadCell extends Cell { cpuMs: number; cpuUsPerRequest: number }

/**
 * A second product API from another build (BENCH_BASE_API: its main.js, e.g. the commit before a
 * change, built and copied aside), started as tools/scripts/stack.sh starts dist/, on `port`: with
 * it the overhead cells compare the change with its base in the same run.
 */
async function startBaseApi(main: string, port: number, extraEnv: Record<string, string>): Promise<ChildProcess> {
  const web = join(REPO, 'dist/apps/web/browser');
  const child = spawn(process.execPath, [resolve(main)], {
    cwd: REPO,
    env: {
      ...process.env,
      ...extraEnv,
      FORWARDABLE_KEYTAB: env('FORWARDABLE_HTTP_KEYTAB'),
      FORWARDABLE_KRB5_CONFIG: env('KRB5_CONFIG'),
      FORWARDABLE_RCACHE_DIR: env('KRB5RCACHEDIR'),
      FORWARDABLE_DELEGATION: process.env.FORWARDABLE_KDB === 'db2' ? 'unconstrained' : 'constrained',
      FORWARDABLE_ADMINS: process.env.FORWARDABLE_KDB === 'ldap' ? '' : 'dbadmin',
      FORWARDABLE_WEB_DIR: existsSync(web) ? web : '',
      FORWARDABLE_PORT: String(port),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 300; i++) {
    await sleep(200);
    if (child.exitCode !== null) throw new Error('the base API exited');
    try {
      await (await fetch(`http://127.0.0.1:${port}/api/health`)).arrayBuffer();
      return child;
    } catch {
      /* not yet */
    }
  }
  child.kill('SIGTERM');
  throw new Error('the base API did not start');
}

/**
 * `BENCH_ONLY=overhead` (issue #19): steady-state reads only, (a) the product API against (a') the
 * bench server over the same per-user pools and the same FilesService, at BENCH_USERS (default
 * "10 100"), BENCH_ROUNDS rounds (default 5) of BENCH_DURATION s per cell.
 *
 * Both servers run at the same time and the cells alternate (a), (a'), (a'), (a), …: on a machine
 * shared with other jobs the load changes from one minute to the next, and a ratio of cells
 * measured minutes apart mostly measures that. Both hold their pools at once, so at more than 35
 * users each gets one connection per user (same for both; 2 × 100 users × 2 would pass
 * PostgreSQL's max_connections of 300). Each cell also reports the server process's own CPU time
 * per answered request (from /proc, 10 ms ticks). With BENCH_CPU_PROFILE_DIR each measured cell is
 * CPU-profiled (bench/src/cpu-profile.cjs; summarise with bench/src/profile-summary.ts): the
 * profiler costs time too, so compare ratios of runs without it.
 */
async function overhead(): Promise<void> {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
  const profileDir = process.env.BENCH_CPU_PROFILE_DIR;
  const preload = join(__dirname, 'cpu-profile.cjs');
  // BENCH_SERVER_NODE_OPTIONS go to both servers, not to this process.
  const nodeOptions = [process.env.NODE_OPTIONS, process.env.BENCH_SERVER_NODE_OPTIONS, profileDir && `--require ${preload}`].filter(Boolean).join(' ');
  const profiled = (label: string): Record<string, string> => ({
    ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
    ...(profileDir ? { BENCH_CPU_PROFILE_DIR: resolve(profileDir), BENCH_CPU_PROFILE_LABEL: label } : {}),
  });
  const cells: Record<string, OverheadCell[]> = {};
  const perUser: Record<number, number> = {};
  const measure = async (label: string, base: string, path: string, cookies: string[], pid: number) => {
    let cpu0 = 0;
    let cpu1 = 0;
    const toggle = () => profileDir && process.kill(pid, 'SIGWINCH');
    const c = await load(base, path, 'GET', cookies, DURATION, {
      before: () => {
        toggle();
        cpu0 = cpuMs(pid);
      },
      after: () => {
        cpu1 = cpuMs(pid);
        toggle();
      },
    });
    const cell = { ...c, cpuMs: cpu1 - cpu0, cpuUsPerRequest: c.ok ? Math.round(((cpu1 - cpu0) * 1000) / c.ok) : NaN };
    (cells[`${label}:${cookies.length}`] ??= []).push(cell);
    say(`${label} N=${cookies.length}: ${cell.rps} req/s, ${cell.cpuUsPerRequest} µs CPU per request`);
    await settle(pid);
  };
  for (const n of NS) {
    const users = USERS.slice(0, n);
    const connections = n > 35 ? 1 : 2;
    perUser[n] = connections;
    say(`overhead N=${n}: product API (a) and bench server (a') side by side, ${connections} connection(s) per user each`);
    stack('up', { ...profiled('api'), FORWARDABLE_PG_CONNECTIONS_PER_USER: String(connections) });
    const child = await startBenchServer({ ...profiled('bench'), BENCH_CONNECTIONS_PER_USER: String(connections) });
    // The base build too, where three servers' pools fit under max_connections (300).
    const baseMain = process.env.BENCH_BASE_API;
    const baseUrl = `http://127.0.0.1:${BENCH_PORT + 1}`;
    const base = baseMain && 3 * n * connections <= 280 ? await startBaseApi(baseMain, BENCH_PORT + 1, { ...profiled('base'), FORWARDABLE_PG_CONNECTIONS_PER_USER: String(connections) }) : undefined;
    try {
      const a = await pool(users, 16, (u) => signIn(API, '/api/auth/me', u, 'fw_session'));
      const ap = await pool(users, 16, (u) => signIn(BENCH, '/auth', u, 'fw_bench'));
      const a0 = base ? await pool(users, 16, (u) => signIn(baseUrl, '/api/auth/me', u, 'fw_session')) : [];
      const order = [() => measure('a', API, '/api/files', a, apiPid()), () => measure("a'", BENCH, '/a/api/files', ap, child.pid as number)];
      if (base) order.push(() => measure('a0', baseUrl, '/api/files', a0, base.pid as number));
      for (let r = 0; r < rounds; r++) {
        // Forward, then backward: no server always runs right after the same other one.
        for (const cell of r % 2 === 0 ? order : [...order].reverse()) await cell();
      }
    } finally {
      child.kill('SIGTERM');
      await new Promise((res) => child.once('exit', res));
      if (base) {
        base.kill('SIGTERM');
        await new Promise((res) => base.once('exit', res));
      }
      stack('down');
      await sleep(500);
    }
  }
  results.overhead = { rounds, connectionsPerUser: perUser, cells };
}

/** Per round and user count: req/s and CPU per request of (a) and (a'), and the ratios; then the medians. */
function overheadTable(): string[] {
  const o = results.overhead as { rounds: number; connectionsPerUser: Record<number, number>; cells: Record<string, OverheadCell[]> };
  const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '–');
  const median = (xs: number[]) => {
    const s = xs.filter(Number.isFinite).sort((x, y) => x - y);
    return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
  };
  const out = [
    `### (a) product API against (a') bench server, \`GET /api/files\`, ${o.rounds} rounds, both servers up, cells alternating`,
    '',
    `Connections per user (both servers): ${NS.map((n) => `${n} users: ${o.connectionsPerUser[n]}`).join(', ')}.`,
    '',
  ];
  out.push("| users | round | (a) req/s (p50/p99 ms) | (a') req/s (p50/p99 ms) | **a/a'** | (a) CPU µs/req | (a') CPU µs/req | a'/a CPU |");
  out.push('|---:|---:|---|---|---:|---:|---:|---:|');
  for (const n of NS) {
    const a = o.cells[`a:${n}`] ?? [];
    const ap = o.cells[`a':${n}`] ?? [];
    const rps: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < Math.min(a.length, ap.length); i++) {
      const err = (c: Cell) => (c.non2xx || c.errors || c.timeouts ? ` ⚠${c.non2xx + c.errors + c.timeouts}` : '');
      rps.push(a[i].rps / ap[i].rps);
      cpu.push(ap[i].cpuUsPerRequest / a[i].cpuUsPerRequest);
      out.push(`| ${n} | ${i + 1} | ${f(a[i].rps)} (${f(a[i].p50)}/${f(a[i].p99)})${err(a[i])} | ${f(ap[i].rps)} (${f(ap[i].p50)}/${f(ap[i].p99)})${err(ap[i])} | ${f(rps[i], 2)} | ${f(a[i].cpuUsPerRequest)} | ${f(ap[i].cpuUsPerRequest)} | ${f(cpu[i], 2)} |`);
    }
    out.push(`| ${n} | median | | | **${f(median(rps), 2)}** | ${f(median(a.map((c) => c.cpuUsPerRequest)))} | ${f(median(ap.map((c) => c.cpuUsPerRequest)))} | ${f(median(cpu), 2)} |`);
  }
  const withBase = NS.filter((n) => o.cells[`a0:${n}`]?.length);
  if (withBase.length) {
    out.push('', `The same rounds with (a0), the API built from the base (BENCH_BASE_API), as a third server:`, '');
    out.push("| users | round | (a0) req/s | **a0/a'** | **a/a'** | **a/a0** | (a0) CPU µs/req | a0/a CPU |");
    out.push('|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const n of withBase) {
      const [a, ap, a0] = ['a', "a'", 'a0'].map((k) => o.cells[`${k}:${n}`] ?? []);
      const r0: number[] = [];
      const r1: number[] = [];
      const r2: number[] = [];
      const c2: number[] = [];
      for (let i = 0; i < Math.min(a.length, ap.length, a0.length); i++) {
        r0.push(a0[i].rps / ap[i].rps);
        r1.push(a[i].rps / ap[i].rps);
        r2.push(a[i].rps / a0[i].rps);
        c2.push(a0[i].cpuUsPerRequest / a[i].cpuUsPerRequest);
        out.push(`| ${n} | ${i + 1} | ${f(a0[i].rps)} | ${f(r0[i], 2)} | ${f(r1[i], 2)} | ${f(r2[i], 2)} | ${f(a0[i].cpuUsPerRequest)} | ${f(c2[i], 2)} |`);
      }
      out.push(`| ${n} | median | | **${f(median(r0), 2)}** | **${f(median(r1), 2)}** | **${f(median(r2), 2)}** | ${f(median(a0.map((c) => c.cpuUsPerRequest)))} | ${f(median(c2), 2)} |`);
    }
  }
  return out;
}

// ----------------------------------------------------------------------- 3. LRU cap: held vs active
async function lru(): Promise<void> {
  const cap = 20;
  say(`LRU: API restarted with FORWARDABLE_PG_MAX_USERS=${cap}; connections held vs active users`);
  stack('up', { FORWARDABLE_PG_MAX_USERS: String(cap) });
  const rows: { activeUsers: number; pgConnections: number; peakPgConnections: number; rps: number; p50: number; p99: number; non2xx: number }[] = [];
  try {
    let offset = 0;
    for (const active of [5, 10, 20, 50, 100]) {
      const cookies = await pool(USERS.slice(offset, offset + active), 16, (u) => signIn(API, '/api/auth/me', u, 'fw_session'));
      offset += active;
      // Sample pg_stat_activity while the load runs (asynchronously: autocannon shares this loop).
      let peak = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          peak = Math.max(peak, await pgConnectionsAsync('forwardable'));
          await sleep(250);
        }
      })();
      const cell = await load(API, '/api/files', 'GET', cookies, 3);
      sampling = false;
      await sampler;
      await sleep(1000);
      rows.push({ activeUsers: active, pgConnections: pgConnections('forwardable'), peakPgConnections: peak, rps: cell.rps, p50: cell.p50, p99: cell.p99, non2xx: cell.non2xx + cell.errors + cell.timeouts });
    }
  } finally {
    stack('down');
  }
  results.lru = { maxUsers: cap, connectionsPerUser: 2, rows };
}

// --------------------------------------------------- 4. Read replicas: one hot standby against none
/**
 * Caps of the read-replica cells, per host: small enough to bind at 500 users, since what a standby
 * adds is a connection budget (on this one machine it adds no CPU: both servers share its cores).
 */
const STANDBY_CAP = Number(process.env.BENCH_STANDBY_CAP ?? 50);

interface StandbyCell extends Cell {
  /** Most connections of the API seen on each server while the cell ran (sampled every 250 ms). */
  peakPrimary: number;
  peakStandby: number;
}

/**
 * The product API with the same caps twice, without and with `FORWARDABLE_PG_READ_HOSTS` (the
 * realm's standby; the primary serves reads too, the default), the same users and the same
 * `GET /api/files` load; then the shared pool (b) on the primary for the same users.
 */
async function standbyCells(): Promise<void> {
  const standbyPort = env('FORWARDABLE_PG_STANDBY_PORT');
  const caps = { FORWARDABLE_PG_MAX_USERS: String(STANDBY_CAP), FORWARDABLE_PG_MAX_CONNECTIONS: String(2 * STANDBY_CAP) };
  const cells: Record<string, StandbyCell> = {};
  const configs: [string, Record<string, string>][] = [
    ['none', {}],
    ['one', { FORWARDABLE_PG_READ_HOSTS: `localhost:${standbyPort}` }],
  ];
  for (const [name, extra] of configs) {
    stack('down');
    stack('up', { ...caps, ...extra });
    say(`read replicas, ${name === 'none' ? 'no standby' : 'one standby'}: ${USERS.length} sessions by Negotiate; caps ${STANDBY_CAP} users / ${2 * STANDBY_CAP} connections per host`);
    const cookies = await pool(USERS, 16, (u) => signIn(API, '/api/auth/me', u, 'fw_session'));
    for (const n of NS) {
      if (n > cookies.length) continue;
      const peak = { primary: 0, standby: 0 };
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const [p, sb] = await Promise.all([pgConnectionsAsync('forwardable'), pgConnectionsAsync('forwardable', standbyPort)]);
          peak.primary = Math.max(peak.primary, p);
          peak.standby = Math.max(peak.standby, sb);
          await sleep(250);
        }
      })();
      say(`read replicas (${name}) read N=${n}`);
      const cell = await load(API, '/api/files', 'GET', cookies.slice(0, n));
      sampling = false;
      await sampler;
      cells[`${name}:${n}`] = { ...cell, peakPrimary: peak.primary, peakStandby: peak.standby };
      await settle(apiPid());
    }
  }
  stack('down');
  await sleep(500);
  const child = await startBenchServer();
  try {
    const cookies = await pool(USERS, 16, (u) => signIn(BENCH, '/auth', u, 'fw_bench'));
    for (const n of NS) {
      if (n > cookies.length) continue;
      say(`read replicas: (b) shared pool read N=${n}`);
      cells[`b:${n}`] = { ...(await load(BENCH, '/b/api/files', 'GET', cookies.slice(0, n))), peakPrimary: NaN, peakStandby: NaN };
      await settle(child.pid as number);
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
  results.standby = { capUsersPerHost: STANDBY_CAP, capConnectionsPerHost: 2 * STANDBY_CAP, cells };
}

function standbyTable(): string {
  const s = results.standby as { capUsersPerHost: number; capConnectionsPerHost: number; cells: Record<string, StandbyCell> };
  const f = (x: number | undefined, d = 0) => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d));
  const ratio = (x?: Cell, y?: Cell) => (x && y && y.rps ? (x.rps / y.rps).toFixed(2) : '–');
  const errs = (c?: Cell) => (c && (c.non2xx || c.errors || c.timeouts) ? ` ⚠${c.non2xx + c.errors + c.timeouts}` : '');
  const cell = (x?: StandbyCell, peaks = true) =>
    x ? `${f(x.rps)} (${f(x.p50)}/${f(x.p99)})${errs(x)}${peaks ? `, peak ${f(x.peakPrimary)} / ${f(x.peakStandby)}` : ''}` : '–';
  const out = [
    `### Read replicas: \`GET /api/files\`, one hot standby against none (requests/s, p50/p99 ms, ⚠ non-2xx; peak PostgreSQL connections of the API on primary / standby); caps ${s.capUsersPerHost} users / ${s.capConnectionsPerHost} connections per host`,
    '',
    '| users | (a) no standby | (a) one standby | (b) shared pool | one/none | none/b | one/b |',
    '|---:|---|---|---|---:|---:|---:|',
  ];
  for (const n of NS) {
    const [none, one, b] = ['none', 'one', 'b'].map((k) => s.cells[`${k}:${n}`]);
    out.push(`| ${n} | ${cell(none)} | ${cell(one)} | ${cell(b, false)} | ${ratio(one, none)} | ${ratio(none, b)} | ${ratio(one, b)} |`);
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------- report
function machine() {
  const cpu = cpus();
  return {
    cpus: cpu.length,
    cpuModel: cpu[0]?.model,
    memoryGiB: round(totalmem() / 2 ** 30),
    node: process.version,
    postgres: superSql('SHOW server_version'),
    krb5: (() => {
      try {
        return execFileSync('dpkg-query', ['-W', '-f=${Version}', 'libkrb5-3'], { encoding: 'utf8' });
      } catch {
        return 'unknown';
      }
    })(),
    kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(),
    date: new Date().toISOString(),
    durationPerCellS: DURATION,
  };
}

function table(): string {
  if (ONLY === 'overhead') return overheadTable().join('\n');
  const out: string[] = [];
  const p = results.product as Record<string, Cell>;
  const be = results.backends as Record<string, Cell>;
  const f = (x: number | undefined, d = 0) => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d));
  const ratio = (x?: Cell, y?: Cell) => (x && y && y.rps ? (x.rps / y.rps).toFixed(2) : '–');
  const errs = (c?: Cell) => (c && (c.non2xx || c.errors || c.timeouts) ? ` ⚠${c.non2xx + c.errors + c.timeouts}` : '');
  out.push('### 1. Steady state (requests/s, p50/p99 ms)');
  out.push('');
  out.push('| endpoint | users | (a) product API | (a\') delegated, bench server | (b) shared pool + WHERE owner | (c) shared pool + SET LOCAL ROLE + RLS | a\'/b | a\'/c | a/b | a/c |');
  out.push('|---|---:|---|---|---|---|---:|---:|---:|---:|');
  // A scheduler-only run measures reads only: no rows of dashes for the writes it did not run.
  for (const kind of ONLY === 'scheduler' ? (['read'] as const) : (['read', 'write'] as const)) {
    for (const n of NS) {
      const a = p?.[`${kind}:${n}`];
      const [ap, b, c] = ['a', 'b', 'c'].map((k) => be?.[`${k}:${kind}:${n}`]);
      const cell = (x?: Cell) => (x ? `${f(x.rps)} (${f(x.p50)}/${f(x.p99)})${errs(x)}` : '–');
      out.push(`| ${kind === 'read' ? 'GET /api/files' : 'POST /api/files'} | ${n} | ${cell(a)} | ${cell(ap)} | ${cell(b)} | ${cell(c)} | ${ratio(ap, b)} | ${ratio(ap, c)} | ${ratio(a, b)} | ${ratio(a, c)} |`);
    }
  }
  out.push(...openLoopTable());
  if (ONLY) return out.join('\n');
  const cold = results.cold as { forwardable: Record<string, ReturnType<typeof summarize>>; scram: Record<string, ReturnType<typeof summarize>>; ratioP50: number; ratioP99: number; iterations: number };
  out.push('');
  out.push(`### 2. Cold path: a new user's first request (in-process, ${cold.iterations} users, ms)`);
  out.push('');
  out.push('| phase | p50 | p99 |');
  out.push('|---|---:|---:|');
  const lab: Record<string, string> = { accept: 'Negotiate accept (AP-REQ + proxy credential)', s4u2proxy: 'S4U2proxy TGS for postgres/localhost', pgConnect: 'PostgreSQL GSSAPI connect', query: 'first query (listing)', total: '**Forwardable total**', warmQuery: '(same query again on that connection)' };
  for (const k of ['accept', 's4u2proxy', 'pgConnect', 'query', 'total', 'warmQuery']) out.push(`| ${lab[k]} | ${f(cold.forwardable[k].p50, 2)} | ${f(cold.forwardable[k].p99, 2)} |`);
  out.push(`| SCRAM connect (bench_app) | ${f(cold.scram.connect.p50, 2)} | ${f(cold.scram.connect.p99, 2)} |`);
  out.push(`| first query (listing, WHERE owner) | ${f(cold.scram.query.p50, 2)} | ${f(cold.scram.query.p99, 2)} |`);
  out.push(`| **SCRAM total** | ${f(cold.scram.total.p50, 2)} | ${f(cold.scram.total.p99, 2)} |`);
  out.push(`| **ratio Forwardable / SCRAM** | ${f(cold.ratioP50, 2)}× | ${f(cold.ratioP99, 2)}× |`);
  const pc = results.productCold as { firstRequest: ReturnType<typeof summarize>; secondRequest: ReturnType<typeof summarize> };
  if (pc) {
    out.push('');
    out.push(`Over HTTP against the product API (100 users, sequential): first request \`GET /api/files\` with Negotiate (new session, LDAP groups, S4U2proxy, pool, listing) p50 ${f(pc.firstRequest.p50, 1)} ms / p99 ${f(pc.firstRequest.p99, 1)} ms; the next request with the cookie p50 ${f(pc.secondRequest.p50, 1)} ms / p99 ${f(pc.secondRequest.p99, 1)} ms.`);
  }
  const mem = (results.memory as { product: Record<string, number> }).product;
  const el = results.eventLoop as { negotiations: number; wallMs: number; perSecond: number; delayMs: { p50: number; p99: number; max: number } };
  const burst = results.productNegotiationBurst as { ok: number; wallMs: number; healthIdle: ReturnType<typeof summarize>; healthDuringBurst: ReturnType<typeof summarize> };
  out.push('');
  out.push('### 3. Scale');
  out.push('');
  out.push('| what | value |');
  out.push('|---|---:|');
  out.push(`| API RSS per idle session (${mem.idleSessions} sessions, credential held, no pool) | ${f(mem.bytesPerIdleSession / 1024, 1)} KiB |`);
  out.push(`| API RSS per open per-user pool (${mem.openPools} pools, ${mem.pgConnectionsOpened} PG connections) | ${f(mem.bytesPerOpenPool / 1024, 1)} KiB |`);
  out.push(`| event-loop delay, ${el.negotiations} concurrent accept + S4U2proxy (in-process) p50 / p99 / max | ${f(el.delayMs.p50, 2)} / ${f(el.delayMs.p99, 2)} / ${f(el.delayMs.max, 2)} ms |`);
  out.push(`| … wall time for all ${el.negotiations} (throughput) | ${f(el.wallMs)} ms (${f(el.perSecond)}/s) |`);
  out.push(`| product API: 200 concurrent Negotiate sign-ins, wall time (ok) | ${f(burst.wallMs)} ms (${burst.ok}/200) |`);
  out.push(`| … \`/api/health\` latency meanwhile p50 / p99 / max (idle: p50 ${f(burst.healthIdle.p50, 1)}) | ${f(burst.healthDuringBurst.p50, 1)} / ${f(burst.healthDuringBurst.p99, 1)} / ${f(burst.healthDuringBurst.max, 1)} ms |`);
  const l = results.lru as { maxUsers: number; rows: { activeUsers: number; pgConnections: number; peakPgConnections: number; rps: number; p50: number; p99: number; non2xx: number }[] } | undefined;
  if (l) {
    out.push('');
    out.push(`LRU cap on (\`FORWARDABLE_PG_MAX_USERS=${l.maxUsers}\`, 2 connections per user): PostgreSQL connections of the API (peak while N active users run \`GET /api/files\` for 3 s; held 1 s after) — the cap is ${l.maxUsers * 2}`);
    out.push('');
    out.push('| active users | peak connections | held after | req/s | p50/p99 ms |');
    out.push('|---:|---:|---:|---:|---|');
    for (const r of l.rows) out.push(`| ${r.activeUsers} | ${r.peakPgConnections} | ${r.pgConnections} | ${f(r.rps)} | ${f(r.p50)}/${f(r.p99)}${r.non2xx ? ` ⚠${r.non2xx}` : ''} |`);
  }
  const enc = results.encryption as Parameters<typeof encryptionTable>[0] | undefined;
  if (enc) out.push('', ...encryptionTable(enc));
  const eq = results.equivalence as { identicalListing: boolean; user: string } | undefined;
  if (eq) out.push('', `Same answer check: \`GET /api/files\` of ${eq.user} is byte-identical across (a), (a'), (b), (c): **${eq.identicalListing ? 'yes' : 'NO'}**.`);
  return out.join('\n');
}

/** The open-loop cells: achieved rate, latency and errors per back end, at 1x and 2x the rate. */
function openLoopTable(): string[] {
  const o = results.openLoop as Record<string, OpenCell> | undefined;
  if (!o) return [];
  const out = ['', `### Open loop: ${SIGNED_IN} signed-in users, Poisson arrivals, \`GET /api/files\`, ${OPEN_DURATION} s per cell`, ''];
  out.push('| offered req/s | back end | sent | achieved 2xx/s (in the cell) | 2xx after the cell | p50 ms | p99 ms | errors |');
  out.push('|---:|---|---:|---:|---:|---:|---:|---:|');
  const ms = (x: number) => (Number.isFinite(x) ? String(x) : '–');
  for (const rate of [RATE, 2 * RATE]) {
    for (const b of ['a', "a'", 'b', 'c']) {
      const c = o[`${b}:${rate}`];
      if (c) out.push(`| ${rate} | (${b}) | ${c.offered} | ${c.achieved} | ${c.late ?? '–'} | ${ms(c.p50)} | ${ms(c.p99)} | ${c.errors} |`);
    }
  }
  return out;
}

async function main() {
  kerberos();
  const started = Date.now();
  results.machine = machine();
  const ticketUsers = ONLY === 'scheduler' ? ALL_USERS.slice(0, Math.max(SIGNED_IN, USERS.length)) : ONLY === 'overhead' ? USERS.slice(0, Math.max(...NS)) : USERS;
  say(`TGTs for ${ticketUsers.length} users (password login, KDC verified)`);
  tickets = await userTickets(ticketUsers, env('BENCH_USER_PASSWORD'));
  if (!ONLY) {
    await coldPath();
    say(`GSSAPI encryption of the PostgreSQL link: encrypted vs plain, ${ENCRYPTION_ITERATIONS} interleaved iterations`);
    // The bench realm runs with --pg-tls, so a password deployment's encrypted link (SCRAM + TLS) is timed too.
    const ca = process.env.FORWARDABLE_PG_SSLROOTCERT;
    const scramTls = ca ? { user: 'bench_app', password: env('BENCH_APP_PASSWORD'), caFile: ca } : undefined;
    results.encryption = await encryptionCost(tickets.get(USERS[0])!, PG, LISTING_SQL, ENCRYPTION_ITERATIONS, scramTls);
    await eventLoop();
  }
  if (ONLY === 'standby') {
    await standbyCells();
  } else if (ONLY === 'overhead') {
    await overhead();
  } else {
    const { listing } = await product();
    stack('down');
    await sleep(500);
    await backends(listing);
    if (!ONLY) await lru();
  }
  results.totalSeconds = Math.round((Date.now() - started) / 1000);
  const md = ONLY === 'standby' ? standbyTable() : table();
  const outDir = join(REPO, 'tmp/bench');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(join(outDir, 'results.md'), md + '\n');
  const m = results.machine as ReturnType<typeof machine>;
  const head = `Run ${m.date}: ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB RAM, Node ${m.node}, PostgreSQL ${m.postgres}, MIT krb5 ${m.krb5}, Linux ${m.kernel}; ${m.durationPerCellS} s per load cell; whole run ${results.totalSeconds} s.`;
  const readme = join(REPO, 'bench/README.md');
  try {
    const text = readFileSync(readme, 'utf8');
    // A scheduler-only run has its own section: the full run's numbers stay.
    const mark = ONLY ? `bench:${ONLY}` : 'bench:results';
    const next = text.replace(new RegExp(`<!-- ${mark} -->[\\s\\S]*<!-- /${mark} -->`), `<!-- ${mark} -->\n${head}\n\n${md}\n<!-- /${mark} -->`);
    writeFileSync(readme, next);
  } catch {
    /* no README: the table is in tmp/bench/results.md */
  }
  for (const t of tickets.values()) t.dispose();
  process.stdout.write(`\n${head}\n\n${md}\n\nbench: wrote tmp/bench/results.json and tmp/bench/results.md (and the table in bench/README.md)\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench: failed: ${(err as Error).stack}`);
    process.exit(1);
  },
);
