import { Module } from '@nestjs/common';
import { AppController } from './app.controller';

/** The API's root module: wiring only; features live in libs/api/*. */
@Module({
  controllers: [AppController],
})
export class AppModule {}
