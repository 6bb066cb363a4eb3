import { HttpClient, provideHttpClient, withInterceptors } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { TestBed } from '@angular/core/testing';
import { CSRF_HEADER, CSRF_VALUE } from '@forwardable/shared/contracts';
import { firstValueFrom } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiRequestError } from './api-error';
import { apiErrorInterceptor, csrfInterceptor } from './interceptors';

describe('HTTP interceptors', () => {
  let http: HttpClient;
  let backend: HttpTestingController;

  beforeEach(() => {
    TestBed.configureTestingModule({
      providers: [
        provideHttpClient(withInterceptors([csrfInterceptor, apiErrorInterceptor])),
        provideHttpClientTesting(),
      ],
    });
    http = TestBed.inject(HttpClient);
    backend = TestBed.inject(HttpTestingController);
  });

  afterEach(() => backend.verify());

  it('adds the CSRF header to API requests (GET and POST)', async () => {
    const get = firstValueFrom(http.get('/api/files/tree'));
    const post = firstValueFrom(http.post('/api/directories', { name: 'x' }));
    const getReq = backend.expectOne('/api/files/tree');
    const postReq = backend.expectOne('/api/directories');
    expect(CSRF_HEADER).toBe('x-requested-with');
    expect(getReq.request.headers.get(CSRF_HEADER)).toBe(CSRF_VALUE);
    expect(postReq.request.headers.get(CSRF_HEADER)).toBe(CSRF_VALUE);
    getReq.flush({});
    postReq.flush({});
    await Promise.all([get, post]);
  });

  it('does not send the CSRF header to other origins', async () => {
    const done = firstValueFrom(http.get('https://elsewhere.example/data'));
    const req = backend.expectOne('https://elsewhere.example/data');
    expect(req.request.headers.has(CSRF_HEADER)).toBe(false);
    req.flush({});
    await done;
  });

  it('maps an ApiError body to a typed error with message and hint', async () => {
    const result = firstValueFrom(http.get('/api/files/x'));
    backend
      .expectOne('/api/files/x')
      .flush(
        {
          statusCode: 403,
          code: 'DATABASE_PERMISSION',
          message: 'permission denied for table files',
          hint: 'Ask the owner',
        },
        { status: 403, statusText: 'Forbidden' },
      );
    const error = await result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiRequestError);
    expect(error).toMatchObject({
      status: 403,
      code: 'DATABASE_PERMISSION',
      message: 'permission denied for table files',
      hint: 'Ask the owner',
    });
  });

  it('maps a network failure to a NETWORK error with a hint', async () => {
    const result = firstValueFrom(http.get('/api/files/tree'));
    backend.expectOne('/api/files/tree').error(new ProgressEvent('error'), { status: 0 });
    const error = (await result.catch((e: unknown) => e)) as ApiRequestError;
    expect(error.code).toBe('NETWORK');
    expect(error.hint).toMatch(/try again/);
  });

  it('maps a body that is not an ApiError to UNKNOWN with the status', async () => {
    const result = firstValueFrom(http.get('/api/files/tree'));
    backend
      .expectOne('/api/files/tree')
      .flush('<html>Bad gateway</html>', { status: 502, statusText: 'Bad Gateway' });
    const error = (await result.catch((e: unknown) => e)) as ApiRequestError;
    expect(error.code).toBe('UNKNOWN');
    expect(error.message).toBe('The server answered 502 Bad Gateway.');
  });
});
