/**
 * `npx nx run api-db:migrate`: apply the schema's migrations as the operator, with the ticket in
 * their own credential cache (`kinit dbadmin` first). No password is read or stored.
 *
 * Reads FORWARDABLE_PG_HOST (the host in postgres/<host>), FORWARDABLE_PG_HOSTADDR,
 * FORWARDABLE_PG_PORT, FORWARDABLE_PG_DATABASE and KRB5CCNAME (default: the library default cache).
 */
import { Credential } from '@forwardable/gssapi';
import { runMigrations } from './lib/migrate';

async function main(): Promise<void> {
  const env = process.env;
  const need = (k: string) => {
    const v = env[k];
    if (!v) throw new Error(`${k} is not set: source the realm's realm.env (or set it to your PostgreSQL's value)`);
    return v;
  };
  const cache = env.KRB5CCNAME;
  if (!cache) throw new Error('KRB5CCNAME is not set: run kinit as the database owner (e.g. kinit dbadmin) and export KRB5CCNAME');
  const credential = await Credential.fromCache(cache, 'password');
  try {
    const ran = await runMigrations({
      host: need('FORWARDABLE_PG_HOST'),
      hostaddr: env.FORWARDABLE_PG_HOSTADDR,
      port: Number(need('FORWARDABLE_PG_PORT')),
      database: need('FORWARDABLE_PG_DATABASE'),
      credential,
    });
    console.log(ran.length ? `applied as ${credential.principal}: ${ran.join(', ')}` : 'schema is up to date');
  } finally {
    credential.dispose();
  }
}

main().catch((err: Error) => {
  console.error(`migrate: ${err.message}`);
  process.exit(1);
});
