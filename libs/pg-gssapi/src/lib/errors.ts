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
        `must equal the role name, and pg_hba.conf's krb_realm must be its realm. (${said})`,
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
    return new PgAuthError('PG_NO_HBA_ENTRY', `PostgreSQL has no pg_hba.conf line for this connection: add a "host ... gss" line. (${said})`, f);
  }
  if (f.code === '3D000') {
    return new PgAuthError('PG_DATABASE_MISSING', `${said}: create it, or fix the database name in the configuration.`, f);
  }
  return new PgAuthError('PG_SERVER_ERROR', `PostgreSQL refused the connection for role "${who}": ${said}`, f);
}
