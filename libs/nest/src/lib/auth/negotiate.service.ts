import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import {
  AcceptorContext,
  acquireServiceCredential,
  configureKerberos,
  Credential,
  decodeNegotiateToken,
  GssError,
  GssUsageError,
  pacLogonInfo,
  tokenMechanism,
} from '@forwardable/gssapi';
import type { DelegationKind } from '../contract';
import { ApiException, HINT_DELEGATION, HINT_NTLM, NegotiateChallenge } from './errors';
import { AUTH_OPTIONS, AuthOptions } from './options';

/** A finished negotiation: who, and the credential the service now holds for them. */
export interface Negotiated {
  principal: string;
  credential: Credential;
  delegation: DelegationKind;
  /** Mutual-authentication token for `WWW-Authenticate: Negotiate <token>`, if any. */
  replyToken: Buffer | null;
  /**
   * Group SIDs from the ticket's PAC (Active Directory), verified with our service key;
   * undefined when the ticket has no PAC logon info (MIT KDCs) or it did not parse.
   */
  groupSids?: string[];
}

/** A negotiation that needs another leg: send `replyToken` with a 401 and wait for the next token. */
export interface NegotiationContinues {
  continue: true;
  replyToken: Buffer | null;
}

/**
 * HTTP Negotiate (RFC 4559) acceptor: one service credential for the process, one context per
 * negotiation. Only Kerberos is accepted (raw or SPNEGO-wrapped); an NTLM token gets a 401 that
 * says what went wrong. Tokens are never logged.
 */
@Injectable()
export class NegotiateService implements OnModuleInit, OnApplicationShutdown {
  private readonly log = new Logger(NegotiateService.name);
  private service: Credential | null = null;
  readonly mode: 'unconstrained' | 'constrained';

  constructor(@Inject(AUTH_OPTIONS) private readonly options: AuthOptions) {
    this.mode = options.delegation ?? 'constrained';
  }

  /** Acquire the service credential at start-up: a bad keytab or principal stops the boot with a clear message. */
  async onModuleInit(): Promise<void> {
    if (this.options.kerberos) configureKerberos(this.options.kerberos);
    try {
      this.service = await acquireServiceCredential({
        keytab: this.options.keytab,
        principal: this.options.servicePrincipal,
        // S4U2proxy needs the service's own TGT too: "both" gets it from the keytab.
        usage: this.mode === 'constrained' ? 'both' : 'accept',
      });
    } catch (err) {
      const e = err as Error;
      throw new Error(
        `Kerberos service credential for ${this.options.servicePrincipal} from ${this.options.keytab} failed: ${e.message}` +
          (this.mode === 'constrained' ? ' (constrained delegation also needs the KDC to be reachable)' : ''),
        { cause: err },
      );
    }
    this.log.log(`accepting Kerberos for ${this.options.servicePrincipal} (${this.mode} delegation)`);
  }

  /** A new acceptor context (one per negotiation). */
  newContext(): AcceptorContext {
    if (!this.service) throw new Error('NegotiateService is not initialised');
    return new AcceptorContext(this.service, { krb5Only: true });
  }

  /**
   * Decode and check an `Authorization: Negotiate ...` value, then run one accept step.
   * @throws NegotiateChallenge (401) for NTLM, malformed, replayed, expired or foreign tokens.
   */
  async step(context: AcceptorContext, headerValue: string): Promise<Negotiated | NegotiationContinues> {
    let token: Buffer;
    try {
      token = decodeNegotiateToken(headerValue);
    } catch (err) {
      throw new NegotiateChallenge('TOKEN_INVALID', 'the Negotiate token is not valid base64', 'The browser must send a fresh token.', { cause: err });
    }
    if (tokenMechanism(token) === 'ntlm') {
      throw new NegotiateChallenge('NTLM_OFFERED', 'the browser offered NTLM, not Kerberos', HINT_NTLM);
    }
    let result;
    try {
      result = await context.step(token);
    } catch (err) {
      throw this.translate(err);
    }
    if (!result.complete) return { continue: true, replyToken: result.token };
    const principal = result.principal ?? '';
    const delegated = result.delegated;
    if (!delegated || result.delegation === 'none') {
      if (this.mode === 'unconstrained') {
        throw new NegotiateChallenge('NO_DELEGATION', `${principal} signed in, but the browser did not delegate a ticket`, HINT_DELEGATION);
      }
      throw new NegotiateChallenge(
        'NO_DELEGATION',
        `${principal} signed in, but the KDC gave no ticket this service may use on their behalf`,
        'The ticket is not forwardable: sign in again with a forwardable ticket (kinit -f), or ask the realm administrator to allow it.',
      );
    }
    let groupSids: string[] | undefined;
    try {
      groupSids = pacLogonInfo(result)?.groupSids;
    } catch (err) {
      this.log.warn(`the PAC in ${principal}'s ticket did not parse (${(err as Error).message}); groups come from the directory`);
    }
    return { principal, credential: delegated, delegation: result.delegation === 'proxy' ? 'proxy' : 'forwarded', replyToken: result.token, groupSids };
  }

  private translate(err: unknown): ApiException {
    if (err instanceof GssUsageError) return new NegotiateChallenge('TOKEN_INVALID', 'the Negotiate token is not usable', err.message, { cause: err });
    if (err instanceof GssError) {
      switch (err.code) {
        case 'ERR_GSS_REPLAY':
          return new NegotiateChallenge('TOKEN_REPLAYED', 'this Negotiate token was already used', 'The browser must authenticate again with a fresh token.', { cause: err });
        case 'ERR_GSS_MECH_REFUSED':
          return new NegotiateChallenge('NTLM_OFFERED', 'the browser offered a mechanism other than Kerberos', HINT_NTLM, { cause: err });
        case 'ERR_GSS_KEYTAB_NO_KEY':
          // MIT says only "No key table entry found": either the name or the encryption type has
          // no key. Active Directory issues RC4 tickets (and RC4-only keytabs) to accounts without
          // msDS-SupportedEncryptionTypes, and AES tickets to those with it.
          return new NegotiateChallenge(
            'WRONG_SERVICE',
            'the server has no key for this ticket: wrong service name or encryption type mismatch',
            `Use the host name of ${this.options.servicePrincipal} in the URL. If it is right, the keytab lacks a key of the ticket's encryption type ` +
              '(klist -ke <keytab> lists them): give the service account AES keys (Active Directory: msDS-SupportedEncryptionTypes = 24, ' +
              'then reset its password and export the keytab again with AES256/AES128 keys, e.g. ktpass /crypto AES256-SHA1 or msktutil --enctypes 24).',
            { cause: err },
          );
        case 'ERR_GSS_KEY_VERSION_MISMATCH':
          return new NegotiateChallenge(
            'WRONG_SERVICE',
            'the ticket is not for this service, or was made with another key',
            `Use the host name of ${this.options.servicePrincipal} in the URL; if it is right, the server's keytab is stale.`,
            { cause: err },
          );
        case 'ERR_GSS_EXPIRED':
          return new NegotiateChallenge('SESSION_EXPIRED', 'the Kerberos ticket has expired', 'Renew it (kinit) and reload.', { cause: err });
        case 'ERR_GSS_CLOCK_SKEW':
          return new NegotiateChallenge('TOKEN_INVALID', 'the clocks of your computer and the server differ too much', 'Synchronise the clock (NTP).', { cause: err });
        default:
          return new NegotiateChallenge('TOKEN_INVALID', 'the Negotiate token was refused', 'Sign in to Kerberos again (kinit) or use your password.', { cause: err });
      }
    }
    return new NegotiateChallenge('TOKEN_INVALID', 'the Negotiate token was refused', undefined, { cause: err });
  }

  onApplicationShutdown(): void {
    this.service?.dispose();
    this.service = null;
  }
}
