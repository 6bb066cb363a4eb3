/**
 * One way to reach the directory: the LDAP settings the API already uses for its group lookup
 * (`AuthOptions.ldap`, from the `FORWARDABLE_LDAP_*` variables), shared by the role provisioning
 * CLI so an operator configures the directory once. The bind is SASL/GSSAPI (no password: the
 * API's keytab, the operator's ticket) or simple.
 */
import { readFileSync } from 'node:fs';
import { Client } from 'ldapts';
import type { Credential } from '@forwardable/gssapi';
import type { AuthOptions } from '../auth/options';
import { assertGssapiTransport, bindGssapi, defaultLdapService } from './sasl-gssapi';
import { CredentialSource, isCredentialSource } from './service-credential';

/** Where the directory is and how to bind to it (SASL/GSSAPI or simple; see `AuthOptions.ldap`). */
export type LdapOptions = NonNullable<AuthOptions['ldap']>;

/** The bind a set of {@link LdapOptions} resolves to. */
export function ldapBindOf(ldap: LdapOptions): 'simple' | 'gssapi' {
  return ldap.bind ?? (ldap.bindDn ? 'simple' : 'gssapi');
}

/**
 * Read the directory settings from the same variables the API reads: `FORWARDABLE_LDAP_URL`,
 * `FORWARDABLE_LDAP_BASE`, `FORWARDABLE_LDAP_GROUPS_BASE`, `FORWARDABLE_LDAP_BIND` (`gssapi` or
 * `simple`; default `simple` when a bind DN is set, otherwise `gssapi`), for GSSAPI
 * `FORWARDABLE_LDAP_SASL_SERVICE` (default `ldap@<host>`), for a simple bind
 * `FORWARDABLE_LDAP_BIND_DN` and `FORWARDABLE_LDAP_BIND_PASSWORD` (or `_FILE`), and for ldaps://
 * `FORWARDABLE_LDAP_CA_FILE` (PEM: the CA that signed the directory's certificate, when the
 * system's trust store does not hold it; e.g. an AD enterprise CA).
 * @returns the settings, or `undefined` when `FORWARDABLE_LDAP_URL` is not set.
 * @throws RangeError naming every missing or malformed variable.
 */
export function ldapOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): LdapOptions | undefined {
  const get = (k: string) => env[k]?.trim() || undefined;
  const url = get('FORWARDABLE_LDAP_URL');
  if (!url) return undefined;
  const problems: string[] = [];
  if (!/^ldaps?:\/\//.test(url)) problems.push(`FORWARDABLE_LDAP_URL=${url} must start with ldap:// or ldaps://`);
  const baseDn = get('FORWARDABLE_LDAP_BASE');
  if (!baseDn) problems.push('FORWARDABLE_LDAP_BASE is not set: the directory base DN, e.g. dc=example,dc=com');
  const bindDn = get('FORWARDABLE_LDAP_BIND_DN');
  let bindPassword = get('FORWARDABLE_LDAP_BIND_PASSWORD');
  const passwordFile = get('FORWARDABLE_LDAP_BIND_PASSWORD_FILE');
  const bindVar = get('FORWARDABLE_LDAP_BIND');
  if (bindVar !== undefined && bindVar !== 'gssapi' && bindVar !== 'simple') problems.push(`FORWARDABLE_LDAP_BIND=${bindVar} must be gssapi or simple`);
  const bind: 'simple' | 'gssapi' = bindVar === 'simple' || bindVar === 'gssapi' ? bindVar : bindDn || bindPassword || passwordFile ? 'simple' : 'gssapi';
  const saslService = get('FORWARDABLE_LDAP_SASL_SERVICE');
  const caFile = get('FORWARDABLE_LDAP_CA_FILE');
  if (caFile) {
    if (!url.startsWith('ldaps://')) problems.push(`FORWARDABLE_LDAP_CA_FILE is only used for ldaps:// URLs, and FORWARDABLE_LDAP_URL=${url} is not one: use ldaps://, or unset it`);
    try {
      if (!/-----BEGIN CERTIFICATE-----/.test(readFileSync(caFile, 'utf8'))) problems.push(`FORWARDABLE_LDAP_CA_FILE=${caFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----): export the directory's CA certificate in PEM`);
    } catch (e) {
      problems.push(`FORWARDABLE_LDAP_CA_FILE=${caFile} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give this user read access`);
    }
  }
  if (bind === 'simple') {
    if (!bindDn) problems.push('FORWARDABLE_LDAP_BIND_DN is not set: the DN to bind as to read groups (or use FORWARDABLE_LDAP_BIND=gssapi: no password needed)');
    if (passwordFile) {
      try {
        bindPassword = readFileSync(passwordFile, 'utf8').trim();
      } catch (e) {
        problems.push(`FORWARDABLE_LDAP_BIND_PASSWORD_FILE=${passwordFile} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give this user read access`);
      }
    }
    if (bindPassword === undefined) problems.push('FORWARDABLE_LDAP_BIND_PASSWORD (or _FILE) is not set: the password of FORWARDABLE_LDAP_BIND_DN');
  } else {
    if (bindDn || bindPassword || passwordFile) problems.push('FORWARDABLE_LDAP_BIND=gssapi binds with Kerberos: unset FORWARDABLE_LDAP_BIND_DN and FORWARDABLE_LDAP_BIND_PASSWORD(_FILE), or choose FORWARDABLE_LDAP_BIND=simple');
    if (/^ldaps?:\/\//.test(url)) {
      try {
        assertGssapiTransport(url);
      } catch (e) {
        problems.push(`FORWARDABLE_LDAP_URL: ${(e as Error).message}`);
      }
    }
    if (saslService !== undefined && !/^[^@/\s]+(@[^@/\s]+|\/[^@/\s]+(@[^@/\s]+)?)$/.test(saslService)) {
      problems.push(`FORWARDABLE_LDAP_SASL_SERVICE=${saslService} must be service@host (e.g. ldap@dc1.example.com) or service/host@REALM`);
    }
  }
  if (problems.length) throw new RangeError(`directory settings are incomplete:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  return bind === 'simple'
    ? { url, baseDn: baseDn as string, bind, bindDn, bindPassword, groupsBaseDn: get('FORWARDABLE_LDAP_GROUPS_BASE'), ...(caFile ? { caFile } : {}) }
    : { url, baseDn: baseDn as string, bind, saslService, groupsBaseDn: get('FORWARDABLE_LDAP_GROUPS_BASE'), ...(caFile ? { caFile } : {}) };
}

/** Who a GSSAPI bind acts as: a credential made per bind (disposed after it), or a shared one. */
export type LdapCredential = (() => Promise<Credential>) | CredentialSource;

/**
 * Bind to the directory, run `work`, and unbind whatever happens. Timeouts are short: a directory
 * that does not answer must not hang a sign-in or a provisioning run.
 * @param gssapiCredential - for a GSSAPI bind: who to bind as. A function makes a credential per
 *   bind (the operator's ticket in the role tool), disposed after the bind. A
 *   {@link CredentialSource} lends a shared one (the API's keytab credential, so a bind needs no
 *   KDC round trip); a bind that fails with a credential it had already used is retried once on a
 *   new connection with a newly acquired one (a KDC restarted with new keys, a rotated keytab).
 */
export async function withLdap<T>(ldap: LdapOptions, work: (client: Client) => Promise<T>, gssapiCredential?: LdapCredential): Promise<T> {
  const gssapi = ldapBindOf(ldap) === 'gssapi';
  if (gssapi) {
    if (!gssapiCredential) throw new RangeError('a GSSAPI bind needs a Kerberos credential: configure the service keytab, or bind with a DN and password');
    assertGssapiTransport(ldap.url);
  }
  const service = gssapi ? (ldap.saslService ?? defaultLdapService(ldap.url)) : '';
  const connect = () => new Client({ url: ldap.url, timeout: 5000, connectTimeout: 5000, tlsOptions: ldap.caFile ? { ca: readFileSync(ldap.caFile) } : undefined });
  let client = connect();
  try {
    if (!gssapi) {
      await client.bind(ldap.bindDn ?? '', ldap.bindPassword ?? '');
    } else if (isCredentialSource(gssapiCredential)) {
      // A lease is given back either way; a failed bind drops its credential for the next borrow.
      const bindWith = async (lease: Awaited<ReturnType<typeof gssapiCredential.borrow>>): Promise<void> => {
        try {
          await bindGssapi(client, lease.credential, service);
          lease.release();
        } catch (e) {
          lease.release(true);
          throw e;
        }
      };
      const lease = await gssapiCredential.borrow();
      try {
        await bindWith(lease);
      } catch (e) {
        // Only a credential kept from earlier binds is worth one retry on a new connection.
        if (lease.fresh) throw e;
        await client.unbind().catch(() => undefined);
        client = connect();
        await bindWith(await gssapiCredential.borrow());
      }
    } else {
      const credential = await (gssapiCredential as () => Promise<Credential>)();
      try {
        await bindGssapi(client, credential, service);
      } finally {
        credential.dispose();
      }
    }
    return await work(client);
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

/** The first RDN of a DN (`krbPrincipalName=a\,b@R,cn=R,...` → attribute and unescaped value). */
export interface Rdn {
  attribute: string;
  value: string;
}

/**
 * Split off and unescape the first RDN of a DN (RFC 4514 section 2.4: `\` followed by a special
 * character or by two hex digits). A multi-valued RDN (`a=1+b=2`) or a malformed escape yields
 * `undefined`: the caller then reads the entry instead of guessing.
 */
export function firstRdn(dn: string): Rdn | undefined {
  const eq = dn.indexOf('=');
  if (eq <= 0) return undefined;
  const attribute = dn.slice(0, eq).trim();
  const bytes: number[] = [];
  for (let i = eq + 1; i < dn.length; i++) {
    const c = String.fromCodePoint(dn.codePointAt(i) as number);
    if (c === ',') break;
    if (c === '+') return undefined;
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'));
      i += c.length - 1;
      continue;
    }
    const next = dn[i + 1];
    if (next === undefined) return undefined;
    if (/[0-9a-fA-F]/.test(next)) {
      const hex = dn.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      const escaped = String.fromCodePoint(dn.codePointAt(i + 1) as number);
      bytes.push(...Buffer.from(escaped, 'utf8'));
      i += escaped.length;
    }
  }
  return { attribute, value: Buffer.from(bytes).toString('utf8') };
}
