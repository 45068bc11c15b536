// Flat ESLint config. The Nx module-boundary rule keeps the pure libs (type:pure) free of
// NestJS and NATS, and lets apps depend on libs but never the other way round.
import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

export default [
  { ignores: ['**/dist/**', '**/node_modules/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: [],
          depConstraints: [
            {
              sourceTag: 'type:pure',
              onlyDependOnLibsWithTags: ['type:pure'],
              bannedExternalImports: ['@nestjs/*', 'nats', 'nats/*', 'pino', 'rxjs'],
            },
            {
              sourceTag: 'type:runtime',
              onlyDependOnLibsWithTags: ['type:pure', 'type:runtime'],
              bannedExternalImports: ['@nestjs/*'],
            },
            { sourceTag: 'type:nest', onlyDependOnLibsWithTags: ['type:pure', 'type:runtime'] },
            { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:pure', 'type:runtime', 'type:nest'] },
            { sourceTag: 'type:tool', onlyDependOnLibsWithTags: ['type:pure', 'type:runtime', 'type:tool'] },
          ],
        },
      ],
    },
  },
  {
    // The whole-cluster simulator assembles the apps' own classes (Replica, StorageNode, the
    // gateway's paths) in one process, so it imports apps by relative path, which the boundary
    // rule forbids everywhere else. Nothing imports tools/sim.
    files: ['tools/sim/src/**/*.ts'],
    rules: { '@nx/enforce-module-boundaries': 'off' },
  },
];
