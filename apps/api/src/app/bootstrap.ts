import { INestApplication, ValidationPipe } from '@nestjs/common';
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import cookieParser from 'cookie-parser';
import { configureKerberos } from '@forwardable/gssapi';
import { AppModule } from './app.module';
import type { ApiConfig } from './config';

/**
 * Largest request header section accepted, in bytes. Active Directory tickets carry a PAC (the
 * user's groups), so Negotiate tokens of users in many groups reach tens of kilobytes: Windows
 * allows 64 KB (MaxTokenSize) and IIS/http.sys accept Authorization headers that large. Node's
 * default (16 KB) would cut such users off with a bare 431; this leaves 64 KB for the token plus
 * room for the other headers. Proxies in front need the same (nginx `large_client_header_buffers`).
 */
export const MAX_HEADER_BYTES = 96 * 1024;

/**
 * Build the Nest application for a configuration: Kerberos profile, cookies, validation, the
 * `/api` prefix. Used by main.ts and by the tests, so both run the same wiring.
 */
export async function createApp(config: ApiConfig, opts: { logger?: false | import('@nestjs/common').LoggerService } = {}): Promise<INestApplication> {
  if (config.krb5Config || config.replayCacheDir) {
    configureKerberos({ krb5Config: config.krb5Config, replayCacheDir: config.replayCacheDir });
  }
  const app = await NestFactory.create<NestExpressApplication>(AppModule.register(config), {
    logger: opts.logger,
    bodyParser: false,
  });
  // Nest creates the server without options; createServer's `maxHeaderSize` option is stored on
  // the server and read by Node's HTTP parser for each new connection, so setting it here is the
  // same (untyped in @types/node; proven by the 64 KB header test).
  const server = app.getHttpServer() as Server & { maxHeaderSize?: number };
  server.maxHeaderSize = MAX_HEADER_BYTES;
  // Beyond it Node answers before Express sees the request: make that answer JSON too.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable) return socket.destroy();
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const body = JSON.stringify(
      tooLarge
        ? { statusCode: 431, code: 'INVALID_INPUT', message: `request headers larger than ${MAX_HEADER_BYTES} bytes`, hint: 'A Kerberos token this large means a user in very many groups: reduce group nesting, or raise MAX_HEADER_BYTES and every proxy in front.' }
        : { statusCode: 400, code: 'INVALID_INPUT', message: 'malformed HTTP request' },
    );
    socket.end(`HTTP/1.1 ${tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  // Small JSON bodies only: files are text, and nothing else needs more.
  app.useBodyParser('json', { limit: '2mb' });
  app.use(cookieParser());
  app.set('trust proxy', 'loopback');
  app.setGlobalPrefix('api');
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
  app.enableShutdownHooks();
  return app;
}
