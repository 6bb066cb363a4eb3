import { BeforeApplicationShutdown, Injectable } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Server } from 'node:http';
import type { NextFunction, Request, Response } from 'express';

/** Longest a shutdown waits for requests still running before it closes their connections. */
export const SHUTDOWN_GRACE_MS = 10_000;

/**
 * Lets a SIGTERM finish while clients keep their keep-alive connections busy (a browser, a load
 * balancer). Nest closes the HTTP server and only then destroys sessions, credentials and pools;
 * `server.close()` waits for every open connection, and a connection that keeps carrying
 * requests never ends, so shutdown never reached the credential caches (FILE caches stayed on
 * disk when the process manager gave up and killed it). From the shutdown signal on, every answer
 * says `Connection: close` (the client reconnects, to another replica), idle connections are
 * closed at once, and whatever still runs after {@link SHUTDOWN_GRACE_MS} is cut.
 */
@Injectable()
export class GracefulShutdown implements BeforeApplicationShutdown {
  private draining = false;

  constructor(private readonly host: HttpAdapterHost) {}

  /** Express middleware (installed by createApp): while draining, each answer ends its connection. */
  readonly middleware = (_req: Request, res: Response, next: NextFunction): void => {
    if (this.draining) res.setHeader('Connection', 'close');
    next();
  };

  beforeApplicationShutdown(): void {
    this.draining = true;
    const server = this.host.httpAdapter?.getHttpServer() as Server | undefined;
    if (!server) return;
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref();
  }
}
