import { HttpErrorResponse } from '@angular/common/http';
import type { ApiError, ApiErrorCode } from '@forwardable/shared/contracts';

/** The API's codes, plus the two the SPA adds when no API answer exists. */
export type UiErrorCode = ApiErrorCode | 'NETWORK' | 'UNKNOWN';

/**
 * An HTTP failure in the shape the UI shows: the API's message and hint, untouched (a database
 * permission error reaches the user verbatim), its code for decisions, its status.
 */
export class ApiRequestError extends Error {
  override readonly name = 'ApiRequestError';

  constructor(
    readonly status: number,
    readonly code: UiErrorCode,
    message: string,
    readonly hint?: string,
    readonly details?: string[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function isApiError(body: unknown): body is ApiError {
  return (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as ApiError).code === 'string' &&
    typeof (body as ApiError).message === 'string'
  );
}

/** Maps any HTTP failure to an {@link ApiRequestError}, keeping the API's words when it sent some. */
export function toApiRequestError(error: unknown): ApiRequestError {
  if (error instanceof ApiRequestError) return error;
  if (!(error instanceof HttpErrorResponse)) {
    const message = error instanceof Error ? error.message : String(error);
    return new ApiRequestError(0, 'UNKNOWN', message, undefined, undefined, { cause: error });
  }
  let body: unknown = error.error;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      // not JSON: handled below
    }
  }
  if (isApiError(body)) {
    return new ApiRequestError(error.status, body.code, body.message, body.hint, body.details, {
      cause: error,
    });
  }
  if (error.status === 0) {
    return new ApiRequestError(
      0,
      'NETWORK',
      'The server could not be reached.',
      'Check your network connection and that the Forwardable API is running, then try again.',
      undefined,
      { cause: error },
    );
  }
  return new ApiRequestError(
    error.status,
    'UNKNOWN',
    `The server answered ${error.status} ${error.statusText}`.trim() + '.',
    undefined,
    undefined,
    { cause: error },
  );
}
