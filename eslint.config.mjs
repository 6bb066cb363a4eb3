import nx from '@nx/eslint-plugin';

/**
 * Module boundaries: the tree shows the architecture, and a wrong import fails lint.
 * scope:web (Angular) never reaches the server stack; scope:api never reaches Angular;
 * scope:shared (contracts) imports no framework at all. Every rule is proven by
 * tools/workspace/boundaries.spec.ts, which lints a deliberately bad import against it.
 */
export const depConstraints = [
  { sourceTag: 'scope:web', onlyDependOnLibsWithTags: ['scope:web', 'scope:shared'],
    bannedExternalImports: ['@nestjs/*', 'typeorm', 'pg', 'pg-*', 'passport*', 'kerberos'] },
  { sourceTag: 'scope:api', onlyDependOnLibsWithTags: ['scope:api', 'scope:shared'],
    bannedExternalImports: ['@angular/*'] },
  { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'],
    bannedExternalImports: ['@nestjs/*', '@angular/*', 'typeorm', 'pg', 'rxjs'] },
  { sourceTag: 'scope:tools', onlyDependOnLibsWithTags: ['scope:tools', 'scope:api', 'scope:shared'] },
  { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:feature', 'type:data-access', 'type:package', 'type:ui', 'type:util', 'type:driver', 'type:native'] },
  // Features use the data-access layer and the published building blocks, never the GSSAPI binding
  // (type:native) or the PostgreSQL GSSAPI driver (type:driver) directly: how a connection as the
  // user is made is decided in one place (libs/api/db, libs/nest).
  { sourceTag: 'type:feature', onlyDependOnLibsWithTags: ['type:feature', 'type:data-access', 'type:package', 'type:ui', 'type:util'] },
  { sourceTag: 'type:data-access', onlyDependOnLibsWithTags: ['type:data-access', 'type:package', 'type:util', 'type:driver', 'type:native'] },
  // Published packages (@forwardable/nest): generic building blocks, never the file browser's code.
  { sourceTag: 'type:package', onlyDependOnLibsWithTags: ['type:package', 'type:util', 'type:driver', 'type:native'] },
  // examples/: written only against the published packages (their tests run on the packed tarballs).
  { sourceTag: 'type:example', onlyDependOnLibsWithTags: ['type:package', 'type:util', 'type:driver', 'type:native'] },
  { sourceTag: 'type:ui', onlyDependOnLibsWithTags: ['type:ui', 'type:util'] },
  { sourceTag: 'type:util', onlyDependOnLibsWithTags: ['type:util', 'type:driver', 'type:native'] },
  // @forwardable/pg-gssapi: node-postgres over the binding, nothing else of ours.
  { sourceTag: 'type:driver', onlyDependOnLibsWithTags: ['type:native'] },
  // The native binding depends on nothing of ours (an empty list allows no workspace project):
  // it is the bottom layer, published on its own.
  { sourceTag: 'type:native', onlyDependOnLibsWithTags: [] },
  { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['type:util', 'type:driver', 'type:native', 'type:data-access', 'type:package', 'type:testing'] },
  // What npm users install must resolve on npm: a published package imports only published ones.
  { sourceTag: 'publish:npm', onlyDependOnLibsWithTags: ['publish:npm'] },
];

export default [
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  ...nx.configs['flat/javascript'],
  {
    ignores: ['**/dist', '**/out-tsc', '**/build', 'tmp/**', '**/vite.config.*.timestamp*'],
  },
  {
    files: ['**/*.ts', '**/*.tsx', '**/*.js', '**/*.jsx'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: true,
          allow: ['^.*/eslint(\\.base)?\\.config\\.[cm]?[jt]s$'],
          depConstraints,
        },
      ],
    },
  },
  {
    // Specs and test helpers (src/testing) may also use the testing libraries: the real realm.
    files: ['**/*.spec.ts', '**/src/testing/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          // Tests run from source: a buildable library's specs may use source-only test helpers.
          enforceBuildableLibDependency: false,
          allow: ['^.*/eslint(\\.base)?\\.config\\.[cm]?[jt]s$'],
          depConstraints: depConstraints.map((c) =>
            c.onlyDependOnLibsWithTags && !c.sourceTag.startsWith('scope:web')
              ? { ...c, onlyDependOnLibsWithTags: [...c.onlyDependOnLibsWithTags, 'type:testing', 'scope:tools'] }
              : c,
          ),
        },
      ],
    },
  },
];
