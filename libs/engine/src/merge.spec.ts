import { crashCopy, crashOutcome, engineCrashChild } from './crash-child.spec-helpers';
import { applyMany, expectContents, flipByte, useTempEngines, workload, type Expected } from './engine-model.spec-helpers';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FILE_HEADER_BYTES, LogCorruptionError, SEGMENT_HEADER_BYTES } from '@cairn/log';
import { BitcaskEngine, EngineOp, MANIFEST_FILE_NAME, MergeAbortedError, hintFileName, mergedDataFileName, type EngineEntry, type EngineOptions, type MergeStep } from './index';

const b = (s: string): Buffer => Buffer.from(s);
/** Every file an opened engine directory may hold. */
const KNOWN_FILE = /^(\d{20}\.seg|merged-\d{20}\.(data|hint)|merge\.manifest)$/;

function dirBytes(dir: string): number {
  let total = 0;
  for (const name of fs.readdirSync(dir)) total += fs.statSync(path.join(dir, name)).size;
  return total;
}

const set = (index: number, key: string, value: string): EngineEntry => ({ index, op: EngineOp.Set, key: b(key), value: b(value) });
const del = (index: number, key: string): EngineEntry => ({ index, op: EngineOp.Delete, key: b(key), value: Buffer.alloc(0) });

describe('BitcaskEngine merge and hint files', () => {
  let dir: string;
  // Log hint files (written in the background as files seal) are off here so each test sees the
  // merge's files alone; log-hint.spec.ts covers merges with them.
  const { tempDir, open: openIn } = useTempEngines({ segmentBytesMax: 64 * 1024, logHints: false });
  const open = (o: Partial<EngineOptions> = {}, at = dir): Promise<BitcaskEngine> => openIn(at, o);
  beforeEach(() => {
    dir = tempDir();
  });

  it('10,000 keys overwritten 10 times: after a merge the directory is under 2x the live bytes and every key reads its last value', async () => {
    const e = await open({ segmentBytesMax: 256 * 1024 });
    const expected: Expected = new Map();
    const keys = 10_000;
    await applyMany(e, expected, keys * 10, (i) => set(i, `key-${i % keys}`, `value-${i}-${'v'.repeat(40)}`), 5_000);
    const before = e.stats();
    expect(before.liveBytes * 5).toBeLessThan(dirBytes(dir)); // the overwrites really are on disk
    const report = await e.merge();
    expect(report).toMatchObject({ error: null, recordsCopied: expect.any(Number), outputFiles: expect.any(Number) });
    expect(report.inputFiles).toBe(before.files - 1);
    const after = e.stats();
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(dirBytes(dir)).toBeLessThanOrEqual(2 * after.liveBytes);
    expect(after).toMatchObject({ keys, merges: 1, merging: false, mergedFiles: report.outputFiles, lastMerge: report });
    expect(after.mergeableDeadBytes).toBe(0);
    expectContents(e, expected);
    await e.close();
    const r = await open({ segmentBytesMax: 256 * 1024 });
    expectContents(r, expected);
    expect(r.appliedIndex()).toBe(keys * 10);
  });

  it('deletes stay deleted after merges and restarts; tombstones are dropped', async () => {
    const e = await open();
    const expected: Expected = new Map();
    await applyMany(e, expected, 6_000, workload(500, 'a'));
    const first = await e.merge();
    expect(first.tombstonesDropped).toBeGreaterThan(0);
    // Delete keys that now live in a merged file, and re-set some deleted ones.
    await applyMany(e, expected, 3_000, (i) => (i % 2 ? del(i, `key-${i % 500}`) : set(i, `key-${(i * 7) % 500}`, `b-${i}`)));
    expectContents(e, expected);
    const second = await e.merge();
    expect(second.inputFiles).toBeGreaterThan(1);
    expectContents(e, expected);
    await e.close();
    const r = await open();
    expectContents(r, expected);
    expect([...expected.values()].filter((v) => v === null).length).toBeGreaterThan(50);
  });

  it('reads and writes during a merge see the right values; copies overwritten meanwhile are dead', async () => {
    const steps: MergeStep[] = [];
    const expected: Expected = new Map();
    const engine: { e?: BitcaskEngine } = {};
    let checks = 0;
    const hook = async (step: MergeStep): Promise<void> => {
      const e = engine.e!;
      steps.push(step);
      expectContents(e, expected); // gets go on during the merge
      checks++;
      if (step === 'chunk' || step === 'installed' || step === 'committed') {
        // Writes go to the active file meanwhile: overwrite and delete keys the merge is copying.
        await applyMany(e, expected, 40, (i) => (i % 3 ? set(i, `key-${i % 300}`, `during-${step}-${i}`) : del(i, `key-${(i * 11) % 300}`)));
      }
    };
    const e = (engine.e = await open({ mergeHook: hook, mergeChunkBytes: 16 * 1024 }));
    await applyMany(e, expected, 5_000, workload(300, 'pre'));
    const report = await e.merge();
    expect(report.error).toBeNull();
    expect(steps.filter((s) => s === 'chunk').length).toBeGreaterThan(3);
    expect(steps.filter((s) => s !== 'chunk')).toEqual(['started', 'written', 'installed', 'committed', 'switched', 'deleted']);
    expect(checks).toBe(steps.length);
    expectContents(e, expected);
    expect(e.stats().deadBytes).toBeGreaterThan(0);
    await e.close();
    const r = await open();
    expectContents(r, expected);
  });

  it('restart after a merge loads the merged files from their hint files, not by scanning them', async () => {
    const e = await open();
    const expected: Expected = new Map();
    await applyMany(e, expected, 8_000, workload(2_000, 'h'));
    const report = await e.merge();
    expect(report.outputFiles).toBeGreaterThan(1);
    const statsBefore = e.stats();
    await e.close();
    const r = await open();
    expect(r.openReport).toMatchObject({ mergedFiles: report.outputFiles, hintFilesLoaded: report.outputFiles, mergedFilesScanned: 0, logFilesScanned: 1, warnings: [], removedFiles: [] });
    expectContents(r, expected);
    expect(r.stats()).toEqual({ ...statsBefore, merges: 0, lastMerge: null });
    expect(r.appliedIndex()).toBe(8_000);
  });

  it('a corrupt, torn or missing hint file falls back to scanning its data file, with a warning', async () => {
    const e = await open({ segmentBytesMax: 16 * 1024 });
    const expected: Expected = new Map();
    await applyMany(e, expected, 4_000, workload(1_000, 'c'));
    const { outputFiles } = await e.merge();
    expect(outputFiles).toBeGreaterThanOrEqual(2);
    const before = e.stats();
    await e.close();
    const hint1 = path.join(dir, hintFileName(1));
    flipByte(hint1, fs.statSync(hint1).size >> 1);
    const r1 = await open({ segmentBytesMax: 16 * 1024 });
    expect(r1.openReport).toMatchObject({ hintFilesLoaded: outputFiles - 1, mergedFilesScanned: 1 });
    expect(r1.openReport.warnings).toEqual([expect.stringMatching(/hint file .*merged-0+1\.hint unusable \(.*CRC32 mismatch.*\): scanned .*merged-0+1\.data/)]);
    expectContents(r1, expected);
    expect(r1.stats()).toEqual({ ...before, merges: 0, lastMerge: null });
    await r1.close();

    const hint2 = path.join(dir, hintFileName(2));
    fs.truncateSync(hint2, fs.statSync(hint2).size - 3);
    fs.rmSync(hint1);
    const r2 = await open({ segmentBytesMax: 16 * 1024 });
    expect(r2.openReport.mergedFilesScanned).toBe(2);
    expect(r2.openReport.warnings.join('\n')).toMatch(/merged-0+1\.hint unusable \(cannot read[\s\S]*merged-0+2\.hint unusable \(incomplete record/);
    expectContents(r2, expected);
  });

  it('a flipped byte in a merged data file: get throws LogCorruptionError naming the file and offset; other keys read', async () => {
    const e = await open();
    await e.apply([set(1, 'a', 'value-of-a'), set(2, 'b', 'value-of-b'), set(3, 'a', 'value-of-a-2')]);
    // Roll the active file so the records above become mergeable.
    await applyMany(e, new Map(), 2_000, (i) => set(i, `filler-${i % 10}`, 'f'.repeat(100)));
    await e.merge();
    await e.close();
    const file = path.join(dir, mergedDataFileName(1));
    const data = fs.readFileSync(file);
    const at = data.indexOf(b('value-of-a-2'));
    expect(at).toBeGreaterThan(0);
    flipByte(file, at + 3);
    const r = await open(); // loaded from the hint file: the data file is not read at open
    expect(r.openReport.hintFilesLoaded).toBe(1);
    const err = (() => {
      try {
        r.get(b('a'));
      } catch (x) {
        return x;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(LogCorruptionError);
    expect(err).toMatchObject({ segmentPath: file, offset: at - 8 - 41 - 1, reason: 'record CRC32 mismatch' });
    expect(r.get(b('b'))).toEqual({ value: b('value-of-b'), revision: 2, createRevision: 2, version: 1 });
    await r.close();
    // Without a usable hint file the scan at open finds the damage.
    fs.rmSync(path.join(dir, hintFileName(1)));
    await expect(open()).rejects.toMatchObject({ code: 'LOG_CORRUPTION', segmentPath: file, offset: at - 8 - 41 - 1 });
  });

  describe('a crash at any step of a merge leaves a store that opens with the same contents', () => {
    const steps: MergeStep[] = ['started', 'chunk', 'written', 'installed', 'committed', 'switched', 'deleted'];
    const preCommit: MergeStep[] = ['started', 'chunk', 'written', 'installed'];
    it.each(steps)('crash at %s', async (crashAt) => {
      const crashDir = tempDir();
      const expected: Expected = new Map();
      let armed = false;
      const hook = (step: MergeStep): void => {
        if (!armed || step !== crashAt) return;
        // For 'chunk': the first chunk after which merged output is half written.
        if (step === 'chunk' && !fs.readdirSync(dir).some((n) => n.endsWith('.tmp'))) return;
        armed = false;
        fs.cpSync(dir, crashDir, { recursive: true }); // the disk as a crash right here leaves it
        throw new Error(`injected crash at ${step}`);
      };
      const e = await open({ mergeHook: hook, mergeChunkBytes: 32 * 1024 });
      await applyMany(e, expected, 3_000, workload(1_500, 'g1'));
      await e.merge(); // so that the crashing merge also has merged files among its inputs
      await applyMany(e, expected, 3_000, workload(1_500, 'g2'));
      armed = true;
      await expect(e.merge()).rejects.toThrow(`injected crash at ${crashAt}`);
      expect(e.stats().lastMerge?.error).toMatch(/injected crash/);

      // The engine that saw the failure keeps serving; before the commit point it cleaned up and can merge again.
      expectContents(e, expected);
      if (preCommit.includes(crashAt)) {
        expect(fs.readdirSync(dir).filter((n) => !KNOWN_FILE.test(n))).toEqual([]);
        expect(fs.readdirSync(dir).filter((n) => n.endsWith('.data')).length).toBe(e.stats().mergedFiles);
        await e.merge();
        expectContents(e, expected);
      } else {
        await expect(e.merge()).rejects.toThrow(`injected crash at ${crashAt}`); // reopen to merge again
      }

      // The crashed disk image.
      const leftovers = fs.readdirSync(crashDir).filter((n) => !KNOWN_FILE.test(n));
      if (crashAt === 'chunk' || crashAt === 'written') expect(leftovers.length).toBeGreaterThan(0);
      const r = await open({}, crashDir);
      expectContents(r, expected);
      expect(r.appliedIndex()).toBe(6_000);
      expect(fs.readdirSync(crashDir).filter((n) => !KNOWN_FILE.test(n))).toEqual([]);
      expect(r.openReport.removedFiles).toEqual(expect.arrayContaining(leftovers));
      if (crashAt === 'installed') expect(r.openReport.removedFiles.some((n) => n.endsWith('.data'))).toBe(true); // renamed, never committed
      if (crashAt === 'committed') expect(r.openReport.removedFiles.some((n) => n.endsWith('.seg'))).toBe(true); // superseded inputs
      expect(r.openReport.mergedFilesScanned).toBe(0);
      await r.merge();
      expectContents(r, expected);
      await r.close();
      expectContents(await open({}, crashDir), expected);
    });

    it('a crash halfway through deleting the inputs', async () => {
      const crashDir = tempDir();
      const expected: Expected = new Map();
      let armed = false;
      const e = await open({
        mergeHook: (step) => {
          if (!armed || step !== 'committed') return;
          fs.cpSync(dir, crashDir, { recursive: true });
          // Of the superseded inputs, only the old merged data file and the newest log file were deleted.
          const segs = fs.readdirSync(crashDir).filter((n) => n.endsWith('.seg'));
          fs.rmSync(path.join(crashDir, mergedDataFileName(1)));
          fs.rmSync(path.join(crashDir, segs[segs.length - 2]));
        },
      });
      await applyMany(e, expected, 2_000, workload(1000, 'p1')); // keys enough that some live outside the active file
      await e.merge();
      await applyMany(e, expected, 2_000, workload(1000, 'p2'));
      armed = true;
      await e.merge();
      expect(fs.existsSync(path.join(crashDir, hintFileName(1)))).toBe(true);
      const r = await open({}, crashDir);
      expect(r.openReport.removedFiles).toContain(hintFileName(1));
      expect(fs.readdirSync(crashDir).filter((n) => !KNOWN_FILE.test(n))).toEqual([]);
      expectContents(r, expected);
    });
  });

  it('close() during a merge aborts it before its commit point and leaves nothing behind', async () => {
    const expected: Expected = new Map();
    let closing: Promise<void> | null = null;
    const e = await open({ mergeChunkBytes: 8 * 1024, mergeHook: (step) => void (step === 'chunk' && !closing && (closing = e.close())) });
    await applyMany(e, expected, 3_000, workload(300, 'x'));
    await expect(e.merge()).rejects.toBeInstanceOf(MergeAbortedError);
    await closing;
    expect(fs.readdirSync(dir).filter((n) => !/^\d{20}\.seg$/.test(n))).toEqual([]);
    const r = await open();
    expect(r.openReport.removedFiles).toEqual([]);
    expectContents(r, expected);
  });

  it('autoMerge (default on) starts a merge after an apply once dead bytes pass mergeDeadBytesRatioMin', async () => {
    const expected: Expected = new Map();
    const e = await open({ autoMerge: undefined, mergeDeadBytesRatioMin: 0.6, mergeFilesMin: 3 });
    // Distinct keys only: nothing dead, nothing to merge however many files.
    await applyMany(e, expected, 2_000, (i) => set(i, `unique-${i}`, 'u'.repeat(60)), 100);
    expect(e.stats().files).toBeGreaterThan(3);
    expect(e.stats()).toMatchObject({ merging: false, merges: 0, mergeableDeadBytes: 0 });
    // Overwrites of the same keys: dead bytes grow until the trigger fires.
    let fired = -1;
    for (let round = 0; fired < 0 && round < 50; round++) {
      await applyMany(e, expected, 100, (i) => set(i, `unique-${1 + (i % 2_000)}`, 'w'.repeat(60)), 100);
      if (e.stats().merging) fired = round;
    }
    expect(fired).toBeGreaterThanOrEqual(0);
    const s = e.stats();
    expect(s.mergeableDeadBytes / s.mergeableBytes).toBeGreaterThanOrEqual(0.6);
    await e.merge(); // joins the running one
    expect(e.stats()).toMatchObject({ merges: 1, merging: false, lastMerge: { error: null } });
    expectContents(e, expected);
  });

  it('a failed automatic merge is not retried on every apply; a successful merge() re-arms it', async () => {
    let failures = 0;
    const e = await open({
      autoMerge: true,
      mergeHook: (step) => {
        if (step === 'started' && failures < 1) {
          failures++;
          throw new Error('input unreadable');
        }
      },
    });
    const expected: Expected = new Map();
    await applyMany(e, expected, 3_000, workload(100, 'f'), 100);
    if (e.stats().merging) await e.merge().catch(() => undefined); // joins the automatic merge still running
    expect(failures).toBe(1);
    expect(e.stats().lastMerge?.error).toMatch(/input unreadable/);
    await applyMany(e, expected, 1_000, workload(100, 'f2'), 100);
    expect(e.stats()).toMatchObject({ merging: false, merges: 0 });
    await e.merge();
    await applyMany(e, expected, 3_000, workload(100, 'f3'), 100);
    await e.merge();
    expect(e.stats().merges).toBeGreaterThanOrEqual(3); // the manual ones and at least one automatic one
    expectContents(e, expected);
  });

  it('merge() with nothing immutable is a no-op; a second merge rewrites the first one\'s files', async () => {
    const e = await open();
    expect(await e.merge()).toMatchObject({ inputFiles: 0, outputFiles: 0, error: null });
    const expected: Expected = new Map();
    await applyMany(e, expected, 3_000, workload(1000, 'n')); // keys enough that some live outside the active file
    const first = await e.merge();
    expect(fs.existsSync(path.join(dir, mergedDataFileName(1)))).toBe(true);
    const second = await e.merge();
    expect(second.inputFiles).toBe(first.outputFiles); // only merged files: the active file is never an input
    expect(fs.existsSync(path.join(dir, mergedDataFileName(1)))).toBe(false);
    expect(fs.existsSync(path.join(dir, MANIFEST_FILE_NAME))).toBe(true);
    expectContents(e, expected);
  });

  describe('one flipped byte per file kind has its defined outcome', () => {
    /** A store with merged files (+ hint files, manifest) and two log files; returns its contents. */
    const build = async (): Promise<Expected> => {
      const e = await open({ segmentBytesMax: 16 * 1024 });
      const expected: Expected = new Map();
      await applyMany(e, expected, 3_000, workload(500, 'f1'));
      await e.merge();
      await applyMany(e, expected, 600, workload(500, 'f2'));
      await e.close();
      return expected;
    };
    const logFiles = (): string[] => fs.readdirSync(dir).filter((n) => n.endsWith('.seg')).map((n) => path.join(dir, n));
    /** The offset of every record frame of a log file. */
    const frameOffsets = (file: string): number[] => {
      const data = fs.readFileSync(file);
      const offsets: number[] = [];
      for (let at = SEGMENT_HEADER_BYTES; at < data.length; at += 8 + data.readUInt32BE(at)) offsets.push(at);
      return offsets;
    };

    it('data file, a record in the middle: open fails with LogCorruptionError naming the file and offset; a running engine never returns the bytes', async () => {
      const expected = await build();
      const files = logFiles();
      expect(files.length).toBeGreaterThanOrEqual(2);
      for (const file of [files[0], files[files.length - 1]]) {
        const copy = tempDir();
        fs.cpSync(dir, copy, { recursive: true });
        const target = path.join(copy, path.basename(file));
        const offsets = frameOffsets(target);
        const at = offsets[offsets.length >> 1];
        flipByte(target, at + 8 + 30); // inside the key or value of that record
        await expect(open({ segmentBytesMax: 16 * 1024 }, copy)).rejects.toMatchObject({ code: 'LOG_CORRUPTION', segmentPath: target, offset: at });
      }
      // The same damage under a running engine reading its data files (no value cache): the get of that key throws, the others read.
      const e = await open({ segmentBytesMax: 16 * 1024, valueCacheBytesMax: 0 });
      const file = files[files.length - 1];
      const offsets = frameOffsets(file);
      let victim: string | null = null;
      for (const [key, want] of expected) {
        const pos = want && offsets.find((o) => e.get(b(key))?.revision === want.revision && fs.readFileSync(file).subarray(o, o + 8 + 41 + key.length).includes(b(key)) && readRevisionAt(file, o) === want.revision);
        if (pos) {
          victim = key;
          flipByte(file, pos + 8 + 41 + key.length); // the first value byte
          break;
        }
      }
      expect(victim).not.toBeNull();
      expect(() => e.get(b(victim!))).toThrow(LogCorruptionError);
      for (const [key, want] of expected) if (key !== victim) expect(e.get(b(key))?.revision ?? null).toBe(want?.revision ?? null);
    });

    it('data file, the tail record: a torn tail, truncated; reopens with every record before it', async () => {
      const expected = await build();
      const last = logFiles().pop()!;
      const offsets = frameOffsets(last);
      const tail = offsets[offsets.length - 1];
      const tailRevision = readRevisionAt(last, tail);
      flipByte(last, fs.statSync(last).size - 1);
      const r = await open({ segmentBytesMax: 16 * 1024 });
      expect(r.recovery.tornTail).toMatchObject({ segmentPath: last, offset: tail, reason: expect.stringMatching(/CRC32/) });
      expect(fs.statSync(last).size).toBe(tail);
      expect(r.appliedIndex()).toBe(tailRevision - 1);
      // The lost record is the last entry (revision 3,600); every acknowledged record before it is there.
      expect(tailRevision).toBe(3_600);
      expect(workload(500, 'f2')(3_600).op).toBe(EngineOp.Noop);
      expectContents(r, expected);
    });

    it('hint file, anywhere (header, an entry, the footer): falls back to scanning the data file, same contents', async () => {
      const expected = await build();
      const hint = path.join(dir, hintFileName(1));
      const size = fs.statSync(hint).size;
      for (const at of [3, FILE_HEADER_BYTES + 4, FILE_HEADER_BYTES + 8 + 5, size >> 1, size - 10, size - 1]) {
        const copy = tempDir();
        fs.cpSync(dir, copy, { recursive: true });
        flipByte(path.join(copy, hintFileName(1)), at);
        const r = await open({ segmentBytesMax: 16 * 1024 }, copy);
        expect(r.openReport.mergedFilesScanned).toBe(1);
        expect(r.openReport.warnings).toEqual([expect.stringMatching(/merged-0+1\.hint unusable/)]);
        expectContents(r, expected);
      }
    });

    it('merge manifest, anywhere: open fails with LogCorruptionError naming the manifest (which files hold the data is unknown)', async () => {
      await build();
      const manifest = path.join(dir, MANIFEST_FILE_NAME);
      const size = fs.statSync(manifest).size;
      for (const at of [0, 12, FILE_HEADER_BYTES + 2, FILE_HEADER_BYTES + 6, FILE_HEADER_BYTES + 8 + 3, size - 1]) {
        const copy = tempDir();
        fs.cpSync(dir, copy, { recursive: true });
        flipByte(path.join(copy, MANIFEST_FILE_NAME), at);
        await expect(open({ segmentBytesMax: 16 * 1024 }, copy)).rejects.toMatchObject({ code: 'LOG_CORRUPTION', segmentPath: path.join(copy, MANIFEST_FILE_NAME) });
        // Nothing was deleted on the way: the store is as it was.
        expect(fs.readdirSync(copy).sort()).toEqual(fs.readdirSync(dir).sort());
      }
    });
  });

  describe('a merge process SIGKILLed at a seeded moment leaves a store that opens with the same contents', () => {
    // The child compiles the engine's TypeScript sources with swc (as Jest does) and merges; it
    // SIGKILLs itself at the seed's chosen merge step call or after the seed's number of
    // event-loop turns (so also between steps: mid-write, mid-rename, mid-delete).
    const child = engineCrashChild('segmentBytesMax: 64 * 1024, mergeBytesPerSecondMax: Infinity, mergeChunkBytes: 16 * 1024, logHints: false, mergeHook: hook', 'e.merge()', 'merged');

    it('hook steps and event-loop turns from 6 seeds', async () => {
      const expected: Expected = new Map();
      const e = await open();
      await applyMany(e, expected, 3_000, workload(1_000, 'k1'));
      await e.merge(); // so that the killed merge also has merged files among its inputs
      await applyMany(e, expected, 3_000, workload(1_000, 'k2'));
      await e.close();
      const outcomes: string[] = [];
      for (let seed = 1; seed <= 6; seed++) {
        const at = tempDir();
        const { mode, n, res } = await crashCopy(child, dir, at, seed, 12, { from: 1, span: 400 });
        expect(fs.existsSync(path.join(at, MANIFEST_FILE_NAME))).toBe(true);
        outcomes.push(`${mode}:${n}:${crashOutcome(res, 'merged')}`);
        const r = await open({}, at);
        expectContents(r, expected);
        expect(r.appliedIndex()).toBe(6_000);
        expect(r.openReport.mergedFilesScanned).toBe(0);
        expect(fs.readdirSync(at).filter((name) => !KNOWN_FILE.test(name))).toEqual([]);
        await r.merge();
        expectContents(r, expected);
      }
      // At least some runs really were killed mid-merge.
      expect(outcomes.filter((o) => o.endsWith('SIGKILL')).length).toBeGreaterThanOrEqual(3);
      expect(outcomes.filter((o) => o.startsWith('hook') && o.endsWith('SIGKILL')).length).toBe(3);
    });
  });
});

/** The revision field of the data record in the log frame at `offset` of `file`. */
function readRevisionAt(file: string, offset: number): number {
  const head = Buffer.alloc(8 + 17);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, head, 0, head.length, offset);
  } finally {
    fs.closeSync(fd);
  }
  return head.readUInt32BE(8 + 9) * 0x1_0000_0000 + head.readUInt32BE(8 + 13);
}
