import { Controller, Get } from '@nestjs/common';

/** Liveness of the API process itself; says nothing about the user or the database. */
@Controller()
export class AppController {
  /** `GET /api/health` */
  @Get('health')
  health(): { status: 'ok' } {
    return { status: 'ok' };
  }
}
