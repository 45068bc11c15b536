module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'sim',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
  // The seeds are sharded over sim-shard-*.spec.ts: one worker per core of the 2-core box.
  maxWorkers: 2,
};
