module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'raft',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
