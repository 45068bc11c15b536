module.exports = require('../../jest.preset.js').project(__dirname, 'sim', {
  // The seeds are sharded over sim-shard-*.spec.ts: one worker per core of the 2-core box.
  maxWorkers: 2,
});
