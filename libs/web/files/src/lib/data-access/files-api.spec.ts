import { HttpTestingController } from '@angular/common/http/testing';
import { TestBed } from '@angular/core/testing';
import { CSRF_HEADER, CSRF_VALUE } from '@forwardable/shared/contracts';
import { firstValueFrom } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FilesApi } from './files-api';
import { aDirectory, aFile, provideFilesTesting } from '../../testing/fixtures';

describe('FilesApi', () => {
  let api: FilesApi;
  let backend: HttpTestingController;

  beforeEach(() => {
    TestBed.configureTestingModule({ providers: provideFilesTesting() });
    api = TestBed.inject(FilesApi);
    backend = TestBed.inject(HttpTestingController);
  });

  afterEach(() => backend.verify());

  it('lists the top level with an empty directoryId and the page', async () => {
    const listing = firstValueFrom(api.listing(null, 2, 50));
    const req = backend.expectOne((r) => r.url === '/api/files');
    expect(req.request.method).toBe('GET');
    expect(req.request.urlWithParams).toBe('/api/files?directoryId=&page=2&pageSize=50');
    req.flush({ directory: null, directories: [], files: [], page: 2, pageSize: 50, totalFiles: 60 });
    await expect(listing).resolves.toMatchObject({ page: 2, totalFiles: 60 });
  });

  it('creates a file and a folder with POST, carrying the CSRF header', async () => {
    const file = firstValueFrom(api.createFile({ name: 'a.txt', directoryId: 'd1', content: 'x' }));
    const dir = firstValueFrom(api.createDirectory({ name: 'Sub', parentId: 'd1' }));
    const fileReq = backend.expectOne({ method: 'POST', url: '/api/files' });
    const dirReq = backend.expectOne({ method: 'POST', url: '/api/directories' });
    expect(fileReq.request.body).toEqual({ name: 'a.txt', directoryId: 'd1', content: 'x' });
    expect(dirReq.request.body).toEqual({ name: 'Sub', parentId: 'd1' });
    expect(fileReq.request.headers.get(CSRF_HEADER)).toBe(CSRF_VALUE);
    fileReq.flush(aFile({ name: 'a.txt' }));
    dirReq.flush(aDirectory({ name: 'Sub' }));
    await expect(file).resolves.toMatchObject({ name: 'a.txt' });
    await expect(dir).resolves.toMatchObject({ name: 'Sub' });
  });

  it('updates with PATCH and deletes with DELETE', async () => {
    const update = firstValueFrom(api.updateFile('f1', { content: 'new' }));
    const patch = backend.expectOne({ method: 'PATCH', url: '/api/files/f1' });
    expect(patch.request.body).toEqual({ content: 'new' });
    patch.flush(aFile({ content: 'new' }));
    await update;

    const rename = firstValueFrom(api.updateDirectory('d1', { name: 'Renamed' }));
    const dpatch = backend.expectOne({ method: 'PATCH', url: '/api/directories/d1' });
    expect(dpatch.request.body).toEqual({ name: 'Renamed' });
    dpatch.flush(aDirectory({ name: 'Renamed' }));
    await expect(rename).resolves.toMatchObject({ name: 'Renamed' });

    const removeFile = firstValueFrom(api.deleteFile('f1'), { defaultValue: undefined });
    const removeDir = firstValueFrom(api.deleteDirectory('d1'), { defaultValue: undefined });
    backend
      .expectOne({ method: 'DELETE', url: '/api/files/f1' })
      .flush(null, { status: 204, statusText: 'No Content' });
    backend
      .expectOne({ method: 'DELETE', url: '/api/directories/d1' })
      .flush(null, { status: 204, statusText: 'No Content' });
    await Promise.all([removeFile, removeDir]);
  });

  it('lists, grants and revokes permissions of files and folders', async () => {
    const list = firstValueFrom(api.permissions('directories', 'd1'));
    backend.expectOne({ method: 'GET', url: '/api/directories/d1/permissions' }).flush([]);
    await expect(list).resolves.toEqual([]);

    const grant = firstValueFrom(api.grant('files', 'f1', 'bob'));
    const post = backend.expectOne({ method: 'POST', url: '/api/files/f1/permissions' });
    expect(post.request.body).toEqual({ grantee: 'bob', level: 'read' });
    post.flush({ grantee: 'bob', level: 'read', grantedAt: '2025-01-01T00:00:00Z' });
    await grant;

    const editor = firstValueFrom(api.grant('directories', 'd1', 'carol', 'write'));
    const post2 = backend.expectOne({ method: 'POST', url: '/api/directories/d1/permissions' });
    expect(post2.request.body).toEqual({ grantee: 'carol', level: 'write' });
    post2.flush({ grantee: 'carol', level: 'write', grantedAt: '2025-01-01T00:00:00Z' });
    await expect(editor).resolves.toMatchObject({ level: 'write' });

    const revoke = firstValueFrom(api.revoke('files', 'f1', 'bob smith'), { defaultValue: undefined });
    backend
      .expectOne({ method: 'DELETE', url: '/api/files/f1/permissions/bob%20smith' })
      .flush(null, { status: 204, statusText: 'No Content' });
    await revoke;
  });

  it('searches with q', async () => {
    const search = firstValueFrom(api.search('budget 2025'));
    const req = backend.expectOne((r) => r.url === '/api/search');
    expect(req.request.params.get('q')).toBe('budget 2025');
    req.flush({ query: 'budget 2025', files: [] });
    await expect(search).resolves.toEqual({ query: 'budget 2025', files: [] });
  });
});
