import { INestApplication, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import cookieParser from 'cookie-parser';
import { configureKerberos } from '@forwardable/gssapi';
import { AppModule } from './app.module';
import { GracefulShutdown } from './graceful-shutdown';
import { answerClientErrorsWithJson, rejectDeepJson, requireHost } from './http-limits';
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
  app.use(requireHost);
  // Small JSON bodies only: files are text, and nothing else needs more.
  app.useBodyParser('json', { limit: '2mb' });
  app.use(rejectDeepJson);
  app.use(cookieParser());
  answerClientErrorsWithJson(app.getHttpServer(), MAX_HEADER_BYTES);
  // X-Forwarded-For only from the configured proxies (FORWARDABLE_TRUSTED_PROXIES); none by default.
  app.set('trust proxy', config.trustedProxies.length ? config.trustedProxies : false);
  app.setGlobalPrefix('api');
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
  app.enableShutdownHooks();
  return app;
}
