/**
 * One small interface over the two ways this project talks to PostgreSQL: node-postgres
 * (`Client`, `Pool`, `PoolClient`, whose `query` resolves to `{ rows }`) and TypeORM
 * (`DataSource`, `QueryRunner`, whose `query` resolves to the rows themselves).
 */
import { RlsUsageError } from './errors';

/** Anything with `query(sql, params)`: a pg `Client`/`Pool`/`PoolClient` or a TypeORM `DataSource`/`QueryRunner`. */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

/** One database connection for a sequence of statements (a transaction needs a single connection). */
export interface SqlSession {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Give the connection back (pool / query runner); a no-op for a plain `Client`. */
  release(): Promise<void>;
}

function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  if (result && typeof result === 'object' && Array.isArray((result as { rows?: unknown }).rows)) return (result as { rows: T[] }).rows;
  return [];
}

/** Run one query on any {@link Queryable} and return its rows. */
export async function queryRows<T = Record<string, unknown>>(q: Queryable, sql: string, params: unknown[] = []): Promise<T[]> {
  if (!q || typeof q.query !== 'function') throw new RlsUsageError('ERR_RLS_BAD_QUERYABLE', 'expected a pg Client/Pool or a TypeORM DataSource/QueryRunner (an object with query(sql, params))');
  return rowsOf<T>(await q.query(sql, params));
}

type AnyObj = Record<string, unknown>;
const fn = (o: unknown, k: string) => !!o && typeof (o as AnyObj)[k] === 'function';

/**
 * A single connection from `q`: a pool lends one client, a TypeORM `DataSource` one query runner;
 * a `Client` or `QueryRunner` is used as is. Release it in `finally`.
 */
export async function openSession(q: Queryable): Promise<SqlSession> {
  if (fn(q, 'createQueryRunner')) {
    // TypeORM DataSource: every DataSource.query may take another pooled connection.
    const runner = (q as unknown as { createQueryRunner(): Queryable & { release(): Promise<void>; connect(): Promise<unknown> } }).createQueryRunner();
    await runner.connect();
    return { query: (s, p) => queryRows(runner, s, p), release: () => runner.release() };
  }
  if (fn(q, 'connect') && 'idleCount' in (q as object)) {
    // pg.Pool: check out one client.
    const client = (await (q as unknown as { connect(): Promise<Queryable & { release(): void }> }).connect()) as Queryable & { release(): void };
    return {
      query: (s, p) => queryRows(client, s, p),
      release: async () => client.release(),
    };
  }
  return { query: (s, p) => queryRows(q, s, p), release: async () => undefined };
}

/**
 * Run `work` in one transaction on one connection; roll back on any error. Apply and revert use
 * it so a failure half-way leaves the database as it was (DDL is transactional in PostgreSQL).
 */
export async function inTransaction<T>(q: Queryable, work: (s: SqlSession) => Promise<T>): Promise<T> {
  const s = await openSession(q);
  try {
    await s.query('BEGIN');
    try {
      const out = await work(s);
      await s.query('COMMIT');
      return out;
    } catch (err) {
      await s.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } finally {
    await s.release();
  }
}
