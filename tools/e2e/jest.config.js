module.exports = require('../../jest.preset.js').project(__dirname, 'e2e', {
  testMatch: ['<rootDir>/src/**/*.e2e.spec.ts'],
  testTimeout: 300_000,
  testSequencer: require('node:path').join(__dirname, 'sequencer.js'),
});
