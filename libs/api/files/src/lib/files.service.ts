import { Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { ApiException, AuthUser, UserDb } from '@forwardable/nest';
import type { DirectoryDto, FileDto, FileSummaryDto, ListingResponse, PermissionDto, SearchResponse, TreeResponse } from '@forwardable/shared/contracts';

type Row = Record<string, unknown>;
const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v));

function dir(r: Row): DirectoryDto {
  return { id: String(r.id), parentId: (r.parent_id as string | null) ?? null, name: String(r.name), owner: String(r.owner), createdAt: iso(r.created_at), updatedAt: iso(r.updated_at) };
}

function summary(r: Row, me: string): FileSummaryDto {
  return {
    id: String(r.id),
    directoryId: (r.directory_id as string | null) ?? null,
    name: String(r.name),
    owner: String(r.owner),
    size: Number(r.size ?? 0),
    updatedAt: iso(r.updated_at),
    canEdit: r.owner === me,
  };
}

/** The data table and the permission table behind each kind of shareable item. */
const SHARING = {
  file: { data: 'files', perm: 'file_permissions', fk: 'file_id' },
  directory: { data: 'directories', perm: 'directory_permissions', fk: 'directory_id' },
} as const;

const FILE_SUMMARY = 'id, directory_id, name, owner, octet_length(content) AS size, updated_at';
const notFound = (what: string) => new ApiException(404, 'NOT_FOUND', `${what} does not exist or is not shared with you`);
const notOwner = (what: string) => new ApiException(403, 'FORBIDDEN', `only the owner can change this ${what}`, 'Ask the owner, or make a copy of your own.');

/**
 * The file browser. Every query runs on the signed-in user's own PostgreSQL connection, and
 * none filters by user: row-level security decides what exists for whom. A row the user may not
 * see is "not found" (404), never "forbidden", so nothing leaks its existence.
 */
@Injectable()
export class FilesService {
  constructor(private readonly db: UserDb) {}

  /**
   * Run one statement as the user and return its rows. Through a query runner with a structured
   * result: TypeORM's `DataSource.query` returns `[rows, count]` for UPDATE/DELETE, which would make
   * "nothing changed" (RLS hid the row) look like success.
   */
  private async q(user: AuthUser, sql: string, params: unknown[] = []): Promise<Row[]> {
    const ds: DataSource = await this.db.of(user);
    const runner = ds.createQueryRunner();
    try {
      const result = await runner.query(sql, params, true);
      return result.records as Row[];
    } finally {
      await runner.release();
    }
  }

  async tree(user: AuthUser): Promise<TreeResponse> {
    const ds = await this.db.of(user);
    const [dirs, files] = await Promise.all([
      ds.query('SELECT * FROM directories ORDER BY name, id') as Promise<Row[]>,
      ds.query(`SELECT ${FILE_SUMMARY} FROM files ORDER BY name, id`) as Promise<Row[]>,
    ]);
    return { directories: dirs.map(dir), files: files.map((f) => summary(f, user.user)) };
  }

  async listing(user: AuthUser, directoryId: string | undefined, page: number, pageSize: number): Promise<ListingResponse> {
    let directory: DirectoryDto | null = null;
    if (directoryId) {
      const [d] = await this.q(user, 'SELECT * FROM directories WHERE id = $1', [directoryId]);
      if (!d) throw notFound('the folder');
      directory = dir(d);
    }
    // At the top level also list files shared with the user from folders they cannot see:
    // otherwise a shared file inside a private folder would only be reachable through search.
    // The sub-select runs under RLS too, so "cannot see" is the database's verdict.
    const where = directoryId ? 'directory_id = $1' : '(directory_id IS NULL OR directory_id NOT IN (SELECT id FROM directories))';
    const dwhere = directoryId ? 'parent_id = $1' : 'parent_id IS NULL';
    const p = directoryId ? [directoryId] : [];
    const [dirs, files, [count]] = await Promise.all([
      this.q(user, `SELECT * FROM directories WHERE ${dwhere} ORDER BY name, id`, p),
      this.q(user, `SELECT ${FILE_SUMMARY} FROM files WHERE ${where} ORDER BY name, id LIMIT ${pageSize} OFFSET ${(page - 1) * pageSize}`, p),
      this.q(user, `SELECT count(*)::int AS n FROM files WHERE ${where}`, p),
    ]);
    return { directory, directories: dirs.map(dir), files: files.map((f) => summary(f, user.user)), page, pageSize, totalFiles: Number(count.n) };
  }

  async file(user: AuthUser, id: string): Promise<FileDto> {
    const [r] = await this.q(user, `SELECT ${FILE_SUMMARY}, content, created_at FROM files WHERE id = $1`, [id]);
    if (!r) throw notFound('the file');
    return { ...summary(r, user.user), content: String(r.content), createdAt: iso(r.created_at) };
  }

  /** A folder the user may put things in: visible and their own. */
  private async ownFolder(user: AuthUser, id: string | null | undefined): Promise<void> {
    if (!id) return;
    const [d] = await this.q(user, 'SELECT owner FROM directories WHERE id = $1', [id]);
    if (!d) throw notFound('the folder');
    if (d.owner !== user.user) throw new ApiException(403, 'FORBIDDEN', 'you can only add to your own folders');
  }

  async createFile(user: AuthUser, name: string, directoryId: string | null | undefined, content: string | undefined): Promise<FileDto> {
    await this.ownFolder(user, directoryId);
    // owner is not supplied: it defaults to session_user, and the INSERT policy checks it.
    const [r] = await this.q(user, 'INSERT INTO files (name, directory_id, content) VALUES ($1, $2, $3) RETURNING id', [name, directoryId ?? null, content ?? '']);
    return this.file(user, String(r.id));
  }

  async updateFile(user: AuthUser, id: string, patch: { name?: string; content?: string }): Promise<FileDto> {
    if (patch.name === undefined && patch.content === undefined) throw new ApiException(400, 'INVALID_INPUT', 'nothing to change: give name or content');
    const rows = await this.q(
      user,
      'UPDATE files SET name = coalesce($2, name), content = coalesce($3, content), updated_at = now() WHERE id = $1 RETURNING id',
      [id, patch.name ?? null, patch.content ?? null],
    );
    if (!rows.length) await this.explainMissing(user, 'files', id, 'file');
    return this.file(user, id);
  }

  async deleteFile(user: AuthUser, id: string): Promise<void> {
    const rows = await this.q(user, 'DELETE FROM files WHERE id = $1 RETURNING id', [id]);
    if (!rows.length) await this.explainMissing(user, 'files', id, 'file');
  }

  async createDirectory(user: AuthUser, name: string, parentId: string | null | undefined): Promise<DirectoryDto> {
    await this.ownFolder(user, parentId);
    const [r] = await this.q(user, 'INSERT INTO directories (name, parent_id) VALUES ($1, $2) RETURNING *', [name, parentId ?? null]);
    return dir(r);
  }

  async deleteDirectory(user: AuthUser, id: string): Promise<void> {
    const rows = await this.q(user, 'DELETE FROM directories WHERE id = $1 RETURNING id', [id]);
    if (!rows.length) await this.explainMissing(user, 'directories', id, 'folder');
  }

  /** An UPDATE/DELETE touched nothing: 404 if the user cannot see the row, 403 if they can but do not own it. */
  private async explainMissing(user: AuthUser, table: 'files' | 'directories', id: string, what: string): Promise<never> {
    const [r] = await this.q(user, `SELECT owner FROM ${table} WHERE id = $1`, [id]);
    throw r ? notOwner(what) : notFound(`the ${what}`);
  }

  async permissions(user: AuthUser, kind: 'file' | 'directory', id: string): Promise<PermissionDto[]> {
    const t = SHARING[kind];
    const [d] = await this.q(user, `SELECT 1 FROM ${t.data} WHERE id = $1`, [id]);
    if (!d) throw notFound(`the ${kind}`);
    const rows = await this.q(user, `SELECT grantee, granted_at FROM ${t.perm} WHERE ${t.fk} = $1 ORDER BY grantee`, [id]);
    return rows.map((r) => ({ grantee: String(r.grantee), grantedAt: iso(r.granted_at) }));
  }

  async grant(user: AuthUser, kind: 'file' | 'directory', id: string, grantee: string): Promise<PermissionDto> {
    const t = SHARING[kind];
    const [d] = await this.q(user, `SELECT owner FROM ${t.data} WHERE id = $1`, [id]);
    if (!d) throw notFound(`the ${kind}`);
    if (grantee === d.owner) throw new ApiException(400, 'INVALID_INPUT', `${grantee} owns this ${kind} already`);
    // Only real users: a login role in the application group (pg_roles is readable by everyone).
    const [role] = await this.q(
      user,
      "SELECT 1 FROM pg_roles r WHERE r.rolname = $1 AND r.rolcanlogin AND pg_has_role(r.oid, 'forwardable_users', 'MEMBER')",
      [grantee],
    );
    if (!role) throw new ApiException(400, 'INVALID_INPUT', `there is no user "${grantee}"`, 'Give the user name without the realm, e.g. bob.');
    // Ownership is checked by the INSERT policy: a non-owner gets the database's own 42501 (403).
    const [r] = await this.q(user, `INSERT INTO ${t.perm} (${t.fk}, grantee) VALUES ($1, $2) RETURNING grantee, granted_at`, [id, grantee]);
    return { grantee: String(r.grantee), grantedAt: iso(r.granted_at) };
  }

  async revoke(user: AuthUser, kind: 'file' | 'directory', id: string, grantee: string): Promise<void> {
    const t = SHARING[kind];
    const rows = await this.q(user, `DELETE FROM ${t.perm} WHERE ${t.fk} = $1 AND grantee = $2 RETURNING grantee`, [id, grantee]);
    if (!rows.length) throw notFound('that permission');
  }

  async search(user: AuthUser, query: string): Promise<SearchResponse> {
    // A parameter, with LIKE's own wildcards escaped: the text is searched for literally.
    const pattern = `%${query.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const rows = await this.q(user, `SELECT ${FILE_SUMMARY} FROM files WHERE name ILIKE $1 OR content ILIKE $1 ORDER BY name, id LIMIT 200`, [pattern]);
    return { query, files: rows.map((r) => summary(r, user.user)) };
  }
}
