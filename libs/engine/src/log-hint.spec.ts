import { crashCopy, crashOutcome, engineCrashChild } from './crash-child.spec-helpers';
import { applyMany, expectContents, flipByte, testClock, useTempEngines, workload, type Expected } from './engine-model.spec-helpers';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FILE_HEADER_BYTES } from '@cairn/log';
import { BitcaskEngine, installSnapshot, logHintFileName, type EngineOptions, type EngineStats, type LogHintStep } from './index';

const LOG_HINT = /^\d{20}\.hint$/;
/** Every file an opened engine directory may hold (merge.spec.ts's list and log hint files). */
const KNOWN_FILE = /^(\d{20}\.(seg|hint)|merged-\d{20}\.(data|hint)|merge\.manifest)$/;

/** The figures a reopen must reproduce whether it loaded hint files or scanned. */
const accounting = (s: EngineStats): Partial<EngineStats> => ({ keys: s.keys, liveBytes: s.liveBytes, deadBytes: s.deadBytes, dataBytes: s.dataBytes, appliedIndex: s.appliedIndex, files: s.files, mergeableBytes: s.mergeableBytes, mergeableDeadBytes: s.mergeableDeadBytes });

const logHints = (dir: string): string[] => fs.readdirSync(dir).filter((n) => LOG_HINT.test(n)).sort();
const segments = (dir: string): string[] => fs.readdirSync(dir).filter((n) => n.endsWith('.seg')).sort();

describe('hint files of sealed log data files', () => {
  let dir: string;
  const { tempDir, open: openIn } = useTempEngines({ segmentBytesMax: 16 * 1024, mergeChunkBytes: 4 * 1024 });
  const open = (o: Partial<EngineOptions> = {}, at = dir): Promise<BitcaskEngine> => openIn(at, o);
  /** A store of 3,000 entries over 16 KiB data files, written with log hints off (as before they existed). */
  const buildUnhinted = async (expected: Expected): Promise<void> => {
    const e = await open({ logHints: false });
    await applyMany(e, expected, 3_000, workload(400, 'a'));
    expect(e.stats().logHintFiles).toBe(0);
    await e.close();
    expect(logHints(dir)).toEqual([]);
  };
  /** A store of 3,000 entries over 16 KiB data files with every sealed file's hint file written, closed: its accounting and hint files. */
  const buildHinted = async (expected: Expected): Promise<{ before: Partial<EngineStats>; hints: string[] }> => {
    const e = await open();
    await applyMany(e, expected, 3_000, workload(400, 'a'));
    await e.writeLogHints();
    const before = accounting(e.stats());
    await e.close();
    return { before, hints: logHints(dir) };
  };
  beforeEach(() => {
    dir = tempDir();
  });

  it('a data file that rolls over gets a hint file in the background, and the next open loads it instead of scanning the file', async () => {
    const installed: number[] = [];
    let firstInstalled!: () => void;
    const first = new Promise<void>((resolve) => (firstInstalled = resolve));
    const e = await open({
      logHintHook: (step: LogHintStep, segmentId: number) => {
        if (step === 'installed') {
          installed.push(segmentId);
          firstInstalled();
        }
      },
    });
    const expected: Expected = new Map();
    await applyMany(e, expected, 3_000, workload(400, 'a'));
    // Nobody asked for it: the roll-over itself started the writer.
    await first;
    await e.writeLogHints();
    const segs = segments(dir);
    expect(segs.length).toBeGreaterThanOrEqual(4);
    // Every sealed file (not the active one) has exactly one hint file, each written once.
    expect(logHints(dir)).toEqual(segs.slice(0, -1).map((n) => n.replace('.seg', '.hint')));
    expect(installed.sort((x, y) => x - y)).toEqual(segs.slice(0, -1).map((n) => Number(n.slice(0, 20))));
    expect(e.stats()).toMatchObject({ logHintFiles: segs.length - 1, logFilesUnhinted: 0, logHinting: false, logHintError: null });
    const before = accounting(e.stats());
    await e.close();

    const r = await open();
    expect(r.openReport).toMatchObject({ logHintFilesLoaded: segs.length - 1, logFilesScanned: 1, warnings: [] });
    expect(accounting(r.stats())).toEqual(before);
    expectContents(r, expected);
    // It still takes writes, and the file it seals next gets its hint file too.
    await applyMany(r, expected, 1_000, workload(400, 'b'));
    await r.writeLogHints();
    expect(logHints(dir).length).toBe(segments(dir).length - 1);
    await r.close();
    const r2 = await open();
    expect(r2.openReport).toMatchObject({ logHintFilesLoaded: segments(dir).length - 1, logFilesScanned: 1, warnings: [] });
    expectContents(r2, expected);
  });

  it('a store written without log hints gets them after open, so the open after that does not scan', async () => {
    const expected: Expected = new Map();
    await buildUnhinted(expected);
    const sealed = segments(dir).length - 1;
    const e = await open();
    expect(e.openReport).toMatchObject({ logHintFilesLoaded: 0, logFilesScanned: sealed + 1, warnings: [] });
    const scanned = accounting(e.stats());
    await e.writeLogHints();
    expect(logHints(dir).length).toBe(sealed);
    await e.close();
    const r = await open();
    expect(r.openReport).toMatchObject({ logHintFilesLoaded: sealed, logFilesScanned: 1 });
    expect(accounting(r.stats())).toEqual(scanned);
    expectContents(r, expected);
  });

  describe('a damaged hint file falls back to scanning its data file, with the same contents', () => {
    const damages: [string, (file: string) => void][] = [
      ['flipped byte in the header', (f) => flipByte(f, 10)],
      ['flipped byte in an entry', (f) => flipByte(f, FILE_HEADER_BYTES + 8 + 30)],
      ['flipped byte in the footer', (f) => flipByte(f, fs.statSync(f).size - 3)],
      ['torn (cut in the middle)', (f) => fs.truncateSync(f, Math.floor(fs.statSync(f).size / 2))],
      ['torn (footer missing)', (f) => fs.truncateSync(f, fs.statSync(f).size - 10)],
      ['empty', (f) => fs.truncateSync(f, 0)],
    ];
    it.each(damages)('%s', async (_name, damage) => {
      const expected: Expected = new Map();
      const { before, hints } = await buildHinted(expected);
      const victim = hints[1];
      damage(path.join(dir, victim));
      const r = await open();
      expect(r.openReport.logHintFilesLoaded).toBe(hints.length - 1);
      expect(r.openReport.logFilesScanned).toBe(2);
      expect(r.openReport.warnings).toEqual([expect.stringContaining(`${victim} unusable`)]);
      expect(accounting(r.stats())).toEqual(before);
      expectContents(r, expected);
      // Rewritten in the background: the next open is clean.
      await r.writeLogHints();
      await r.close();
      const r2 = await open();
      expect(r2.openReport).toMatchObject({ logHintFilesLoaded: hints.length, warnings: [] });
      expectContents(r2, expected);
    });

    it("another data file's hint file under this one's name, and one whose entries point elsewhere, are not used", async () => {
      const expected: Expected = new Map();
      const { before, hints } = await buildHinted(expected);
      fs.copyFileSync(path.join(dir, hints[0]), path.join(dir, hints[1]));
      const r = await open();
      expect(r.openReport.warnings).toEqual([expect.stringContaining(`${hints[1]} unusable`)]);
      expect(accounting(r.stats())).toEqual(before);
      expectContents(r, expected);
    });
  });

  it('the hint file of a log file that is gone, and a half-written one, are deleted at open', async () => {
    const expected: Expected = new Map();
    await buildUnhinted(expected);
    fs.writeFileSync(path.join(dir, logHintFileName(999_999)), 'not a hint file');
    fs.writeFileSync(path.join(dir, logHintFileName(1) + '.tmp'), 'half');
    const e = await open({ logHints: false });
    expect(e.openReport.removedFiles.sort()).toEqual([logHintFileName(1) + '.tmp', logHintFileName(999_999)].sort());
    expectContents(e, expected);
  });

  it('a merge deletes the hint files of the log files it merged, and reopen loads the rest', async () => {
    const expected: Expected = new Map();
    const e = await open();
    await applyMany(e, expected, 3_000, workload(400, 'a'));
    await e.writeLogHints();
    expect(logHints(dir).length).toBeGreaterThanOrEqual(3);
    await e.merge();
    // Only the active log file is left: no sealed file, no log hint file.
    expect(segments(dir).length).toBe(1);
    expect(logHints(dir)).toEqual([]);
    expect(e.stats()).toMatchObject({ logHintFiles: 0, logFilesUnhinted: 0 });
    await applyMany(e, expected, 2_000, workload(400, 'b'));
    await e.writeLogHints();
    expect(logHints(dir)).toEqual(segments(dir).slice(0, -1).map((n) => n.replace('.seg', '.hint')));
    const before = accounting(e.stats());
    await e.close();
    expect(fs.readdirSync(dir).filter((n) => !KNOWN_FILE.test(n))).toEqual([]);
    const r = await open();
    expect(r.openReport).toMatchObject({ logHintFilesLoaded: segments(dir).length - 1, mergedFilesScanned: 0, logFilesScanned: 1, warnings: [] });
    expect(accounting(r.stats())).toEqual(before);
    expectContents(r, expected);
  });

  it('a merge while a hint file is being written stops the writer before deleting its data file', async () => {
    const expected: Expected = new Map();
    await buildUnhinted(expected);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let chunkSeen!: () => void;
    const inChunk = new Promise<void>((resolve) => (chunkSeen = resolve));
    const e = await open({
      logHintHook: async (step: LogHintStep) => {
        if (step !== 'chunk') return;
        chunkSeen();
        await gate;
      },
    });
    await inChunk; // the open-time writer is mid-file
    const merged = e.merge();
    release();
    await merged;
    expect(segments(dir).length).toBe(1);
    expect(fs.readdirSync(dir).filter((n) => !KNOWN_FILE.test(n))).toEqual([]);
    expect(logHints(dir)).toEqual([]);
    expectContents(e, expected);
    await e.close();
    const r = await open();
    expectContents(r, expected);
  });

  it('close() stops a hint file being written: nothing half-written is left, the next open scans that file', async () => {
    const expected: Expected = new Map();
    await buildUnhinted(expected);
    let chunkSeen!: () => void;
    const inChunk = new Promise<void>((resolve) => (chunkSeen = resolve));
    const e = await open({ logHintHook: (step: LogHintStep) => (step === 'chunk' ? chunkSeen() : undefined) });
    await inChunk;
    await e.close();
    expect(fs.readdirSync(dir).filter((n) => !KNOWN_FILE.test(n))).toEqual([]);
    const r = await open({ logHints: false });
    expect(r.openReport.warnings).toEqual([]);
    expect(r.openReport.logHintFilesLoaded).toBeLessThan(segments(dir).length - 1);
    expectContents(r, expected);
  });

  it('snapshots hold no log hint files; an install removes the old store\'s, and the installed store writes its own', async () => {
    const expected: Expected = new Map();
    const e = await open();
    await applyMany(e, expected, 3_000, workload(400, 'a'));
    await e.writeLogHints();
    const snap = await e.createSnapshot();
    expect(snap.files.map((f) => f.name).filter((n) => LOG_HINT.test(n))).toEqual([]);
    expect(snap.files.filter((f) => f.name.endsWith('.seg')).length).toBe(segments(dir).length);

    // The target holds another store with log hint files of its own, some with the same names.
    const target = tempDir();
    const other = await open({}, target);
    await applyMany(other, new Map(), 2_000, workload(50, 'other'));
    await other.writeLogHints();
    expect(logHints(target).length).toBeGreaterThanOrEqual(2);
    await other.close();

    const reader = e.openSnapshotReader(snap.appliedIndex);
    await installSnapshot(target, reader.manifestBytes, reader.chunks(), { clock: testClock });
    await reader.close();
    expect(logHints(target)).toEqual([]);
    const t = await open({}, target);
    expect(t.appliedIndex()).toBe(3_000);
    expectContents(t, expected);
    await t.writeLogHints();
    await t.close();
    const t2 = await open({}, target);
    expect(t2.openReport).toMatchObject({ logHintFilesLoaded: segments(target).length - 1, logFilesScanned: 1, warnings: [] });
    expectContents(t2, expected);
  });

  describe('a process SIGKILLed while writing hint files leaves a store that opens with the same contents', () => {
    // As merge.spec.ts's crash test: the child compiles the engine's sources with swc, opens a
    // store that has no log hint files (so open starts writing them) and SIGKILLs itself at the
    // seed's hook call or after the seed's number of event-loop turns.
    const child = engineCrashChild('segmentBytesMax: 16 * 1024, mergeBytesPerSecondMax: Infinity, mergeChunkBytes: 2 * 1024, logHintHook: hook', 'e.writeLogHints()');

    it('hook steps and event-loop turns from 6 seeds', async () => {
      const expected: Expected = new Map();
      await buildUnhinted(expected);
      const sealed = segments(dir).length - 1;
      const outcomes: string[] = [];
      for (let seed = 1; seed <= 6; seed++) {
        const at = tempDir();
        const { mode, n, res } = await crashCopy(child, dir, at, seed, 3 * sealed, { from: 1, span: 60 });
        outcomes.push(`${mode}:${n}:${crashOutcome(res)}:${logHints(at).length}`);
        const r = await open({ logHints: false }, at);
        // Whatever was complete is used, whatever was not is gone; nothing is ever wrong.
        expect(r.openReport.warnings).toEqual([]);
        expect(r.openReport.logHintFilesLoaded).toBe(logHints(at).length);
        expectContents(r, expected);
        expect(fs.readdirSync(at).filter((name) => !KNOWN_FILE.test(name))).toEqual([]);
        await r.writeLogHints();
        await r.close();
        const r2 = await open({}, at);
        expect(r2.openReport).toMatchObject({ logHintFilesLoaded: sealed, logFilesScanned: 1 });
        expectContents(r2, expected);
      }
      expect(outcomes.filter((o) => o.includes('SIGKILL')).length).toBeGreaterThanOrEqual(3);
      // Some runs died with some hint files written and others not.
      expect(outcomes.some((o) => o.includes('SIGKILL') && !o.endsWith(`:${sealed}`) && !o.endsWith(':0'))).toBe(true);
    });
  });
});
