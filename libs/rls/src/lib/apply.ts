/**
 * Apply and revert on a live connection: introspect as the connected role, validate, generate,
 * and run the statements in one transaction. Connect as the operator who owns the tables (with
 * their own delegated credential in the wizard, or their `kinit` ticket in the CLI); a role that
 * does not own them gets PostgreSQL's own "must be owner of table" error, untranslated.
 */
import { introspect } from './introspect';
import { RlsMapping } from './mapping';
import { planPolicies, PolicyPlan } from './generate';
import { inTransaction, Queryable } from './queryable';

/** Introspect `q` and plan `mapping` against it (what the wizard previews). */
export async function planOnDatabase(q: Queryable, mapping: RlsMapping): Promise<PolicyPlan> {
  const model = await introspect(q, { schema: mapping.schema });
  return planPolicies(mapping, model);
}

/**
 * Turn row-level security on as `mapping` says. Idempotent: applying twice leaves the same
 * policies, functions, grants and indexes, and keeps the record of the state before the first apply.
 * @returns the plan that ran (its `warnings` name pre-existing policies).
 * @throws MappingValidationError before touching anything if the mapping does not fit.
 */
export async function applyPolicies(q: Queryable, mapping: RlsMapping): Promise<PolicyPlan> {
  return inTransaction(q, async (s) => {
    const plan = await planOnDatabase(s, mapping);
    for (const st of plan.up) await s.query(st.sql);
    return plan;
  });
}

/**
 * Undo {@link applyPolicies}: restore RLS flags and grants as recorded by the first apply (so RLS
 * is disabled or not forced only if it was before), and drop our policies, helper functions and
 * the indexes we created. Idempotent; a no-op on tables that were never applied.
 */
export async function revertPolicies(q: Queryable, mapping: RlsMapping): Promise<PolicyPlan> {
  return inTransaction(q, async (s) => {
    const plan = await planOnDatabase(s, mapping);
    for (const st of plan.down) await s.query(st.sql);
    return plan;
  });
}
