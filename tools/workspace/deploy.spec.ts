/**
 * docker-compose.yml cannot run here (no Docker engine), so it is validated: the Compose file
 * parses and resolves with docker-compose itself, and it uses the project's own start scripts.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '../..');

describe('docker-compose.yml', () => {
  it('is valid for docker-compose config', () => {
    const r = spawnSync('docker-compose', ['-f', join(root, 'docker-compose.yml'), 'config', '--services'], { cwd: root, encoding: 'utf8' });
    expect(r.stderr).not.toMatch(/error|invalid/i);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual(['api', 'realm', 'redis']);
  });

  it('starts the realm and the API with the same scripts as the demo and the tests', () => {
    const compose = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
    expect(compose).toMatch(/bash tools\/realm\/realm.sh up --dir \/realm\/demo --kdb ldap/);
    expect(compose).toMatch(/bash tools\/scripts\/stack.sh up --dir \/realm\/demo/);
    expect(compose).toMatch(/FORWARDABLE_REDIS_URL: redis:\/\//);
    expect(compose).not.toMatch(/PASSWORD/);
  });
});
