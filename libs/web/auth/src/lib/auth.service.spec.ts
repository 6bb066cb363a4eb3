import { provideHttpClient, withInterceptors } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { TestBed } from '@angular/core/testing';
import { Router, provideRouter } from '@angular/router';
import { CSRF_HEADER } from '@forwardable/shared/contracts';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuthService } from './auth.service';
import { delegationLabel } from './delegation-label';
import { apiErrorInterceptor, csrfInterceptor } from './interceptors';
import { aUser } from '../testing/fixtures';

describe('AuthService', () => {
  let auth: AuthService;
  let backend: HttpTestingController;
  let router: Router;

  beforeEach(() => {
    TestBed.configureTestingModule({
      providers: [
        provideRouter([]),
        provideHttpClient(withInterceptors([csrfInterceptor, apiErrorInterceptor])),
        provideHttpClientTesting(),
      ],
    });
    auth = TestBed.inject(AuthService);
    backend = TestBed.inject(HttpTestingController);
    router = TestBed.inject(Router);
  });

  afterEach(() => backend.verify());

  it('starts loading, then is signed in with the user from /api/auth/me', async () => {
    expect(auth.status()).toBe('loading');
    const loaded = auth.ensureLoaded();
    backend.expectOne({ method: 'GET', url: '/api/auth/me' }).flush(aUser({ isAdmin: true }));
    await expect(loaded).resolves.toBe('signed-in');
    expect(auth.me()?.user).toBe('alice');
    expect(auth.isAdmin()).toBe(true);
  });

  it('asks the API only once for concurrent callers', async () => {
    const a = auth.ensureLoaded();
    const b = auth.ensureLoaded();
    backend.expectOne('/api/auth/me').flush(aUser());
    await expect(Promise.all([a, b])).resolves.toEqual(['signed-in', 'signed-in']);
    await expect(auth.ensureLoaded()).resolves.toBe('signed-in');
  });

  for (const code of ['NEGOTIATE_REQUIRED', 'NTLM_OFFERED', 'NO_DELEGATION', 'SESSION_EXPIRED'] as const) {
    it(`is no-ticket on 401 ${code}`, async () => {
      const loaded = auth.ensureLoaded();
      backend
        .expectOne('/api/auth/me')
        .flush(
          { statusCode: 401, code, message: 'No ticket', hint: 'Run kinit' },
          { status: 401, statusText: 'Unauthorized' },
        );
      await expect(loaded).resolves.toBe('no-ticket');
      expect(auth.me()).toBeNull();
      expect(auth.error()?.code).toBe(code);
    });
  }

  it('is in error (not no-ticket) when the API fails otherwise', async () => {
    const loaded = auth.ensureLoaded();
    backend
      .expectOne('/api/auth/me')
      .flush(
        { statusCode: 503, code: 'KDC_UNAVAILABLE', message: 'The KDC does not answer' },
        { status: 503, statusText: 'Unavailable' },
      );
    await expect(loaded).resolves.toBe('error');
    expect(auth.error()?.message).toBe('The KDC does not answer');
  });

  it('signs in with a password, then goes where the API says', async () => {
    const navigate = vi.spyOn(router, 'navigateByUrl').mockResolvedValue(true);
    const done = auth.login({ username: 'alice', password: 'secret' });
    const req = backend.expectOne({ method: 'POST', url: '/api/auth/login' });
    expect(req.request.body).toEqual({ username: 'alice', password: 'secret' });
    expect(req.request.headers.has(CSRF_HEADER)).toBe(true);
    req.flush({ ...aUser({ delegation: 'password' }), redirectTo: '/files/42' });
    await done;
    expect(auth.status()).toBe('signed-in');
    expect(auth.me()?.delegation).toBe('password');
    expect(auth.me()).not.toHaveProperty('redirectTo');
    expect(navigate).toHaveBeenCalledWith('/files/42');
  });

  it('sends the page to return to, and never navigates off the site whatever the API answers', async () => {
    const navigate = vi.spyOn(router, 'navigateByUrl').mockResolvedValue(true);
    const done = auth.login({ username: 'alice', password: 'secret', returnTo: '/files/7' });
    const req = backend.expectOne({ method: 'POST', url: '/api/auth/login' });
    expect(req.request.body).toEqual({ username: 'alice', password: 'secret', returnTo: '/files/7' });
    req.flush({ ...aUser({ delegation: 'password' }), redirectTo: '//evil.example/files/7' });
    await done;
    expect(navigate).toHaveBeenCalledWith('/');
  });

  it('drops an off-site returnTo instead of sending it', async () => {
    vi.spyOn(router, 'navigateByUrl').mockResolvedValue(true);
    const done = auth.login({ username: 'alice', password: 'secret', returnTo: 'https://evil.example/' });
    const req = backend.expectOne({ method: 'POST', url: '/api/auth/login' });
    expect(req.request.body).toEqual({ username: 'alice', password: 'secret' });
    req.flush({ ...aUser({ delegation: 'password' }), redirectTo: '/' });
    await done;
  });

  it('rejects a failed sign-in with the API error and stays signed out', async () => {
    const done = auth.login({ username: 'alice', password: 'wrong' });
    backend
      .expectOne('/api/auth/login')
      .flush(
        { statusCode: 401, code: 'LOGIN_FAILED', message: 'Wrong user name or password' },
        { status: 401, statusText: 'Unauthorized' },
      );
    await expect(done).rejects.toMatchObject({
      code: 'LOGIN_FAILED',
      message: 'Wrong user name or password',
    });
    expect(auth.status()).not.toBe('signed-in');
  });

  it('signs out: POST /api/auth/logout, then the sign-in page', async () => {
    const navigate = vi.spyOn(router, 'navigateByUrl').mockResolvedValue(true);
    const loaded = auth.ensureLoaded();
    backend.expectOne('/api/auth/me').flush(aUser());
    await loaded;
    const done = auth.logout();
    backend
      .expectOne({ method: 'POST', url: '/api/auth/logout' })
      .flush(null, { status: 204, statusText: 'No Content' });
    await done;
    expect(auth.me()).toBeNull();
    expect(auth.signedOut()).toBe(true);
    expect(navigate).toHaveBeenCalledWith('/sign-in');
  });
});

describe('delegationLabel', () => {
  it('words each delegation kind', () => {
    expect(delegationLabel('forwarded')).toBe('Kerberos, delegated');
    expect(delegationLabel('proxy')).toBe('Kerberos, constrained delegation');
    expect(delegationLabel('password')).toBe('password sign-in');
  });
});
