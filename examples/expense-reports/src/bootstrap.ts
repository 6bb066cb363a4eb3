import 'reflect-metadata';
import { INestApplication, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import type { ExpenseConfig } from './config';

/** The Nest application for a configuration, under `/api`. Used by main.ts and the tests alike. */
export async function createApp(config: ExpenseConfig, logger: false | undefined = undefined): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule.forRoot(config), { logger });
  app.setGlobalPrefix('api');
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
  app.enableShutdownHooks();
  return app;
}
