import { Body, Controller, Get, HttpCode, Inject, Post, Req, Res, UseGuards, ValidationPipe } from '@nestjs/common';
import { Throttle, ThrottlerGuard } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { IsOptional, IsString, Length } from 'class-validator';
import { isSameOriginPath, LoginResponse, MeResponse, SESSION_COOKIE } from '../contract';
import { CurrentUser, Public } from './decorators';
import { setSessionCookie } from './negotiate.strategy';
import { AUTH_OPTIONS, AuthOptions } from './options';
import { PasswordLoginService } from './password-login.service';
import { AuthUser, SessionService } from './session.service';
import { AuthMetrics } from './auth-metrics';
import { ApiException, NegotiateChallenge } from './errors';

/** `POST /api/auth/login` body. */
export class LoginDto {
  @IsString() @Length(1, 256) username!: string;
  @IsString() @Length(1, 1024) password!: string;
  /** The page first asked for; checked with {@link isSameOriginPath} (an open redirect is refused). */
  @IsOptional() @IsString() @Length(1, 2048) returnTo?: string;
}

/** The public view of a session, as `GET /api/auth/me` answers it (no session id, no credential). */
export function toMe(u: AuthUser): MeResponse {
  return {
    principal: u.principal,
    user: u.user,
    delegation: u.delegation,
    mode: u.mode,
    expiresAt: new Date(u.expiresAt).toISOString(),
    groups: u.groups,
    isAdmin: u.isAdmin,
  };
}

/** Who am I, sign out, and the password fallback. */
@Controller('auth')
export class AuthController {
  constructor(
    private readonly sessions: SessionService,
    private readonly passwords: PasswordLoginService,
    @Inject(AUTH_OPTIONS) private readonly options: AuthOptions,
    private readonly metrics: AuthMetrics,
  ) {
    const redirectTo = options.passwordLogin?.redirectTo;
    if (redirectTo !== undefined && !isSameOriginPath(redirectTo)) {
      throw new RangeError(`passwordLogin.redirectTo=${JSON.stringify(redirectTo)} must be a path on this site, starting with a single "/"`);
    }
  }

  /** `GET /api/auth/me`: the signed-in user (negotiating first when needed). */
  @Get('me')
  me(@CurrentUser() user: AuthUser): MeResponse {
    return toMe(user);
  }

  /**
   * `POST /api/auth/logout`: ends the cookie's session everywhere (store, and every replica's
   * credential and pool), whether or not this replica holds its credential: the cookie itself is
   * the proof, so no negotiation is needed to sign out. With the cookie of a session that has
   * already ended it only clears the cookie; without a session cookie it is a 401, like every route
   * that needs a signed-in user. Still needs the CSRF header (the global guard).
   */
  @Public()
  @Post('logout')
  @HttpCode(204)
  async logout(@Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<void> {
    const id = (req.cookies as Record<string, string> | undefined)?.[SESSION_COOKIE];
    if (!id) throw new NegotiateChallenge('NEGOTIATE_REQUIRED', 'there is no session to sign out of');
    await this.sessions.destroy(id);
    res.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'strict' });
  }

  /** `POST /api/auth/login`: KDC-verified password sign-in, rate-limited per user name and address. */
  @Public()
  @Post('login')
  @HttpCode(200)
  @UseGuards(ThrottlerGuard)
  @Throttle({})
  async login(
    // Validated here, so the route is safe whether or not the app installs a global ValidationPipe.
    @Body(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true })) body: LoginDto,
    @Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<LoginResponse> {
    if (body.returnTo !== undefined && !isSameOriginPath(body.returnTo)) {
      throw new ApiException(400, 'INVALID_INPUT', 'returnTo must be a path on this site, starting with a single "/"',
        'Send the path of the page to return to (for example /files), or leave returnTo out.');
    }
    const credential = await this.passwords.login(body.username, body.password).catch((err: unknown) => {
      this.metrics.failure(err instanceof ApiException ? err.code : 'INTERNAL');
      throw err;
    });
    this.metrics.passwordLogins++;
    // A new sign-in always gets a new session id; the old session (if any) ends (no fixation).
    const old = (req.cookies as Record<string, string> | undefined)?.[SESSION_COOKIE];
    if (old) await this.sessions.destroy(old);
    const user = await this.sessions.create(credential, 'password');
    setSessionCookie(req, res, user, this.options);
    return { ...toMe(user), redirectTo: body.returnTo ?? this.options.passwordLogin?.redirectTo ?? '/' };
  }
}
