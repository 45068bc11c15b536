module.exports = require('../../jest.preset.js').project(__dirname, 'cli', {
  // cli.ts's dynamic import('./bench.js') (module=nodenext names the compiled file): in tests, the .ts source.
  // Only ./bench.js, so no package's own relative requires are remapped.
  moduleNameMapper: { '^\\./bench\\.js$': './bench' },
});
