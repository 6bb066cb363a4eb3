import { configFromEnv } from './config';
import { createApp } from './bootstrap';

async function main(): Promise<void> {
  const app = await createApp(configFromEnv());
  const port = Number(process.env['PORT'] ?? 3000);
  await app.listen(port, '127.0.0.1');
  console.log(`expense reports on http://localhost:${port}/api/reports`);
}

void main();
