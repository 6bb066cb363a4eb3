import { INestApplication, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import cookieParser from 'cookie-parser';
import helmet from 'helmet';
import type { NextFunction, Request, Response } from 'express';
import { configureKerberos } from '@forwardable/gssapi';
import { AppModule } from './app.module';
import { GracefulShutdown } from './graceful-shutdown';
import { answerClientErrorsWithJson, outliveClientKeepAlive, rejectDeepJson, requireHost } from './http-limits';
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
  app.use(app.get(GracefulShutdown).middleware);
  app.use(securityHeaders());
  app.use(noStoreForApi);
  app.use(requireHost);
  // Small JSON bodies only: files are text, and nothing else needs more.
  app.useBodyParser('json', { limit: '2mb' });
  app.use(rejectDeepJson);
  app.use(cookieParser());
  answerClientErrorsWithJson(app.getHttpServer(), MAX_HEADER_BYTES);
  outliveClientKeepAlive(app.getHttpServer());
  // X-Forwarded-For only from the configured proxies (FORWARDABLE_TRUSTED_PROXIES); none by default.
  app.set('trust proxy', config.trustedProxies.length ? config.trustedProxies : false);
  // No ETag on API answers: they are per user and `no-store` (noStoreForApi), so no cache ever
  // revalidates them, and Express would hash every JSON body (SHA-1) for nothing. The SPA's static
  // files are served by serve-static, which keeps its own ETags.
  app.set('etag', false);
  app.setGlobalPrefix('api');
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
  app.enableShutdownHooks();
  return app;
}

/**
 * Response headers for every answer, API and SPA alike (helmet): no framing by other sites
 * (`frame-ancestors 'none'` and `X-Frame-Options: DENY`, against clickjacking of an app that signs
 * users in silently), `X-Content-Type-Options: nosniff` (user files are served as text, never
 * sniffed into HTML), and a Content-Security-Policy that allows only our own scripts, styles and
 * API. Angular injects component styles at run time, hence `style-src 'unsafe-inline'`; scripts
 * have no such exception. `upgrade-insecure-requests` is left out: the demo runs on plain HTTP on
 * localhost, and a TLS deployment redirects at its proxy.
 */
export function securityHeaders() {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        'default-src': ["'self'"],
        'base-uri': ["'self'"],
        'connect-src': ["'self'"],
        'font-src': ["'self'", 'data:'],
        'form-action': ["'self'"],
        'frame-ancestors': ["'none'"],
        'img-src': ["'self'", 'data:'],
        'object-src': ["'none'"],
        'script-src': ["'self'"],
        'script-src-attr': ["'none'"],
        'style-src': ["'self'", "'unsafe-inline'"],
      },
    },
    frameguard: { action: 'deny' },
    // Same-origin SPA: nothing here is meant to be embedded or read by other origins.
    crossOriginResourcePolicy: { policy: 'same-origin' },
    referrerPolicy: { policy: 'no-referrer' },
  });
}

/**
 * Every API answer is per user (files, sessions, the user's own name): no browser or shared
 * cache may keep it. The SPA's static files stay cacheable.
 */
export function noStoreForApi(req: Request, res: Response, next: NextFunction): void {
  if (req.path === '/api' || req.path.startsWith('/api/')) {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Pragma', 'no-cache');
  }
  next();
}
