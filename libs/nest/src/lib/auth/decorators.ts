import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import type { AuthUser } from './session.service';

export const IS_PUBLIC = 'forwardable:public';

/** Open a route to everyone: the global guard denies every other route without a session. */
export const Public = () => SetMetadata(IS_PUBLIC, true);

/** The signed-in user of the request. */
export const CurrentUser = createParamDecorator((_data: unknown, ctx: ExecutionContext): AuthUser => {
  return ctx.switchToHttp().getRequest().user as AuthUser;
});
