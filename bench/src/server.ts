/**
 * The bench-only server: three back ends of the same two endpoints in ONE process, behind the
 * same minimal HTTP code, so that the only difference between them is how the database is reached.
 *
 *   /a/api/files  Forwardable's way: the session's delegated (S4U2proxy) credential, a per-user
 *                 pool from the product's own UserDataSources (same caps as the API's defaults:
 *                 100 users, 2 connections each, 200 in all), queries from the product's own
 *                 FilesService. RLS (session_user) decides visibility.
 *   /b/api/files  A shared pool (20 connections) as one application role (bench_app, password),
 *                 and the visibility rule written into every query: WHERE owner = $1 OR shared.
 *   /c/api/files  The PostgREST pattern: the same shared pool, one transaction per request,
 *                 `set_config('role', <user>, true)` (= SET LOCAL ROLE), then RLS on a copy of the
 *                 tables whose policies use current_user (bench/setup.sql explains why a copy).
 *
 * GET /auth signs in with `Authorization: Negotiate` (HTTP@localhost, constrained delegation) and
 * sets the cookie used by all three; GET /stats reports pools and memory.
 */
import 'reflect-metadata';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { DataSource, QueryRunner } from 'typeorm';
import { AcceptorContext, acquireServiceCredential, decodeNegotiateToken } from '@forwardable/gssapi';
import { schemaEntities } from '@forwardable/api/db';
import { CredentialLease, PoolCapacityError, UserDataSources } from '@forwardable/nest';
import { FilesService } from '@forwardable/api/files';
import type { AuthUser, UserDb } from '@forwardable/nest';
import { env, kerberos } from './common';

type Row = Record<string, unknown>;
interface Session { user: AuthUser; lease: CredentialLease }

const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v));
// The product's answers carry the user's access (owner, write or read). In the bench data set
// (bench/setup.sql) every grant is a read grant and every file is at the top level, so for (b) and
// (c) it is "owner" or "read"; the product computes it through its helpers, and that cost is in (a).
const access = (r: Row, me: string) => (r.owner === me ? 'owner' : 'read');
const dir = (r: Row, me: string) => ({
  id: String(r.id), parentId: (r.parent_id as string | null) ?? null, name: String(r.name), owner: String(r.owner),
  access: access(r, me), createdAt: iso(r.created_at), updatedAt: iso(r.updated_at),
});
const summary = (r: Row, me: string) => ({
  id: String(r.id), directoryId: (r.directory_id as string | null) ?? null, name: String(r.name), owner: String(r.owner),
  size: Number(r.size ?? 0), updatedAt: iso(r.updated_at), access: access(r, me), canEdit: r.owner === me,
});
const FILE_SUMMARY = 'id, directory_id, name, owner, octet_length(content) AS size, updated_at';
const PAGE = 50;

async function main() {
  kerberos();
  const port = Number(env('BENCH_SERVER_PORT'));
  const service = await acquireServiceCredential({ keytab: env('FORWARDABLE_HTTP_KEYTAB'), principal: env('FORWARDABLE_SERVICE_PRINCIPAL'), usage: 'both' });
  const pg = { host: env('FORWARDABLE_PG_HOST'), hostaddr: env('FORWARDABLE_PG_HOSTADDR'), port: Number(env('FORWARDABLE_PG_PORT')), database: env('FORWARDABLE_PG_DATABASE') };

  // (a) the product's per-user pools and queries.
  // BENCH_CONNECTIONS_PER_USER: the overhead cells run this server beside the API, both under PostgreSQL's max_connections.
  const uds = new UserDataSources({ ...pg, entities: schemaEntities, maxUsers: 100, connectionsPerUser: Number(process.env.BENCH_CONNECTIONS_PER_USER ?? 2), maxConnections: 200 });
  const sessions = new Map<string, Session>();
  // The product's UserDb, reduced to the session map of this server: the same three ways in.
  const leaseOf = (u: AuthUser) => sessions.get(u.sessionId)!.lease;
  const userDb = {
    of: (u: AuthUser) => uds.get(leaseOf(u)),
    read: <T>(u: AuthUser, fn: (ds: DataSource) => Promise<T>) => uds.read(leaseOf(u), fn),
    write: <T>(u: AuthUser, fn: (ds: DataSource) => Promise<T>) => uds.write(leaseOf(u), fn),
  } as unknown as UserDb;
  const files = new FilesService(userDb);

  // (b) and (c): one shared pool as the application role.
  const shared = new DataSource({
    type: 'postgres', host: pg.hostaddr, port: pg.port, database: pg.database, username: 'bench_app', password: env('BENCH_APP_PASSWORD'),
    applicationName: 'bench-shared', extra: { max: Number(process.env.BENCH_SHARED_POOL ?? 20) },
  });
  await shared.initialize();
  const q = async (sql: string, params: unknown[], runner?: QueryRunner): Promise<Row[]> => {
    const r = runner ?? shared.createQueryRunner();
    try {
      return (await r.query(sql, params, true)).records as Row[];
    } finally {
      if (!runner) await r.release();
    }
  };
  // Every back end's SQL has the shape of the product's (libs/api/files/src/lib/listing-sql.ts, #19):
  // start from what the user can see (own rows by the owner index, shared rows as an array of keys:
  // a BitmapOr), and ask about a row's folder by primary key (OFFSET 0 keeps it a look-up, not a scan
  // of every folder). Before #19 all three filtered every user's rows.
  const vis = (perm: string, fk: string) => `(owner = $1 OR id = ANY (ARRAY(SELECT ${fk} FROM public.${perm} WHERE grantee = $1)))`;
  // (c): current_user is of type name, collation "C"; in the columns' collation the owner index applies.
  const me = 'current_user::text COLLATE "default"';
  const visC = (perm: string, fk: string) => `(owner = ${me} OR id = ANY (ARRAY(SELECT ${fk} FROM bench_rls.${perm} WHERE grantee = ${me})))`;
  // The product's top level also lists files shared from folders the user cannot see (FilesService
  // .listing); every back end answers the same question, so each runs the same extra look-up.
  const topLevelB = `NOT EXISTS (SELECT FROM public.directories visible WHERE visible.id = files.directory_id AND ${vis('directory_permissions', 'directory_id')} OFFSET 0)`;
  const topLevelC = `${visC('file_permissions', 'file_id')} AND NOT EXISTS (SELECT FROM bench_rls.directories visible WHERE visible.id = files.directory_id OFFSET 0)`;
  const b = {
    async listing(u: AuthUser) {
      const [dirs, rows, [count]] = await Promise.all([
        q(`SELECT * FROM public.directories WHERE parent_id IS NULL AND ${vis('directory_permissions', 'directory_id')} ORDER BY name, id`, [u.user]),
        q(`SELECT ${FILE_SUMMARY} FROM public.files WHERE ${topLevelB} AND ${vis('file_permissions', 'file_id')} ORDER BY name, id LIMIT ${PAGE} OFFSET 0`, [u.user]),
        q(`SELECT count(*)::int AS n FROM public.files WHERE ${topLevelB} AND ${vis('file_permissions', 'file_id')}`, [u.user]),
      ]);
      return { directory: null, directories: dirs.map((d) => dir(d, u.user)), files: rows.map((f) => summary(f, u.user)), page: 1, pageSize: PAGE, totalFiles: Number(count.n) };
    },
    async create(u: AuthUser, name: string, content: string) {
      const [r] = await q('INSERT INTO public.files (name, directory_id, content, owner) VALUES ($2, NULL, $3, $1) RETURNING id', [u.user, name, content]);
      const [f] = await q(`SELECT ${FILE_SUMMARY}, content, created_at FROM public.files WHERE id = $2 AND ${vis('file_permissions', 'file_id')}`, [u.user, r.id]);
      return { ...summary(f, u.user), content: String(f.content), createdAt: iso(f.created_at) };
    },
  };
  const asUser = async <T>(u: AuthUser, fn: (r: QueryRunner) => Promise<T>): Promise<T> => {
    const r = shared.createQueryRunner();
    try {
      await r.startTransaction();
      await r.query(`SELECT set_config('role', $1, true)`, [u.user]);
      const out = await fn(r);
      await r.commitTransaction();
      return out;
    } catch (err) {
      if (r.isTransactionActive) await r.rollbackTransaction().catch(() => undefined);
      throw err;
    } finally {
      await r.release();
    }
  };
  const c = {
    listing: (u: AuthUser) =>
      asUser(u, async (r) => {
        const dirs = await q(`SELECT * FROM bench_rls.directories WHERE parent_id IS NULL AND ${visC('directory_permissions', 'directory_id')} ORDER BY name, id`, [], r);
        const rows = await q(`SELECT ${FILE_SUMMARY} FROM bench_rls.files WHERE ${topLevelC} ORDER BY name, id LIMIT ${PAGE} OFFSET 0`, [], r);
        const [count] = await q(`SELECT count(*)::int AS n FROM bench_rls.files WHERE ${topLevelC}`, [], r);
        return { directory: null, directories: dirs.map((d) => dir(d, u.user)), files: rows.map((f) => summary(f, u.user)), page: 1, pageSize: PAGE, totalFiles: Number(count.n) };
      }),
    create: (u: AuthUser, name: string, content: string) =>
      asUser(u, async (r) => {
        const [row] = await q('INSERT INTO bench_rls.files (name, directory_id, content) VALUES ($1, NULL, $2) RETURNING id', [name, content], r);
        const [f] = await q(`SELECT ${FILE_SUMMARY}, content, created_at FROM bench_rls.files WHERE id = $1`, [row.id], r);
        return { ...summary(f, u.user), content: String(f.content), createdAt: iso(f.created_at) };
      }),
  };
  const a = {
    listing: (u: AuthUser) => files.listing(u, undefined, 1, PAGE),
    create: (u: AuthUser, name: string, content: string) => files.createFile(u, name, null, content),
  };
  const backends = { a, b, c } as const;

  let errors = 0;
  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const s = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(s), ...headers }).end(s);
  };
  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d)).on('end', () => resolve(Buffer.concat(chunks).toString('utf8'))).on('error', reject);
    });
  const cookieOf = (req: IncomingMessage) => /(?:^|;\s*)fw_bench=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];

  const server = createServer(async (req, res) => {
    try {
      const url = req.url ?? '/';
      if (url === '/auth') {
        const header = req.headers.authorization;
        if (!header?.startsWith('Negotiate ')) return send(res, 401, { error: 'negotiate' }, { 'www-authenticate': 'Negotiate' });
        const ctx = new AcceptorContext(service);
        try {
          const r = await ctx.step(decodeNegotiateToken(header));
          if (!r.complete || !r.delegated || r.delegation !== 'proxy') return send(res, 401, { error: 'no delegation' });
          const id = randomBytes(32).toString('base64url');
          const user = r.principal!.slice(0, r.principal!.lastIndexOf('@'));
          const now = Date.now();
          sessions.set(id, {
            lease: new CredentialLease({ credential: r.delegated, sessionId: id }),
            user: { sessionId: id, principal: r.principal!, user, delegation: 'proxy', mode: 'constrained', groups: [], isAdmin: false, createdAt: now, expiresAt: now + 8 * 3600_000 },
          });
          return send(res, 200, { user }, { 'set-cookie': `fw_bench=${id}; Path=/; HttpOnly; SameSite=Strict` });
        } finally {
          ctx.dispose();
        }
      }
      if (url === '/stats') return send(res, 200, { pools: uds.stats(), memory: process.memoryUsage(), sessions: sessions.size, errors });
      const m = /^\/([abc])\/api\/files$/.exec(url);
      if (!m) return send(res, 404, { error: 'not found' });
      const id = cookieOf(req);
      const s = id ? sessions.get(id) : undefined;
      if (!s) return send(res, 401, { error: 'sign in' }, { 'www-authenticate': 'Negotiate' });
      const backend = backends[m[1] as 'a' | 'b' | 'c'];
      if (req.method === 'GET') return send(res, 200, await backend.listing(s.user));
      if (req.method === 'POST') {
        if (req.headers['x-requested-with'] !== 'forwardable') return send(res, 403, { error: 'csrf' });
        const body = JSON.parse(await readBody(req)) as { name?: unknown; content?: unknown };
        if (typeof body.name !== 'string' || !/^[^/\0]{1,255}$/.test(body.name)) return send(res, 400, { error: 'name' });
        return send(res, 201, await backend.create(s.user, body.name, typeof body.content === 'string' ? body.content : ''));
      }
      return send(res, 405, { error: 'method' });
    } catch (err) {
      // The scheduler's "try again" (queue full, deadline): a 503 as the product API answers it.
      if (err instanceof PoolCapacityError) return send(res, 503, { error: err.message }, { 'retry-after': String(err.retryAfterSeconds) });
      if (errors++ < 5) console.error(`bench server: ${req.method} ${req.url}: ${(err as Error).message}`);
      if (!res.headersSent) send(res, 500, { error: (err as Error).message });
    }
  });
  server.keepAliveTimeout = 60_000;
  server.listen(port, '127.0.0.1', () => console.error(`bench server on 127.0.0.1:${port} (pid ${process.pid})`));
  const stop = async () => {
    server.close();
    await uds.onApplicationShutdown();
    await shared.destroy();
    await Promise.allSettled([...sessions.values()].map((s) => s.lease.end('shutdown')));
    service.dispose();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

main().catch((err) => {
  console.error(`bench server failed: ${(err as Error).stack}`);
  process.exit(1);
});
