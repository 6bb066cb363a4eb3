/**
 * Where a password sign-in sends the browser: the page it first asked for (`returnTo`), else
 * FORWARDABLE_LOGIN_REDIRECT, and never another site. The real API against the real KDC.
 */
import { isSameOriginPath as nestCheck } from '@forwardable/nest';
import { CSRF_HEADER, CSRF_VALUE, isSameOriginPath } from '@forwardable/shared/contracts';
import { ensureRealm, RealmEnv } from '@forwardable/testing/realm';
import { Api, configFor, fetchJson, startApi } from '../testing/api-harness';
import { ConfigError } from './config';

/** Targets a browser would take to another origin (or that a URL parser rewrites into one). */
const OFF_SITE = [
  'https://evil.example/',
  'http:evil.example',
  '//evil.example/files',
  '/\\evil.example',
  '\\\\evil.example',
  '/\t/evil.example',
  '/\n/evil.example',
  ' /files',
  'javascript:alert(1)',
  'files',
  '',
];

describe('the same-origin check of the sign-on contract', () => {
  it('accepts paths on this site and refuses every off-site form, identically in the SPA and the API packages', () => {
    for (const ok of ['/', '/files', '/files/7?tab=shared#top', '/admin/setup', '/a%2F%2Fb']) {
      expect({ ok, shared: isSameOriginPath(ok), nest: nestCheck(ok) }).toEqual({ ok, shared: true, nest: true });
    }
    for (const bad of [...OFF_SITE, '/files\u0000', '/\u00a0x', `/${'a'.repeat(2048)}`, 42, null]) {
      expect({ bad, shared: isSameOriginPath(bad), nest: nestCheck(bad) }).toEqual({ bad, shared: false, nest: false });
    }
  });
});

describe('FORWARDABLE_LOGIN_REDIRECT and returnTo after a password sign-in (db2 realm)', () => {
  let realm: RealmEnv;
  let api: Api;

  beforeAll(async () => {
    realm = ensureRealm('db2');
    api = await startApi(configFor(realm, { FORWARDABLE_LOGIN_REDIRECT: '/files' }));
  });
  afterAll(async () => api?.close());

  const login = (body: Record<string, unknown>) =>
    fetchJson(`${api.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [CSRF_HEADER]: CSRF_VALUE },
      body: JSON.stringify(body),
    });

  it('sends the user to the configured page, or to the page first asked for', async () => {
    const plain = await login({ username: 'alice', password: realm.passwords.alice });
    expect(plain.status).toBe(200);
    expect(plain.body).toMatchObject({ user: 'alice', redirectTo: '/files' });
    const back = await login({ username: 'bob', password: realm.passwords.bob, returnTo: '/files/7?tab=shared' });
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ user: 'bob', redirectTo: '/files/7?tab=shared' });
  });

  it('refuses an off-site returnTo with 400 and sets no session, even with a correct password', async () => {
    // Another user name per case: the per-user login throttle must not be what answers.
    for (const [i, returnTo] of OFF_SITE.entries()) {
      const r = await login({ username: `nobody${i}`, password: 'irrelevant', returnTo });
      expect({ returnTo, status: r.status, code: r.body.code }).toEqual({ returnTo, status: 400, code: 'INVALID_INPUT' });
      expect(r.headers.get('set-cookie')).toBeNull();
    }
    // A correct password does not make an off-site target acceptable.
    const real = await login({ username: 'carol', password: realm.passwords.carol, returnTo: '//evil.example/' });
    expect(real.status).toBe(400);
    expect(real.body.message).toContain('returnTo must be a path on this site');
    expect(real.headers.get('set-cookie')).toBeNull();
  });

  it('refuses an off-site FORWARDABLE_LOGIN_REDIRECT at start-up, naming the variable', () => {
    for (const target of ['https://evil.example/', '//evil.example', 'files']) {
      let err: unknown;
      try {
        configFor(realm, { FORWARDABLE_LOGIN_REDIRECT: target });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toEqual([expect.stringContaining(`FORWARDABLE_LOGIN_REDIRECT=${target} must be a path on this site`)]);
    }
  });
});
