import { Route } from '@angular/router';
import { adminGuard, signedInGuard } from '@forwardable/web/auth';

/** The SPA's pages; the features are lazy-loaded libraries behind the sign-in guards. */
export const appRoutes: Route[] = [
  {
    path: 'sign-in',
    title: 'Sign in · Forwardable',
    loadComponent: () => import('./sign-in/sign-in-page').then((m) => m.SignInPage),
  },
  {
    path: 'admin/setup',
    canActivate: [adminGuard],
    loadChildren: () => import('@forwardable/web/rls-admin').then((m) => m.rlsAdminRoutes),
  },
  {
    path: '',
    canActivate: [signedInGuard],
    loadChildren: () => import('@forwardable/web/files').then((m) => m.filesRoutes),
  },
  { path: '**', redirectTo: '' },
];
