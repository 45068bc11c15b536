module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'engine',
  rootDir: __dirname,
  // CAIRN_ENGINE_BENCH=1 runs the benchmarks (bench/*.ts) instead of the unit tests.
  testMatch: process.env.CAIRN_ENGINE_BENCH ? ['<rootDir>/bench/*.ts'] : ['<rootDir>/src/**/*.spec.ts'],
};
