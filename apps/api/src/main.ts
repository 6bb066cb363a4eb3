import { Logger } from '@nestjs/common';
import { createApp } from './app/bootstrap';
import { ConfigError, loadConfig } from './app/config';

async function main() {
  const config = loadConfig();
  if (config.pg.cleartextWarning) Logger.warn(`SECURITY WARNING: ${config.pg.cleartextWarning}`, 'Bootstrap');
  const app = await createApp(config);
  await app.listen(config.port, config.listen);
  Logger.log(`Forwardable API on http://${config.listen}:${config.port}/api (${config.delegation} delegation)`, 'Bootstrap');
}

main().catch((err: Error) => {
  // A misconfiguration stops start-up with a message that says what to fix, and no stack.
  console.error(err instanceof ConfigError ? err.message : `Forwardable API failed to start: ${err.message}`);
  process.exit(1);
});
