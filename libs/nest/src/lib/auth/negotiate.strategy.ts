import { Inject, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-strategy';
import type { Request, Response } from 'express';
import type { Socket } from 'node:net';
import type { AcceptorContext } from '@forwardable/gssapi';
import { SESSION_COOKIE } from '../contract';
import { HINT_NO_TICKET, NegotiateChallenge } from './errors';
import { NegotiateService } from './negotiate.service';
import { AUTH_OPTIONS, AuthOptions } from './options';
import { AuthUser, SessionService } from './session.service';
import { AuthMetrics } from './auth-metrics';
import { ApiException } from './errors';

type Verify = (req: Request, done: (err: unknown, user?: AuthUser | false) => void) => void;

/** A Passport strategy whose whole work is the verify callback (Nest's `validate`). */
class NegotiatePassportStrategy extends Strategy {
  name = 'negotiate';
  constructor(private readonly verify: Verify) {
    super();
  }
  override authenticate(req: Request): void {
    this.verify(req, (err, user) => {
      if (err) return this.error(err as Error);
      if (!user) return this.fail(401);
      this.success(user);
    });
  }
}

/** Multi-leg negotiations continue on the same connection (RFC 4559 section 4.4). */
const pending = new WeakMap<Socket, AcceptorContext>();

/**
 * HTTP Negotiate sign-on. A request is authenticated by its session cookie when the session is
 * live on this replica; otherwise by `Authorization: Negotiate <token>`, which starts a new session
 * (always a fresh id, also when it replaces a live one, the delegated credential in the vault, the mutual-authentication token in
 * `WWW-Authenticate`). Anything else gets a 401 challenge with a JSON body saying why.
 */
@Injectable()
export class NegotiateStrategy extends PassportStrategy(NegotiatePassportStrategy, 'negotiate') {
  constructor(
    private readonly negotiate: NegotiateService,
    private readonly sessions: SessionService,
    @Inject(AUTH_OPTIONS) private readonly options: AuthOptions,
    private readonly metrics: AuthMetrics,
  ) {
    super();
  }

  async validate(req: Request): Promise<AuthUser> {
    try {
      return await this.signIn(req);
    } catch (err) {
      this.metrics.failure(err instanceof ApiException ? err.code : 'INTERNAL');
      throw err;
    }
  }

  private async signIn(req: Request): Promise<AuthUser> {
    const cookie = (req.cookies as Record<string, string> | undefined)?.[SESSION_COOKIE];
    if (cookie) {
      const user = await this.sessions.resolve(cookie);
      if (user) return user;
    }
    const header = req.headers.authorization;
    const [scheme, ...rest] = typeof header === 'string' ? header.trim().split(/\s+/) : [];
    if (!scheme || scheme.toLowerCase() !== 'negotiate' || rest.length !== 1) {
      if (cookie) throw new NegotiateChallenge('SESSION_EXPIRED', 'your session has ended', 'The browser signs you in again by itself; if not, reload.');
      if (scheme && scheme.toLowerCase() === 'ntlm') throw new NegotiateChallenge('NTLM_OFFERED', 'the browser offered NTLM, not Kerberos');
      throw new NegotiateChallenge('NEGOTIATE_REQUIRED', 'sign in with Kerberos', HINT_NO_TICKET);
    }
    const socket = req.socket;
    let context = pending.get(socket);
    if (!context) context = this.negotiate.newContext();
    pending.delete(socket);
    let outcome;
    try {
      outcome = await this.negotiate.step(context, rest[0]);
    } catch (err) {
      context.dispose();
      throw err;
    }
    const res = req.res as Response;
    if ('continue' in outcome) {
      pending.set(socket, context);
      socket.once('close', () => pending.get(socket)?.dispose());
      throw new NegotiateChallenge('NEGOTIATE_REQUIRED', 'the negotiation needs another step', undefined, {
        cause: { replyToken: outcome.replyToken },
      });
    }
    context.dispose();
    // The browser authenticated while holding a live session's cookie (another replica accepted
    // the session, or this one lost the credential): a new session with a new id and fresh groups
    // replaces it, and the old one ends everywhere (no id survives an authentication).
    const live = cookie ? await this.sessions.peek(cookie) : null;
    const user = live && cookie
      ? await this.sessions.reauthenticate(cookie, outcome.credential, outcome.delegation, outcome.groupSids)
      : await this.sessions.create(outcome.credential, outcome.delegation, outcome.groupSids);
    if (outcome.replyToken?.length) res.setHeader('WWW-Authenticate', `Negotiate ${outcome.replyToken.toString('base64')}`);
    setSessionCookie(req, res, user, this.options);
    this.metrics.negotiations++;
    return user;
  }
}

/** `Set-Cookie` for a session: HttpOnly, SameSite=Strict, Path=/, Secure over TLS (or as configured). */
export function setSessionCookie(req: Request, res: Response, user: AuthUser, options: AuthOptions): void {
  const secure = options.secureCookies === undefined || options.secureCookies === 'auto' ? req.secure : options.secureCookies;
  res.cookie(SESSION_COOKIE, user.sessionId, {
    httpOnly: true,
    sameSite: 'strict',
    secure,
    path: '/',
    maxAge: Math.max(0, user.expiresAt - Date.now()),
  });
}
