import { INestApplication, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import cookieParser from 'cookie-parser';
import { configureKerberos } from '@forwardable/gssapi';
import { AppModule } from './app.module';
import { answerClientErrorsWithJson, rejectDeepJson, requireHost } from './http-limits';
import type { ApiConfig } from './config';

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
  app.use(requireHost);
  // Small JSON bodies only: files are text, and nothing else needs more.
  app.useBodyParser('json', { limit: '2mb' });
  app.use(rejectDeepJson);
  app.use(cookieParser());
  answerClientErrorsWithJson(app.getHttpServer());
  app.set('trust proxy', 'loopback');
  app.setGlobalPrefix('api');
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
  app.enableShutdownHooks();
  return app;
}
