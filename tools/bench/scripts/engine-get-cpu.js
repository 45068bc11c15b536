// CPU of BitcaskEngine.get on 20,000 keys (80-byte values) written one SET record each vs in batch
// records of 128 (a TXN's writes, as cairn import sends them): a get of a key whose live record is
// a batch record reads and decodes the whole batch record. The engine's value cache is off
// (valueCacheBytesMax 0): the cost of every get it misses, e.g. in a store larger than the cache.
// usage: node tools/bench/scripts/engine-get-cpu.js TREE   (TREE: a built repo tree)
// docs/benchmarks.md "Import and restore, 2026-12-08".
const fs = require('fs');
const os = require('os');
const tree = process.argv[2];
const { BitcaskEngine, EngineOp } = require(tree + '/libs/engine/dist/index.js');
const { realClock } = require(tree + '/libs/world/dist/index.js');
const KEYS = 20_000;
const BATCH = 128;
(async () => {
  for (const mode of ['set', `batch${BATCH}`]) {
    const dir = fs.mkdtempSync(os.tmpdir() + '/cairn-get-');
    const e = await BitcaskEngine.open({ clock: realClock, dir, autoMerge: false, logHints: false, valueCacheBytesMax: 0 });
    const keys = Array.from({ length: KEYS }, (_, i) => Buffer.from(`key-${i}`));
    const value = Buffer.alloc(80, 0x61);
    const size = mode === 'set' ? 1 : BATCH;
    const entries = [];
    for (let i = 0; i < KEYS; i += size) {
      const muts = keys.slice(i, i + size).map((key) => ({ op: EngineOp.Set, key, value }));
      entries.push(size === 1 ? { index: entries.length + 1, ...muts[0] } : { index: entries.length + 1, op: EngineOp.Batch, key: Buffer.alloc(0), value: Buffer.alloc(0), mutations: muts });
    }
    await e.apply(entries);
    // Three passes; the last one counts (JIT warm).
    let us = 0;
    for (let pass = 0; pass < 3; pass++) {
      const c0 = process.cpuUsage();
      for (const k of keys) e.get(k);
      const c = process.cpuUsage(c0);
      us = c.user + c.system;
    }
    console.log(`${mode}: ${(us / KEYS).toFixed(2)} µs of CPU per get`);
    await e.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
})();
