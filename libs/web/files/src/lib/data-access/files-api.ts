import { HttpClient, HttpParams } from '@angular/common/http';
import { Injectable, inject } from '@angular/core';
import type {
  AccessLevel,
  CreateDirectoryRequest,
  CreateFileRequest,
  DirectoryDto,
  FileDto,
  GrantRequest,
  ListingResponse,
  PermissionDto,
  SearchResponse,
  SqlRequest,
  SqlResponse,
  TreeResponse,
  UpdateDirectoryRequest,
  UpdateFileRequest,
} from '@forwardable/shared/contracts';
import { Observable } from 'rxjs';

/** What can be shared: a file or a folder (the API path segment). */
export type ShareKind = 'files' | 'directories';

/** The API's file, folder, permission and search endpoints. Errors arrive as `ApiRequestError`. */
@Injectable({ providedIn: 'root' })
export class FilesApi {
  private readonly http = inject(HttpClient);

  tree(): Observable<TreeResponse> {
    return this.http.get<TreeResponse>('/api/files/tree');
  }

  /** One folder's content (`directoryId` null: the top level), files paged. */
  listing(directoryId: string | null, page = 1, pageSize = 50): Observable<ListingResponse> {
    const params = new HttpParams({
      fromObject: { directoryId: directoryId ?? '', page: String(page), pageSize: String(pageSize) },
    });
    return this.http.get<ListingResponse>('/api/files', { params });
  }

  file(id: string): Observable<FileDto> {
    return this.http.get<FileDto>(`/api/files/${encodeURIComponent(id)}`);
  }

  createFile(request: CreateFileRequest): Observable<FileDto> {
    return this.http.post<FileDto>('/api/files', request);
  }

  updateFile(id: string, request: UpdateFileRequest): Observable<FileDto> {
    return this.http.patch<FileDto>(`/api/files/${encodeURIComponent(id)}`, request);
  }

  deleteFile(id: string): Observable<void> {
    return this.http.delete<void>(`/api/files/${encodeURIComponent(id)}`);
  }

  createDirectory(request: CreateDirectoryRequest): Observable<DirectoryDto> {
    return this.http.post<DirectoryDto>('/api/directories', request);
  }

  /** Rename (owner or editor) or move (owner) a folder. */
  updateDirectory(id: string, request: UpdateDirectoryRequest): Observable<DirectoryDto> {
    return this.http.patch<DirectoryDto>(`/api/directories/${encodeURIComponent(id)}`, request);
  }

  deleteDirectory(id: string): Observable<void> {
    return this.http.delete<void>(`/api/directories/${encodeURIComponent(id)}`);
  }

  permissions(kind: ShareKind, id: string): Observable<PermissionDto[]> {
    return this.http.get<PermissionDto[]>(`/api/${kind}/${encodeURIComponent(id)}/permissions`);
  }

  /** Share at a level, or change the level of an existing grant. */
  grant(
    kind: ShareKind,
    id: string,
    grantee: string,
    level: AccessLevel = 'read',
  ): Observable<PermissionDto> {
    const body: GrantRequest = { grantee, level };
    return this.http.post<PermissionDto>(`/api/${kind}/${encodeURIComponent(id)}/permissions`, body);
  }

  revoke(kind: ShareKind, id: string, grantee: string): Observable<void> {
    return this.http.delete<void>(
      `/api/${kind}/${encodeURIComponent(id)}/permissions/${encodeURIComponent(grantee)}`,
    );
  }

  /** Run one read-only query on the user's own connection ("Run SQL as yourself"). */
  runSql(sql: string): Observable<SqlResponse> {
    const body: SqlRequest = { sql };
    return this.http.post<SqlResponse>('/api/sql', body);
  }

  search(q: string): Observable<SearchResponse> {
    return this.http.get<SearchResponse>('/api/search', { params: { q } });
  }
}
