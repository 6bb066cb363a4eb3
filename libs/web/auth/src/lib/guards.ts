import { inject } from '@angular/core';
import { CanActivateFn, Router } from '@angular/router';
import { AuthService } from './auth.service';

/** Lets signed-in users through; everyone else goes to the sign-in page. */
export const signedInGuard: CanActivateFn = async () => {
  const auth = inject(AuthService);
  const router = inject(Router);
  const status = await auth.ensureLoaded();
  return status === 'signed-in' ? true : router.createUrlTree(['/sign-in']);
};

/** The setup wizard: signed-in admins only (others go to the files, or to sign in). */
export const adminGuard: CanActivateFn = async () => {
  const auth = inject(AuthService);
  const router = inject(Router);
  const status = await auth.ensureLoaded();
  if (status !== 'signed-in') return router.createUrlTree(['/sign-in']);
  return auth.isAdmin() ? true : router.createUrlTree(['/']);
};
