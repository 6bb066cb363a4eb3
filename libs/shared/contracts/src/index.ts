/**
 * The API's request and response shapes, shared by the Nest API and the Angular SPA.
 * Framework-free by rule (scope:shared): interfaces, literal unions and constants only.
 * @packageDocumentation
 */

/** Header every state-changing request must carry (with the session cookie): a CSRF defence. */
export const CSRF_HEADER = 'x-requested-with';
/** The value of {@link CSRF_HEADER}. */
export const CSRF_VALUE = 'forwardable';
/** Name of the session cookie (HttpOnly; the SPA never reads it). */
export const SESSION_COOKIE = 'fw_session';

/** How the API holds the user's credential. */
export type DelegationKind = 'forwarded' | 'proxy' | 'password';
/** Delegation mode the API is configured for. */
export type DelegationMode = 'unconstrained' | 'constrained';

/** `GET /api/auth/me` */
export interface MeResponse {
  /** Kerberos principal, e.g. `alice@FORWARDABLE.TEST`. */
  principal: string;
  /** Database role and display name: the principal without its realm. */
  user: string;
  /** What the session's credential is. */
  delegation: DelegationKind;
  mode: DelegationMode;
  /** ISO time at which the session ends (never later than the credential). */
  expiresAt: string;
  groups: string[];
  /** Member of the admin group: may use the setup wizard. */
  isAdmin: boolean;
}

/** `POST /api/auth/login` */
export interface LoginRequest {
  username: string;
  password: string;
  /**
   * The page first asked for, to return to after sign-in: a path on this site (see
   * {@link isSameOriginPath}); anything else is refused with 400.
   */
  returnTo?: string;
}

/** `POST /api/auth/login` answer. */
export interface LoginResponse extends MeResponse {
  /** Where the SPA should go next: the request's `returnTo`, else the configured post-login page. */
  redirectTo: string;
}

/**
 * Whether `target` may be used as a post-sign-in destination: a path on this same origin. It must
 * start with exactly one `/` (`//evil.example` and `/\evil.example` are protocol-relative URLs to
 * another host for browsers) and hold no backslash, whitespace or control character (URL parsers
 * drop tabs and newlines, so `/\t/evil.example` would become `//evil.example`). Anything else,
 * including absolute URLs (`https://...`, `javascript:...`), is refused: an open redirect would let
 * a link to our sign-in page send a user to a look-alike site after a real sign-in.
 */
export function isSameOriginPath(target: unknown): target is string {
  if (typeof target !== 'string' || target.length === 0 || target.length > 2048) return false;
  if (target[0] !== '/' || target[1] === '/' || target[1] === '\\') return false;
  if (/[\\\s]/.test(target)) return false;
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return false;
  }
  return true;
}

/** Machine-readable reasons in error bodies. */
export type ApiErrorCode =
  | 'NEGOTIATE_REQUIRED'
  | 'NTLM_OFFERED'
  | 'TOKEN_INVALID'
  | 'TOKEN_REPLAYED'
  | 'WRONG_SERVICE'
  | 'NO_DELEGATION'
  | 'REALM_REFUSED'
  | 'SESSION_EXPIRED'
  | 'LOGIN_FAILED'
  | 'KDC_UNAVAILABLE'
  | 'KDC_UNVERIFIED'
  | 'RATE_LIMITED'
  | 'CSRF_REQUIRED'
  | 'FORBIDDEN'
  | 'NOT_ADMIN'
  | 'NO_DATABASE_ROLE'
  | 'DATABASE_UNAVAILABLE'
  | 'SESSION_STORE_UNAVAILABLE'
  | 'DATABASE_PERMISSION'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'INVALID_INPUT'
  | 'INTERNAL';

/** Every error response body. */
export interface ApiError {
  statusCode: number;
  code: ApiErrorCode;
  /** What happened, for people. */
  message: string;
  /** What to do about it, when there is something to do. */
  hint?: string;
  /** Field errors of invalid input. */
  details?: string[];
}

// ---------------------------------------------------------------- files

/** A grant's level: `read`, or `write` (edit content and rename; never delete, move, re-share or change grants). */
export type AccessLevel = 'read' | 'write';
/** What the signed-in user may do with an item: own it (everything), or hold a read or write grant (direct or through a folder above). */
export type Access = 'owner' | AccessLevel;

/** A folder as the user sees it. */
export interface DirectoryDto {
  id: string;
  parentId: string | null;
  name: string;
  owner: string;
  /** The user's access, as PostgreSQL's policies grant it. */
  access: Access;
  createdAt: string;
  updatedAt: string;
}

/** A file without its contents. */
export interface FileSummaryDto {
  id: string;
  directoryId: string | null;
  name: string;
  owner: string;
  size: number;
  updatedAt: string;
  /** The user's access, as PostgreSQL's policies grant it. */
  access: Access;
  /** True when the user may change content and name (owner or write grant); only owners delete, move and share. */
  canEdit: boolean;
}

/** A file with its contents. */
export interface FileDto extends FileSummaryDto {
  content: string;
  createdAt: string;
}

/** `GET /api/files/tree`: every folder and file the user may see. */
export interface TreeResponse {
  directories: DirectoryDto[];
  files: FileSummaryDto[];
}

/** `GET /api/files?directoryId=&page=&pageSize=`: one folder's content, paged (files). */
export interface ListingResponse {
  directory: DirectoryDto | null;
  directories: DirectoryDto[];
  files: FileSummaryDto[];
  page: number;
  pageSize: number;
  totalFiles: number;
}

/** `POST /api/directories` */
export interface CreateDirectoryRequest {
  name: string;
  parentId?: string | null;
}

/** `POST /api/files` */
export interface CreateFileRequest {
  name: string;
  directoryId?: string | null;
  content?: string;
}

/** `PATCH /api/files/:id`: content and name (owner or write grant); `directoryId` moves it (owner, into an own folder or `null`: the top). */
export interface UpdateFileRequest {
  content?: string;
  name?: string;
  directoryId?: string | null;
}

/** `PATCH /api/directories/:id`: `name` renames (owner or write grant); `parentId` moves (owner, never into itself or below itself). */
export interface UpdateDirectoryRequest {
  name?: string;
  parentId?: string | null;
}

/** A grant, on the item itself or inherited from a folder above it. */
export interface PermissionDto {
  grantee: string;
  level: AccessLevel;
  grantedAt: string;
  /** The folder the grant is on when it is inherited; absent for a grant on the item itself. */
  inheritedFrom?: { id: string; name: string };
}

/** `POST /api/files/:id/permissions` and `POST /api/directories/:id/permissions`: grant, or change the level of a grant. */
export interface GrantRequest {
  grantee: string;
  /** Default `read`. */
  level?: AccessLevel;
}

/** `GET /api/search?q=`: files whose name or contents match. */
export interface SearchResponse {
  query: string;
  files: FileSummaryDto[];
}

// ---------------------------------------------------------------- run SQL as yourself

/** `POST /api/sql`: one query, run on the user's own connection in a read-only transaction. */
export interface SqlRequest {
  sql: string;
}

/** `POST /api/sql` answer: what PostgreSQL returned to the user's own role, capped. */
export interface SqlResponse {
  /** The role the query ran as (`session_user`). */
  user: string;
  columns: string[];
  /** Values as text (`null` for SQL NULL); long values cut at `limits.cellChars`. */
  rows: (string | null)[][];
  /** More rows than `limits.rows` existed; only the first ones are here. */
  truncated: boolean;
  limits: { rows: number; timeoutMs: number; cellChars: number };
}

// ---------------------------------------------------------------- setup wizard (RLS)

/** `GET /api/rls/target`: the paper's step 1. */
export interface RlsTargetResponse {
  database: string;
  schema: string;
  /** The role the wizard runs as: the admin's own. */
  user: string;
}

/** A candidate permission table of a data table. */
export interface RlsPermissionCandidate {
  table: string;
  fkColumn: string;
  granteeCandidates: string[];
}

/** One table in `GET /api/rls/models`: the paper's step 2. */
export interface RlsModel {
  table: string;
  primaryKey: string[];
  ownerCandidates: string[];
  permissionCandidates: RlsPermissionCandidate[];
  /** Columns with a foreign key to a table's one-column key: candidates for the container (a folder) of the rows. */
  parentCandidates: { column: string; table: string }[];
  rls: { enabled: boolean; forced: boolean };
  policies: string[];
}

/** `GET /api/rls/models` */
export interface RlsModelsResponse {
  tables: RlsModel[];
}

/** The admin's choice for one data table (the shape of libs/rls's `TableMapping`). */
export interface RlsTableMapping {
  table: string;
  ownerColumn: string;
  /** `levelColumn`: a string column holding `read` or `write` per grant. */
  permission?: { table: string; fkColumn: string; granteeColumn: string; levelColumn?: string };
  /** The container of the rows (a folder): its grants reach the rows inside it; new rows only go into the user's own. */
  parent?: { column: string; table: string };
}

/** `POST /api/rls/preview` and `POST /api/rls/apply` */
export interface RlsMappingRequest {
  tables: RlsTableMapping[];
  groupRole?: string;
}

/** `POST /api/rls/preview` */
export interface RlsPreviewResponse {
  sql: string;
}

/** `POST /api/rls/apply` */
export interface RlsApplyResponse {
  applied: boolean;
  statements: number;
}
