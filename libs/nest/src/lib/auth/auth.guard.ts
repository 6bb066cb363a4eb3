import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { CSRF_HEADER, CSRF_VALUE } from '../contract';
import { IS_PUBLIC } from './decorators';
import { ApiException } from './errors';
import { NegotiateStrategy } from './negotiate.strategy';
import type { AuthUser } from './session.service';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The global guard: deny by default (`@Public()` opens a route), and refuse state-changing
 * requests without the CSRF header. The header matters even with SameSite=Strict cookies:
 * browsers answer a Negotiate challenge by themselves, also for a cross-site form post.
 *
 * It asks {@link NegotiateStrategy.validate} directly instead of going through
 * `@nestjs/passport`'s `AuthGuard('negotiate')`: the strategy's whole work is that one call (it
 * returns the user or throws the 401/403/503 to answer), and passport.authenticate around it cost
 * every request a fresh strategy object, five closures, request decoration and two promises,
 * about 15 KiB of garbage and a measurable share of the API's CPU (bench/README.md, overhead).
 * The strategy stays registered with Passport for applications that use `AuthGuard('negotiate')`.
 */
@Injectable()
export class ForwardableAuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly strategy: NegotiateStrategy,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request & { user?: AuthUser }>();
    if (!SAFE.has(req.method) && req.headers[CSRF_HEADER] !== CSRF_VALUE) {
      throw new ApiException(403, 'CSRF_REQUIRED', `state-changing requests need the header ${CSRF_HEADER}: ${CSRF_VALUE}`);
    }
    const isPublic = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()]);
    if (isPublic) return true;
    const user = await this.strategy.validate(req);
    if (!user) throw new ApiException(401, 'NEGOTIATE_REQUIRED', 'sign in with Kerberos');
    req.user = user;
    return true;
  }
}
