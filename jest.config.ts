import type { Config } from 'jest';
import { getJestProjectsAsync } from '@nx/jest';

/**
 * Every jest project at once (`npm test` runs this in band). In multi-project runs Jest reads the
 * test timeout from here, not from the projects: suites talk to a real KDC and PostgreSQL, and
 * one waits for a 10-second ticket to expire.
 */
export default async (): Promise<Config> => ({
  projects: await getJestProjectsAsync(),
  testTimeout: 120_000,
});
