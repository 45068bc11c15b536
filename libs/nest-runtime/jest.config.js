module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'nest-runtime',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
