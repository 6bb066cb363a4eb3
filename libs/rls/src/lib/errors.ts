/**
 * Errors of the RLS library. Caller mistakes (a malformed argument) are `TypeError`s with a
 * `code`; a mapping that does not fit the database is a {@link MappingValidationError} listing
 * every problem found, so a wizard can show them all at once.
 */

/** Codes of {@link RlsUsageError}. */
export type RlsUsageErrorCode = 'ERR_RLS_BAD_IDENTIFIER' | 'ERR_RLS_BAD_TYPE' | 'ERR_RLS_BAD_MAPPING' | 'ERR_RLS_BAD_QUERYABLE';

/** A caller mistake: a malformed name, type, mapping document or connection object. */
export class RlsUsageError extends TypeError {
  override readonly name = 'RlsUsageError';
  constructor(
    readonly code: RlsUsageErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** What a {@link MappingIssue} is about. */
export type MappingIssueCode =
  | 'TABLE_NOT_FOUND'
  | 'NO_PRIMARY_KEY'
  | 'COMPOSITE_PRIMARY_KEY'
  | 'COLUMN_NOT_FOUND'
  | 'COLUMN_NOT_TEXT'
  | 'NO_FOREIGN_KEY'
  | 'PARENT_NOT_MAPPED'
  | 'PARENT_CHAIN'
  | 'TABLE_MAPPED_TWICE'
  | 'GROUP_ROLE_NOT_FOUND'
  | 'SCHEMA_MISMATCH'
  | 'FOREIGN_POLICIES';

/** One problem with a mapping, with where it is (`tables[1].permission.fkColumn`). */
export interface MappingIssue {
  code: MappingIssueCode;
  /** JSON path into the mapping. */
  path: string;
  message: string;
  /** Warnings do not block generation (for example other, pre-existing policies on a table). */
  severity: 'error' | 'warning';
}

/** A mapping does not fit the introspected database; `issues` lists every problem. */
export class MappingValidationError extends Error {
  override readonly name = 'MappingValidationError';
  readonly code = 'ERR_RLS_MAPPING_INVALID' as const;
  constructor(readonly issues: MappingIssue[]) {
    super(`the RLS mapping does not fit the database:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`);
  }
}
