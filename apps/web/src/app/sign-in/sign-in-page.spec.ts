import { provideHttpClient, withInterceptors } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { ComponentFixture, TestBed } from '@angular/core/testing';
import { Router, provideRouter } from '@angular/router';
import { AuthService, apiErrorInterceptor, csrfInterceptor } from '@forwardable/web/auth';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SignInPage } from './sign-in-page';

describe('SignInPage (no ticket)', () => {
  let backend: HttpTestingController;
  let fixture: ComponentFixture<SignInPage>;
  let el: HTMLElement;

  const byId = <T extends HTMLElement = HTMLElement>(id: string) =>
    el.querySelector<T>(`[data-testid="${id}"]`) as T;
  const type = (id: string, value: string) => {
    const input = byId<HTMLInputElement>(id);
    input.value = value;
    input.dispatchEvent(new Event('input'));
  };

  async function setUp(): Promise<void> {
    TestBed.configureTestingModule({
      providers: [
        provideRouter([{ path: 'files/:id', children: [] }, { path: 'sign-in', children: [] }]),
        provideHttpClient(withInterceptors([csrfInterceptor, apiErrorInterceptor])),
        provideHttpClientTesting(),
      ],
    });
    backend = TestBed.inject(HttpTestingController);
    const loaded = TestBed.inject(AuthService).ensureLoaded();
    backend
      .expectOne('/api/auth/me')
      .flush(
        {
          statusCode: 401,
          code: 'NEGOTIATE_REQUIRED',
          message: 'The browser sent no Negotiate token',
          hint: 'Enable Kerberos for this site',
        },
        { status: 401, statusText: 'Unauthorized' },
      );
    await loaded;
    fixture = TestBed.createComponent(SignInPage);
    el = fixture.nativeElement;
    await fixture.whenStable();
  }

  beforeEach(() => setUp());

  afterEach(() => backend.verify());

  it('explains that the browser offered no ticket, with the API hint', () => {
    expect(byId('no-ticket')).not.toBeNull();
    const reason = byId('no-ticket-reason').textContent ?? '';
    expect(reason).toContain('Your browser did not offer a Kerberos ticket.');
    expect(reason).toContain('Enable Kerberos for this site');
  });

  it('tells how to enable Kerberos in Chrome, Edge and Firefox, with kinit and delegation', () => {
    const help = byId('kerberos-help').textContent ?? '';
    for (const words of [
      'AuthServerAllowlist',
      'network.negotiate-auth.trusted-uris',
      'kinit',
      'AuthNegotiateDelegateAllowlist',
      'network.negotiate-auth.delegation-uris',
    ]) {
      expect(help).toContain(words);
    }
  });

  it('signs in with a password and goes where the API says', async () => {
    type('login-username', 'alice');
    type('login-password', 'secret');
    byId<HTMLButtonElement>('login-submit').click();
    const req = backend.expectOne({ method: 'POST', url: '/api/auth/login' });
    expect(req.request.body).toEqual({ username: 'alice', password: 'secret' });
    req.flush({
      principal: 'alice@FORWARDABLE.TEST',
      user: 'alice',
      delegation: 'password',
      mode: 'unconstrained',
      expiresAt: '2030-01-01T00:00:00Z',
      groups: [],
      isAdmin: false,
      redirectTo: '/files/7',
    });
    await fixture.whenStable();
    expect(TestBed.inject(Router).url).toBe('/files/7');
    expect(TestBed.inject(AuthService).status()).toBe('signed-in');
  });

  it('shows why the password sign-in failed and clears the password', async () => {
    type('login-username', 'alice');
    type('login-password', 'wrong');
    byId<HTMLButtonElement>('login-submit').click();
    backend
      .expectOne('/api/auth/login')
      .flush(
        {
          statusCode: 401,
          code: 'LOGIN_FAILED',
          message: 'Wrong user name or password',
          hint: 'Check Caps Lock',
        },
        { status: 401, statusText: 'Unauthorized' },
      );
    await fixture.whenStable();
    const error = byId('login-error');
    expect(error.textContent).toContain('Wrong user name or password');
    expect(error.textContent).toContain('Check Caps Lock');
    expect(error.querySelector('[role="alert"]')).not.toBeNull();
    expect(byId<HTMLInputElement>('login-password').value).toBe('');
  });

  /** The page as the route guards open it: /sign-in?returnTo=<the page first asked for>. */
  async function reopenAt(url: string): Promise<void> {
    await TestBed.inject(Router).navigateByUrl(url);
    fixture = TestBed.createComponent(SignInPage);
    el = fixture.nativeElement;
    await fixture.whenStable();
  }

  const signedIn = (redirectTo: string) => ({
    principal: 'alice@FORWARDABLE.TEST',
    user: 'alice',
    delegation: 'password',
    mode: 'unconstrained',
    expiresAt: '2030-01-01T00:00:00Z',
    groups: [],
    isAdmin: false,
    redirectTo,
  });

  it('returns to the page first asked for after a password sign-in', async () => {
    await reopenAt('/sign-in?returnTo=%2Ffiles%2F7');
    type('login-username', 'alice');
    type('login-password', 'secret');
    byId<HTMLButtonElement>('login-submit').click();
    const req = backend.expectOne({ method: 'POST', url: '/api/auth/login' });
    expect(req.request.body).toEqual({ username: 'alice', password: 'secret', returnTo: '/files/7' });
    req.flush(signedIn('/files/7'));
    await fixture.whenStable();
    expect(TestBed.inject(Router).url).toBe('/files/7');
  });

  it('does not carry an off-site returnTo from the address bar', async () => {
    await reopenAt('/sign-in?returnTo=%2F%2Fevil.example%2Ffiles');
    type('login-username', 'alice');
    type('login-password', 'secret');
    byId<HTMLButtonElement>('login-submit').click();
    const req = backend.expectOne({ method: 'POST', url: '/api/auth/login' });
    expect(req.request.body).toEqual({ username: 'alice', password: 'secret' });
    req.flush(signedIn('/'));
    await fixture.whenStable();
    expect(TestBed.inject(Router).url).toBe('/');
  });

  it('does not send an empty form', async () => {
    byId<HTMLButtonElement>('login-submit').click();
    await fixture.whenStable();
    backend.expectNone('/api/auth/login');
    expect(byId('login-error')).toBeNull();
  });
});
