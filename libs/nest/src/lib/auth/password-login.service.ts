import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { Credential, GssError, passwordLogin } from '@forwardable/gssapi';
import { ApiException } from './errors';
import { AUTH_OPTIONS, AuthOptions, realmOf } from './options';

/**
 * The password fallback: a TGT from the KDC for user + password, accepted only when the KDC
 * proves itself by issuing a ticket our own keytab can decrypt (no rogue KDC can log anyone in).
 */
@Injectable()
export class PasswordLoginService implements OnModuleInit {
  private readonly log = new Logger(PasswordLoginService.name);
  readonly enabled: boolean;
  private readonly verifyKdc: boolean;
  private readonly realm: string;

  constructor(@Inject(AUTH_OPTIONS) private readonly options: AuthOptions) {
    this.enabled = options.passwordLogin?.enabled ?? true;
    this.verifyKdc = options.passwordLogin?.verifyKdc ?? true;
    this.realm = realmOf(options.servicePrincipal);
  }

  onModuleInit(): void {
    if (this.enabled && !this.verifyKdc) {
      this.log.warn(
        'PASSWORD LOGIN WITHOUT KDC VERIFICATION: anyone who can answer for the KDC (a rogue KDC, DNS or network ' +
          'spoofing) can sign in as any user. Set passwordLogin.verifyKdc (FORWARDABLE_VERIFY_KDC) back to true.',
      );
    }
  }

  /** The principal for what the user typed: `Alice`, `alice` or `alice@REALM` (only our realm). */
  principalFor(username: string): string {
    return this.principalsFor(username)[0];
  }

  /**
   * The principals to try for what the user typed, in order: with {@link PasswordLoginOptions.caseInsensitive}
   * the lower-cased name first (`Alice` → `alice@REALM`, MIT's convention), then the name as typed
   * when it differs (`Alice@REALM`: a mixed-case principal of a case-sensitive MIT KDC, the kind
   * `FORWARDABLE_USERNAME_CASE=lower` maps to `alice`). Active Directory's KDC ignores case, so
   * there the first one answers.
   */
  principalsFor(username: string): string[] {
    let name = username.trim();
    const at = name.lastIndexOf('@');
    if (at >= 0) {
      const realm = name.slice(at + 1);
      if (realm.toUpperCase() !== this.realm) throw new ApiException(401, 'LOGIN_FAILED', 'wrong user name or password', `Use your ${this.realm} user name.`);
      name = name.slice(0, at);
    }
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new ApiException(400, 'INVALID_INPUT', 'the user name has characters a Kerberos user name cannot have');
    if (!(this.options.passwordLogin?.caseInsensitive ?? true)) return [`${name}@${this.realm}`];
    const lower = name.toLowerCase();
    return lower === name ? [`${lower}@${this.realm}`] : [`${lower}@${this.realm}`, `${name}@${this.realm}`];
  }

  /** Sign in; the caller owns the returned credential. */
  async login(username: string, password: string): Promise<Credential> {
    if (!this.enabled) throw new ApiException(404, 'NOT_FOUND', 'password sign-in is turned off on this server');
    const [first, ...others] = this.principalsFor(username);
    try {
      return await this.attempt(first, password);
    } catch (err) {
      // Only "no such principal" moves on to the name as typed: a wrong password for an existing
      // principal is never tried again under another name (one failed attempt per sign-in).
      if (!others.length || !(err instanceof GssError) || err.code !== 'ERR_GSS_CLIENT_NOT_FOUND') throw this.translate(err, first);
    }
    try {
      return await this.attempt(others[0], password);
    } catch (err) {
      throw this.translate(err, others[0]);
    }
  }

  private async attempt(principal: string, password: string): Promise<Credential> {
    // Wiped by the binding after use (it copies into native memory it zeroes).
    const secret = Buffer.from(password, 'utf8');
    try {
      return await passwordLogin({
        username: principal,
        password: secret,
        keytab: this.options.keytab,
        servicePrincipal: this.options.servicePrincipal,
        verifyKdc: this.verifyKdc,
      });
    } finally {
      secret.fill(0);
    }
  }

  /**
   * What the client is told. Every failure that depends on the account (wrong password, no such
   * user, expired password, locked or disabled account, anything unrecognised) gets the SAME 401
   * and message, so the answer is no oracle for who exists or which accounts are locked; the
   * precise reason goes to the server log (principal and condition only, never the password).
   * Server-side conditions (KDC down, KDC unverifiable, keytab) keep their own answers: they are
   * the same for every user name.
   */
  private translate(err: unknown, principal: string): ApiException {
    if (!(err instanceof GssError)) return new ApiException(500, 'INTERNAL', 'password sign-in failed', undefined, { cause: err });
    const refused = (reason: string) => {
      this.log.warn(`password sign-in refused for ${principal}: ${reason} (${err.code})`);
      return new ApiException(401, 'LOGIN_FAILED', 'wrong user name or password', undefined, { cause: err });
    };
    switch (err.code) {
      case 'ERR_GSS_BAD_PASSWORD':
        return refused('wrong password');
      case 'ERR_GSS_CLIENT_NOT_FOUND':
        return refused('no such principal');
      case 'ERR_GSS_PASSWORD_EXPIRED':
      case 'ERR_GSS_EXPIRED':
        return refused('the password has expired (kpasswd)');
      case 'ERR_GSS_CLIENT_REVOKED':
        return refused('the account is locked out or disabled (kadmin modprinc -unlock)');
      case 'ERR_GSS_KDC_UNREACHABLE':
        return new ApiException(503, 'KDC_UNAVAILABLE', 'the Kerberos server (KDC) does not answer', 'Try again shortly; if it persists, tell your administrator.', { cause: err });
      case 'ERR_GSS_KDC_UNVERIFIED':
        return new ApiException(401, 'KDC_UNVERIFIED', 'the Kerberos server could not prove it is genuine; sign-in refused', 'Tell your administrator: the KDC may be spoofed, or this server\'s keytab is stale.', { cause: err });
      case 'ERR_GSS_KEYTAB_MISSING':
      case 'ERR_GSS_KEYTAB_UNREADABLE':
      case 'ERR_GSS_KEYTAB_NO_KEY':
        // django-auth-kerberos's two common errors ("No such file or directory", "Permission denied"):
        // the fix is the keytab, never turning verification off.
        this.log.error(`password sign-in cannot verify the KDC: ${err.message}`);
        return new ApiException(503, 'KDC_UNVERIFIED', 'the server cannot verify the Kerberos server right now', 'Tell your administrator: the service keytab is missing or unreadable.', { cause: err });
      default:
        return refused(`unexpected Kerberos failure: ${err.minorText || err.majorText}`);
    }
  }
}
