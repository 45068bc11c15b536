// CPU µs per engine put and get in one process (no cluster, so robust to other load on the box): a BitcaskEngine over 2,000 keys of
// 256-byte values; a put is a get of the key's previous value and then an apply, 32 puts a batch with one fdatasync each (what a
// storage node does per applied put); a get is one engine get. docs/benchmarks.md "Storage nodes: CPU per operation".
// usage: node tools/bench/scripts/engine-cpu.js REPO VALUE_CACHE_BYTES PUTS (after a build; VALUE_CACHE_BYTES 0 = no value cache)
const path = require('path'); const fs = require('fs'); const os = require('os');
const [repo, cacheBytes, putsArg] = process.argv.slice(2);
const { BitcaskEngine, EngineOp } = require(path.join(repo, 'libs/engine/dist/index.js'));
const { realClock } = require(path.join(repo, 'libs/world/dist/index.js'));
(async () => {
  const dir = fs.mkdtempSync(os.tmpdir() + '/ttl-mb-');
  const e = await BitcaskEngine.open({ dir, clock: realClock, valueCacheBytesMax: Number(cacheBytes), autoMerge: false });
  const keys = Array.from({ length: 2000 }, (_, i) => Buffer.from(`bench/key/${i}`));
  const value = Buffer.alloc(256, 0x61);
  let index = 0;
  const run = async (puts) => {
    for (let done = 0; done < puts; ) {
      const batch = [];
      for (let j = 0; j < 32; j++, done++) {
        const key = keys[(Math.random() * keys.length) | 0];
        e.get(key);
        batch.push({ index: ++index, op: EngineOp.Set, key, value: Buffer.from(value) });
      }
      await e.apply(batch);
    }
  };
  await run(20000); // load + warm
  const puts = Number(putsArg);
  let c0 = process.cpuUsage();
  await run(puts);
  let c1 = process.cpuUsage(c0);
  const putUs = (c1.user + c1.system) / puts;
  c0 = process.cpuUsage();
  for (let i = 0; i < puts; i++) e.get(keys[(Math.random() * keys.length) | 0]);
  c1 = process.cpuUsage(c0);
  const getUs = (c1.user + c1.system) / puts;
  console.log(`cache ${cacheBytes}: put ${putUs.toFixed(2)} us (get of the previous value + apply, 32 a batch, fsync each), get ${getUs.toFixed(2)} us`);
  await e.close(); fs.rmSync(dir, { recursive: true, force: true });
})();
