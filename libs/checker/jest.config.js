module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'checker',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
