/**
 * `npx nx run api:doctor`: check the Kerberos and PostgreSQL set-up with the API's own
 * configuration (the same FORWARDABLE_* variables). Exit 0 when everything is fine.
 */
import { ConfigError, loadConfig } from './app/config';
import { runDoctor } from './app/doctor';

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    console.log(`FAIL configuration\n${(e as Error).message}`);
    return e instanceof ConfigError ? 1 : 2;
  }
  console.log('ok   configuration');
  const checks = await runDoctor(config);
  for (const c of checks) console.log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
  return checks.every((c) => c.ok) ? 0 : 1;
}

main().then((code) => process.exit(code), (e: Error) => {
  console.error(`doctor: ${e.message}`);
  process.exit(2);
});
