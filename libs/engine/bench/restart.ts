/**
 * Restart benchmark (docs/engine.md "Figures"): writes 1,000,000 keys, overwrites a tenth of them,
 * merges (8 MiB data files), then times a reopen from hint files and a reopen by scanning the data files (hint files
 * removed), and measures keydir heap bytes per key (heap delta of an open / keys, after a full GC).
 * Not part of the default suite; run it with
 *   CAIRN_ENGINE_BENCH=1 npx jest -c libs/engine/jest.config.js --runInBand
 * `CAIRN_ENGINE_BENCH_KEYS` changes the key count.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { BitcaskEngine, EngineOp, type EngineEntry } from '../src/index';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const keys = Number(process.env['CAIRN_ENGINE_BENCH_KEYS'] ?? 1_000_000);
const key = (i: number): Buffer => Buffer.from(`key-${String(i).padStart(8, '0')}`);
/** Small data files so that the active one (always scanned at open) is a small part of the store. */
const segmentBytesMax = 8 * 1024 * 1024;
const value = (i: number): Buffer => Buffer.from(`value-${i}-`.padEnd(100, 'v'));

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

async function timedOpen(dir: string): Promise<{ engine: BitcaskEngine; openMs: number; heapBytes: number }> {
  const before = heapAfterGc();
  const started = process.hrtime.bigint();
  const engine = await BitcaskEngine.open({ dir, segmentBytesMax, autoMerge: false });
  const openMs = Number(process.hrtime.bigint() - started) / 1e6;
  return { engine, openMs, heapBytes: heapAfterGc() - before };
}

it(`restart with ${keys} keys after a merge`, async () => {
  const dir = fs.mkdtempSync(os.tmpdir() + '/cairn-bench-');
  try {
    const writer = await BitcaskEngine.open({ dir, segmentBytesMax, autoMerge: false, mergeBytesPerSecondMax: Infinity });
    const total = keys + keys / 10;
    const writeStarted = Date.now();
    for (let start = 1; start <= total; start += 10_000) {
      const entries: EngineEntry[] = [];
      for (let i = start; i < start + 10_000 && i <= total; i++) {
        entries.push({ index: i, op: EngineOp.Set, key: key(i <= keys ? i : (i * 7919) % keys), value: value(i) });
      }
      await writer.apply(entries);
    }
    const writeMs = Date.now() - writeStarted;
    const merge = await writer.merge();
    const stats = writer.stats();
    await writer.close();

    const withHints = await timedOpen(dir);
    const report = withHints.engine.openReport;
    expect(report.mergedFilesScanned).toBe(0);
    expect(withHints.engine.stats().keys).toBe(keys);
    expect(withHints.engine.get(key(12_345))?.value).toEqual(value(12_345));
    await withHints.engine.close();

    for (const name of fs.readdirSync(dir)) if (name.endsWith('.hint')) fs.rmSync(path.join(dir, name));
    const scanned = await timedOpen(dir);
    expect(scanned.engine.openReport.mergedFilesScanned).toBe(report.mergedFiles);
    expect(scanned.engine.stats().keys).toBe(keys);
    await scanned.engine.close();

    console.log(
      JSON.stringify(
        {
          keys,
          writeMs,
          merge: { durationMs: merge.durationMs, inputFiles: merge.inputFiles, outputFiles: merge.outputFiles, bytesRead: merge.bytesRead, bytesWritten: merge.bytesWritten },
          dataBytes: stats.dataBytes,
          hintBytes: stats.hintBytes,
          liveBytes: stats.liveBytes,
          reopenFromHintsMs: Math.round(withHints.openMs),
          reopenByScanMs: Math.round(scanned.openMs),
          hintFilesLoaded: report.hintFilesLoaded,
          logFilesScanned: report.logFilesScanned,
          keydirHeapBytesPerKey: Math.round(withHints.heapBytes / keys),
        },
        null,
        2,
      ),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 600_000);
