module.exports = {
  displayName: 'gssapi',
  preset: '../../jest.preset.js',
  testEnvironment: 'node',
  transform: {
    '^.+\\.[tj]s$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.spec.json' }],
  },
  moduleFileExtensions: ['ts', 'js', 'html'],
  coverageDirectory: '../../coverage/libs/gssapi',
  // Every suite talks to a real KDC (and some start a realm): be generous.
  testTimeout: 60_000,
  // Suites share two realms and the machine's 2 cores; the event-loop-latency test measures
  // timers and must not compete with other suites' CPU-heavy work.
  maxWorkers: 1,
};
