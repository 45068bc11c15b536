module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'storage-node',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
