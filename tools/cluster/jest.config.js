module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'cluster',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
