/** What the service needs to know; read from the environment by {@link configFromEnv}. */
export interface ExpenseConfig {
  keytab: string;
  servicePrincipal: string;
  delegation: 'constrained' | 'unconstrained';
  krb5Config?: string;
  replayCacheDir?: string;
  pg: { host: string; hostaddr?: string; port: number; database: string };
}

/** The configuration from environment variables; a missing one stops the start with its name. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): ExpenseConfig {
  const need = (name: string): string => {
    const v = env[name];
    if (!v) throw new Error(`${name} is not set: see examples/expense-reports/README.md`);
    return v;
  };
  const delegation = env['EXPENSES_DELEGATION'] ?? 'constrained';
  if (delegation !== 'constrained' && delegation !== 'unconstrained') throw new Error('EXPENSES_DELEGATION must be constrained or unconstrained');
  return {
    keytab: need('EXPENSES_KEYTAB'),
    servicePrincipal: need('EXPENSES_SERVICE_PRINCIPAL'),
    delegation,
    krb5Config: env['KRB5_CONFIG'],
    replayCacheDir: env['KRB5RCACHEDIR'],
    pg: {
      host: need('EXPENSES_PG_HOST'),
      hostaddr: env['EXPENSES_PG_HOSTADDR'],
      port: Number(env['EXPENSES_PG_PORT'] ?? 5432),
      database: need('EXPENSES_PG_DATABASE'),
    },
  };
}
