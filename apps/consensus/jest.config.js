module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'consensus',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
