// CPU per row of a storage node's apply path alone, in one process (no bus, no Raft): the rows of a
// TSV file as TXNs of ROWS_PER_TXN puts (cairn import's shape), each entry turned into engine
// entries by the storage node's CommandApplier (txn evaluation, lease bookkeeping, watch events)
// and applied to a real BitcaskEngine in a temp dir (one record and one fdatasync per entry).
// `--overwrite`: the same rows twice, the second pass measured (every put replaces a key a TXN wrote).
// usage: node tools/bench/scripts/txn-apply-cpu.js TREE FILE [--overwrite] [--rounds N]   (TREE: a built repo tree)
// docs/benchmarks.md "Import and restore, 2026-12-08".
const fs = require('fs');
const os = require('os');
const [tree, file, ...rest] = process.argv.slice(2);
const overwrite = rest.includes('--overwrite');
const rounds = Number(rest[rest.indexOf('--rounds') + 1] || 3);
const ROWS_PER_TXN = 128;
const { BitcaskEngine } = require(tree + '/libs/engine/dist/index.js');
const P = require(tree + '/libs/protocol/dist/index.js');
const { CommandApplier } = require(tree + '/apps/storage-node/dist/node/command-applier.js');
const { SessionTable } = require(tree + '/apps/storage-node/dist/node/session-table.js');
const { realClock } = require(tree + '/libs/world/dist/index.js');
const lines = fs.readFileSync(file, 'utf8').split('\n').slice(1).filter(Boolean);
const rows = lines.map((l) => {
  const t = l.indexOf('\t');
  return [Buffer.from(l.slice(0, t)), Buffer.from(l.slice(t + 1))];
});
const commands = [];
for (let i = 0; i < rows.length; i += ROWS_PER_TXN) {
  const success = rows.slice(i, i + ROWS_PER_TXN).map(([key, value]) => ({ kind: P.TxnOpKind.Put, key, value, flags: 0 }));
  const value = P.encodeTxnCommandValue({ limits: { resultBytesMax: 1 << 20, keysMax: 10_000 }, request: { compares: [], success, failure: [] } });
  commands.push(P.encodeCommand({ op: P.CommandOp.Txn, key: Buffer.alloc(0), value }));
}
(async () => {
  for (let round = 1; round <= rounds; round++) {
    const dir = fs.mkdtempSync(os.tmpdir() + '/cairn-txn-apply-');
    const engine = await BitcaskEngine.open({ clock: realClock, dir, autoMerge: false, logHints: false });
    const applier = new CommandApplier({ get: (k) => engine.get(k), range: (q) => engine.range(q), sessions: new SessionTable() });
    let index = 0;
    let cpu = null;
    for (let pass = overwrite ? 2 : 1; pass >= 1; pass--) {
      if (pass === 1) cpu = process.cpuUsage();
      for (const data of commands) {
        const part = applier.toEngineEntries([{ index: ++index, term: 1, type: 0, data }]);
        await engine.apply(part.engine);
      }
    }
    const c = process.cpuUsage(cpu);
    const us = c.user + c.system;
    console.log(`round ${round}${overwrite ? ' overwrite' : ''}: ${rows.length} rows, ${commands.length} txns, cpu ${(us / 1000).toFixed(0)} ms = ${(us / rows.length).toFixed(2)} µs/row`);
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
})();
