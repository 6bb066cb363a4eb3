/**
 * Quoting for the SQL this library writes. Every identifier that reaches SQL goes through
 * {@link quoteIdent}, every string constant through {@link quoteLiteral}, and every function body
 * or DO block through {@link dollarQuote}, so no name, however strange, can end a token early.
 * Names from a mapping are additionally checked against introspection before generation
 * (see `validateMapping`), so these functions are the second line of defence, not the only one.
 */
import { RlsUsageError } from './errors';

/** PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes (src/include/pg_config_manual.h). */
export const MAX_IDENTIFIER_BYTES = 63;

/**
 * Reject what can never be a PostgreSQL identifier: empty strings and strings with NUL (the
 * server cannot store NUL in a name, and a C client would cut the statement there).
 * @throws RlsUsageError (code `ERR_RLS_BAD_IDENTIFIER`)
 */
export function assertIdentifier(name: unknown, what = 'identifier'): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new RlsUsageError('ERR_RLS_BAD_IDENTIFIER', `${what} must be a non-empty string, got ${JSON.stringify(name)}`);
  }
  if (name.includes('\0')) throw new RlsUsageError('ERR_RLS_BAD_IDENTIFIER', `${what} ${JSON.stringify(name)} contains a NUL character`);
}

/**
 * Quote an identifier the way PostgreSQL's `quote_ident` / `format('%I')` does, but always:
 * wrap in double quotes and double any double quote inside (SQL standard, PostgreSQL docs
 * "4.1.1 Identifiers and Key Words"). Always quoting keeps the case and makes keywords harmless.
 */
export function quoteIdent(name: string): string {
  assertIdentifier(name);
  return `"${name.replace(/"/g, '""')}"`;
}

/** `"schema"."name"`, both parts quoted. */
export function qualify(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/**
 * Quote a string constant like PostgreSQL's `quote_literal`: double single quotes, and if there is
 * a backslash use the `E''` form with doubled backslashes, so the result means the same thing
 * whatever `standard_conforming_strings` is set to.
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new RlsUsageError('ERR_RLS_BAD_IDENTIFIER', `string ${JSON.stringify(value)} contains a NUL character`);
  const body = value.replace(/'/g, "''");
  return value.includes('\\') ? `E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}

/**
 * Dollar-quote `body` with a tag that does not occur in it (`$fw$`, `$fw1$`, ...): quoted
 * identifiers may contain `$`, so a fixed tag could be closed from inside a table name.
 */
export function dollarQuote(body: string, base = 'fw'): string {
  for (let i = 0; ; i++) {
    const tag = `$${base}${i === 0 ? '' : i}$`;
    if (!body.includes(tag)) return `${tag}${body}${tag}`;
  }
}

/**
 * A name for an object we create (policy, function, index) from a table name and a suffix that
 * fits in 63 bytes: PostgreSQL would silently truncate a longer one, and two long table names
 * could then collide. Long bases are cut and made unique with a short hash.
 */
export function objectName(base: string, suffix: string): string {
  const full = `${base}_${suffix}`;
  if (Buffer.byteLength(full, 'utf8') <= MAX_IDENTIFIER_BYTES) return full;
  const hash = fnv1a(base).toString(16).padStart(8, '0');
  const room = MAX_IDENTIFIER_BYTES - Buffer.byteLength(`_${hash}_${suffix}`, 'utf8');
  let cut = '';
  for (const ch of base) {
    if (Buffer.byteLength(cut + ch, 'utf8') > room) break;
    cut += ch;
  }
  return `${cut}_${hash}_${suffix}`;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * A column type as PostgreSQL's `format_type()` prints it, for a helper function's parameter.
 * Types come from the catalog, not from the mapping; this check only makes sure that nothing
 * but a type name can ever be spliced in.
 * @throws RlsUsageError (code `ERR_RLS_BAD_TYPE`) for anything else.
 */
export function assertTypeName(type: string): string {
  const ident = '(?:[a-z_][a-z0-9_$]*|"(?:[^"\\0]|"")+")';
  const re = new RegExp(`^(?:${ident}\\.)?${ident}(?: [a-z]+)*(?:\\(\\d+(?:,\\s*\\d+)?\\))?(?: [a-z]+)*(?:\\[\\])*$`);
  if (!re.test(type)) throw new RlsUsageError('ERR_RLS_BAD_TYPE', `unexpected column type ${JSON.stringify(type)}: only catalog type names are accepted`);
  return type;
}
