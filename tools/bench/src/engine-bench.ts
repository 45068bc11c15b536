/**
 * Engine restart benchmark (docs/engine.md "Figures", docs/benchmarks.md "Engine"): fills a
 * `BitcaskEngine` with `--keys` distinct keys (`pkg:<name>`, 16–20 bytes) and 100-byte values,
 * merges once (so hint files cover every immutable data file), closes it, then reopens it
 * `--reopens` times and measures for each:
 * - `reopenMs`: from `BitcaskEngine.open` to the first `get` served (reads can be served);
 * - keydir memory: heapUsed + arrayBuffers after a full GC with the engine open minus before it,
 *   per key (`heapBytesPerKey`), minus the average key length (`keydirBytesPerKeyBeyondKey`).
 * Then checks a sample of keys read back. `--scan` also times a reopen with the hint files
 * removed (every merged file scanned). Prints one JSON object.
 *
 * Run (after `npx tsc -b tools/bench/tsconfig.build.json`):
 *   node --expose-gc tools/bench/dist/engine-bench.js [--keys 1000000] [--segment-mib 8] [--reopens 3] [--scan] [--no-merge] [--dir D]
 * `--no-merge` skips the merge (a store that was never merged: only log data files).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BitcaskEngine, EngineOp, type EngineEntry } from '@cairn/engine';
import { realClock } from '@cairn/world';
import { readFlags } from './bench-cluster';

interface Args {
  keys: number;
  segmentMib: number;
  reopens: number;
  scan: boolean;
  /** Skip the merge: every data file stays a log file (no merged files). */
  noMerge: boolean;
  dir: string | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { keys: 1_000_000, segmentMib: 8, reopens: 3, scan: false, noMerge: false, dir: null };
  readFlags(
    argv,
    {
      '--keys': (v) => (a.keys = Number(v)),
      '--segment-mib': (v) => (a.segmentMib = Number(v)),
      '--reopens': (v) => (a.reopens = Number(v)),
      '--dir': (v) => (a.dir = v),
    },
    { '--scan': () => (a.scan = true), '--no-merge': () => (a.noMerge = true) },
  );
  if (!Number.isSafeInteger(a.keys) || a.keys < 1) throw new Error('--keys must be a positive integer');
  return a;
}

const NAMES = ['react', 'lodash', 'express', 'typescript', 'webpack', 'chalk', 'commander', 'debug', 'axios', 'moment', 'uuid', 'yargs', 'semver', 'glob', 'rimraf', 'minimist'];

/** `pkg:<name>/<i base 36>`: 17–23 bytes (19 on average), unique per i. */
export function benchKey(i: number): Buffer {
  return Buffer.from(`pkg:${NAMES[i % NAMES.length]}/${i.toString(36).padStart(8, '0')}`, 'latin1');
}

/** 100 bytes, different per i. */
export function benchValue(i: number): Buffer {
  return Buffer.from(`{"version":"${i % 97}.${i % 13}.${i}","tarball":"`.padEnd(100, 'x'), 'latin1');
}

/** V8 heap plus ArrayBuffer backing stores (typed arrays live outside the V8 heap), after a full GC. */
function heapAfterGc(gc: () => void): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

interface ReopenFigures {
  reopenMs: number;
  openReportMs: number;
  hintFilesLoaded: number;
  mergedFilesScanned: number;
  logFilesScanned: number;
  logHintFilesLoaded: number;
  heapBytesPerKey: number;
  keydirBytesPerKeyBeyondKey: number;
}

/** One reopen; its own function so that nothing of the engine stays reachable from the caller's frame between reopens. */
async function measureReopen(opts: { dir: string; segmentBytesMax: number; clock: typeof realClock }, keys: number, keyBytes: number, gc: () => void): Promise<ReopenFigures> {
  const before = heapAfterGc(gc);
  const started = process.hrtime.bigint();
  // logHints off: the measured open must not be sharing the CPU with a background hint writer.
  const engine = await BitcaskEngine.open({ ...opts, autoMerge: false, logHints: false });
  const first = engine.get(benchKey(1));
  const reopenMs = Number(process.hrtime.bigint() - started) / 1e6;
  if (!first || !first.value.equals(benchValue(1))) throw new Error('first key did not read back');
  const heapBytes = heapAfterGc(gc) - before;
  if (engine.stats().keys !== keys) throw new Error(`reopened with ${engine.stats().keys} keys, expected ${keys}`);
  for (let s = 0; s < 1000; s++) {
    const i = 1 + Math.floor(Math.random() * keys);
    if (!engine.get(benchKey(i))?.value.equals(benchValue(i))) throw new Error(`key ${i} did not read back`);
  }
  const rep = engine.openReport;
  await engine.close();
  return {
    reopenMs: Math.round(reopenMs),
    openReportMs: rep.durationMs,
    hintFilesLoaded: rep.hintFilesLoaded,
    mergedFilesScanned: rep.mergedFilesScanned,
    logFilesScanned: rep.logFilesScanned,
    logHintFilesLoaded: rep.logHintFilesLoaded,
    heapBytesPerKey: Math.round(heapBytes / keys),
    keydirBytesPerKeyBeyondKey: Math.round((heapBytes - keyBytes) / keys),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  const dir = args.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-engine-bench-'));
  const segmentBytesMax = args.segmentMib * 1024 * 1024;
  const opts = { dir, clock: realClock, segmentBytesMax, autoMerge: false, mergeBytesPerSecondMax: Infinity };
  try {
    let keyBytes = 0;
    const fillStarted = Date.now();
    const writer = await BitcaskEngine.open(opts);
    const batch = 10_000;
    for (let start = 1; start <= args.keys; start += batch) {
      const entries: EngineEntry[] = [];
      for (let i = start; i < start + batch && i <= args.keys; i++) {
        const key = benchKey(i);
        keyBytes += key.length;
        entries.push({ index: i, op: EngineOp.Set, key, value: benchValue(i) });
      }
      await writer.apply(entries);
    }
    const fillMs = Date.now() - fillStarted;
    const merge = args.noMerge ? null : await writer.merge();
    // Sealed log data files get hint files in the background as they seal; wait for the last ones.
    const hintsStarted = Date.now();
    await writer.writeLogHints();
    const logHintWaitMs = Date.now() - hintsStarted;
    const stats = writer.stats();
    await writer.close();

    const reopens: ReopenFigures[] = [];
    for (let r = 0; r < args.reopens; r++) reopens.push(await measureReopen(opts, args.keys, keyBytes, gc));

    let scanReopenMs: number | null = null;
    if (args.scan) {
      for (const name of fs.readdirSync(dir)) if (name.endsWith('.hint')) fs.rmSync(path.join(dir, name));
      const started = process.hrtime.bigint();
      const engine = await BitcaskEngine.open(opts);
      engine.get(benchKey(1));
      scanReopenMs = Math.round(Number(process.hrtime.bigint() - started) / 1e6);
      if (engine.stats().keys !== args.keys) throw new Error('scan reopen lost keys');
      await engine.close();
    }

    const sorted = [...reopens].sort((x, y) => x.reopenMs - y.reopenMs);
    console.log(
      JSON.stringify(
        {
          machine: { cpus: os.cpus().length, node: process.version, loadavg: os.loadavg().map((l) => Math.round(l * 10) / 10) },
          keys: args.keys,
          avgKeyBytes: Math.round((keyBytes / args.keys) * 10) / 10,
          valueBytes: 100,
          segmentBytesMax,
          fillMs,
          merge: merge && { durationMs: merge.durationMs, inputFiles: merge.inputFiles, outputFiles: merge.outputFiles, bytesRead: merge.bytesRead, bytesWritten: merge.bytesWritten },
          logHintWaitMs,
          logHintFiles: stats.logHintFiles,
          dataBytes: stats.dataBytes,
          hintBytes: stats.hintBytes,
          reopenMsMedian: sorted[Math.floor(sorted.length / 2)]?.reopenMs ?? null,
          keydirBytesPerKeyBeyondKeyMedian: [...reopens].sort((x, y) => x.keydirBytesPerKeyBeyondKey - y.keydirBytesPerKeyBeyondKey)[Math.floor(reopens.length / 2)]?.keydirBytesPerKeyBeyondKey ?? null,
          reopens,
          scanReopenMs,
        },
        null,
        2,
      ),
    );
  } finally {
    if (!args.dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
