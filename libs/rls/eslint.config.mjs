import baseConfig, { depConstraints } from '../../eslint.config.mjs';

export default [
  ...baseConfig,
  {
    // Specs run against the real realm (scope:tools test helpers) and check the generator on the
    // file browser's real entities (type:data-access); the library itself imports neither.
    files: ['**/*.spec.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: true,
          allow: ['@forwardable/testing/realm', '@forwardable/testing/delegation', '@forwardable/api/db'],
          depConstraints,
        },
      ],
    },
  },
];
