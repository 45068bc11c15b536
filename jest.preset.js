/** Shared Jest settings: swc transform (keeps decorator metadata for NestJS DI) and the
 * `@cairn/source` export condition so tests import workspace libs from their sources. */
module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: {
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true },
          target: 'es2022',
        },
        module: { type: 'commonjs' },
      },
    ],
  },
  testEnvironmentOptions: { customExportConditions: ['@cairn/source', 'node', 'require', 'default'] },
  moduleFileExtensions: ['ts', 'js', 'json'],
};
module.exports.reporters = ['default', require('node:path').join(__dirname, 'tools/scripts/jest-summary-reporter.js')];
// Generous per-test timeout: CI runs suites side by side on 2 cores; tests assert on outcomes, never on speed.
module.exports.testTimeout = 60_000;

/**
 * One project's Jest config: the shared settings above, its `displayName`, the specs under
 * `<dir>/src`, then `own` settings (a longer testTimeout, a testMatch of its own, ...).
 * Not enumerable, so a spread of this preset does not pass it to Jest as an option.
 */
Object.defineProperty(module.exports, 'project', {
  enumerable: false,
  value: (dir, displayName, own = {}) => ({ ...module.exports, displayName, rootDir: dir, testMatch: ['<rootDir>/src/**/*.spec.ts'], ...own }),
});
