/**
 * `npx nx run api-db:migrate`: apply the schema's migrations as the operator, with the ticket in
 * their own credential cache (`kinit dbadmin` first). No password is read or stored.
 *
 * Reads FORWARDABLE_PG_HOST (the host in postgres/<host>), FORWARDABLE_PG_HOSTADDR,
 * FORWARDABLE_PG_PORT, FORWARDABLE_PG_DATABASE, FORWARDABLE_PG_GSSENCMODE and KRB5CCNAME.
 */
import { Credential } from '@forwardable/gssapi';
import { gssapiTargetFromEnv } from '@forwardable/pg-gssapi';
import { runMigrations } from './lib/migrate';

async function main(): Promise<void> {
  const env = process.env;
  const target = gssapiTargetFromEnv(env);
  const cache = env.KRB5CCNAME;
  if (!cache) throw new Error('KRB5CCNAME is not set: run kinit as the database owner (e.g. kinit dbadmin) and export KRB5CCNAME');
  const credential = await Credential.fromCache(cache, 'password');
  try {
    const ran = await runMigrations({ ...target, port: target.port ?? 5432, credential });
    console.log(ran.length ? `applied as ${credential.principal}: ${ran.join(', ')}` : 'schema is up to date');
  } finally {
    credential.dispose();
  }
}

main().catch((err: Error) => {
  console.error(`migrate: ${err.message}`);
  process.exit(1);
});
