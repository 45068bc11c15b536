module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'resp',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
