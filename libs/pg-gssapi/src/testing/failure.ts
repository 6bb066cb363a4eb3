/** Test helper (not part of the package), shared by the GSSAPI-encryption and TLS specs. */
import type { PgAuthError } from '../index';

/** The error a promise rejects with; throws when it resolves instead. */
export async function failure(p: Promise<unknown>): Promise<PgAuthError> {
  try {
    await p;
  } catch (err) {
    return err as PgAuthError;
  }
  throw new Error('expected a failure');
}
