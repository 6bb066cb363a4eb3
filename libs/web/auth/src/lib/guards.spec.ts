import { provideHttpClient, withInterceptors } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { Component } from '@angular/core';
import { TestBed } from '@angular/core/testing';
import { Router, provideRouter } from '@angular/router';
import type { MeResponse } from '@forwardable/shared/contracts';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { adminGuard, signedInGuard } from './guards';
import { apiErrorInterceptor } from './interceptors';
import { aUser } from '../testing/fixtures';

@Component({ template: 'page' })
class Page {}

describe('route guards', () => {
  let router: Router;
  let backend: HttpTestingController;

  beforeEach(() => {
    TestBed.configureTestingModule({
      providers: [
        provideRouter([
          { path: '', component: Page, canActivate: [signedInGuard] },
          { path: 'admin/setup', component: Page, canActivate: [adminGuard] },
          { path: 'files/:id', component: Page, canActivate: [signedInGuard] },
          { path: 'sign-in', component: Page },
        ]),
        provideHttpClient(withInterceptors([apiErrorInterceptor])),
        provideHttpClientTesting(),
      ],
    });
    router = TestBed.inject(Router);
    backend = TestBed.inject(HttpTestingController);
  });

  afterEach(() => backend.verify());

  async function navigate(url: string, me: MeResponse | 'no-ticket'): Promise<string> {
    const done = router.navigateByUrl(url);
    // The guard asks once the router has started the navigation.
    const req = await vi.waitFor(() => backend.expectOne('/api/auth/me'));
    if (me === 'no-ticket') {
      req.flush(
        { statusCode: 401, code: 'NEGOTIATE_REQUIRED', message: 'Your browser offered no Kerberos ticket' },
        { status: 401, statusText: 'Unauthorized' },
      );
    } else {
      req.flush(me);
    }
    await done;
    return router.url;
  }

  it('lets a signed-in user see the files', async () => {
    expect(await navigate('/', aUser())).toBe('/');
  });

  it('sends a browser without a ticket to the sign-in page', async () => {
    expect(await navigate('/', 'no-ticket')).toBe('/sign-in');
  });

  it('lets an admin open the setup wizard', async () => {
    expect(await navigate('/admin/setup', aUser({ isAdmin: true }))).toBe('/admin/setup');
  });

  it('sends a non-admin from the wizard back to the files', async () => {
    expect(await navigate('/admin/setup', aUser({ isAdmin: false }))).toBe('/');
  });

  it('sends a signed-out visitor of the wizard to the sign-in page, remembering the wizard', async () => {
    expect(await navigate('/admin/setup', 'no-ticket')).toBe('/sign-in?returnTo=%2Fadmin%2Fsetup');
  });

  it('remembers the page first asked for, with its query', async () => {
    expect(await navigate('/files/7?tab=shared', 'no-ticket')).toBe('/sign-in?returnTo=%2Ffiles%2F7%3Ftab%3Dshared');
  });
});
