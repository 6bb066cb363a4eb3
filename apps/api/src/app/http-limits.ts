import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { NextFunction, Request, Response } from 'express';
import type { ApiError } from '@forwardable/shared/contracts';

/** Deepest JSON body accepted: the setup wizard's mapping needs 4 levels; 32 leaves room. */
export const MAX_JSON_DEPTH = 32;

/**
 * Refuse JSON bodies nested deeper than {@link MAX_JSON_DEPTH} with a 400 before anything walks
 * them: class-transformer and class-validator recurse, and a few thousand levels (a few KB of
 * `[[[[…`) overflow the stack, which surfaced as a 500. Iterative, so the check itself cannot.
 */
export function rejectDeepJson(req: Request, _res: Response, next: NextFunction): void {
  const stack: [unknown, number][] = [[req.body, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) {
      return next(Object.assign(new Error(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`), { status: 400, type: 'entity.too.deep' }));
    }
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  next();
}

/**
 * Set the request header limit, and answer requests Node's HTTP parser refuses (headers over that
 * limit, a NUL or a bare LF in a header, a malformed request line) with the same JSON error body
 * as every other 4xx, instead of Node's empty `400 Bad Request`. The connection is closed
 * afterwards: after a parse error the rest of the stream cannot be trusted.
 */
export function answerClientErrorsWithJson(server: Server, maxHeaderBytes: number): void {
  // Nest creates the server without options; createServer's `maxHeaderSize` option is stored on
  // the server and read by Node's HTTP parser for each new connection, so setting it here is the
  // same (untyped in @types/node; proven by the 64 KB header test).
  (server as Server & { maxHeaderSize: number }).maxHeaderSize = maxHeaderBytes;
  // Node answers an HTTP/1.1 request without Host itself, with an empty 400: let it through to
  // requireHost below, which refuses it the same way in JSON.
  (server as Server & { requireHostHeader: boolean }).requireHostHeader = false;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, reason, message, hint] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [
            431,
            'Request Header Fields Too Large',
            `the request headers are larger than ${maxHeaderBytes} bytes`,
            // Negotiate tokens carry the AD PAC, which grows with the user's groups.
            'A Kerberos token this large means a user in very many groups: reduce group nesting, or raise MAX_HEADER_BYTES (apps/api bootstrap) and every proxy in front.',
          ]
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout', 'the request took too long to arrive', undefined]
          : [400, 'Bad Request', 'the request is not valid HTTP', undefined];
    const body: ApiError = { statusCode: status, code: 'INVALID_INPUT', message, ...(hint ? { hint } : {}) };
    const json = JSON.stringify(body);
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
    );
  });
}

/** HTTP/1.1 requires a Host header (RFC 9112 section 3.2): refuse a request without one, in JSON. */
export function requireHost(req: Request, _res: Response, next: NextFunction): void {
  if (req.httpVersion === '1.1' && !req.headers.host) {
    return next(Object.assign(new Error('an HTTP/1.1 request needs a Host header'), { status: 400, type: 'request.no.host' }));
  }
  next();
}

/** How long an idle keep-alive connection stays open (Node's default is 5 s). */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/**
 * Keep idle keep-alive connections longer than the peer does. Whichever side closes an idle
 * connection first races the other side's next request on it: a request that arrives as the
 * server closes is answered with a TCP reset (ECONNRESET in the client), a failed request the
 * user sees. Clients and proxies close idle connections sooner (undici 4 s, browsers and nginx
 * 60 s or less), so with 65 s they close first and nothing is lost; the headers timeout must stay
 * above it or Node cuts a connection that is idle between requests. Graceful shutdown still
 * closes idle connections at once.
 */
export function outliveClientKeepAlive(server: Server): void {
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;
}
