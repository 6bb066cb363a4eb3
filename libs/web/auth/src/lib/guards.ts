import { inject } from '@angular/core';
import { CanActivateFn, Router, UrlTree } from '@angular/router';
import { isSameOriginPath } from '@forwardable/shared/contracts';
import { AuthService } from './auth.service';

/**
 * The sign-in page, remembering the page first asked for (`?returnTo=`) so a password sign-in
 * can come back to it. Only same-origin paths are carried; the API checks them again.
 */
function signIn(router: Router, url: string): UrlTree {
  const returnTo = url !== '/' && isSameOriginPath(url) && !url.startsWith('/sign-in') ? url : undefined;
  return router.createUrlTree(['/sign-in'], returnTo ? { queryParams: { returnTo } } : {});
}

/** Lets signed-in users through; everyone else goes to the sign-in page. */
export const signedInGuard: CanActivateFn = async (_route, state) => {
  const auth = inject(AuthService);
  const router = inject(Router);
  const status = await auth.ensureLoaded();
  return status === 'signed-in' ? true : signIn(router, state.url);
};

/** The setup wizard: signed-in admins only (others go to the files, or to sign in). */
export const adminGuard: CanActivateFn = async (_route, state) => {
  const auth = inject(AuthService);
  const router = inject(Router);
  const status = await auth.ensureLoaded();
  if (status !== 'signed-in') return signIn(router, state.url);
  return auth.isAdmin() ? true : router.createUrlTree(['/']);
};
