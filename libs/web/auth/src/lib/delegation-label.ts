import type { DelegationKind } from '@forwardable/shared/contracts';

const LABELS: Record<DelegationKind, string> = {
  forwarded: 'Kerberos, delegated',
  proxy: 'Kerberos, constrained delegation',
  password: 'password sign-in',
};

/** How the session's credential is described to the user ("Kerberos, delegated"). */
export function delegationLabel(kind: DelegationKind): string {
  return LABELS[kind] ?? kind;
}
