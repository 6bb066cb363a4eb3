/**
 * Row-level security for Forwardable: introspect a schema, map data tables to owner columns and
 * permission tables, and generate, apply or revert per-command policies that PostgreSQL enforces
 * for every user connection (the reference paper's "managedb", §3.6-3.7).
 * @packageDocumentation
 */
export { introspect, modelFromEntities, modelFromEntityClasses, type IntrospectOptions } from './lib/introspect';
export type { DatabaseModel, TableModel, ColumnModel, ForeignKeyModel, PermissionCandidate, PolicyModel } from './lib/model';
export {
  parseMapping,
  validateMapping,
  assertValidMapping,
  fileBrowserMapping,
  DEFAULT_GROUP_ROLE,
  type RlsMapping,
  type TableMapping,
  type PermissionMapping,
  type ParentMapping,
} from './lib/mapping';
export {
  planPolicies,
  renderSql,
  renderMigration,
  migrationFileName,
  HELPER_SETTING,
  type PolicyPlan,
  type SqlStatement,
  type GeneratedNames,
  type MigrationOptions,
} from './lib/generate';
export { applyPolicies, revertPolicies, planOnDatabase } from './lib/apply';
export { queryRows, openSession, inTransaction, type Queryable, type SqlSession } from './lib/queryable';
export { quoteIdent, quoteLiteral, qualify, objectName, assertIdentifier } from './lib/quote';
export { RlsUsageError, MappingValidationError, type RlsUsageErrorCode, type MappingIssue, type MappingIssueCode } from './lib/errors';
