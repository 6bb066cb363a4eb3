import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app/app.module';

async function bootstrap() {
  const app = await NestFactory.create(AppModule);
  app.setGlobalPrefix('api');
  app.enableShutdownHooks();
  const port = Number(process.env.FORWARDABLE_PORT ?? process.env.PORT ?? 3000);
  const host = process.env.FORWARDABLE_LISTEN ?? '127.0.0.1';
  await app.listen(port, host);
  Logger.log(`Forwardable API listening on http://localhost:${port}/api`, 'Bootstrap');
}

bootstrap();
