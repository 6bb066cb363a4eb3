import { provideHttpClient, withInterceptors } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { ComponentFixture, TestBed } from '@angular/core/testing';
import { Router, provideRouter } from '@angular/router';
import { apiErrorInterceptor, csrfInterceptor } from '@forwardable/web/auth';
import type { MeResponse } from '@forwardable/shared/contracts';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { App } from './app';

function me(overrides: Partial<MeResponse> = {}): MeResponse {
  return {
    principal: 'alice@FORWARDABLE.TEST',
    user: 'alice',
    delegation: 'forwarded',
    mode: 'unconstrained',
    expiresAt: '2030-01-01T00:00:00Z',
    groups: [],
    isAdmin: false,
    ...overrides,
  };
}

describe('App shell', () => {
  let backend: HttpTestingController;
  let fixture: ComponentFixture<App>;
  let el: HTMLElement;

  beforeEach(() => {
    TestBed.configureTestingModule({
      providers: [
        provideRouter([{ path: 'sign-in', children: [] }]),
        provideHttpClient(withInterceptors([csrfInterceptor, apiErrorInterceptor])),
        provideHttpClientTesting(),
      ],
    });
    backend = TestBed.inject(HttpTestingController);
  });

  afterEach(() => backend.verify());

  async function start(user: MeResponse | null): Promise<void> {
    fixture = TestBed.createComponent(App);
    el = fixture.nativeElement;
    const req = backend.expectOne('/api/auth/me');
    if (user) req.flush(user);
    else
      req.flush(
        { statusCode: 401, code: 'NEGOTIATE_REQUIRED', message: 'No ticket' },
        { status: 401, statusText: 'Unauthorized' },
      );
    await fixture.whenStable();
  }
  const banner = () => el.querySelector('[data-testid="banner"]')?.textContent?.replace(/\s+/g, ' ').trim();

  it('says who is signed in and that Kerberos delegated the credential', async () => {
    await start(me());
    expect(banner()).toBe('You are signed in as alice — Kerberos, delegated');
    expect(el.querySelector('[data-testid="sign-out"]')).not.toBeNull();
  });

  it('words constrained delegation', async () => {
    await start(me({ user: 'bob', delegation: 'proxy', mode: 'constrained' }));
    expect(banner()).toBe('You are signed in as bob — Kerberos, constrained delegation');
  });

  it('words a password sign-in', async () => {
    await start(me({ delegation: 'password' }));
    expect(banner()).toBe('You are signed in as alice — password sign-in');
  });

  it('shows the setup link to admins only', async () => {
    await start(me({ isAdmin: false }));
    expect(el.querySelector('[data-testid="admin-setup"]')).toBeNull();
  });

  it('shows the setup link to an admin', async () => {
    await start(me({ isAdmin: true }));
    expect(el.querySelector('[data-testid="admin-setup"]')?.textContent).toBe('Admin: setup');
  });

  it('shows no banner when nobody is signed in', async () => {
    await start(null);
    expect(el.querySelector('[data-testid="banner"]')).toBeNull();
    expect(el.querySelector('[data-testid="sign-out"]')).toBeNull();
  });

  it('signs out and goes to the sign-in page', async () => {
    await start(me());
    el.querySelector<HTMLButtonElement>('[data-testid="sign-out"]')?.click();
    backend
      .expectOne({ method: 'POST', url: '/api/auth/logout' })
      .flush(null, { status: 204, statusText: 'No Content' });
    await fixture.whenStable();
    expect(TestBed.inject(Router).url).toBe('/sign-in');
    expect(el.querySelector('[data-testid="banner"]')).toBeNull();
  });
});
