import { Controller, Get } from '@nestjs/common';
import { Public } from '@forwardable/nest';

/** Liveness of the API process itself; says nothing about the user or the database. */
@Controller()
export class AppController {
  /** `GET /api/health` */
  @Public()
  @Get('health')
  health(): { status: 'ok' } {
    return { status: 'ok' };
  }
}
