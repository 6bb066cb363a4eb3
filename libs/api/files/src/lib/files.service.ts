import { Inject, Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { ApiException, AUTH_OPTIONS, AuthOptions, AuthUser, roleNameCase, UserDb } from '@forwardable/nest';
import { DIR_COLUMNS, DIRECTORY_CANDIDATES, FILE_CANDIDATES, FILE_SUMMARY, listingStatements } from './listing-sql';
import type { Access, AccessLevel, DirectoryDto, FileDto, FileSummaryDto, ListingResponse, PermissionDto, SearchResponse, TreeResponse } from '@forwardable/shared/contracts';

type Row = Record<string, unknown>;
const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v));
const access = (v: unknown): Access => (v === 'owner' || v === 'write' ? v : 'read');

function dir(r: Row): DirectoryDto {
  return {
    id: String(r.id),
    parentId: (r.parent_id as string | null) ?? null,
    name: String(r.name),
    owner: String(r.owner),
    access: access(r.access),
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

function summary(r: Row): FileSummaryDto {
  const a = access(r.access);
  return {
    id: String(r.id),
    directoryId: (r.directory_id as string | null) ?? null,
    name: String(r.name),
    owner: String(r.owner),
    size: Number(r.size ?? 0),
    updatedAt: iso(r.updated_at),
    access: a,
    canEdit: a !== 'read',
  };
}

/** The data table and the permission table behind each kind of shareable item. */
const SHARING = {
  file: { data: 'files', perm: 'file_permissions', fk: 'file_id' },
  directory: { data: 'directories', perm: 'directory_permissions', fk: 'directory_id' },
} as const;

const notFound = (what: string) => new ApiException(404, 'NOT_FOUND', `${what} does not exist or is not shared with you`);
const notOwner = (what: string) => new ApiException(403, 'FORBIDDEN', `you may not change this ${what}`, 'Ask the owner for write access (edit and rename), or make a copy of your own. Only the owner deletes, moves and shares.');

/**
 * One statement as the user, rows back. Through a query runner with a structured result:
 * TypeORM's `DataSource.query` returns `[rows, count]` for UPDATE/DELETE, which would make
 * "nothing changed" (RLS hid the row) look like success.
 */
async function statement(ds: DataSource, sql: string, params: unknown[]): Promise<Row[]> {
  const runner = ds.createQueryRunner();
  try {
    const result = await runner.query(sql, params, true);
    return result.records as Row[];
  } finally {
    await runner.release();
  }
}

/**
 * The file browser. Every query runs on the signed-in user's own PostgreSQL connection, and
 * none filters by user: row-level security decides what exists for whom. A row the user may not
 * see is "not found" (404), never "forbidden", so nothing leaks its existence. What only reads
 * (listings, a file, search, permissions) may be served by a hot standby ({@link UserDb.read});
 * everything in a change, checks included, runs on the primary ({@link UserDb.write}).
 */
@Injectable()
export class FilesService {
  constructor(
    private readonly db: UserDb,
    @Inject(AUTH_OPTIONS) private readonly auth: Pick<AuthOptions, 'usernameCase'> = {},
  ) {}

  /** The role a typed user or group name refers to (`usernameCase` `lower`: `Carol` → `carol`). */
  private roleName(typed: string): string {
    return roleNameCase(typed, this.auth.usernameCase);
  }

  /** One statement of a change (or a check within one), on the primary: the user's next reads see it. */
  private q(user: AuthUser, sql: string, params: unknown[] = []): Promise<Row[]> {
    return this.db.write(user, (ds) => statement(ds, sql, params));
  }

  /** One statement that only reads: on a hot standby when one is up to date for this user. */
  private r(user: AuthUser, sql: string, params: unknown[] = []): Promise<Row[]> {
    return this.db.read(user, (ds) => statement(ds, sql, params));
  }

  async tree(user: AuthUser): Promise<TreeResponse> {
    // The candidates only let the planner start from the user's rows (listing-sql.ts); RLS decides.
    const [dirs, files] = await this.db.read(user, (ds) =>
      Promise.all([
        ds.query(`SELECT ${DIR_COLUMNS} FROM directories WHERE ${DIRECTORY_CANDIDATES} ORDER BY name, id`) as Promise<Row[]>,
        ds.query(`SELECT ${FILE_SUMMARY} FROM files WHERE ${FILE_CANDIDATES} ORDER BY name, id`) as Promise<Row[]>,
      ]),
    );
    return { directories: dirs.map(dir), files: files.map(summary) };
  }

  async listing(user: AuthUser, directoryId: string | undefined, page: number, pageSize: number): Promise<ListingResponse> {
    let directory: DirectoryDto | null = null;
    if (directoryId) {
      const [d] = await this.r(user, `SELECT ${DIR_COLUMNS} FROM directories WHERE id = $1`, [directoryId]);
      if (!d) throw notFound('the folder');
      directory = dir(d);
    }
    // At the top level also list what is shared with the user from folders they cannot see (a
    // file, or a sub-folder shared on its own): otherwise it would only be reachable through
    // search. Which folders the user can see is asked under RLS too, so "cannot see" is the
    // database's verdict; the statements start from the user's own and shared rows (listing-sql.ts).
    const sql = listingStatements(directoryId, page, pageSize);
    const [dirs, files, [count]] = await Promise.all([
      this.r(user, sql.directories, sql.params),
      this.r(user, sql.files, sql.params),
      this.r(user, sql.count, sql.params),
    ]);
    return { directory, directories: dirs.map(dir), files: files.map(summary), page, pageSize, totalFiles: Number(count.n) };
  }

  async file(user: AuthUser, id: string): Promise<FileDto> {
    const [r] = await this.r(user, `SELECT ${FILE_SUMMARY}, content, created_at FROM files WHERE id = $1`, [id]);
    if (!r) throw notFound('the file');
    return { ...summary(r), content: String(r.content), createdAt: iso(r.created_at) };
  }

  /**
   * A folder the user may put things in: visible and their own. The database checks the same (the
   * policies' container check); asking first only gives a clearer answer than its 42501.
   */
  private async ownFolder(user: AuthUser, id: string | null | undefined): Promise<void> {
    if (!id) return;
    const [d] = await this.q(user, 'SELECT owner FROM directories WHERE id = $1', [id]);
    if (!d) throw notFound('the folder');
    if (d.owner !== user.user) throw new ApiException(403, 'FORBIDDEN', 'you can only put things into your own folders', 'Write access to a shared folder edits and renames what is in it; only its owner adds to it.');
  }

  /**
   * `UPDATE table SET <changed columns> WHERE id = $1 RETURNING id`: only the columns the request
   * names (fixed names, values as parameters); `null` for a parent column moves to the top.
   */
  private async patch(user: AuthUser, table: 'files' | 'directories', id: string, changes: [column: string, value: unknown][]): Promise<boolean> {
    const set = changes.map(([c], i) => `${c} = $${i + 2}`).join(', ');
    const rows = await this.q(user, `UPDATE ${table} SET ${set}, updated_at = now() WHERE id = $1 RETURNING id`, [id, ...changes.map(([, v]) => v)]);
    return rows.length > 0;
  }

  async createFile(user: AuthUser, name: string, directoryId: string | null | undefined, content: string | undefined): Promise<FileDto> {
    await this.ownFolder(user, directoryId);
    // owner is not supplied: it defaults to session_user, and the INSERT policy checks it.
    const [r] = await this.q(user, 'INSERT INTO files (name, directory_id, content) VALUES ($1, $2, $3) RETURNING id', [name, directoryId ?? null, content ?? '']);
    return this.file(user, String(r.id));
  }

  /** Edit content, rename (owner or write grant) or move (owner only; the database decides). */
  async updateFile(user: AuthUser, id: string, patch: { name?: string; content?: string; directoryId?: string | null }): Promise<FileDto> {
    // null name or content means "not given" (the validator lets null through as absent); a null
    // folder means "move to the top"
    const changes: [string, unknown][] = [];
    if (patch.name != null) changes.push(['name', patch.name]);
    if (patch.content != null) changes.push(['content', patch.content]);
    if (patch.directoryId !== undefined) {
      await this.ownFolder(user, patch.directoryId);
      changes.push(['directory_id', patch.directoryId]);
    }
    if (!changes.length) throw new ApiException(400, 'INVALID_INPUT', 'nothing to change: give name, content or directoryId');
    if (!(await this.patch(user, 'files', id, changes))) await this.explainMissing(user, 'files', id, 'file');
    return this.file(user, id);
  }

  /** Rename (owner or write grant) or move (owner only, never into itself or below itself: the database refuses). */
  async updateDirectory(user: AuthUser, id: string, patch: { name?: string; parentId?: string | null }): Promise<DirectoryDto> {
    const changes: [string, unknown][] = [];
    if (patch.name != null) changes.push(['name', patch.name]);
    if (patch.parentId !== undefined) {
      await this.ownFolder(user, patch.parentId);
      changes.push(['parent_id', patch.parentId]);
    }
    if (!changes.length) throw new ApiException(400, 'INVALID_INPUT', 'nothing to change: give name or parentId');
    if (!(await this.patch(user, 'directories', id, changes))) await this.explainMissing(user, 'directories', id, 'folder');
    const [d] = await this.q(user, `SELECT ${DIR_COLUMNS} FROM directories WHERE id = $1`, [id]);
    return dir(d);
  }

  async deleteFile(user: AuthUser, id: string): Promise<void> {
    const rows = await this.q(user, 'DELETE FROM files WHERE id = $1 RETURNING id', [id]);
    if (!rows.length) await this.explainMissing(user, 'files', id, 'file');
  }

  async createDirectory(user: AuthUser, name: string, parentId: string | null | undefined): Promise<DirectoryDto> {
    await this.ownFolder(user, parentId);
    const [r] = await this.q(user, 'INSERT INTO directories (name, parent_id) VALUES ($1, $2) RETURNING *', [name, parentId ?? null]);
    return dir({ ...r, access: 'owner' });
  }

  async deleteDirectory(user: AuthUser, id: string): Promise<void> {
    const rows = await this.q(user, 'DELETE FROM directories WHERE id = $1 RETURNING id', [id]);
    if (!rows.length) await this.explainMissing(user, 'directories', id, 'folder');
  }

  /** An UPDATE/DELETE touched nothing: 404 if the user cannot see the row, 403 if they can but may not change it. */
  private async explainMissing(user: AuthUser, table: 'files' | 'directories', id: string, what: string): Promise<never> {
    const [r] = await this.q(user, `SELECT owner FROM ${table} WHERE id = $1`, [id]);
    throw r ? notOwner(what) : notFound(`the ${what}`);
  }

  /**
   * Who has access to an item: its own grants, then those inherited from each folder above it
   * (nearest first). The folders above are the user's to see: the owner sees their whole tree.
   */
  async permissions(user: AuthUser, kind: 'file' | 'directory', id: string): Promise<PermissionDto[]> {
    const t = SHARING[kind];
    const [d] = await this.r(user, `SELECT ${kind === 'file' ? 'directory_id' : 'parent_id'} AS parent FROM ${t.data} WHERE id = $1`, [id]);
    if (!d) throw notFound(`the ${kind}`);
    const own = await this.r(user, `SELECT grantee, level, granted_at FROM ${t.perm} WHERE ${t.fk} = $1 ORDER BY grantee`, [id]);
    const inherited = d.parent
      ? await this.r(
          user,
          // depth-bounded although the database refuses cycles: a listing never loops
          `WITH RECURSIVE up(id, parent_id, name, depth) AS (
             SELECT id, parent_id, name, 1 FROM directories WHERE id = $1
             UNION ALL SELECT d.id, d.parent_id, d.name, up.depth + 1 FROM directories d JOIN up ON d.id = up.parent_id WHERE up.depth < 1000)
           SELECT p.grantee, p.level, p.granted_at, up.id AS from_id, up.name AS from_name
             FROM up JOIN directory_permissions p ON p.directory_id = up.id ORDER BY up.depth, p.grantee`,
          [d.parent],
        )
      : [];
    const level = (v: unknown): AccessLevel => (v === 'write' ? 'write' : 'read');
    return [
      ...own.map((r) => ({ grantee: String(r.grantee), level: level(r.level), grantedAt: iso(r.granted_at) })),
      ...inherited.map((r) => ({ grantee: String(r.grantee), level: level(r.level), grantedAt: iso(r.granted_at), inheritedFrom: { id: String(r.from_id), name: String(r.from_name) } })),
    ];
  }

  /**
   * Share an item at a level, or change the level of an existing grant. Only the owner can (the
   * policies refuse anyone else with 42501, a 403). The grantee must be an application user that
   * row-level security binds: a login role in the group, not a superuser or a BYPASSRLS role (they
   * see every row anyway, and a grant naming them would claim a limit that does not exist), or a
   * directory group role provisioned by `forwardable-roles` (NOLOGIN, in `forwardable_managed`),
   * whose members the RLS helpers let in. The typed name is mapped like a principal's name
   * (`usernameCase` `lower`: `Carol` → `carol`), so it names the role the user signs in as.
   */
  async grant(user: AuthUser, kind: 'file' | 'directory', id: string, typed: string, level?: AccessLevel | null): Promise<PermissionDto> {
    const grantee = this.roleName(typed);
    // null passes the validator as "not given", like an absent level
    const lvl: AccessLevel = level ?? 'read';
    const t = SHARING[kind];
    const [d] = await this.q(user, `SELECT owner FROM ${t.data} WHERE id = $1`, [id]);
    if (!d) throw notFound(`the ${kind}`);
    if (grantee === d.owner) throw new ApiException(400, 'INVALID_INPUT', `${grantee} owns this ${kind} already`);
    // pg_roles is readable by everyone. pg_has_role() is true for a superuser and any group, so
    // superusers are asked about first.
    const [role] = await this.q(
      user,
      `SELECT r.rolcanlogin AS login, r.rolsuper OR r.rolbypassrls AS unbound, pg_has_role(r.oid, 'forwardable_users', 'MEMBER') AS member,
              EXISTS (SELECT 1 FROM pg_auth_members a JOIN pg_roles m ON m.oid = a.roleid WHERE a.member = r.oid AND m.rolname = 'forwardable_managed') AS managed
         FROM pg_roles r WHERE r.rolname = $1`,
      [grantee],
    );
    const hint = 'Give the user name of a person without the realm (e.g. bob), or a directory group provisioned by forwardable-roles (e.g. engineering).';
    if (!role) throw new ApiException(400, 'INVALID_INPUT', `there is no user or group "${grantee}"`, hint);
    if (role.unbound) throw new ApiException(400, 'INVALID_INPUT', `"${grantee}" is a database superuser or bypasses row-level security: sharing with it is refused`, 'Share with the person\'s own user name instead.');
    // A group: a NOLOGIN role the role tool manages (a directory group); the RLS helpers count a
    // grant to it for every member. Any other NOLOGIN role (forwardable_users, pg_* roles) is refused.
    const group = !role.login && role.managed;
    if (!group && (!role.login || !role.member)) {
      throw new ApiException(400, 'INVALID_INPUT', `"${grantee}" is not a user of this application (it cannot sign in, or is not in forwardable_users) nor a directory group managed by forwardable-roles`, hint);
    }
    // Ownership is checked by the INSERT (and, for a level change, UPDATE) policy: a non-owner gets the database's own 42501 (403).
    const [r] = await this.q(
      user,
      `INSERT INTO ${t.perm} (${t.fk}, grantee, level) VALUES ($1, $2, $3) ON CONFLICT (${t.fk}, grantee) DO UPDATE SET level = EXCLUDED.level RETURNING grantee, level, granted_at`,
      [id, grantee, lvl],
    );
    return { grantee: String(r.grantee), level: r.level === 'write' ? 'write' : 'read', grantedAt: iso(r.granted_at) };
  }

  /**
   * Remove a grant; the grantee is named as for {@link FilesService.grant}, or exactly as the grant
   * lists it (a grant made before `usernameCase` became `lower` can still be revoked from the list).
   */
  async revoke(user: AuthUser, kind: 'file' | 'directory', id: string, typed: string): Promise<void> {
    const t = SHARING[kind];
    const names = [...new Set([this.roleName(typed), typed])];
    const rows = await this.q(user, `DELETE FROM ${t.perm} WHERE ${t.fk} = $1 AND grantee = ANY($2::text[]) RETURNING grantee`, [id, names]);
    if (!rows.length) throw notFound('that permission');
  }

  async search(user: AuthUser, query: string): Promise<SearchResponse> {
    // A parameter, with LIKE's own wildcards escaped: the text is searched for literally.
    const pattern = `%${query.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const found = await this.r(user, `SELECT ${FILE_SUMMARY} FROM files WHERE ${FILE_CANDIDATES} AND (name ILIKE $1 OR content ILIKE $1) ORDER BY name, id LIMIT 200`, [pattern]);
    return { query, files: found.map(summary) };
  }
}
