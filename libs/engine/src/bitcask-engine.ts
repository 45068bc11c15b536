/**
 * `BitcaskEngine`: a Bitcask-style key-value store (Sheehy & Smith, "Bitcask: A Log-Structured
 * Hash Table for Fast Key/Value Data", 2010). New data records are appended to the data files of
 * a `@cairn/log` `SegmentedLog` (group commit; log index = revision); a merge rewrites the live
 * records of the immutable files into merged data files with hint files (`merged-file.ts`),
 * committed by the merge manifest (`manifest.ts`). An in-memory keydir maps each live key to
 * (file id, offset, size, revision), so a get is one CRC-checked pread. See docs/engine.md.
 */
import * as nodePath from 'node:path';
import { LogClosedError, LogCorruptionError, SEGMENT_HEADER_BYTES, SegmentedLog, encodeFrame, fsyncDir, nodeDisk, parseSegmentFileName, type Disk, segmentFileName, writeNewFileDurable, type FsyncPolicy, type RecoveryReport, type SegmentInfo, type Clock } from '@cairn/log';
import { EngineEntryTooLargeError, EngineGapError, MergeAbortedError, SnapshotAbortedError, SnapshotNotFoundError } from './errors';
import { Keydir, keyString, type KeydirEntry } from './keydir';
import { readRange, type RangePage, type RangeQuery } from './range';
import { ValueCache } from './value-cache';
import { MANIFEST_FILE_NAME, encodeManifest, readManifest, writeManifest, type MergeManifest } from './manifest';
import { HintFileWriter, MergedFile, MergedFileWriter, forEachHintEntry, hintFileName, hintFooterSizes, logHintFileName, mergedDataFileName, parseLogHintFileName, parseMergedFileName, readHintFile } from './merged-file';
import { EngineOp, RECORD_OP_BATCH, batchRecordBytes, recordBytesMaxOf, decodeRecord, encodeBatchRecord, encodeRecord, lastMutationInBatch, type BatchMutation, type BatchRecord, type DataRecord, type KeyMeta } from './record';
import { SNAPSHOTS_DIR_NAME, SnapshotReader, copyPrefix, fileCrc32, openEngineDirs, recoverSnapshots, snapshotDirName, type EngineSnapshot, type SnapshotInstallReport } from './snapshot';
import { SNAPSHOT_MANIFEST_FILE_NAME, encodeSnapshotManifest, type SnapshotFile, type SnapshotManifest } from './snapshot-format';
import { CodedError } from '@cairn/protocol';

/** One committed Raft entry for the state machine. `index` = Raft log index = the key's new revision. */
export interface EngineEntry {
  index: number;
  op: EngineOp;
  key: Uint8Array;
  value: Uint8Array;
  /**
   * Op Batch only (key and value empty): the key mutations, in order, that all take effect at
   * `index` (a transaction's writes, etcd Txn), written as ONE record so they are atomic. Each
   * updates its key's metadata exactly as a Set / Delete entry would; a later mutation of the same
   * key wins. At least one; the record (`batchRecordBytes`) at most the largest single record
   * (header + keyBytesMax + valueBytesMax), else EngineEntryTooLargeError.
   */
  mutations?: BatchMutation[];
}

/**
 * Points of a merge, in order, at which `EngineOptions.mergeHook` is called (test hook: throwing
 * from it simulates a crash there). `chunk` is called after each chunk of input bytes.
 */
export type MergeStep = 'started' | 'chunk' | 'written' | 'installed' | 'committed' | 'switched' | 'deleted';

/**
 * Points of `createSnapshot`, in order, at which `EngineOptions.snapshotHook` is called (test
 * hook: a throw there fails the snapshot as a crash would). `captured`: the applied index and file
 * set are fixed; `linked`: the files are linked/copied into `snapshots/<index>.tmp`; `file` after
 * each file's CRC32; `written`: the manifest is durable; `committed`: renamed into place;
 * `pruned`: older snapshots beyond `snapshotsRetainedMax` deleted.
 */
export type SnapshotStep = 'captured' | 'linked' | 'file' | 'written' | 'committed' | 'pruned';

/**
 * Points of writing one sealed log file's hint file, at which `EngineOptions.logHintHook` is
 * called: `chunk` after each `mergeChunkBytes` of the data file read (entries written so far),
 * `written` once `<id>.hint.tmp` is complete and fsynced, `installed` once renamed into place
 * and the directory fsynced.
 */
export type LogHintStep = 'chunk' | 'written' | 'installed';

export interface CreateSnapshotOptions {
  /**
   * Called synchronously with the applied index the snapshot captures; returns the Raft term of
   * that entry for the manifest (the engine does not know terms). Default: term 0 (unknown).
   */
  termAt?: (appliedIndex: number) => number;
}

export interface EngineOptions {
  /** Directory of the data files; created if missing. */
  dir: string;
  /** Size of a data file (log segment or merged file) before rolling to a new one; default 64 MiB (the log's default). */
  segmentBytesMax?: number;
  /** Default 'group' (see `FsyncPolicy` in `@cairn/log`). */
  fsyncPolicy?: FsyncPolicy;
  /** Default 64 KiB. */
  keyBytesMax?: number;
  /** Default 8 MiB. */
  valueBytesMax?: number;
  /** Bound of the values `get` keeps in memory (recently read keys, kept current as they are written; docs/engine.md "Value cache"), bytes; default 8 MiB; 0 = none. */
  valueCacheBytesMax?: number;
  /** Start a merge in the background after an apply when the triggers below hold; default true. Paused after a failed merge until a `merge()` call succeeds. */
  autoMerge?: boolean;
  /** Merge trigger: dead bytes / record bytes of the immutable data files at least this; default 0.5. */
  mergeDeadBytesRatioMin?: number;
  /** Merge trigger: at least this many immutable data files (merged files + sealed log files); default 2. */
  mergeFilesMin?: number;
  /** Merge input read rate bound, bytes/s; default 64 MiB/s; `Infinity` = unbounded. */
  mergeBytesPerSecondMax?: number;
  /** A merge yields to the event loop after each chunk of this many input bytes; default 1 MiB. */
  mergeChunkBytes?: number;
  /** Test hook, called at each `MergeStep`; a throw aborts the merge there as a crash would. */
  mergeHook?: (step: MergeStep) => void | Promise<void>;
  /** Committed snapshots kept in `<dir>/snapshots` (older ones are deleted once no reader holds them); default 2. */
  snapshotsRetainedMax?: number;
  /** Largest chunk a `SnapshotReader` of this engine yields, and the read size of a snapshot's CRC32 pass; default 1 MiB. */
  snapshotChunkBytesMax?: number;
  /** Test hook, called at each `SnapshotStep`; a throw fails the snapshot there as a crash would. */
  snapshotHook?: (step: SnapshotStep) => void | Promise<void>;
  /**
   * Write a hint file for each sealed log data file in the background (when it is sealed, and
   * after open for sealed files without a usable one), read at `mergeBytesPerSecondMax`, so the
   * next open loads its keys without scanning it; default true.
   */
  logHints?: boolean;
  /** Test hook, called at each `LogHintStep`; a throw fails that hint file (it is not retried until reopen). */
  logHintHook?: (step: LogHintStep, segmentId: number) => void | Promise<void>;
  /** The file operations (default `nodeDisk`, node:fs; the simulator passes a simulated disk). */
  disk?: Disk;
  /**
   * Time: record timestamps, report durations and start times, the merge and hint-file pacing
   * waits (unref'd timers) and yields (`defer`), the log's 'interval' fdatasync timer. Process
   * shells pass `realClock` (@cairn/world); the simulator its virtual clock.
   */
  clock: Clock;
}

export interface GetResult extends KeyMeta {
  value: Buffer;
  /** Index of the entry that wrote this value: the key's mod revision. */
  revision: number;
}

/** One merge's figures (`merge()`'s result, `stats().lastMerge`). */
export interface MergeReport {
  startedAtMs: number;
  durationMs: number;
  /** Immutable data files merged (0: nothing to merge). */
  inputFiles: number;
  /** Merged data files written (each with a hint file). */
  outputFiles: number;
  /** Record bytes read from the inputs. */
  bytesRead: number;
  /** Bytes of the merged data files and hint files written. */
  bytesWritten: number;
  recordsCopied: number;
  tombstonesDropped: number;
  /** Disk bytes of the inputs minus those of the outputs (data + hint files). */
  bytesReclaimed: number;
  /** Why the merge failed (null on success). */
  error: string | null;
}

export interface EngineStats {
  /** Live keys in the keydir. */
  keys: number;
  /** Frame bytes of the records the keydir points to. */
  liveBytes: number;
  /** Bytes of the data files on disk (merged files and log files, headers included; hint files not). */
  dataBytes: number;
  /** Frame bytes of records no key points to (overwritten values, tombstones, noops): what merges can reclaim. */
  deadBytes: number;
  appliedIndex: number;
  /** Data files: merged files + log files (the active one included). */
  files: number;
  mergedFiles: number;
  /** Bytes of the hint files. */
  hintBytes: number;
  /** Record bytes of the immutable data files (merged + sealed log files): a merge's input now. */
  mergeableBytes: number;
  /** Dead bytes among `mergeableBytes` (the auto-merge trigger compares their ratio). */
  mergeableDeadBytes: number;
  merging: boolean;
  /** Merges completed since open. */
  merges: number;
  lastMerge: MergeReport | null;
  /** Committed snapshots on disk. */
  snapshots: number;
  /** Applied index of the newest snapshot (0: none). */
  lastSnapshotIndex: number;
  snapshotting: boolean;
  /** Sealed log data files with a hint file (loaded at open or written since). */
  logHintFiles: number;
  /** Sealed log data files still without a hint file (being written in the background, or failed). */
  logFilesUnhinted: number;
  /** A log hint file is being written. */
  logHinting: boolean;
  /** Why the last log hint file failed (null: none since open). */
  logHintError: string | null;
}

/** What `open` found and did. */
export interface EngineOpenReport {
  /** The log's recovery of its data files (torn tail etc., docs/log.md). */
  log: RecoveryReport;
  mergedFiles: number;
  /** Merged data files whose keys were loaded from their hint file (the data file was not read). */
  hintFilesLoaded: number;
  /** Merged data files scanned record by record because their hint file was missing or invalid. */
  mergedFilesScanned: number;
  /** Log data files scanned record by record (the active one, and sealed ones with no usable hint file). */
  logFilesScanned: number;
  /** Sealed log data files whose keys were loaded from their hint file (the data file was not read). */
  logHintFilesLoaded: number;
  /** Half-finished merge leftovers and superseded files deleted; half-written snapshots and unfinished installs (`snapshots/<n>.tmp`, `snapshot-install.staging`). */
  removedFiles: string[];
  /** An install past its commit point that open completed (a crash interrupted `SnapshotInstaller.finish`), else null. */
  installCompleted: SnapshotInstallReport | null;
  /** e.g. `hint file <path> unusable (<reason>): scanned <data file>`. */
  warnings: string[];
  /** Time spent building the ordered index (one sort of the loaded keys), ms; part of `durationMs`. */
  orderBuildMs: number;
  durationMs: number;
}

const MiB = 1024 * 1024;
/**
 * The defaults of the configured limits (docs/engine.md "API"): data file size, entry bounds, the
 * merge trigger (dead-bytes ratio, file count) and the merge I/O bound.
 */
export const ENGINE_DEFAULTS = Object.freeze({
  /** A data file (log file or merged file) rolls over at this size. */
  segmentBytesMax: 64 * MiB,
  keyBytesMax: 64 * 1024,
  valueBytesMax: 8 * MiB,
  /** Values of recently read keys kept for `get`. */
  valueCacheBytesMax: 8 * MiB,
  /** Merge trigger: dead bytes / record bytes of the immutable data files. */
  mergeDeadBytesRatioMin: 0.5,
  mergeFilesMin: 2,
  /** Merge input read rate bound (bytes/s). */
  mergeBytesPerSecondMax: 64 * MiB,
  mergeChunkBytes: MiB,
  /** Committed snapshots kept. */
  snapshotsRetainedMax: 2,
  /** Largest snapshot chunk. */
  snapshotChunkBytesMax: MiB,
});
/** Keydir entries switched to a merged file between two yields to the event loop. */
const SWITCH_ENTRIES_PER_YIELD = 65_536;

type HookOptions = 'mergeHook' | 'fsyncPolicy' | 'snapshotHook' | 'logHintHook' | 'disk';
type ResolvedOptionsBase = Required<Omit<EngineOptions, HookOptions>> & Pick<EngineOptions, Exclude<HookOptions, 'disk'>>;
type ResolvedOptions = ResolvedOptionsBase & { disk: Disk };

function resolveOptions(o: EngineOptions): ResolvedOptions {
  const r: ResolvedOptions = {
    dir: nodePath.resolve(o.dir),
    segmentBytesMax: o.segmentBytesMax ?? ENGINE_DEFAULTS.segmentBytesMax,
    fsyncPolicy: o.fsyncPolicy,
    keyBytesMax: o.keyBytesMax ?? ENGINE_DEFAULTS.keyBytesMax,
    valueBytesMax: o.valueBytesMax ?? ENGINE_DEFAULTS.valueBytesMax,
    valueCacheBytesMax: o.valueCacheBytesMax ?? ENGINE_DEFAULTS.valueCacheBytesMax,
    autoMerge: o.autoMerge ?? true,
    mergeDeadBytesRatioMin: o.mergeDeadBytesRatioMin ?? ENGINE_DEFAULTS.mergeDeadBytesRatioMin,
    mergeFilesMin: o.mergeFilesMin ?? ENGINE_DEFAULTS.mergeFilesMin,
    mergeBytesPerSecondMax: o.mergeBytesPerSecondMax ?? ENGINE_DEFAULTS.mergeBytesPerSecondMax,
    mergeChunkBytes: o.mergeChunkBytes ?? ENGINE_DEFAULTS.mergeChunkBytes,
    mergeHook: o.mergeHook,
    snapshotsRetainedMax: o.snapshotsRetainedMax ?? ENGINE_DEFAULTS.snapshotsRetainedMax,
    snapshotChunkBytesMax: o.snapshotChunkBytesMax ?? ENGINE_DEFAULTS.snapshotChunkBytesMax,
    snapshotHook: o.snapshotHook,
    logHints: o.logHints ?? true,
    logHintHook: o.logHintHook,
    disk: o.disk ?? nodeDisk,
    clock: o.clock,
  };
  for (const name of ['segmentBytesMax', 'keyBytesMax', 'valueBytesMax', 'snapshotsRetainedMax', 'snapshotChunkBytesMax'] as const) {
    if (!Number.isSafeInteger(r[name]) || r[name] <= 0) throw new RangeError(`${name} must be a positive integer, got ${o[name]}`);
  }
  if (!(r.mergeDeadBytesRatioMin >= 0 && r.mergeDeadBytesRatioMin <= 1)) throw new RangeError(`mergeDeadBytesRatioMin must be in [0, 1], got ${o.mergeDeadBytesRatioMin}`);
  if (!Number.isSafeInteger(r.valueCacheBytesMax) || r.valueCacheBytesMax < 0) throw new RangeError(`valueCacheBytesMax must be a non-negative integer, got ${o.valueCacheBytesMax}`);
  if (!Number.isSafeInteger(r.mergeFilesMin) || r.mergeFilesMin < 1) throw new RangeError(`mergeFilesMin must be a positive integer, got ${o.mergeFilesMin}`);
  if (!(r.mergeBytesPerSecondMax > 0)) throw new RangeError(`mergeBytesPerSecondMax must be > 0, got ${o.mergeBytesPerSecondMax}`);
  if (!Number.isSafeInteger(r.mergeChunkBytes) || r.mergeChunkBytes <= 0) throw new RangeError(`mergeChunkBytes must be a positive integer, got ${o.mergeChunkBytes}`);
  return r;
}

const yieldToEventLoop = (clock: Clock): Promise<void> => new Promise((resolve) => clock.defer(resolve));

/** Yields to the event loop, or waits (an `unref`'d timer) while `bytes` read since `startedAtMs` are ahead of `bytesPerSecondMax`, on `clock`. */
async function paceIo(clock: Clock, startedAtMs: number, bytes: number, bytesPerSecondMax: number): Promise<void> {
  const waitMs = startedAtMs + (bytes / bytesPerSecondMax) * 1000 - clock.nowMs();
  if (waitMs >= 1) await new Promise<void>((resolve) => clock.setTimeout(resolve, Math.ceil(waitMs), { unref: true }));
  else await yieldToEventLoop(clock);
}

/** A log hint file write stopped by `close()` or by a merge about to delete its data file. */
class LogHintAbortedError extends CodedError {
  readonly code = 'ENGINE_LOG_HINT_ABORTED';
  constructor() {
    super('log hint file write aborted');
  }
}

/** A merge input: a merged file or a sealed log data file. */
interface MergeInput {
  fileId: number;
  recordBytes: number;
  diskBytes: number;
  records(): Iterable<{ offset: number; payload: Buffer }>;
}

export class BitcaskEngine {
  private readonly keydir = new Keydir();
  /** Values of recently read keys, kept current as they are written (null: valueCacheBytesMax 0). */
  private readonly cache: ValueCache | null;
  /** Merged data files in use, by keydir file id (-n). */
  private readonly merged = new Map<number, MergedFile>();
  private manifest: MergeManifest;
  /** Highest index applied and durable. */
  private durableIndex = 0;
  /** Highest index handed to the log (durable or not): where the next apply must continue. */
  private assignedIndex = 0;
  /** Settles when the latest apply is durable; lets a fully skipped re-delivery wait for it. */
  private lastDurable: Promise<unknown> = Promise.resolve();
  private closed = false;
  private closing: Promise<void> | null = null;
  private merging: Promise<MergeReport> | null = null;
  /** Set when a merge failed after its commit point: memory and the manifest may disagree until reopen. */
  private mergeBroken: Error | null = null;
  private merges = 0;
  private lastMerge: MergeReport | null = null;
  /** Committed snapshots, oldest first. */
  private snapshotList: EngineSnapshot[] = [];
  private snapshotting: Promise<EngineSnapshot> | null = null;
  /** Set while a snapshot links the files it captured: a merge waits for it before deleting its inputs. */
  private snapshotLinking: Promise<void> | null = null;
  /** Open `SnapshotReader`s per snapshot applied index: retention does not delete those. */
  private readonly snapshotReaders = new Map<number, number>();
  /** Sealed log files (by first index) with a valid hint file on disk. */
  private readonly hintedSegments = new Set<number>();
  /** Sealed log files whose hint file failed: not retried until reopen (no retry loop). */
  private readonly hintFailedSegments = new Set<number>();
  /** The background log hint writer, while it runs. */
  private logHinting: Promise<void> | null = null;
  /** Set while a merge waits for the log hint writer to stop before deleting its inputs. */
  private logHintAbort = false;
  private logHintError: string | null = null;
  /** First index of the active log file when last looked at: a new one means a file was sealed. */
  private activeSegmentId = 0;

  private constructor(
    private readonly log: SegmentedLog,
    private readonly opts: ResolvedOptions,
    manifest: MergeManifest | null,
    readonly openReport: EngineOpenReport,
  ) {
    this.manifest = manifest ?? { generation: 0, upto: 1, nextFileNumber: 1, files: [] };
    this.cache = opts.valueCacheBytesMax > 0 ? new ValueCache(opts.valueCacheBytesMax) : null;
  }

  /**
   * Opens the data files and rebuilds the keydir: first deletes half-finished merge leftovers
   * (`*.tmp`, merged files the manifest does not list, log files the manifest supersedes), then
   * loads the merged files (from their hint files when valid, else by a scan, with a warning in
   * `openReport`), then scans the log's data files oldest first (recovering a torn tail of the
   * last one, see `@cairn/log`). `appliedIndex()` is then the revision of the last record.
   * @throws LogCorruptionError for corrupt data files, a bad manifest, a merged file the manifest
   *   lists but that is missing or of the wrong size, or a record that is not a valid data record.
   */
  static async open(options: EngineOptions): Promise<BitcaskEngine> {
    const opts = resolveOptions(options);
    const started = opts.clock.nowMs();
    const dir = opts.dir;
    const disk = opts.disk;
    await disk.mkdir(dir, { recursive: true });
    // First: finish or discard an install, so the files read below are one store's.
    const snaps = await recoverSnapshots(dir, opts.clock, disk);
    const manifest = readManifest(dir, disk);
    const listed = new Set(manifest?.files.map((f) => f.n));
    const removedFiles: string[] = [...snaps.removed];
    const names = await disk.readdir(dir);
    const segmentIds = new Set(names.map(parseSegmentFileName).filter((id) => id !== null && !(manifest !== null && id < manifest.upto)));
    for (const name of names) {
      const merged = parseMergedFileName(name);
      const segmentId = parseSegmentFileName(name);
      const logHintOf = parseLogHintFileName(name);
      const stale =
        (name.endsWith('.tmp') && (name.startsWith('merged-') || name === MANIFEST_FILE_NAME + '.tmp' || parseLogHintFileName(name.slice(0, -'.tmp'.length)) !== null)) ||
        (merged !== null && !listed.has(merged.n)) ||
        (segmentId !== null && manifest !== null && segmentId < manifest.upto) ||
        // The hint file of a log file a merge deleted (a crash came between the two deletes).
        (logHintOf !== null && !segmentIds.has(logHintOf));
      if (stale) {
        await disk.rm(nodePath.join(dir, name), { force: true });
        removedFiles.push(name);
      }
    }
    if (removedFiles.length) await fsyncDir(dir, disk);

    const recordBytesMax = recordBytesMaxOf(opts.keyBytesMax, opts.valueBytesMax);
    const mergedFiles: MergedFile[] = [];
    let log: SegmentedLog | null = null;
    try {
      for (const f of manifest?.files ?? []) mergedFiles.push(MergedFile.open(dir, f.n, f.dataBytes, recordBytesMax, disk));
      // Sealed data files are CRC-checked when read (every get, scan and merge read checks), and
      // a file without a valid hint is scanned with checks below: skip the open-time CRC pass.
      log = await SegmentedLog.open({ dir, segmentBytesMax: opts.segmentBytesMax, fsyncPolicy: opts.fsyncPolicy, recordBytesMax, firstIndex: manifest?.upto ?? 1, verifySealedSegments: false, disk, clock: opts.clock });
      if (manifest && log.firstIndex() !== manifest.upto) {
        throw new LogCorruptionError(nodePath.join(dir, segmentFileName(log.firstIndex())), 0, `the merged files cover revisions below ${manifest.upto} but the oldest data file starts at ${log.firstIndex()}`);
      }
      const report: EngineOpenReport = { log: log.recovery, mergedFiles: mergedFiles.length, hintFilesLoaded: 0, mergedFilesScanned: 0, logFilesScanned: 0, logHintFilesLoaded: 0, removedFiles, installCompleted: snaps.installed, warnings: [...snaps.warnings], orderBuildMs: 0, durationMs: 0 };
      const engine = new BitcaskEngine(log, opts, manifest, report);
      for (const mf of mergedFiles) engine.merged.set(mf.fileId, mf);
      engine.rebuildKeydir();
      engine.snapshotList = snaps.snapshots;
      openEngineDirs.set(dir, (openEngineDirs.get(dir) ?? 0) + 1);
      report.durationMs = opts.clock.nowMs() - started;
      // Sealed files that had no usable hint file get one now, so the next open is fast too.
      engine.scheduleLogHints();
      return engine;
    } catch (err) {
      for (const mf of mergedFiles) mf.close();
      await log?.close();
      throw err;
    }
  }

  /** Highest entry index applied AND durable (the revision of the last data record; 0 when empty). */
  appliedIndex(): number {
    return this.durableIndex;
  }

  /** What `open` found in the log's data files (torn tail etc.), from `@cairn/log`; `openReport.log`. */
  get recovery(): RecoveryReport {
    return this.log.recovery;
  }

  /**
   * Applies committed entries (increasing index order). Entries with index <= the last applied
   * (or in-flight) index are skipped (idempotent re-delivery after a restart); the rest must be
   * contiguous from there. Writes one record per entry (Noop too, so the applied index is
   * durable), updates the keydir at once (gets see the new values before the fsync), and resolves
   * with the new appliedIndex once the records are durable (group commit through the log).
   * Then, with `autoMerge`, starts a background merge when the merge triggers hold.
   * @throws EngineGapError (nothing written) when the first new entry is not appliedIndex + 1 or
   *   the entries are not contiguous; EngineEntryTooLargeError; LogClosedError.
   */
  async apply(entries: EngineEntry[]): Promise<number> {
    this.assertOpen('apply');
    let start = 0;
    while (start < entries.length && entries[start].index <= this.assignedIndex) start++;
    if (start === entries.length) {
      await this.lastDurable;
      return this.durableIndex;
    }
    const now = this.opts.clock.nowMs();
    const payloads: Buffer[] = new Array(entries.length - start);
    const metas: KeyMeta[] = new Array(entries.length - start);
    // Metadata of keys written earlier in this batch (the keydir learns them only after enqueue).
    const batch = new Map<string, KeyMeta | null>();
    const batchMetas = new Map<number, KeyMeta[]>();
    for (let i = start; i < entries.length; i++) {
      const e = entries[i];
      const expected = this.assignedIndex + 1 + (i - start);
      if (e.index !== expected) throw new EngineGapError(expected, e.index);
      if (e.key.length > this.opts.keyBytesMax) throw new EngineEntryTooLargeError(e.index, 'key', e.key.length, this.opts.keyBytesMax);
      if (e.value.length > this.opts.valueBytesMax) throw new EngineEntryTooLargeError(e.index, 'value', e.value.length, this.opts.valueBytesMax);
      if (e.op === EngineOp.Batch) {
        const ms = e.mutations ?? [];
        if (ms.length === 0) throw new RangeError(`entry ${e.index}: a batch needs at least one mutation`);
        const bytes = batchRecordBytes(ms);
        if (bytes > this.recordBytesMax()) throw new EngineEntryTooLargeError(e.index, 'value', bytes, this.recordBytesMax());
        const subMetas = ms.map((m) => this.nextMeta({ index: e.index, op: m.op, key: m.key, value: m.value }, batch));
        batchMetas.set(e.index, subMetas);
        metas[i - start] = { createRevision: 0, version: 0 };
        payloads[i - start] = encodeBatchRecord(now, e.index, ms, subMetas);
        continue;
      }
      if (e.op !== EngineOp.Noop && e.op !== EngineOp.Set && e.op !== EngineOp.Delete) throw new RangeError(`entry ${e.index}: unknown op ${String(e.op)}`);
      const meta = this.nextMeta(e, batch);
      metas[i - start] = meta;
      payloads[i - start] = encodeRecord(e.op, now, e.index, e.key, e.op === EngineOp.Set ? e.value : new Uint8Array(0), meta);
    }
    const { positions, durable } = this.log.enqueue(payloads);
    for (let i = 0; i < positions.length; i++) {
      const e = entries[start + i];
      const p = positions[i];
      // The log index and the revision advance together (one record per entry, no gaps).
      if (p.index !== e.index) throw new Error(`LogIndexMatchesRevision: record ${p.index} for entry ${e.index}`);
      if (e.op === EngineOp.Batch) this.recordBatch(e.mutations!, batchMetas.get(e.index)!, p.segmentId, p.offset, p.sizeBytes, e.index);
      else this.keydir.record(e.op, e.key, 0, e.key.length, p.segmentId, p.offset, p.sizeBytes, e.index, metas[i].createRevision, metas[i].version);
      if (this.cache) {
        if (e.op === EngineOp.Batch) for (const m of e.mutations!) this.cacheWrite(m.op, m.key, m.value, e.index);
        else this.cacheWrite(e.op, e.key, e.value, e.index);
      }
    }
    const last = entries[entries.length - 1].index;
    this.assignedIndex = last;
    this.lastDurable = durable;
    const activeSegmentId = positions[positions.length - 1].segmentId;
    await durable;
    if (last > this.durableIndex) this.durableIndex = last;
    // A new active file: the previous one is sealed, and durable now (its records preceded these).
    if (activeSegmentId !== this.activeSegmentId) {
      this.activeSegmentId = activeSegmentId;
      this.scheduleLogHints();
    }
    this.maybeAutoMerge();
    return this.durableIndex;
  }

  /** The largest record apply writes: a format-2 Set of the largest key and value (hint files and merged files are read with this bound). */
  private recordBytesMax(): number {
    return recordBytesMaxOf(this.opts.keyBytesMax, this.opts.valueBytesMax);
  }

  /**
   * Folds a batch record's mutations into the keydir: every key points at the whole record (its
   * frame is read and CRC-checked whole). Each Set counts the frame as live and each Delete as
   * dead, so `(n - 1)` frames are taken back from the dead bytes: live + dead bytes stay the
   * file's bytes (liveBytes over-counts, deadBytes under-counts, a record shared by several live
   * keys; docs/engine.md "Batch records").
   */
  private recordBatch(mutations: readonly { op: EngineOp; key: Uint8Array }[], metas: readonly KeyMeta[], fileId: number, offset: number, sizeBytes: number, revision: number): void {
    mutations.forEach((m, i) => this.keydir.record(m.op, m.key, 0, m.key.length, fileId, offset, sizeBytes, revision, metas[i].createRevision, metas[i].version));
    this.keydir.addDead(-(mutations.length - 1) * sizeBytes);
  }

  /**
   * The metadata entry `e` gives its key, as etcd's mvcc keeps it: a Set of an absent key creates
   * it (create revision = e.index, version 1), a Set of a live key keeps its create revision and
   * adds 1 to its version; Delete and Noop carry none ({0, 0}); a Delete makes the key absent, so
   * the next Set creates it again. `batch` holds the keys of earlier entries of the same apply.
   */
  private nextMeta(e: EngineEntry, batch: Map<string, KeyMeta | null>): KeyMeta {
    if (e.op === EngineOp.Noop) return { createRevision: 0, version: 0 };
    const name = keyString(e.key);
    if (e.op === EngineOp.Delete) {
      batch.set(name, null);
      return { createRevision: 0, version: 0 };
    }
    let prev = batch.get(name);
    if (prev === undefined) prev = this.keydir.get(e.key) ?? null;
    const meta = prev ? { createRevision: prev.createRevision, version: prev.version + 1 } : { createRevision: e.index, version: 1 };
    batch.set(name, meta);
    return meta;
  }

  /**
   * The live value of `key`, the revision that wrote it (mod revision), its create revision and
   * version, or null when absent or deleted.
   * Synchronous: one pread (or the log's pending buffer for a record not yet written). Works
   * during a merge: the keydir points at old files until each key is switched to its copy, and
   * old files are deleted only after the switch.
   * @throws LogCorruptionError naming the data file and offset when the record's CRC32 (or
   *   layout) is wrong: never wrong bytes.
   */
  get(key: Uint8Array): GetResult | null {
    this.assertOpen('get');
    const entry = this.keydir.get(key);
    if (!entry) return null;
    const name = this.cache ? keyString(key) : '';
    const cached = this.cache?.get(name, entry.revision);
    if (cached) return { value: cached, revision: entry.revision, createRevision: entry.createRevision, version: entry.version };
    const rec = this.readLive(key, entry);
    this.cache?.set(name, rec.revision, rec.value);
    return { value: rec.value, revision: rec.revision, createRevision: rec.createRevision, version: rec.version };
  }

  /** The value cache after an applied mutation of a key it holds (in record order: a key written twice in one batch keeps its last value). */
  private cacheWrite(op: EngineOp, key: Uint8Array, value: Uint8Array, revision: number): void {
    const cache = this.cache!;
    if (cache.size === 0) return;
    if (op === EngineOp.Set) cache.update(keyString(key), revision, value);
    else if (op === EngineOp.Delete) cache.delete(keyString(key));
  }

  /**
   * One page of an ordered range read (docs/engine.md "Range reads"): the keys in [start, end) in
   * unsigned byte order (or reverse), at most `limit` keys and `bytesMax` bytes (the first key
   * always), with values unless `keysOnly`, and `count` = keys in the whole range. Synchronous,
   * so the page is the store at one revision: `revision` = the last applied entry (as `get`
   * sees it, durable or not yet).
   * @throws RangeError on a bad limit or bytesMax; LogCorruptionError as `get`.
   */
  range(q: RangeQuery): RangePage {
    this.assertOpen('range');
    const order = this.keydir.order;
    if (!order) throw new Error('OrderedIndexBuilt: range before the keydir was loaded');
    return readRange(this.keydir, order, q, this.assignedIndex, (key, entry) => this.readLive(key, entry).value);
  }

  /** The record of live `key` at keydir `entry`, checked against the keydir. */
  private readLive(key: Uint8Array, entry: KeydirEntry): DataRecord {
    const payload = entry.fileId > 0 ? this.log.readAt(entry.fileId, entry.offset, entry.sizeBytes) : this.mergedFile(entry.fileId).read(entry.offset, entry.sizeBytes);
    const rec = payload[0] === RECORD_OP_BATCH ? this.decodeMutation(payload, key, entry.fileId, entry.offset) : this.decode(payload, entry.fileId, entry.offset);
    // The keydir and the data file must agree; a mismatch is a bug, not a miss.
    if (rec.op !== EngineOp.Set || rec.revision !== entry.revision || rec.createRevision !== entry.createRevision || rec.version !== entry.version || !rec.key.equals(key)) {
      throw new Error(`KeydirMatchesRecord: keydir entry (revision ${entry.revision}) points to op ${rec.op} revision ${rec.revision}`);
    }
    return rec;
  }

  stats(): EngineStats {
    this.assertOpen('stats');
    let mergedBytes = 0;
    let hintBytes = 0;
    for (const mf of this.merged.values()) {
      mergedBytes += mf.sizeBytes;
      hintBytes += mf.hintBytes;
    }
    const { bytes, deadBytes } = this.mergeable();
    return {
      keys: this.keydir.size,
      liveBytes: this.keydir.liveBytes,
      dataBytes: mergedBytes + this.log.sizeBytes(),
      deadBytes: this.keydir.deadBytes,
      appliedIndex: this.durableIndex,
      files: this.merged.size + this.log.segments().length,
      mergedFiles: this.merged.size,
      hintBytes,
      mergeableBytes: bytes,
      mergeableDeadBytes: deadBytes,
      merging: this.merging !== null,
      merges: this.merges,
      lastMerge: this.lastMerge,
      snapshots: this.snapshotList.length,
      lastSnapshotIndex: this.snapshotList.at(-1)?.appliedIndex ?? 0,
      snapshotting: this.snapshotting !== null,
      logHintFiles: this.hintedSegments.size,
      logFilesUnhinted: this.log.segments().length - 1 - this.hintedSegments.size,
      logHinting: this.logHinting !== null,
      logHintError: this.logHintError,
    };
  }

  /**
   * Runs one merge now (or joins the running one) and resolves with its figures. A merge rewrites
   * the live records of every immutable data file (merged files and sealed log files; never the
   * active one) into new merged files with hint files, in the background: it reads at most
   * `mergeBytesPerSecondMax`, yields to the event loop every `mergeChunkBytes`, and gets and
   * applies go on meanwhile. Crash-safe at every step (docs/engine.md "Merge").
   * @throws MergeAbortedError when `close()` interrupts it (nothing committed, nothing left
   *   behind); the I/O error that stopped it; LogClosedError.
   */
  merge(): Promise<MergeReport> {
    if (this.closed) return Promise.reject(new LogClosedError('merge'));
    if (this.mergeBroken) return Promise.reject(this.mergeBroken);
    if (!this.merging) {
      const startedAtMs = this.opts.clock.nowMs();
      this.merging = this.runMerge(startedAtMs).then(
        (report) => {
          this.merging = null;
          this.merges++;
          this.lastMerge = report;
          this.scheduleLogHints();
          return report;
        },
        (err: unknown) => {
          this.merging = null;
          this.lastMerge = { ...emptyMergeReport(startedAtMs), error: String(err) };
          this.scheduleLogHints();
          throw err;
        },
      );
    }
    return this.merging;
  }

  /**
   * Writes a snapshot of the store at its current applied index A into `<dir>/snapshots/<A>` and
   * resolves with it once it is durable (or joins the one running; resolves with the newest
   * snapshot when it is already at A). Writes and reads go on meanwhile: it captures A and the
   * file set in one synchronous step (the merge manifest in use, the merged and hint files it
   * lists, the log files from its `upto` on, the active file's length at A), waits for A to be
   * durable, hard-links the immutable files and copies the active file's first bytes up to A, then
   * reads every file once for its CRC32, writes `snapshot.manifest`, fsyncs, and renames
   * `<A>.tmp` to `<A>` (the commit point), then deletes snapshots beyond `snapshotsRetainedMax`
   * that no reader holds. A merge finishing meanwhile waits for the linking before deleting its
   * inputs. A crash leaves `<A>.tmp`, which open deletes; earlier snapshots are untouched.
   * @throws SnapshotAbortedError when `close()` interrupts it (nothing left behind);
   *   LogClosedError; the I/O error that stopped it.
   */
  createSnapshot(options: CreateSnapshotOptions = {}): Promise<EngineSnapshot> {
    if (this.closed) return Promise.reject(new LogClosedError('createSnapshot'));
    if (!this.snapshotting) {
      this.snapshotting = this.runSnapshot(options).finally(() => {
        this.snapshotting = null;
      });
    }
    return this.snapshotting;
  }

  /** The committed snapshots, oldest first. */
  snapshots(): EngineSnapshot[] {
    return [...this.snapshotList];
  }

  /** The newest committed snapshot, or null. */
  latestSnapshot(): EngineSnapshot | null {
    return this.snapshotList.at(-1) ?? null;
  }

  /**
   * A reader serving the snapshot at `appliedIndex` (default: the newest) in chunks of at most
   * `chunkBytesMax` (default `snapshotChunkBytesMax`). Retention keeps that snapshot on disk until
   * the reader's `close()`.
   * @throws SnapshotNotFoundError when there is no such snapshot; LogClosedError.
   */
  openSnapshotReader(appliedIndex?: number, chunkBytesMax = this.opts.snapshotChunkBytesMax): SnapshotReader {
    this.assertOpen('openSnapshotReader');
    const snap = appliedIndex === undefined ? this.latestSnapshot() : this.snapshotList.find((x) => x.appliedIndex === appliedIndex);
    if (!snap) throw new SnapshotNotFoundError(appliedIndex ?? null);
    const at = snap.appliedIndex;
    this.snapshotReaders.set(at, (this.snapshotReaders.get(at) ?? 0) + 1);
    return new SnapshotReader(snap, chunkBytesMax, () => {
      const n = (this.snapshotReaders.get(at) ?? 1) - 1;
      if (n > 0) this.snapshotReaders.set(at, n);
      else this.snapshotReaders.delete(at);
      // A running snapshot prunes when it commits; a failed prune is retried by the next one.
      return this.closed || this.snapshotting ? Promise.resolve() : this.pruneSnapshots().catch(() => undefined);
    }, this.opts.disk);
  }

  /**
   * Resolves once every sealed log data file has a hint file (written by the background writer,
   * which this starts or joins), or its write failed (`stats().logHintError`). With `logHints:
   * false` it writes them too (on demand only).
   * @throws LogClosedError.
   */
  async writeLogHints(): Promise<void> {
    this.assertOpen('writeLogHints');
    this.scheduleLogHints(true);
    while (this.logHinting) {
      await this.logHinting;
      // A merge may have stopped it (and restarts it when done): wait for that merge, then go on.
      if (this.closed) return;
      if (this.merging) await this.merging.catch(() => undefined);
      this.scheduleLogHints(true);
    }
  }

  /** Stops a running merge (before its commit point) or lets it finish (after), fsyncs pending records, closes the files; later calls throw LogClosedError. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      this.closing = (async () => {
        await this.merging?.catch(() => undefined);
        await this.snapshotting?.catch(() => undefined);
        await this.logHinting;
        for (const mf of this.merged.values()) mf.close();
        try {
          await this.log.close();
        } finally {
          const n = (openEngineDirs.get(this.opts.dir) ?? 1) - 1;
          if (n > 0) openEngineDirs.set(this.opts.dir, n);
          else openEngineDirs.delete(this.opts.dir);
        }
      })();
    }
    return this.closing;
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw new LogClosedError(operation);
  }

  private filePath(fileId: number): string {
    return fileId > 0 ? nodePath.join(this.opts.dir, segmentFileName(fileId)) : this.mergedFile(fileId).path;
  }

  private mergedFile(fileId: number): MergedFile {
    const mf = this.merged.get(fileId);
    if (!mf) throw new Error(`KeydirFileExists: no merged data file ${-fileId}`);
    return mf;
  }

  /** The last mutation of `key` in the batch record `payload` (`lastMutationInBatch`). @throws LogCorruptionError as `decode`. */
  private decodeMutation(payload: Buffer, key: Uint8Array, fileId: number, offset: number): DataRecord {
    const rec = lastMutationInBatch(payload, key);
    if ('error' in rec) throw new LogCorruptionError(this.filePath(fileId), offset, rec.error);
    return rec;
  }

  private decode(payload: Buffer, fileId: number, offset: number): DataRecord | BatchRecord {
    const rec = decodeRecord(payload);
    if ('error' in rec) throw new LogCorruptionError(this.filePath(fileId), offset, rec.error);
    return rec;
  }

  /**
   * Rebuilds the keydir, oldest data first: the merged files (each key at most once per merge,
   * all older than any log record), from their hint files when valid, else by scanning; then the
   * log's data files, whose records fold in revision order (Set points the key at the record,
   * Delete removes it).
   */
  private rebuildKeydir(): void {
    const report = this.openReport;
    // Size the keydir's slab once: every hint entry and every log record is at most one key.
    let keysMax = 0;
    let keyBytesMax = 0;
    for (const mf of this.merged.values()) {
      const sizes = hintFooterSizes(mf.hintPath, this.opts.disk);
      keysMax += sizes.entries;
      keyBytesMax += sizes.keyBytes;
    }
    const segments = this.log.segments();
    for (const s of segments) keysMax += s.lastIndex - s.firstIndex + 1;
    for (const s of segments.slice(0, -1)) keyBytesMax += hintFooterSizes(nodePath.join(this.opts.dir, logHintFileName(s.segmentId)), this.opts.disk).keyBytes;
    this.keydir.reserve(keysMax, keyBytesMax);
    for (const mf of this.merged.values()) {
      const hint = readHintFile(mf.hintPath, mf.n, mf.sizeBytes, recordBytesMaxOf(this.opts.keyBytesMax, this.opts.valueBytesMax), this.opts.disk);
      if ('payloads' in hint) {
        const keydir = this.keydir;
        const fileId = mf.fileId;
        let tombstoneBytes = 0;
        const visit = (op: EngineOp, payload: Buffer, keyStart: number, keyEnd: number, revision: number, offset: number, sizeBytes: number, createRevision: number, version: number): void => {
          keydir.record(op, payload, keyStart, keyEnd, fileId, offset, sizeBytes, revision, createRevision, version);
          // Tombstones are counted dead by `Keydir.record` already.
          if (op !== EngineOp.Set) tombstoneBytes += sizeBytes;
        };
        for (const payload of hint.payloads) forEachHintEntry(payload, visit, hint.version);
        this.keydir.addDead(mf.recordBytes - this.keydir.liveBytesOf(fileId) - tombstoneBytes);
        report.hintFilesLoaded++;
        continue;
      }
      report.warnings.push(`hint file ${mf.hintPath} unusable (${hint.error}): scanned ${mf.path}`);
      report.mergedFilesScanned++;
      let recordBytes = 0;
      for (const { offset, payload } of mf.scan()) {
        const rec = this.decode(payload, mf.fileId, offset);
        // A merge copies a batch record's live keys as single Set records.
        if (rec.op === EngineOp.Batch) throw new LogCorruptionError(mf.path, offset, 'batch record in a merged data file');
        this.keydir.record(rec.op, rec.key, 0, rec.key.length, mf.fileId, offset, payload.length + 8, rec.revision, rec.createRevision, rec.version);
        recordBytes += rec.op === EngineOp.Set ? payload.length + 8 : 0;
      }
      // Copies the merge could not switch to (overwritten meanwhile) are dead in this file.
      this.keydir.addDead(recordBytes - this.keydir.liveBytesOf(mf.fileId));
    }
    segments.forEach((segment, i) => {
      // The active file is still growing: never from a hint file.
      if (i < segments.length - 1 && this.loadLogHint(segment)) return;
      this.loadLogFile(segment);
    });
    this.activeSegmentId = segments[segments.length - 1].segmentId;
    this.durableIndex = this.assignedIndex = this.log.lastIndex();
    // One sort of the loaded keys; from here on every insert and delete keeps it in order.
    const orderStarted = this.opts.clock.nowMs();
    this.keydir.buildOrder();
    report.orderBuildMs = this.opts.clock.nowMs() - orderStarted;
  }

  /**
   * Loads the keys of sealed log file `segment` from its hint file when that is valid: the file
   * checks (`readHintFile`) and every entry is a record the log has at that place (revision within
   * the file, in increasing order, at the log's offset and size for that index), all checked
   * before any entry is used. Returns false (with a warning, unless the file is missing) otherwise.
   */
  private loadLogHint(segment: SegmentInfo): boolean {
    const path = nodePath.join(this.opts.dir, logHintFileName(segment.segmentId));
    const hint = readHintFile(path, segment.segmentId, segment.sizeBytes, recordBytesMaxOf(this.opts.keyBytesMax, this.opts.valueBytesMax), this.opts.disk);
    if ('error' in hint) {
      if (!hint.error.includes('ENOENT')) this.openReport.warnings.push(`hint file ${path} unusable (${hint.error}): scanned ${segment.path}`);
      return false;
    }
    let previous = segment.firstIndex - 1;
    let previousOffset = -1;
    // Σ entry sizes: a batch record counts once per key, which the dead bytes below take back (see recordBatch).
    let entryBytes = 0;
    let bad: string | null = null;
    const check = (_op: EngineOp, _payload: Buffer, _keyStart: number, _keyEnd: number, revision: number, offset: number, sizeBytes: number): void => {
      if (bad !== null) return;
      // Entries of one batch record share its revision and frame.
      if (!((revision > previous || (revision === previous && offset === previousOffset)) && revision <= segment.lastIndex)) {
        bad = `entry revision ${revision} out of order or outside ${segment.firstIndex}..${segment.lastIndex}`;
        return;
      }
      const at = this.log.position(revision);
      if (at.offset !== offset || at.sizeBytes !== sizeBytes) bad = `entry for revision ${revision} at offset ${offset} (${sizeBytes} bytes), the log has it at ${at.offset} (${at.sizeBytes} bytes)`;
      previous = revision;
      previousOffset = offset;
      entryBytes += sizeBytes;
    };
    for (const payload of hint.payloads) forEachHintEntry(payload, check, hint.version);
    if (bad !== null) {
      this.openReport.warnings.push(`hint file ${path} unusable (${bad}): scanned ${segment.path}`);
      return false;
    }
    const keydir = this.keydir;
    const fileId = segment.segmentId;
    const visit = (op: EngineOp, payload: Buffer, keyStart: number, keyEnd: number, revision: number, offset: number, sizeBytes: number, createRevision: number, version: number): void => {
      keydir.record(op, payload, keyStart, keyEnd, fileId, offset, sizeBytes, revision, createRevision, version);
    };
    for (const payload of hint.payloads) forEachHintEntry(payload, visit, hint.version);
    // No-op records are not in the hint file: dead bytes, as `Keydir.record` counts them in a scan.
    this.keydir.addDead(segment.sizeBytes - SEGMENT_HEADER_BYTES - entryBytes);
    this.hintedSegments.add(segment.segmentId);
    this.openReport.logHintFilesLoaded++;
    return true;
  }

  private loadLogFile(segment: SegmentInfo): void {
    this.openReport.logFilesScanned++;
    for (const { position, payload } of this.log.scan(segment.firstIndex, segment.lastIndex)) {
      const rec = this.decode(payload, position.segmentId, position.offset);
      if (rec.revision !== position.index) {
        throw new LogCorruptionError(segment.path, position.offset, `data record revision ${rec.revision} at log index ${position.index}`);
      }
      if (rec.op === EngineOp.Batch) this.recordBatch(rec.mutations, rec.mutations, position.segmentId, position.offset, position.sizeBytes, rec.revision);
      else this.keydir.record(rec.op, rec.key, 0, rec.key.length, position.segmentId, position.offset, position.sizeBytes, rec.revision, rec.createRevision, rec.version);
    }
  }

  /**
   * Starts the background log hint writer unless it runs, the engine is closing, a merge is
   * stopping it, or there is nothing to do (`force`: even with `logHints: false`).
   */
  private scheduleLogHints(force = false): void {
    if ((!this.opts.logHints && !force) || this.closed || this.logHinting || this.logHintAbort || this.merging) return;
    if (this.nextUnhintedSegment() === null) return;
    this.logHinting = this.runLogHints().finally(() => {
      this.logHinting = null;
    });
  }

  /**
   * The oldest sealed log file with no hint file that was not tried in vain, or null. Only a file
   * whose records are all durable: the log seals a file as soon as a record does not fit, before
   * the file's last records are written.
   */
  private nextUnhintedSegment(): SegmentInfo | null {
    const segs = this.log.segments();
    for (let i = 0; i < segs.length - 1 && segs[i].lastIndex <= this.durableIndex; i++) {
      const id = segs[i].segmentId;
      if (!this.hintedSegments.has(id) && !this.hintFailedSegments.has(id)) return segs[i];
    }
    return null;
  }

  /** Writes hint files for the sealed log files without one, oldest first, one at a time; never rejects. */
  private async runLogHints(): Promise<void> {
    for (let seg = this.nextUnhintedSegment(); seg && !this.closed && !this.logHintAbort; seg = this.nextUnhintedSegment()) {
      try {
        await this.writeLogHint(seg);
        this.hintedSegments.add(seg.segmentId);
      } catch (err) {
        if (err instanceof LogHintAbortedError) return;
        this.hintFailedSegments.add(seg.segmentId);
        this.logHintError = `hint file for ${seg.path}: ${String(err)}`;
      }
    }
  }

  /**
   * Writes `<first index>.hint` for sealed (so immutable and durable) log file `seg`: reads its
   * records with the log's chunked scan, at most `mergeBytesPerSecondMax`, yielding every
   * `mergeChunkBytes`; writes `.hint.tmp`, fsyncs it, renames it into place, fsyncs the directory.
   * A crash at any point leaves at most a `.tmp` (deleted at open) or a complete hint file.
   * @throws LogHintAbortedError when closing or a merge stops it (the `.tmp` is removed).
   */
  private async writeLogHint(seg: SegmentInfo): Promise<void> {
    const id = seg.segmentId;
    const writer = new HintFileWriter(nodePath.join(this.opts.dir, logHintFileName(id)), id, false, this.opts.disk);
    const startedAtMs = this.opts.clock.nowMs();
    let installed = false;
    await writer.create();
    try {
      let bytesRead = 0;
      let chunkRead = 0;
      for (const { position, payload } of this.log.scan(seg.firstIndex, seg.lastIndex)) {
        const rec = this.decode(payload, id, position.offset);
        if (rec.revision !== position.index) throw new LogCorruptionError(seg.path, position.offset, `data record revision ${rec.revision} at log index ${position.index}`);
        if (rec.op === EngineOp.Batch) for (const m of rec.mutations) writer.add(m.op, rec.revision, position.offset, position.sizeBytes, m.key, m);
        else if (rec.op !== EngineOp.Noop) writer.add(rec.op, rec.revision, position.offset, position.sizeBytes, rec.key, rec);
        bytesRead += position.sizeBytes;
        chunkRead += position.sizeBytes;
        if (chunkRead >= this.opts.mergeChunkBytes) {
          chunkRead = 0;
          await writer.flush();
          // The scan's generator holds no file across this await: the log only drops a file after the merge stopped this writer.
          await paceIo(this.opts.clock, startedAtMs, bytesRead, this.opts.mergeBytesPerSecondMax);
          if (this.closed || this.logHintAbort) throw new LogHintAbortedError();
          if (this.opts.logHintHook) await this.opts.logHintHook('chunk', id);
        }
      }
      // The file's size from the log's offsets (all written: every record is durable).
      const end = seg.lastIndex >= seg.firstIndex ? this.log.position(seg.lastIndex) : null;
      const dataBytes = end ? end.offset + end.sizeBytes : SEGMENT_HEADER_BYTES;
      if (dataBytes !== seg.sizeBytes) throw new Error(`SealedLogFileComplete: ${seg.path} has ${seg.sizeBytes} bytes written of ${dataBytes}`);
      await writer.finish(dataBytes);
      if (this.opts.logHintHook) await this.opts.logHintHook('written', id);
      if (this.closed || this.logHintAbort) throw new LogHintAbortedError();
      await writer.install();
      installed = true;
      await fsyncDir(this.opts.dir, this.opts.disk);
      if (this.opts.logHintHook) await this.opts.logHintHook('installed', id);
    } catch (err) {
      await writer.discard(installed).catch(() => undefined);
      throw err;
    }
  }

  /** Stops the background log hint writer (a merge is about to delete log files) and waits for it. */
  private async stopLogHints(): Promise<void> {
    this.logHintAbort = true;
    try {
      while (this.logHinting) await this.logHinting;
    } finally {
      this.logHintAbort = false;
    }
  }

  /** Record bytes and dead bytes of the immutable data files (merged files + sealed log files). */
  private mergeable(): { files: number; bytes: number; deadBytes: number } {
    let files = 0;
    let bytes = 0;
    let live = 0;
    for (const mf of this.merged.values()) {
      files++;
      bytes += mf.recordBytes;
      live += this.keydir.liveBytesOf(mf.fileId);
    }
    const segs = this.log.segments();
    for (let i = 0; i < segs.length - 1; i++) {
      files++;
      bytes += segs[i].sizeBytes - SEGMENT_HEADER_BYTES;
      live += this.keydir.liveBytesOf(segs[i].segmentId);
    }
    return { files, bytes, deadBytes: Math.max(0, bytes - live) };
  }

  private maybeAutoMerge(): void {
    // After a failed merge (e.g. a corrupt input) only a successful `merge()` call or a reopen re-arms it: no retry loop per apply.
    if (!this.opts.autoMerge || this.merging || this.closed || this.mergeBroken || this.lastMerge?.error) return;
    const m = this.mergeable();
    if (m.files < this.opts.mergeFilesMin || m.bytes === 0 || m.deadBytes / m.bytes < this.opts.mergeDeadBytesRatioMin) return;
    // Background: the outcome is in stats().lastMerge; a failure must not reject an apply.
    this.merge().catch(() => undefined);
  }

  private async hook(step: MergeStep): Promise<void> {
    if (this.opts.mergeHook) await this.opts.mergeHook(step);
  }

  /**
   * The merge (Bitcask merge with a manifest as the commit point):
   * 1. inputs = every merged file + every log data file before the active one (`upto` = the
   *    active file's first index); the log is synced so they are complete on disk;
   * 2. copy each input record the keydir still points at into `merged-<n>.data.tmp` (new file
   *    every `segmentBytesMax`) with its hint entry in `merged-<n>.hint.tmp`; drop tombstones and
   *    noops: every file older than them is an input, so no value they shadow survives;
   * 3. fsync, rename into place, fsync the directory;
   * 4. commit: replace `merge.manifest` (new files, `upto`) atomically;
   * 5. switch every key whose revision is unchanged to its copy (yielding between batches);
   * 6. delete the inputs (old merged files and hints; `dropPrefix(upto)` of the log).
   * A crash before 4 leaves leftovers that open deletes; after 4, open deletes the superseded inputs.
   */
  private async runMerge(startedAtMs: number): Promise<MergeReport> {
    const report = emptyMergeReport(startedAtMs);
    const segments = this.log.segments();
    const upto = segments[segments.length - 1].segmentId;
    if (this.merged.size === 0 && segments.length === 1) return report;
    // Files before `upto` took no record enqueued after this sync, so after it they are complete on disk.
    await this.log.sync();
    const inputs = this.mergeInputs(upto);
    report.inputFiles = inputs.length;
    await this.hook('started');

    const writers: MergedFileWriter[] = [];
    let committed = false;
    try {
      await this.copyLiveRecords(inputs, writers, report, startedAtMs);
      await writers[writers.length - 1]?.finish();
      await this.hook('written');
      for (const w of writers) await w.install();
      await fsyncDir(this.opts.dir, this.opts.disk);
      await this.hook('installed');
      if (this.closed) throw new MergeAbortedError();

      const manifest: MergeManifest = {
        generation: this.manifest.generation + 1,
        upto,
        nextFileNumber: this.manifest.nextFileNumber,
        files: writers.map((w) => ({ n: w.n, dataBytes: w.sizeBytes })),
      };
      await writeManifest(this.opts.dir, manifest, this.opts.disk);
      committed = true;
      this.manifest = manifest;
      await this.hook('committed');
      await this.switchAndDelete(inputs, writers);
    } catch (err) {
      if (committed) this.mergeBroken = err instanceof Error ? err : new Error(String(err));
      else for (const w of writers) await w.discard().catch(() => undefined);
      throw err;
    }
    report.outputFiles = writers.length;
    for (const w of writers) report.bytesWritten += w.sizeBytes + w.hintBytes;
    report.bytesReclaimed = inputs.reduce((n, i) => n + i.diskBytes, 0) - report.bytesWritten;
    report.durationMs = this.opts.clock.nowMs() - startedAtMs;
    return report;
  }

  /** Step 1 of the merge: every merged file and every log data file before `upto` (the active one). */
  private mergeInputs(upto: number): MergeInput[] {
    const sealed = this.log.segments().filter((s) => s.segmentId < upto);
    return [
      ...[...this.merged.values()].map((mf) => ({ fileId: mf.fileId, recordBytes: mf.recordBytes, diskBytes: mf.sizeBytes + mf.hintBytes, records: () => mf.scan() })),
      ...sealed.map((s) => ({
        fileId: s.segmentId,
        recordBytes: s.sizeBytes - SEGMENT_HEADER_BYTES,
        diskBytes: s.sizeBytes,
        records: () => this.logRecords(s),
      })),
    ];
  }

  /**
   * Step 2 of the merge: copies every input record the keydir still points at into `writers` (the
   * last one still open), paced at mergeBytesPerSecondMax and flushed every mergeChunkBytes read.
   */
  private async copyLiveRecords(inputs: MergeInput[], writers: MergedFileWriter[], report: MergeReport, startedAtMs: number): Promise<void> {
    let chunkRead = 0;
    for (const input of inputs) {
      for (const { offset, payload } of input.records()) {
        const rec = this.decode(payload, input.fileId, offset);
        const frameBytes = payload.length + 8;
        report.bytesRead += frameBytes;
        chunkRead += frameBytes;
        if (rec.op === EngineOp.Batch) {
          await this.copyBatch(rec, input.fileId, offset, writers, report);
        } else if (rec.op === EngineOp.Set && this.keydir.pointsAt(rec.key, 0, rec.key.length, input.fileId, offset)) {
          (await this.mergedFileFor(writers, frameBytes)).add(encodeFrame(payload), rec.op, rec.revision, rec.key, rec);
          report.recordsCopied++;
        } else if (rec.op === EngineOp.Delete) {
          report.tombstonesDropped++;
        }
        if (chunkRead >= this.opts.mergeChunkBytes) {
          chunkRead = 0;
          await writers[writers.length - 1]?.flush();
          await this.pace(startedAtMs, report.bytesRead);
          await this.hook('chunk');
        }
      }
    }
  }

  /**
   * The merged file a record of `frameBytes` goes to: the last of `writers`, or a new one (the last
   * finished) when there is none or the record would take it past segmentBytesMax (a file holds at
   * least one record, however large).
   */
  private async mergedFileFor(writers: MergedFileWriter[], frameBytes: number): Promise<MergedFileWriter> {
    const current = writers[writers.length - 1];
    if (current && (current.records === 0 || current.sizeBytes + frameBytes <= this.opts.segmentBytesMax)) return current;
    if (current) await current.finish();
    const writer = new MergedFileWriter(this.opts.dir, this.manifest.nextFileNumber++, this.opts.disk);
    writers.push(writer);
    await writer.create();
    return writer;
  }

  /**
   * Merge of a batch record: each key it holds live (its last mutation there, a Set the keydir
   * still points at) is copied as a single format-2 Set record at the batch's revision, so merged
   * files hold single records only.
   */
  private async copyBatch(rec: BatchRecord, fileId: number, offset: number, writers: MergedFileWriter[], report: MergeReport): Promise<void> {
    const seen = new Set<string>();
    for (let i = rec.mutations.length - 1; i >= 0; i--) {
      const m = rec.mutations[i];
      const name = keyString(m.key);
      if (seen.has(name)) continue;
      seen.add(name);
      if (m.op !== EngineOp.Set) {
        report.tombstonesDropped++;
        continue;
      }
      if (!this.keydir.pointsAt(m.key, 0, m.key.length, fileId, offset)) continue;
      const frame = encodeFrame(encodeRecord(EngineOp.Set, rec.timestampMs, rec.revision, m.key, m.value, m));
      (await this.mergedFileFor(writers, frame.length)).add(frame, EngineOp.Set, rec.revision, m.key, m);
      report.recordsCopied++;
    }
  }

  /** Steps 5 and 6 of a committed merge. */
  private async switchAndDelete(inputs: MergeInput[], writers: MergedFileWriter[]): Promise<void> {
    const recordBytesMax = recordBytesMaxOf(this.opts.keyBytesMax, this.opts.valueBytesMax);
    const outputs = writers.map((w) => MergedFile.open(this.opts.dir, w.n, w.sizeBytes, recordBytesMax, this.opts.disk));
    for (const mf of outputs) this.merged.set(mf.fileId, mf);
    let sinceYield = 0;
    for (let i = 0; i < outputs.length; i++) {
      const fileId = outputs[i].fileId;
      const repoint = (_op: EngineOp, payload: Buffer, keyStart: number, keyEnd: number, revision: number, offset: number, sizeBytes: number): void => {
        this.keydir.repoint(payload, keyStart, keyEnd, revision, fileId, offset, sizeBytes);
      };
      for (const payload of writers[i].hintPayloads) {
        sinceYield += forEachHintEntry(payload, repoint);
        if (sinceYield >= SWITCH_ENTRIES_PER_YIELD) {
          sinceYield = 0;
          await yieldToEventLoop(this.opts.clock);
        }
      }
      // Copies of keys overwritten or deleted during the merge are dead from the start.
      this.keydir.addDead(outputs[i].recordBytes - this.keydir.liveBytesOf(outputs[i].fileId));
    }
    await this.hook('switched');

    // A snapshot that captured these inputs before the commit links them first.
    while (this.snapshotLinking) await this.snapshotLinking;
    for (const input of inputs) {
      this.keydir.forgetFile(input.fileId, input.recordBytes);
      const mf = this.merged.get(input.fileId);
      if (!mf) continue;
      this.merged.delete(input.fileId);
      mf.close();
      await this.opts.disk.rm(mf.path, { force: true });
      await this.opts.disk.rm(mf.hintPath, { force: true });
    }
    await this.stopLogHints();
    await this.log.dropPrefix(this.manifest.upto);
    // Their hint files go with them (a crash in between: open deletes hint files with no log file).
    for (const input of inputs) {
      if (input.fileId < 0) continue;
      await this.opts.disk.rm(nodePath.join(this.opts.dir, logHintFileName(input.fileId)), { force: true });
      this.hintedSegments.delete(input.fileId);
      this.hintFailedSegments.delete(input.fileId);
    }
    await fsyncDir(this.opts.dir, this.opts.disk);
    await this.hook('deleted');
  }

  private async snapshotHook(step: SnapshotStep): Promise<void> {
    if (this.opts.snapshotHook) await this.opts.snapshotHook(step);
  }

  private async runSnapshot(options: CreateSnapshotOptions): Promise<EngineSnapshot> {
    // Capture, synchronously: the applied index, the merge manifest in use and the files holding
    // exactly the entries up to it (log files from `upto` on, the last one cut at entry A).
    const appliedIndex = this.log.lastIndex();
    if (appliedIndex !== this.assignedIndex) throw new Error(`LogIndexMatchesAssigned: log ${appliedIndex}, engine ${this.assignedIndex}`);
    const durable = this.lastDurable;
    const latest = this.latestSnapshot();
    if (latest && latest.appliedIndex === appliedIndex) {
      await durable;
      return latest;
    }
    const term = options.termAt ? options.termAt(appliedIndex) : 0;
    if (!Number.isSafeInteger(term) || term < 0) throw new RangeError(`termAt(${appliedIndex}) must be a non-negative integer, got ${term}`);
    const manifest = this.manifest;
    const sources = this.snapshotSources(manifest);
    const snapshotsDir = nodePath.join(this.opts.dir, SNAPSHOTS_DIR_NAME);
    const tmp = nodePath.join(snapshotsDir, snapshotDirName(appliedIndex) + '.tmp');
    const final = nodePath.join(snapshotsDir, snapshotDirName(appliedIndex));
    const chunkBytes = this.opts.snapshotChunkBytesMax;
    try {
      await this.linkSnapshotFiles(sources, manifest, durable, tmp);
      await this.snapshotHook('linked');
      const checkOpen = (): void => {
        if (this.closed) throw new SnapshotAbortedError();
      };
      checkOpen();
      const files: SnapshotFile[] = [];
      for (const src of sources) {
        files.push({ name: src.name, ...(await fileCrc32(nodePath.join(tmp, src.name), chunkBytes, checkOpen, this.opts.disk)) });
        await this.snapshotHook('file');
      }
      const manifestOfSnapshot: SnapshotManifest = { appliedIndex, term, createdAtMs: this.opts.clock.nowMs(), files };
      const encoded = encodeSnapshotManifest(manifestOfSnapshot);
      const full: EngineSnapshot = { ...manifestOfSnapshot, dir: final, manifestBytes: encoded, sizeBytes: files.reduce((n, f) => n + f.sizeBytes, 0) };
      await writeNewFileDurable(nodePath.join(tmp, SNAPSHOT_MANIFEST_FILE_NAME), encoded, this.opts.disk);
      await fsyncDir(tmp, this.opts.disk);
      await this.snapshotHook('written');
      checkOpen();
      await this.opts.disk.rm(final, { recursive: true, force: true });
      await this.opts.disk.rename(tmp, final);
      await fsyncDir(snapshotsDir, this.opts.disk);
      this.snapshotList.push(full);
      await this.snapshotHook('committed');
      await this.pruneSnapshots();
      await this.snapshotHook('pruned');
      return full;
    } catch (err) {
      await this.opts.disk.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }

  /**
   * The files of a snapshot at the applied index, captured synchronously: the merged files of
   * `manifest` with their hints, and the log files from its `upto` on, the last one (copied, not
   * linked: it is still written) cut at the last entry. `sizeBytes` null: not checked at link time.
   */
  private snapshotSources(manifest: MergeManifest): SnapshotSource[] {
    const dir = this.opts.dir;
    const sources: SnapshotSource[] = [];
    for (const f of manifest.files) {
      sources.push({ name: mergedDataFileName(f.n), from: nodePath.join(dir, mergedDataFileName(f.n)), sizeBytes: f.dataBytes, copy: false });
      sources.push({ name: hintFileName(f.n), from: nodePath.join(dir, hintFileName(f.n)), sizeBytes: null, copy: false });
    }
    const segments = this.log.segments().filter((seg) => seg.segmentId >= manifest.upto);
    segments.forEach((seg, i) => {
      const end = seg.lastIndex >= seg.firstIndex ? this.log.position(seg.lastIndex) : null;
      sources.push({ name: segmentFileName(seg.segmentId), from: seg.path, sizeBytes: end ? end.offset + end.sizeBytes : SEGMENT_HEADER_BYTES, copy: i === segments.length - 1 });
    });
    return sources;
  }

  /**
   * Links (or copies) `sources` into the snapshot's `tmp` directory once the captured writes are
   * `durable`, with the merge manifest as captured; a merge waits for this (`snapshotLinking`)
   * before it deletes its inputs. Adds the manifest to `sources` when written.
   * @throws Error SnapshotFileSizeAtCapture when a linked file is not the size captured.
   */
  private async linkSnapshotFiles(sources: SnapshotSource[], manifest: MergeManifest, durable: Promise<unknown>, tmp: string): Promise<void> {
    const snapshotsDir = nodePath.dirname(tmp);
    let releaseLinking = (): void => undefined;
    this.snapshotLinking = new Promise<void>((resolve) => (releaseLinking = resolve));
    try {
      await this.snapshotHook('captured');
      await durable;
      if (!(await this.opts.disk.stat(snapshotsDir).catch(() => null))) {
        await this.opts.disk.mkdir(snapshotsDir, { recursive: true });
        await fsyncDir(this.opts.dir, this.opts.disk);
      }
      await this.opts.disk.rm(tmp, { recursive: true, force: true });
      await this.opts.disk.mkdir(tmp);
      for (const src of sources) {
        const to = nodePath.join(tmp, src.name);
        if (src.copy) await copyPrefix(src.from, to, src.sizeBytes!, this.opts.snapshotChunkBytesMax, this.opts.disk);
        else await this.opts.disk.link(src.from, to);
        // Immutable files are durable already (merged files are fsynced before use, sealed log files before the next starts).
        if (src.sizeBytes !== null) {
          const size = (await this.opts.disk.stat(to)).size;
          if (size !== src.sizeBytes) throw new Error(`SnapshotFileSizeAtCapture: ${src.name} is ${size} bytes, ${src.sizeBytes} captured`);
        }
      }
      // The merge manifest as captured (the file may already be a newer one).
      if (manifest.generation > 0) {
        await writeNewFileDurable(nodePath.join(tmp, MANIFEST_FILE_NAME), encodeManifest(manifest), this.opts.disk);
        sources.push({ name: MANIFEST_FILE_NAME, from: '', sizeBytes: null, copy: false });
      }
    } finally {
      this.snapshotLinking = null;
      releaseLinking();
    }
  }

  /** Deletes the oldest snapshots beyond `snapshotsRetainedMax` that no reader holds. */
  private async pruneSnapshots(): Promise<void> {
    const excess = this.snapshotList.length - this.opts.snapshotsRetainedMax;
    if (excess <= 0) return;
    const victims = this.snapshotList.slice(0, excess).filter((x) => !this.snapshotReaders.has(x.appliedIndex));
    if (!victims.length) return;
    this.snapshotList = this.snapshotList.filter((x) => !victims.includes(x));
    for (const v of victims) await this.opts.disk.rm(v.dir, { recursive: true, force: true });
    await fsyncDir(nodePath.join(this.opts.dir, SNAPSHOTS_DIR_NAME), this.opts.disk);
  }

  /** The records of a sealed log data file with their offsets. */
  private *logRecords(s: SegmentInfo): Generator<{ offset: number; payload: Buffer }> {
    for (const { position, payload } of this.log.scan(s.firstIndex, s.lastIndex)) yield { offset: position.offset, payload };
  }

  /** Yields to the event loop, waiting longer when the merge is ahead of `mergeBytesPerSecondMax`; aborts when closing. */
  private async pace(startedAtMs: number, bytesRead: number): Promise<void> {
    await paceIo(this.opts.clock, startedAtMs, bytesRead, this.opts.mergeBytesPerSecondMax);
    if (this.closed) throw new MergeAbortedError();
  }
}

/** A file of a snapshot: where it is linked or copied from, the size captured (null: not checked), copied or hard-linked. */
type SnapshotSource = { name: string; from: string; sizeBytes: number | null; copy: boolean };

function emptyMergeReport(startedAtMs: number): MergeReport {
  return { startedAtMs, durationMs: 0, inputFiles: 0, outputFiles: 0, bytesRead: 0, bytesWritten: 0, recordsCopied: 0, tombstonesDropped: 0, bytesReclaimed: 0, error: null };
}

