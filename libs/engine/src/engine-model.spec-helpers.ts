import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FILE_HEADER_BYTES, SEGMENT_HEADER_BYTES } from '@cairn/log';
import { VirtualClock } from '@cairn/log/testing';
import { BitcaskEngine, EngineOp, type EngineEntry, type EngineOptions } from './index';

/** What `useTempEngines` hands a spec: fresh directories and engines opened in them, all removed after each test. */
export interface TempEngines {
  /** A new empty directory under the OS temp dir. */
  tempDir(): string;
  /** Opens an engine in `dir` with the spec's defaults overridden by `options`. */
  open(dir: string, options?: Partial<EngineOptions>): Promise<BitcaskEngine>;
}

/** The engine specs' clock: virtual, moving on its own to each timer's due time, so a paced merge never waits and report durations are exact. */
export const testClock = new VirtualClock(0, true);

/**
 * Registers an afterEach that closes every engine `open` made and removes every `tempDir`, so a
 * failing test leaves nothing behind. `defaults` are the spec's engine options (merge off unless
 * the spec turns it on; no merge pacing).
 */
export function useTempEngines(defaults: Partial<EngineOptions> = {}): TempEngines {
  const dirs: string[] = [];
  const engines: BitcaskEngine[] = [];
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close().catch(() => undefined);
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  return {
    tempDir: () => {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-'));
      dirs.push(d);
      return d;
    },
    open: async (dir, options = {}) => {
      const e = await BitcaskEngine.open({ dir, clock: testClock, autoMerge: false, mergeBytesPerSecondMax: Infinity, ...defaults, ...options });
      engines.push(e);
      return e;
    },
  };
}

/**
 * Writes `history` into a new engine in `dir` with its log hint files and closes it, then reopens it
 * from them: some hint files loaded, no warnings, and `expectHistory` holds. Leaves it closed.
 */
export async function expectHistoryFromHints(engines: TempEngines, dir: string, history: (e: BitcaskEngine) => Promise<void>, expectHistory: (e: BitcaskEngine) => void): Promise<void> {
  const e = await engines.open(dir);
  await history(e);
  await e.writeLogHints();
  await e.close();
  const hinted = await engines.open(dir);
  expect(hinted.openReport.logHintFilesLoaded).toBeGreaterThan(0);
  expect(hinted.openReport.warnings).toEqual([]);
  expectHistory(hinted);
  await hinted.close();
}

/**
 * Shared by the engine's merge and log hint specs: a model of what a store must hold (key →
 * value and revision, null once deleted), a workload that folds into it, and the checks of an
 * engine against it.
 */
export type Expected = Map<string, { value: string; revision: number } | null>;

/** Applies entries built by `make(index)` for indexes after the engine's, `batch` a call; folds them into `expected`. */
export async function applyMany(e: BitcaskEngine, expected: Expected, count: number, make: (index: number) => EngineEntry, batch = 2_000): Promise<void> {
  let next = e.appliedIndex() + 1;
  const end = next + count;
  while (next < end) {
    const entries: EngineEntry[] = [];
    for (; next < end && entries.length < batch; next++) {
      const entry = make(next);
      entries.push(entry);
      if (entry.op === EngineOp.Set) expected.set(entry.key.toString(), { value: Buffer.from(entry.value).toString(), revision: entry.index });
      else if (entry.op === EngineOp.Delete) expected.set(entry.key.toString(), null);
    }
    await e.apply(entries);
  }
}

/** Overwrites `keys` keys round-robin, deleting every 7th write's key, with a no-op every 50th index; values tagged `tag`. */
export const workload =
  (keys: number, tag: string) =>
  (index: number): EngineEntry => {
    if (index % 50 === 0) return { index, op: EngineOp.Noop, key: Buffer.alloc(0), value: Buffer.alloc(0) };
    const key = Buffer.from(`key-${index % keys}`);
    return index % 7 === 0 ? { index, op: EngineOp.Delete, key, value: Buffer.alloc(0) } : { index, op: EngineOp.Set, key, value: Buffer.from(`${tag}-value-${index}-${'x'.repeat(index % 40)}`) };
  };

/** The engine holds exactly `expected`: every key's value and revision, deleted keys absent, the key count; and its byte accounting holds. */
export function expectContents(e: BitcaskEngine, expected: Expected): void {
  let live = 0;
  for (const [key, want] of expected) {
    const got = e.get(Buffer.from(key));
    if (want === null) {
      if (got !== null) throw new Error(`${key}: expected deleted, got revision ${got.revision}`);
      continue;
    }
    live++;
    if (!got || got.revision !== want.revision || got.value.toString() !== want.value) throw new Error(`${key}: expected ${want.value}@${want.revision}, got ${got ? `${got.value.toString()}@${got.revision}` : 'null'}`);
  }
  expect(e.stats().keys).toBe(live);
  expectAccounting(e);
}

/** Byte accounting invariant: every record byte of every data file is live or dead. */
function expectAccounting(e: BitcaskEngine): void {
  const s = e.stats();
  expect(s.liveBytes + s.deadBytes + s.mergedFiles * FILE_HEADER_BYTES + (s.files - s.mergedFiles) * SEGMENT_HEADER_BYTES).toBe(s.dataBytes);
}

/** Flips one bit of the byte at `at` of `file` (a corruption the CRC32s must catch). */
export function flipByte(file: string, at: number): void {
  const data = fs.readFileSync(file);
  data[at] ^= 0x40;
  fs.writeFileSync(file, data);
}
