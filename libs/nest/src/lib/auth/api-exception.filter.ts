import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { ThrottlerException } from '@nestjs/throttler';
import type { Response } from 'express';
import { QueryFailedError } from 'typeorm';
import type { ApiError, ApiErrorCode } from '../contract';
import { PgAuthError } from '@forwardable/pg-gssapi';
import { CredentialExpiredError, PoolCapacityError } from '../db/user-data-sources';
import { ApiException, NegotiateChallenge } from './errors';

const STATUS_CODES: Record<number, ApiErrorCode> = {
  400: 'INVALID_INPUT',
  401: 'NEGOTIATE_REQUIRED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  413: 'INVALID_INPUT',
  429: 'RATE_LIMITED',
};

/**
 * Every error becomes a JSON {@link ApiError}. Auth failures are 401 with
 * `WWW-Authenticate: Negotiate` so the browser can sign in again; the database's own permission errors are 403 with
 * its message; unknown errors are a 500 whose details stay in the log (never tokens or keys).
 */
@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  private readonly log = new Logger('ApiError');

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const body = this.toBody(exception);
    if (body.statusCode === 401) {
      const reply = exception instanceof NegotiateChallenge ? (exception.cause as { replyToken?: Buffer } | undefined)?.replyToken : undefined;
      res.setHeader('WWW-Authenticate', reply?.length ? `Negotiate ${reply.toString('base64')}` : 'Negotiate');
    }
    // The scheduler's 503: the request can simply be sent again a little later.
    if (exception instanceof PoolCapacityError) res.setHeader('Retry-After', String(exception.retryAfterSeconds));
    if (body.statusCode >= 500 && !(exception instanceof PoolCapacityError)) this.log.error(`${body.code}: ${describe(exception)}`);
    if (res.headersSent) return;
    res.status(body.statusCode).json(body);
  }

  private toBody(e: unknown): ApiError {
    if (e instanceof ApiException) return { statusCode: e.status, code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) };
    if (e instanceof ThrottlerException) {
      return { statusCode: 429, code: 'RATE_LIMITED', message: 'too many attempts', hint: 'Wait a minute and try again.' };
    }
    if (e instanceof HttpException) {
      const status = e.getStatus();
      const r = e.getResponse() as string | { message?: string | string[] };
      const msg = typeof r === 'string' ? r : r.message;
      const details = Array.isArray(msg) ? msg : undefined;
      return {
        statusCode: status,
        code: STATUS_CODES[status] ?? (status >= 500 ? 'INTERNAL' : 'INVALID_INPUT'),
        message: details ? 'invalid input' : String(msg ?? e.message),
        ...(details ? { details } : {}),
      };
    }
    // Opening a connection as the user needs a ticket for PostgreSQL from the KDC: when the KDC
    // is down, say that (the database itself may be fine).
    if (causedBy(e, 'ERR_GSS_KDC_UNREACHABLE')) {
      return { statusCode: 503, code: 'KDC_UNAVAILABLE', message: 'the Kerberos server (KDC) does not answer', hint: 'Try again shortly; if it persists, tell your administrator.' };
    }
    if (e instanceof CredentialExpiredError) return { statusCode: 401, code: 'SESSION_EXPIRED', message: e.message };
    if (e instanceof PoolCapacityError) {
      return { statusCode: 503, code: 'DATABASE_UNAVAILABLE', message: e.message, hint: `Try again in ${e.retryAfterSeconds} s.` };
    }
    if (e instanceof PgAuthError) {
      if (e.code === 'PG_ROLE_MISSING') {
        return { statusCode: 403, code: 'NO_DATABASE_ROLE', message: 'you have no account in the database', hint: e.message };
      }
      if (e.code === 'PG_GSSAPI_HANDSHAKE' || e.code === 'PG_GSSAPI_REJECTED') {
        return { statusCode: 503, code: 'DATABASE_UNAVAILABLE', message: 'the database did not accept your credential', hint: e.message };
      }
      return { statusCode: 503, code: 'DATABASE_UNAVAILABLE', message: 'the database is not available', hint: e.message };
    }
    const pgError = e instanceof QueryFailedError ? (e.driverError as { code?: string }) : isPgError(e) ? e : null;
    if (pgError && e instanceof Error) {
      const code = String(pgError.code ?? '');
      if (code === '42501') return { statusCode: 403, code: 'DATABASE_PERMISSION', message: e.message };
      if (code === '23505') return { statusCode: 409, code: 'CONFLICT', message: 'that name is already taken here' };
      if (code === '23503') return { statusCode: 404, code: 'NOT_FOUND', message: 'the folder or file does not exist' };
      // Class 22 (data exception): a value PostgreSQL cannot take, such as NUL in text (22021).
      if (code.startsWith('22') || code === '23514') return { statusCode: 400, code: 'INVALID_INPUT', message: e.message };
      // Class 08 (connection exception), 57P01-57P03 (server shut down or starting: a restart),
      // 53 (out of connections or memory): the database, not the request, is the problem.
      if (code.startsWith('08') || /^57P0[1-3]$/.test(code) || code.startsWith('53')) {
        return { statusCode: 503, code: 'DATABASE_UNAVAILABLE', message: 'the database is not available', hint: 'Try again shortly.' };
      }
    }
    const sys = (e as { code?: string; status?: number; type?: string }) ?? {};
    // The socket to PostgreSQL failed (refused, reset while the server shuts down, timed out).
    if (NETWORK_ERRORS.some((c) => causedBy(e, c)) || /Connection terminated|timeout exceeded when trying to connect/.test(String((e as Error)?.message))) {
      return { statusCode: 503, code: 'DATABASE_UNAVAILABLE', message: 'the database is not available', hint: 'Try again shortly.' };
    }
    // body-parser and similar middleware errors carry their own 4xx status.
    if (typeof sys.status === 'number' && sys.status >= 400 && sys.status < 500) {
      return { statusCode: sys.status, code: STATUS_CODES[sys.status] ?? 'INVALID_INPUT', message: sys.type === 'entity.too.large' ? 'the request is too large' : 'the request body is not valid' };
    }
    return { statusCode: 500, code: 'INTERNAL', message: 'something went wrong on the server' };
  }
}

const NETWORK_ERRORS = ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH'];

/** Whether `e` or an error in its `cause` chain has the given `code`. */
function causedBy(e: unknown, code: string): boolean {
  for (let x = e, depth = 0; x && depth < 8; x = (x as { cause?: unknown }).cause, depth++) {
    if ((x as { code?: unknown }).code === code) return true;
  }
  return false;
}

/** A raw node-postgres DatabaseError (SQLSTATE code and severity). */
function isPgError(e: unknown): e is Error & { code: string } {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'string' && /^[0-9A-Z]{5}$/.test((e as unknown as { code: string }).code) && 'severity' in e;
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}
