import { Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { ApiException, AuthUser, UserDb } from '@forwardable/nest';
import type { SqlResponse } from '@forwardable/shared/contracts';

/** What one query on the "Run SQL as yourself" page may take. */
export const SQL_LIMITS = { rows: 200, timeoutMs: 3000, cellChars: 2000 } as const;

/** The part of a node-postgres client this service uses (the query runner's connection). */
interface PgClient {
  query(q: string | { text: string; queryMode?: 'extended'; rowMode?: 'array' }): Promise<{ fields: { name: string }[]; rows: unknown[][] }>;
}

interface PgError {
  code?: unknown;
  message?: unknown;
}

/** SQLSTATE classes that are the query's own fault (syntax, names, types, read-only, timeout...), answered 400. */
const USER_ERROR_CLASSES = ['0A', '21', '22', '23', '25', '26', '2B', '34', '3F', '40', '42', '44', '54', '57014'];

function cell(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  const text = v instanceof Date ? v.toISOString() : Buffer.isBuffer(v) ? `\\x${v.toString('hex')}` : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return text.length > SQL_LIMITS.cellChars ? `${text.slice(0, SQL_LIMITS.cellChars)}…` : text;
}

/**
 * "Run SQL as yourself": the containment demo. The user's text runs on the user's own PostgreSQL
 * connection, so row-level security answers exactly as it does for the application's queries:
 * `SELECT * FROM files` returns only what the user may see. The limits are for the service, not
 * for security: a READ ONLY transaction that is always rolled back (every SET in it is undone
 * too), a statement timeout, one statement only (the extended protocol refuses several, so
 * `SELECT 1; COMMIT; DELETE ...` cannot leave the transaction), only queries (it runs as a
 * cursor, which PostgreSQL allows for SELECT/VALUES/TABLE and refuses for data-modifying WITH),
 * and at most {@link SQL_LIMITS}.rows rows fetched.
 */
@Injectable()
export class SqlService {
  constructor(private readonly db: UserDb) {}

  async run(user: AuthUser, sql: string): Promise<SqlResponse> {
    const text = sql.trim().replace(/;\s*$/, '');
    if (!text) throw new ApiException(400, 'INVALID_INPUT', 'give a query, e.g. SELECT * FROM files');
    // Read-only by construction (below), so a hot standby may answer it: RLS is the same there.
    return this.db.read(user, (ds) => this.runOn(ds, text));
  }

  private async runOn(ds: DataSource, text: string): Promise<SqlResponse> {
    const runner = ds.createQueryRunner();
    const client = (await runner.connect()) as PgClient;
    try {
      await client.query('BEGIN TRANSACTION READ ONLY');
      await client.query(`SET LOCAL statement_timeout = ${SQL_LIMITS.timeoutMs}`);
      const [me] = (await client.query({ text: 'SELECT session_user::text', rowMode: 'array' })).rows;
      await client.query({ text: `DECLARE fw_user_sql NO SCROLL CURSOR FOR ${text}`, queryMode: 'extended' });
      const res = await client.query({ text: `FETCH FORWARD ${SQL_LIMITS.rows + 1} FROM fw_user_sql`, rowMode: 'array' });
      return {
        user: String(me[0]),
        columns: res.fields.map((f) => f.name),
        rows: res.rows.slice(0, SQL_LIMITS.rows).map((r) => r.map(cell)),
        truncated: res.rows.length > SQL_LIMITS.rows,
        limits: SQL_LIMITS,
      };
    } catch (e) {
      throw translate(e);
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      // session-level advisory locks are the one thing a read-only query can take that outlives
      // the transaction; the pooled connection must not keep them
      await client.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
      await runner.release();
    }
  }
}

/** PostgreSQL's verdict on the user's query, as the user should see it; anything else unchanged (the filter maps it). */
function translate(e: unknown): unknown {
  const { code, message } = (e ?? {}) as PgError;
  if (typeof code !== 'string' || typeof message !== 'string') return e;
  if (code === '42501') return e; // the database's own permission error: 403 DATABASE_PERMISSION
  // A hot standby cancelled the query for a recovery conflict: not the user's mistake; UserDb.read
  // answers it from the primary.
  if (code === '40001') return e;
  if (code === '57014') return new ApiException(400, 'INVALID_INPUT', `the query ran longer than ${SQL_LIMITS.timeoutMs / 1000} s and was cancelled`, 'Narrow it down (WHERE, LIMIT).');
  if (!USER_ERROR_CLASSES.some((c) => code.startsWith(c))) return e;
  const hint = code === '42601' || code === '0A000' ? 'Only one query runs here (SELECT, VALUES, TABLE or WITH ... SELECT), read-only.' : undefined;
  return new ApiException(400, 'INVALID_INPUT', `PostgreSQL: ${message}`, hint);
}
