import { provideHttpClient, withInterceptors } from '@angular/common/http';
import { ApplicationConfig, provideBrowserGlobalErrorListeners } from '@angular/core';
import { provideRouter, withComponentInputBinding } from '@angular/router';
import { apiErrorInterceptor, csrfInterceptor } from '@forwardable/web/auth';
import { appRoutes } from './app.routes';

export const appConfig: ApplicationConfig = {
  providers: [
    provideBrowserGlobalErrorListeners(),
    // Route and query parameters arrive as component inputs (`files/:id` → `id`, `?dir=` → `dir`).
    provideRouter(appRoutes, withComponentInputBinding()),
    provideHttpClient(withInterceptors([csrfInterceptor, apiErrorInterceptor])),
  ],
};
