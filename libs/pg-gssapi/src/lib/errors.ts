/** The fields of a PostgreSQL ErrorResponse this library reads. */
export interface ServerErrorFields {
  severity?: string;
  /** SQLSTATE, e.g. `28000`. */
  code?: string;
  message?: string;
  detail?: string;
  hint?: string;
}

/** The reasons a GSSAPI connection to PostgreSQL can fail; `code` of {@link PgAuthError}. */
export type PgAuthErrorCode =
  | 'PG_ROLE_MISSING'
  | 'PG_GSSAPI_REJECTED'
  | 'PG_SERVER_KEYTAB'
  | 'PG_NO_HBA_ENTRY'
  | 'PG_DATABASE_MISSING'
  | 'PG_CONNECT_REFUSED'
  | 'PG_GSSAPI_HANDSHAKE'
  | 'PG_GSSENC_REFUSED'
  | 'PG_GSSENC_BROKEN'
  | 'PG_TLS_REFUSED'
  | 'PG_TLS_FAILED'
  | 'PG_PROTOCOL'
  | 'PG_SERVER_ERROR';

/**
 * Base class of every error this library raises while connecting. `code` tells the condition;
 * `sqlState` and `serverMessage` keep what PostgreSQL said, so nothing is lost in translation.
 */
export class PgAuthError extends Error {
  constructor(
    readonly code: PgAuthErrorCode,
    message: string,
    readonly server: ServerErrorFields = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PgAuthError';
  }

  /** SQLSTATE of the server's error, if the server sent one. */
  get sqlState(): string | undefined {
    return this.server.code;
  }

  /** PostgreSQL's own message text. */
  get serverMessage(): string | undefined {
    return this.server.message;
  }
}

/** The client side of the GSSAPI exchange failed (no usable credential, KDC refusal, no mutual auth). */
export class PgGssapiHandshakeError extends PgAuthError {
  constructor(message: string, cause?: unknown) {
    super('PG_GSSAPI_HANDSHAKE', `PostgreSQL GSSAPI authentication failed: ${message}`, {}, { cause });
    this.name = 'PgGssapiHandshakeError';
  }
}

/**
 * `gssencmode: 'require'` and the server answered "N" to the GSSENCRequest: it (or a pooler in
 * front of it) does not offer GSSAPI encryption on this connection.
 */
export class PgGssencRefusedError extends PgAuthError {
  constructor(where: string) {
    super(
      'PG_GSSENC_REFUSED',
      `PostgreSQL at ${where} refused GSSAPI encryption (it answered "N" to the GSSENCRequest): the server must be ` +
        `built with GSSAPI and reached directly (poolers such as PgBouncer refuse it), with a "hostgssenc ... gss" ` +
        `line in pg_hba.conf; or set gssencmode (FORWARDABLE_PG_GSSENCMODE) to "prefer" to accept an unencrypted link.`,
    );
    this.name = 'PgGssencRefusedError';
  }
}

/**
 * The encrypted link broke: a packet failed gss_unwrap (tampered with, replayed, reordered, not
 * encrypted), was oversized, or the connection ended in the middle of one. The connection is
 * closed; nothing unverified was passed on.
 */
export class PgGssencBrokenError extends PgAuthError {
  constructor(message: string, cause?: unknown) {
    super('PG_GSSENC_BROKEN', `GSSAPI-encrypted PostgreSQL connection closed: ${message}`, {}, { cause });
    this.name = 'PgGssencBrokenError';
  }
}

/**
 * `sslmode` is `require`, `verify-ca` or `verify-full` and the server answered "N" to the
 * SSLRequest (and GSSAPI encryption was off or refused): it has `ssl = off`, or a pooler in front
 * of it does not offer TLS.
 */
export class PgTlsRefusedError extends PgAuthError {
  constructor(where: string, sslmode: string) {
    super(
      'PG_TLS_REFUSED',
      `PostgreSQL at ${where} refused TLS (it answered "N" to the SSLRequest, sslmode=${sslmode}): turn TLS on in the ` +
        `server (ssl = on, ssl_cert_file and ssl_key_file in postgresql.conf) with a "hostssl ... gss" line in pg_hba.conf; ` +
        `or use GSSAPI encryption instead (gssencmode "require", FORWARDABLE_PG_GSSENCMODE, with a "hostgssenc" line); ` +
        `or set sslmode (FORWARDABLE_PG_SSLMODE) to "prefer" to accept an unencrypted link.`,
    );
    this.name = 'PgTlsRefusedError';
  }
}

/**
 * The TLS handshake failed: the server's certificate is not signed by the CA in `sslrootcert`,
 * does not name the host (`verify-full`), or the handshake broke. Nothing was sent to the server.
 */
export class PgTlsError extends PgAuthError {
  constructor(message: string, cause?: unknown) {
    super('PG_TLS_FAILED', `TLS to PostgreSQL failed: ${message}`, {}, { cause });
    this.name = 'PgTlsError';
  }
}

/** The server sent something the PostgreSQL protocol does not allow here (e.g. a truncated message). */
export class PgProtocolError extends PgAuthError {
  constructor(message: string) {
    super('PG_PROTOCOL', `PostgreSQL protocol violation: ${message}; the connection was closed`);
    this.name = 'PgProtocolError';
  }
}

/**
 * Turn a start-up ErrorResponse into a {@link PgAuthError} whose message says what to do.
 * @param user - the role pg asked for, to name it in the message.
 */
export function pgAuthErrorFrom(f: ServerErrorFields, user: string): PgAuthError {
  const said = f.message ?? 'unknown error';
  const who = user || 'the user';
  let m: RegExpExecArray | null;
  if ((m = /role "([^"]*)" does not exist/.exec(said))) {
    return new PgAuthError(
      'PG_ROLE_MISSING',
      `PostgreSQL has no role "${m[1]}": the Kerberos principal's name without the realm must be a login role. ` +
        `Ask the database administrator to run CREATE ROLE "${m[1]}" LOGIN.`,
      f,
    );
  }
  if (/GSSAPI authentication failed for user/.test(said)) {
    return new PgAuthError(
      'PG_GSSAPI_REJECTED',
      `PostgreSQL refused the Kerberos credential for role "${who}": the credential's principal (without its realm) ` +
        `must equal the role name (if they differ only in case, as with FORWARDABLE_USERNAME_CASE=lower and a ` +
        `principal such as Alice@REALM, set krb_caseins_users = on in postgresql.conf), and pg_hba.conf's krb_realm ` +
        `must be its realm. (${said})`,
      f,
    );
  }
  if (/accepting GSS security context failed|GSSAPI/i.test(said)) {
    return new PgAuthError(
      'PG_SERVER_KEYTAB',
      `PostgreSQL could not accept the Kerberos ticket: check krb_server_keyfile (it must hold the current key of ` +
        `postgres/<host>, readable by the server) and the server's clock. (${said}${f.detail ? `: ${f.detail}` : ''})`,
      f,
    );
  }
  if (/no pg_hba\.conf entry/.test(said)) {
    // PostgreSQL names the link's protection at the end: "no encryption", "GSS encryption", "SSL encryption".
    const plain = /no encryption/.test(said);
    return new PgAuthError(
      'PG_NO_HBA_ENTRY',
      plain
        ? `PostgreSQL has no pg_hba.conf line for an unencrypted connection: use GSSAPI encryption (gssencmode ` +
            `"prefer" or "require", FORWARDABLE_PG_GSSENCMODE), or add a "host ... gss" line if the link may be plaintext. (${said})`
        : `PostgreSQL has no pg_hba.conf line for this connection: add a "hostgssenc ... gss" line (GSSAPI encryption) ` +
            `or a "hostssl ... gss" line (TLS) for this host, user and database. (${said})`,
      f,
    );
  }
  if (f.code === '3D000') {
    return new PgAuthError('PG_DATABASE_MISSING', `${said}: create it, or fix the database name in the configuration.`, f);
  }
  return new PgAuthError('PG_SERVER_ERROR', `PostgreSQL refused the connection for role "${who}": ${said}`, f);
}
