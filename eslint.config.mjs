// Flat ESLint config.
// - The Nx module-boundary rule keeps the pure libs (type:pure) free of NestJS and NATS, and lets
//   apps depend on libs but never the other way round.
// - Pure libs are deterministic: no Node built-ins except the few they exist for, and no clock,
//   timers or Math.random (below a process shell, time and randomness are injected: @cairn/world).
// - A function-length limit keeps each function one step a reader can hold.
// - No `x as unknown as T` in source, specs and test helpers included: a double cast hides a type
//   that does not fit (issue 10).
import nx from '@nx/eslint-plugin';
import { builtinRules } from 'eslint/use-at-your-own-risk';
import { readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

/** Test code (specs, their helpers, test entry points) is exempt from the src-only rules below. */
const TEST_FILES = ['**/*.spec.ts', '**/*.spec-helpers.ts', '**/testing/**', '**/testing.ts'];

/** The libs tagged type:pure in their project.json: the tag drives the rule, not a second list. */
const LIBS_DIR = new URL('./libs/', import.meta.url);
const PURE_LIBS = readdirSync(LIBS_DIR).filter((lib) => {
  try {
    return JSON.parse(readFileSync(new URL(`${lib}/project.json`, LIBS_DIR), 'utf8')).tags?.includes('type:pure');
  } catch {
    return false;
  }
});
const pureSrc = (lib) => `libs/${lib}/src/**/*.ts`;

/** `node:*` and the bare built-in names, minus `allowed` (e.g. ['fs', 'path']). */
function noNodeBuiltins(allowed = []) {
  const why = 'pure libs do not reach the OS: take what you need as a parameter (docs/architecture.md, the injected world)';
  return [
    'error',
    {
      paths: builtinModules.filter((m) => !m.startsWith('_') && !allowed.some((a) => m === a || m.startsWith(`${a}/`))).map((name) => ({ name, message: why })),
      patterns: [{ group: ['node:*', ...allowed.flatMap((a) => [`!node:${a}`, `!node:${a}/*`])], message: why }],
    },
  ];
}

/**
 * `x as unknown as T` (and `as any as T`, and the `<T><unknown>x` spelling): give the value a type
 * that fits instead (the code under test takes a Pick<> or interface of what it uses, the fake is
 * checked with `satisfies`; a deliberately malformed input is a typed variable or a
 * `@ts-expect-error` with its reason).
 */
const NO_DOUBLE_CAST = {
  selector: ':matches(TSAsExpression, TSTypeAssertion) > :matches(TSAsExpression, TSTypeAssertion).expression[typeAnnotation.type=/^TS(Unknown|Any)Keyword$/]',
  message: "no `as unknown as`: narrow the dependency's type or use satisfies (issue 10)",
};

const NO_CLOCK_NOR_RANDOM = {
  'no-restricted-globals': [
    'error',
    ...['setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'clearImmediate'].map((name) => ({
      name,
      message: 'pure libs take a Clock (@cairn/world) or a callback, never a real timer',
    })),
  ],
  'no-restricted-properties': [
    'error',
    { object: 'Date', property: 'now', message: 'pure libs take the time as a parameter (a Clock, or nowMs)' },
    { object: 'Math', property: 'random', message: 'pure libs take randomness as a parameter (a Random, or () => number)' },
  ],
  // Repeats NO_DOUBLE_CAST: a later config's no-restricted-syntax replaces an earlier one's.
  'no-restricted-syntax': ['error', { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'pure libs take the time as a parameter' }, NO_DOUBLE_CAST],
};

// A second name for the core rule, so one config can warn at one length and fail at another.
const cairn = { rules: { 'max-lines-per-function-hard': builtinRules.get('max-lines-per-function') } };
const LINES = { skipBlankLines: true, skipComments: true, IIFEs: true };

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
    // Specs and test helpers too (the src-only configs below repeat it: a later config's
    // no-restricted-syntax replaces an earlier one's).
    files: ['**/src/**/*.ts'],
    rules: { 'no-restricted-syntax': ['error', NO_DOUBLE_CAST] },
  },
  {
    // Function length, source only. Warn above 70 lines (about a screen): split it by step. Fail
    // above 100: after the Raft split the longest function there is 35 lines, and what remains
    // between 70 and 100 is sequential wiring (a tool's main() reading its options, a snapshot or
    // merge run step by step); above 100 a function has always been a whole program in one
    // (a 298-line chaos run, a 184-line CLI builder), which is what the bound exists to stop.
    // Tests are exempt: a describe() callback is a list of cases, not one function.
    files: ['**/src/**/*.ts'],
    ignores: TEST_FILES,
    plugins: { cairn },
    rules: {
      'max-lines-per-function': ['warn', { max: 70, ...LINES }],
      'cairn/max-lines-per-function-hard': ['error', { max: 100, ...LINES }],
      'no-restricted-syntax': ['error', NO_DOUBLE_CAST],
    },
  },
  {
    // Pure libs: deterministic and OS-free (the exceptions below say why they need what they need).
    files: PURE_LIBS.map(pureSrc),
    ignores: TEST_FILES,
    rules: { 'no-restricted-imports': noNodeBuiltins(), ...NO_CLOCK_NOR_RANDOM },
  },
  {
    // The Raft log and the storage engine are files on disk (their real Disk, and zlib.crc32 as
    // their checksum).
    files: ['libs/log/src/**/*.ts', 'libs/engine/src/**/*.ts'],
    ignores: TEST_FILES,
    rules: { 'no-restricted-imports': noNodeBuiltins(['fs', 'path', 'zlib', 'util']) },
  },
  {
    // Loading the config file is the config lib's one I/O; the checker reads a history file.
    files: ['libs/config/src/load.ts', 'libs/checker/src/check.ts'],
    rules: { 'no-restricted-imports': noNodeBuiltins(['fs', 'path']) },
  },
  {
    // Network clients: the SDK's TCP connection and the RESP test client. The SDK runs inside the
    // user's process, so its request deadlines, reconnect, lease keep-alive and watch-resume timers are real ones.
    files: ['libs/client/src/client.ts', 'libs/client/src/pool.ts', 'libs/client/src/lease-keeper.ts', 'libs/client/src/watch.ts', 'libs/resp/src/socket-client.ts'],
    rules: { 'no-restricted-imports': noNodeBuiltins(['net', 'tls', 'events']), 'no-restricted-globals': 'off', 'no-restricted-properties': 'off' },
  },
  {
    // The whole-cluster simulator assembles the apps' own classes (Replica, StorageNode, the
    // gateway's paths) in one process, so it imports apps by relative path, which the boundary
    // rule forbids everywhere else. Nothing imports tools/sim.
    files: ['tools/sim/src/**/*.ts'],
    rules: { '@nx/enforce-module-boundaries': 'off' },
  },
];
