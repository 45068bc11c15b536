module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'world',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
