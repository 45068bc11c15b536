module.exports = require('../../jest.preset.js').project(__dirname, 'chaos', {
  // The short chaos run starts a real cluster and lasts ~20 s plus start-up, healing and the check.
  testTimeout: 180_000,
});
