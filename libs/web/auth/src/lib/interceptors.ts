import { HttpInterceptorFn } from '@angular/common/http';
import { CSRF_HEADER, CSRF_VALUE } from '@forwardable/shared/contracts';
import { catchError, throwError } from 'rxjs';
import { toApiRequestError } from './api-error';

/** True for URLs of this origin (relative, or absolute on `location.origin`). */
function isSameOrigin(url: string): boolean {
  if (!/^[a-z][a-z\d+.-]*:/i.test(url) && !url.startsWith('//')) return true;
  try {
    return new URL(url).origin === globalThis.location?.origin;
  } catch {
    return false;
  }
}

/**
 * Adds the CSRF header (`x-requested-with: forwardable`) to every request to the API. The API
 * refuses state-changing requests without it; a cross-site form cannot set it. Requests to
 * other origins never get it (it would only leak that this is Forwardable, and force a preflight).
 */
export const csrfInterceptor: HttpInterceptorFn = (req, next) =>
  next(isSameOrigin(req.url) ? req.clone({ setHeaders: { [CSRF_HEADER]: CSRF_VALUE } }) : req);

/** Turns every HTTP failure into an {@link ApiRequestError} the UI can show (message + hint). */
export const apiErrorInterceptor: HttpInterceptorFn = (req, next) =>
  next(req).pipe(catchError((error: unknown) => throwError(() => toApiRequestError(error))));
