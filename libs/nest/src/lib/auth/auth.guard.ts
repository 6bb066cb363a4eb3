import { ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard } from '@nestjs/passport';
import type { Request } from 'express';
import { CSRF_HEADER, CSRF_VALUE } from '../contract';
import { IS_PUBLIC } from './decorators';
import { ApiException } from './errors';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The global guard: deny by default (`@Public()` opens a route), and refuse state-changing
 * requests without the CSRF header. The header matters even with SameSite=Strict cookies:
 * browsers answer a Negotiate challenge by themselves, also for a cross-site form post.
 */
@Injectable()
export class ForwardableAuthGuard extends AuthGuard('negotiate') {
  constructor(private readonly reflector: Reflector) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request>();
    if (!SAFE.has(req.method) && req.headers[CSRF_HEADER] !== CSRF_VALUE) {
      throw new ApiException(403, 'CSRF_REQUIRED', `state-changing requests need the header ${CSRF_HEADER}: ${CSRF_VALUE}`);
    }
    const isPublic = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()]);
    if (isPublic) return true;
    return (await super.canActivate(context)) as boolean;
  }

  override handleRequest<T>(err: unknown, user: T): T {
    if (err) throw err;
    if (!user) throw new ApiException(401, 'NEGOTIATE_REQUIRED', 'sign in with Kerberos');
    return user;
  }
}
