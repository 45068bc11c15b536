/**
 * `SegmentedLog`: a durable, segmented, append-only log of opaque records addressed by a dense
 * index. Both the Raft log and the Bitcask storage engine are built on it.
 *
 * Byte layout: see `format.ts` and docs/log.md (segment header `CAIRNLOG` + version + first
 * index + CRC32; record frame `u32 BE length | u32 BE CRC32(length bytes, payload) | payload`).
 *
 * Concurrency model (single Node.js process, one writer):
 * - `append` assigns indexes synchronously and queues the frames in a pending buffer that `read`
 *   and `readAt` serve until they are written.
 * - All file mutations (writes, fsyncs, truncation, segment creation/deletion) run one at a time
 *   on an internal promise chain, with async `DiskFile` calls so the event loop is not blocked.
 * - Group commit (`fsyncPolicy: 'group'`): every append queued while a write+fdatasync is in
 *   flight is written by ONE `writev` and made durable by ONE `fdatasync` (cf. the group commit
 *   of database WALs; Raft §10.2.1 "write to disk in parallel / batch").
 * - Reads are synchronous `pread`s on the file descriptors kept open for every segment.
 */
import * as nodePath from 'node:path';
import { LogClosedError, LogCorruptionError, RecordTooLargeError } from './errors';
import {
  FRAME_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
  SEGMENT_TMP_SUFFIX,
  encodeFrame,
  encodeSegmentHeader,
  frameCrc,
  parseSegmentFileName,
  segmentFileName,
} from './format';
import type { Clock, TimerHandle } from './clock';
import { nodeDisk, type Disk, type DiskFile } from './disk';
import { fsyncDir } from './files';
import { OffsetTable } from './offset-table';
import { scanSegment, type TornTail } from './recovery';

export type FsyncPolicy = 'always' | 'group' | 'interval';

export interface SegmentedLogOptions {
  /** Directory of the segment files; created (with parents) if missing. */
  dir: string;
  /** Roll to a new segment when the next record frame would make the active one exceed this; default 64 MiB. A segment always takes at least one record. */
  segmentBytesMax?: number;
  /** Payload bound: checked on append (RecordTooLargeError) and on recovery (a larger length is corruption); default 16 MiB. */
  recordBytesMax?: number;
  /** Durability of `append`, default 'group'. See `FsyncPolicy` semantics on `append`. */
  fsyncPolicy?: FsyncPolicy;
  /** fdatasync period for 'interval', default 10 ms. */
  fsyncIntervalMs?: number;
  /** Runs the 'interval' fdatasync timer (unref'd); required with 'interval' (RangeError without), unused otherwise. Process shells pass `realClock` (@cairn/world). */
  clock?: Clock;
  /** Index of the first record of a NEW, empty log; default 1. Ignored when segments exist. */
  firstIndex?: number;
  /**
   * Default true: open checks the CRC32 of every record of every segment. False: records of the
   * segments before the last are only walked by their lengths (the offset table) and their CRC is
   * checked when they are read (`read`, `readRange`, `scan`, `readAt` always check), which is what
   * makes reopening a large store fast (the CRC pass costs ~0.8 s per million records). For
   * stores that read every record at start anyway or check them elsewhere (the engine with hint
   * files). The last segment is always fully checked: its tail is where a crash tears records.
   */
  verifySealedSegments?: boolean;
  /** The file operations (default `nodeDisk`, node:fs; the simulator passes a simulated disk). */
  disk?: Disk;
}

/** Where a record lives. `segmentId` = first index of its segment file; `offset` = byte offset of its frame in that file; `sizeBytes` = frame size (8 + payload). */
export interface RecordPosition {
  index: number;
  segmentId: number;
  offset: number;
  sizeBytes: number;
}

/** One segment file. `lastIndex = firstIndex - 1` when it holds no record; `sizeBytes` = bytes written to the file. */
export interface SegmentInfo {
  segmentId: number;
  path: string;
  firstIndex: number;
  lastIndex: number;
  sizeBytes: number;
}

/** What `open` found. `tornTail` is set when the last segment's incomplete tail was truncated. */
export interface RecoveryReport {
  segmentsScanned: number;
  recordsRecovered: number;
  tornTail: null | TornTail;
}

/** Counters since open, for tests and metrics. `fsyncs` counts fdatasync/fsync calls on segment files (not the directory). */
export interface LogStats {
  /** append() calls that assigned at least one record. */
  appends: number;
  records: number;
  /** writev calls (one per segment touched by a group). */
  writes: number;
  fsyncs: number;
  dirFsyncs: number;
  bytesWritten: number;
}

const MiB = 1024 * 1024;
const DEFAULT_SEGMENT_BYTES_MAX = 64 * MiB;
const DEFAULT_RECORD_BYTES_MAX = 16 * MiB;
const DEFAULT_FSYNC_INTERVAL_MS = 10;

class Segment {
  /** Open for the log's lifetime: async writes go through it, sync preads use `fh.readSync`. null until the file is created. */
  fh: DiskFile | null = null;
  /** Bytes in the file; frames at offsets >= this are still pending (in `SegmentedLog.pending`). */
  fileBytes: number;
  constructor(
    readonly id: number,
    readonly path: string,
    readonly offsets: OffsetTable,
  ) {
    this.fileBytes = offsets.endOffset;
  }
  get lastIndex(): number {
    return this.id + this.offsets.count - 1;
  }
}

interface PendingRecord {
  segment: Segment;
  index: number;
  offset: number;
  frame: Buffer;
}

interface PendingBatch {
  records: PendingRecord[];
  positions: RecordPosition[];
  resolve: (positions: RecordPosition[]) => void;
  reject: (err: unknown) => void;
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return v;
}

export class SegmentedLog {
  readonly recovery: RecoveryReport;
  private readonly dir: string;
  private readonly segmentBytesMax: number;
  private readonly recordBytesMax: number;
  private readonly fsyncPolicy: FsyncPolicy;
  /** Ordered by id; never empty; the last one is the active segment. */
  private segs: Segment[];
  /** Frames appended but not yet written, by index. */
  private readonly pending = new Map<number, Buffer>();
  private queue: PendingBatch[] = [];
  private flushScheduled = false;
  /** Tail of the chain that serialises every file mutation. */
  private ioTail: Promise<void> = Promise.resolve();
  private readonly unsynced = new Set<Segment>();
  private truncating = 0;
  private closing: Promise<void> | null = null;
  private closed = false;
  /** First write/fsync error: the on-disk state no longer matches memory, so the log refuses further writes. */
  private failure: Error | null = null;
  private readonly disk: Disk;
  private readonly clock: Clock | undefined;
  private timer: TimerHandle | null = null;
  private readonly counters: LogStats = { appends: 0, records: 0, writes: 0, fsyncs: 0, dirFsyncs: 0, bytesWritten: 0 };

  private constructor(dir: string, opts: { segmentBytesMax: number; recordBytesMax: number; fsyncPolicy: FsyncPolicy; fsyncIntervalMs: number; disk: Disk; clock?: Clock }, segs: Segment[], recovery: RecoveryReport) {
    this.dir = dir;
    this.disk = opts.disk;
    this.segmentBytesMax = opts.segmentBytesMax;
    this.recordBytesMax = opts.recordBytesMax;
    this.fsyncPolicy = opts.fsyncPolicy;
    this.segs = segs;
    this.recovery = recovery;
    this.clock = opts.clock;
    if (this.fsyncPolicy === 'interval') this.timer = opts.clock!.setInterval(() => this.intervalSync(), opts.fsyncIntervalMs, { unref: true });
  }

  /**
   * Opens (or creates) the log in `options.dir` and recovers it: scans every segment in order,
   * truncates (ftruncate + fsync) a torn tail of the LAST segment and reports it in `recovery`.
   * @throws LogCorruptionError for a garbled/foreign segment header, a bad record with valid data
   *   after it, any bad record in a non-last segment, or a gap between segment first indexes.
   * @throws RangeError for invalid options (among them 'interval' without a clock).
   */
  static async open(options: SegmentedLogOptions): Promise<SegmentedLog> {
    const opts = {
      segmentBytesMax: positiveInt('segmentBytesMax', options.segmentBytesMax, DEFAULT_SEGMENT_BYTES_MAX),
      recordBytesMax: positiveInt('recordBytesMax', options.recordBytesMax, DEFAULT_RECORD_BYTES_MAX),
      fsyncPolicy: options.fsyncPolicy ?? 'group',
      fsyncIntervalMs: positiveInt('fsyncIntervalMs', options.fsyncIntervalMs, DEFAULT_FSYNC_INTERVAL_MS),
      disk: options.disk ?? nodeDisk,
      clock: options.clock,
    };
    const disk = opts.disk;
    if (!['always', 'group', 'interval'].includes(opts.fsyncPolicy)) throw new RangeError(`unknown fsyncPolicy ${String(opts.fsyncPolicy)}`);
    if (opts.fsyncPolicy === 'interval' && !opts.clock) throw new RangeError("fsyncPolicy 'interval' needs a clock for its fdatasync timer");
    const newFirstIndex = options.firstIndex ?? 1;
    if (!Number.isSafeInteger(newFirstIndex) || newFirstIndex < 0) throw new RangeError(`firstIndex must be a non-negative integer, got ${options.firstIndex}`);
    const dir = nodePath.resolve(options.dir);
    await disk.mkdir(dir, { recursive: true });

    const ids: number[] = [];
    for (const name of await disk.readdir(dir)) {
      // A segment that was being created when the process died: never renamed, so never holds records.
      if (name.endsWith(SEGMENT_TMP_SUFFIX)) await disk.rm(nodePath.join(dir, name), { force: true });
      const id = parseSegmentFileName(name);
      if (id !== null) ids.push(id);
    }
    ids.sort((a, b) => a - b);

    const segs: Segment[] = [];
    const recovery: RecoveryReport = { segmentsScanned: 0, recordsRecovered: 0, tornTail: null };
    try {
      for (let i = 0; i < ids.length; i++) {
        const path = nodePath.join(dir, segmentFileName(ids[i]));
        const prev = segs[segs.length - 1];
        if (prev && ids[i] !== prev.lastIndex + 1) {
          throw new LogCorruptionError(path, 0, `segment first index ${ids[i]} does not follow ${prev.path} (last index ${prev.lastIndex}): gap or overlap`);
        }
        const data = await disk.readFile(path);
        const scan = scanSegment(path, data, ids[i], i === ids.length - 1, opts.recordBytesMax, options.verifySealedSegments ?? true);
        const seg = new Segment(ids[i], path, scan.offsets);
        seg.fh = await disk.open(path, 'r+');
        segs.push(seg);
        if (scan.torn) {
          await seg.fh.truncate(scan.validBytes);
          await seg.fh.sync();
          recovery.tornTail = scan.torn;
        }
        recovery.segmentsScanned++;
        recovery.recordsRecovered += scan.offsets.count;
      }
      if (segs.length === 0) {
        const seg = new Segment(newFirstIndex, nodePath.join(dir, segmentFileName(newFirstIndex)), new OffsetTable(SEGMENT_HEADER_BYTES));
        await createSegmentFile(seg, disk);
        await fsyncDir(dir, disk);
        segs.push(seg);
      }
    } catch (err) {
      await Promise.all(segs.map((s) => s.fh?.close()));
      throw err;
    }
    return new SegmentedLog(dir, opts, segs, recovery);
  }

  /** Index of the first record kept; `lastIndex() + 1` when the log is empty. */
  firstIndex(): number {
    this.assertOpen('firstIndex');
    return this.segs[0].id;
  }

  /** Index of the last record appended (written or still pending). */
  lastIndex(): number {
    this.assertOpen('lastIndex');
    return this.active.lastIndex;
  }

  /**
   * Appends records; their indexes are assigned synchronously (`lastIndex()` advances before the
   * promise settles), the payloads are copied. Resolves with their positions once durable:
   * 'always' = after this append's own write + fdatasync; 'group' = after the write + fdatasync
   * of the group it was coalesced into; 'interval' = after the write (fdatasync every
   * `fsyncIntervalMs`). An empty `payloads` resolves at once with [].
   * @throws RecordTooLargeError (nothing appended), LogClosedError, or the earlier I/O error that
   *   stopped the log; an Error `AppendDuringTruncate` while a truncateSuffix is in progress.
   */
  append(payloads: Uint8Array[]): Promise<RecordPosition[]> {
    try {
      return this.enqueue(payloads).durable;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * `append` that also hands back the assigned positions synchronously, for callers that index
   * records before they are durable (the engine's keydir). `durable` settles as `append` would.
   * @throws synchronously what `append` rejects with.
   */
  enqueue(payloads: Uint8Array[]): { positions: RecordPosition[]; durable: Promise<RecordPosition[]> } {
    this.assertWritable('append');
    if (this.truncating > 0) throw new Error('AppendDuringTruncate: await truncateSuffix() before appending (indexes would be ambiguous)');
    for (const p of payloads) if (p.length > this.recordBytesMax) throw new RecordTooLargeError(p.length, this.recordBytesMax);
    if (payloads.length === 0) return { positions: [], durable: Promise.resolve([]) };
    const records: PendingRecord[] = new Array(payloads.length);
    const positions: RecordPosition[] = new Array(payloads.length);
    for (let i = 0; i < payloads.length; i++) {
      const frame = encodeFrame(payloads[i]);
      let seg = this.active;
      if (seg.offsets.count > 0 && seg.offsets.endOffset + frame.length > this.segmentBytesMax) seg = this.roll();
      const index = seg.id + seg.offsets.count;
      const offset = seg.offsets.push(frame.length);
      this.pending.set(index, frame);
      records[i] = { segment: seg, index, offset, frame };
      positions[i] = { index, segmentId: seg.id, offset, sizeBytes: frame.length };
    }
    this.counters.appends++;
    this.counters.records += payloads.length;
    const durable = new Promise<RecordPosition[]>((resolve, reject) => {
      this.queue.push({ records, positions: positions.slice(), resolve, reject });
      this.scheduleFlush();
    });
    return { positions, durable };
  }

  /** Position of record `index` (O(1) from the offset table). @throws RangeError outside [firstIndex(), lastIndex()]. */
  position(index: number): RecordPosition {
    this.assertOpen('position');
    const seg = this.segmentOf(index);
    const k = index - seg.id;
    const offset = seg.offsets.get(k);
    return { index, segmentId: seg.id, offset, sizeBytes: seg.offsets.get(k + 1) - offset };
  }

  /**
   * Iterates records `fromIndex..toIndex` (inclusive; nothing when fromIndex > toIndex) in order
   * with their positions, reading each segment sequentially in chunks of `chunkBytes` (default
   * 1 MiB) rather than one pread per record: the fast path for rebuilding an index at start-up.
   * Payloads are CRC-checked views into the chunk buffers (not copies). Do not truncate the log
   * while iterating. @throws RangeError for a range outside the log; LogCorruptionError.
   */
  *scan(fromIndex = this.firstIndex(), toIndex = this.lastIndex(), chunkBytes = 1024 * 1024): Generator<{ position: RecordPosition; payload: Buffer }> {
    this.assertOpen('scan');
    if (fromIndex > toIndex) return;
    this.segmentOf(fromIndex);
    this.segmentOf(toIndex);
    let index = fromIndex;
    while (index <= toIndex) {
      const seg = this.segmentOf(index);
      const last = Math.min(toIndex, seg.lastIndex);
      let chunk = Buffer.alloc(0);
      let chunkStart = 0;
      for (; index <= last; index++) {
        const k = index - seg.id;
        const offset = seg.offsets.get(k);
        const frameBytes = seg.offsets.get(k + 1) - offset;
        const position = { index, segmentId: seg.id, offset, sizeBytes: frameBytes };
        if (offset >= seg.fileBytes) {
          yield { position, payload: this.readFrame(seg, offset, frameBytes, index) };
          continue;
        }
        if (offset < chunkStart || offset + frameBytes > chunkStart + chunk.length) {
          // Up to chunkBytes (at least this frame), not past the written bytes or the range's end.
          const end = Math.max(offset + frameBytes, Math.min(offset + chunkBytes, seg.fileBytes, seg.offsets.get(last - seg.id + 1)));
          chunk = Buffer.allocUnsafe(end - offset);
          chunkStart = offset;
          this.preadFully(seg, chunk, offset);
        }
        const frame = chunk.subarray(offset - chunkStart, offset - chunkStart + frameBytes);
        yield { position, payload: this.checkFrame(seg, offset, frame) };
      }
    }
  }

  /**
   * The payload of record `index` (a fresh Buffer), CRC-checked. Serves pending records too.
   * @throws RangeError outside [firstIndex(), lastIndex()]; LogCorruptionError on a bad frame.
   */
  read(index: number): Buffer {
    this.assertOpen('read');
    const seg = this.segmentOf(index);
    const k = index - seg.id;
    const offset = seg.offsets.get(k);
    return this.readFrame(seg, offset, seg.offsets.get(k + 1) - offset, index);
  }

  /**
   * Payloads of records `fromIndex..toIndex` inclusive ([] when fromIndex > toIndex). Stops
   * before the record that would take the total payload bytes over `bytesMax`, but always returns
   * the first record (etcd `limitSize` semantics).
   * @throws RangeError when the range reaches outside [firstIndex(), lastIndex()].
   */
  readRange(fromIndex: number, toIndex: number, bytesMax = Number.POSITIVE_INFINITY): Buffer[] {
    this.assertOpen('readRange');
    if (fromIndex > toIndex) return [];
    this.segmentOf(toIndex); // bounds check of the far end before reading anything
    const out: Buffer[] = [];
    let total = 0;
    for (let i = fromIndex; i <= toIndex; i++) {
      const seg = this.segmentOf(i);
      const k = i - seg.id;
      const payloadBytes = seg.offsets.get(k + 1) - seg.offsets.get(k) - FRAME_HEADER_BYTES;
      if (out.length > 0 && total + payloadBytes > bytesMax) break;
      out.push(this.read(i));
      total += payloadBytes;
    }
    return out;
  }

  /**
   * The payload of the record whose frame starts at byte `offset` of segment `segmentId`
   * (a `RecordPosition`), CRC-checked. `sizeBytes` (the frame size, when known) saves a pread.
   * Serves pending records too.
   * @throws LogCorruptionError when the frame's length or CRC32 is wrong; RangeError for an
   *   unknown segment or an offset outside it.
   */
  readAt(segmentId: number, offset: number, sizeBytes?: number): Buffer {
    this.assertOpen('readAt');
    const seg = this.segmentById(segmentId);
    if (!seg) throw new RangeError(`no segment ${segmentId} (segments ${this.segs[0].id}..${this.active.id})`);
    if (!Number.isSafeInteger(offset) || offset < SEGMENT_HEADER_BYTES || offset + FRAME_HEADER_BYTES > seg.offsets.endOffset) {
      throw new RangeError(`offset ${offset} outside the records of segment ${seg.path}`);
    }
    if (offset >= seg.fileBytes) {
      const k = seg.offsets.find(offset);
      if (k < 0) throw new RangeError(`offset ${offset} is not a record frame start in segment ${seg.path}`);
      return this.readFrame(seg, offset, seg.offsets.get(k + 1) - offset, seg.id + k);
    }
    let frameBytes = sizeBytes;
    if (frameBytes === undefined) {
      const head = Buffer.allocUnsafe(4);
      this.preadFully(seg, head, offset);
      frameBytes = FRAME_HEADER_BYTES + head.readUInt32BE(0);
    }
    return this.readFrame(seg, offset, frameBytes, -1);
  }

  /**
   * Removes the records with index >= `fromIndex` (a Raft follower dropping a conflicting suffix,
   * Raft §5.3), durably: later segments are deleted (newest first, then the directory is fsynced)
   * and the segment holding `fromIndex` is ftruncated + fsynced. Waits for the writes of earlier
   * appends first. No-op when fromIndex > lastIndex(). Appending while it runs is refused.
   * @throws RangeError when fromIndex < firstIndex() (those records were dropped by dropPrefix).
   */
  async truncateSuffix(fromIndex: number): Promise<void> {
    this.assertWritable('truncateSuffix');
    if (!Number.isSafeInteger(fromIndex) || fromIndex < this.firstIndex()) {
      throw new RangeError(`truncateSuffix(${fromIndex}) below firstIndex ${this.firstIndex()}`);
    }
    if (fromIndex > this.lastIndex()) return;
    this.truncating++;
    try {
      await this.exclusive(async () => {
        await this.deleteSegments(() => (this.segs.length > 1 && this.active.id >= fromIndex ? this.segs.pop()! : null));
        const seg = this.active;
        const keep = fromIndex - seg.id;
        if (keep < seg.offsets.count) {
          const size = seg.offsets.get(keep);
          seg.offsets.truncate(keep);
          await seg.fh!.truncate(size);
          seg.fileBytes = size;
          await this.fsync(seg);
        }
      });
    } finally {
      this.truncating--;
    }
  }

  /**
   * Deletes the whole segments all of whose records are < `beforeIndex` (compaction after a
   * snapshot), oldest first, then fsyncs the directory. Never deletes the active (last) segment,
   * so records may be kept below `beforeIndex`; firstIndex() moves to the first kept record.
   */
  async dropPrefix(beforeIndex: number): Promise<void> {
    this.assertWritable('dropPrefix');
    await this.exclusive(() => this.deleteSegments(() => (this.segs.length > 1 && this.segs[1].id <= beforeIndex ? this.segs.shift()! : null)));
  }

  /** Deletes the segments `next` removes from `segs` (one by one, in its order), then fsyncs the directory. */
  private async deleteSegments(next: () => Segment | null): Promise<void> {
    let deleted = false;
    for (let seg = next(); seg; seg = next()) {
      this.unsynced.delete(seg);
      await seg.fh?.close();
      await this.disk.rm(seg.path, { force: true });
      deleted = true;
    }
    if (deleted) await this.syncDir();
  }

  /** Resolves once every record up to the current lastIndex() is written and fdatasynced. */
  async sync(): Promise<void> {
    this.assertWritable('sync');
    await this.exclusive(() => this.syncUnsynced());
  }

  /** The segment files, oldest first (the last one is active). */
  segments(): SegmentInfo[] {
    this.assertOpen('segments');
    return this.segs.map((s) => ({ segmentId: s.id, path: s.path, firstIndex: s.id, lastIndex: s.lastIndex, sizeBytes: s.fileBytes }));
  }

  /** Total bytes written to the segment files (pending records not included). */
  sizeBytes(): number {
    this.assertOpen('sizeBytes');
    let total = 0;
    for (const s of this.segs) total += s.fileBytes;
    return total;
  }

  /** Counters since open (a copy). */
  stats(): LogStats {
    return { ...this.counters };
  }

  /** Flushes pending records, fsyncs, closes the files. Idempotent; every other call afterwards throws LogClosedError. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        this.clock?.clearTimer(this.timer ?? undefined);
        try {
          if (!this.failure) await this.exclusive(() => this.syncUnsynced());
        } finally {
          this.closed = true;
          await Promise.all(this.segs.map((s) => s.fh?.close()));
        }
      })();
    }
    return this.closing;
  }

  // ---- internals ----

  private get active(): Segment {
    return this.segs[this.segs.length - 1];
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw new LogClosedError(operation);
  }

  private assertWritable(operation: string): void {
    if (this.closed || this.closing) throw new LogClosedError(operation);
    if (this.failure) throw this.failure;
  }

  /** Starts a new (pending) active segment; its file is created by the writer before its first write. */
  private roll(): Segment {
    const id = this.active.lastIndex + 1;
    const seg = new Segment(id, nodePath.join(this.dir, segmentFileName(id)), new OffsetTable(SEGMENT_HEADER_BYTES));
    seg.fileBytes = SEGMENT_HEADER_BYTES;
    this.segs.push(seg);
    return seg;
  }

  private segmentOf(index: number): Segment {
    const first = this.segs[0].id;
    const last = this.active.lastIndex;
    if (!Number.isSafeInteger(index) || index < first || index > last) {
      throw new RangeError(`index ${index} outside [${first}, ${last}]`);
    }
    const active = this.active;
    return index >= active.id ? active : this.segs[this.slotOf(index)];
  }

  private segmentById(id: number): Segment | undefined {
    const seg = this.segs[this.slotOf(id)];
    return seg?.id === id ? seg : undefined;
  }

  /** Position in `segs` of the last segment whose first index is <= `index`, -1 if none (binary search). */
  private slotOf(index: number): number {
    let lo = 0;
    let hi = this.segs.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.segs[mid].id <= index) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  private preadFully(seg: Segment, buf: Buffer, offset: number): void {
    let done = 0;
    while (done < buf.length) {
      const n = seg.fh!.readSync(buf, done, buf.length - done, offset + done);
      if (n === 0) throw new LogCorruptionError(seg.path, offset, `file ends inside the record frame (read ${done} of ${buf.length} bytes)`);
      done += n;
    }
  }

  /** Reads and checks one frame; `index` >= 0 lets pending frames be served from memory. */
  private readFrame(seg: Segment, offset: number, frameBytes: number, index: number): Buffer {
    if (offset >= seg.fileBytes) {
      const pendingFrame = this.pending.get(index);
      if (!pendingFrame) throw new Error(`PendingRecordMissing: record ${index} is neither written nor pending`);
      return Buffer.from(pendingFrame.subarray(FRAME_HEADER_BYTES));
    }
    if (frameBytes < FRAME_HEADER_BYTES || frameBytes - FRAME_HEADER_BYTES > this.recordBytesMax || offset + frameBytes > seg.fileBytes) {
      throw new LogCorruptionError(seg.path, offset, `record frame of ${frameBytes} bytes does not fit the segment`);
    }
    const frame = Buffer.allocUnsafe(frameBytes);
    this.preadFully(seg, frame, offset);
    return this.checkFrame(seg, offset, frame);
  }

  /** The payload of a frame read from `seg` at `offset`, after checking its length field and CRC32. */
  private checkFrame(seg: Segment, offset: number, frame: Buffer): Buffer {
    const len = frame.readUInt32BE(0);
    if (len !== frame.length - FRAME_HEADER_BYTES) {
      throw new LogCorruptionError(seg.path, offset, `record length field ${len} does not match the expected ${frame.length - FRAME_HEADER_BYTES}`);
    }
    if (frameCrc(frame.subarray(0, 4), frame.subarray(FRAME_HEADER_BYTES)) !== frame.readUInt32BE(4)) {
      throw new LogCorruptionError(seg.path, offset, 'record CRC32 mismatch');
    }
    return frame.subarray(FRAME_HEADER_BYTES);
  }

  /** Runs `fn` after every file mutation queued before it. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.ioTail.then(fn);
    this.ioTail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    void this.exclusive(() => this.flush());
  }

  /** Writes every batch queued so far (one group), then fsyncs per policy and settles them. */
  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const batches = this.queue;
    this.queue = [];
    let settled = 0;
    try {
      if (this.failure) throw this.failure;
      if (this.fsyncPolicy === 'always') {
        for (const b of batches) {
          await this.writeRecords(b.records);
          await this.syncUnsynced();
          settled++;
          b.resolve(b.positions);
        }
      } else {
        const all = batches.length === 1 ? batches[0].records : batches.flatMap((b) => b.records);
        await this.writeRecords(all);
        if (this.fsyncPolicy === 'group') await this.syncUnsynced();
        for (const b of batches) b.resolve(b.positions);
        settled = batches.length;
      }
    } catch (err) {
      this.failure ??= err instanceof Error ? err : new Error(String(err));
      for (let i = settled; i < batches.length; i++) batches[i].reject(err);
    }
  }

  /** Writes records (contiguous, in index order) with one writev per segment touched. */
  private async writeRecords(records: PendingRecord[]): Promise<void> {
    let i = 0;
    while (i < records.length) {
      const seg = records[i].segment;
      let j = i;
      while (j < records.length && records[j].segment === seg) j++;
      if (!seg.fh) {
        // Earlier segments must be durable before a later one exists, so that recovery never
        // sees a torn non-last segment.
        await this.syncUnsynced();
        await createSegmentFile(seg, this.disk);
        this.counters.fsyncs++;
        await this.syncDir();
      }
      if (records[i].offset !== seg.fileBytes) {
        throw new Error(`WriteOffsetMismatch: record ${records[i].index} at offset ${records[i].offset} but ${seg.path} has ${seg.fileBytes} bytes`);
      }
      const frames = records.slice(i, j).map((r) => r.frame);
      let expected = 0;
      for (const f of frames) expected += f.length;
      const { bytesWritten } = await seg.fh!.writev(frames, seg.fileBytes);
      this.counters.writes++;
      if (bytesWritten !== expected) throw new Error(`ShortWrite: wrote ${bytesWritten} of ${expected} bytes to ${seg.path}`);
      this.counters.bytesWritten += bytesWritten;
      seg.fileBytes += bytesWritten;
      for (let k = i; k < j; k++) this.pending.delete(records[k].index);
      this.unsynced.add(seg);
      i = j;
    }
  }

  private async fsync(seg: Segment): Promise<void> {
    await seg.fh!.datasync();
    this.counters.fsyncs++;
    this.unsynced.delete(seg);
  }

  private async syncUnsynced(): Promise<void> {
    for (const seg of [...this.unsynced]) await this.fsync(seg);
  }

  private async syncDir(): Promise<void> {
    await fsyncDir(this.dir, this.disk);
    this.counters.dirFsyncs++;
  }

  private intervalSync(): void {
    if (this.unsynced.size === 0 || this.closing || this.failure) return;
    this.exclusive(() => this.syncUnsynced()).catch((err: unknown) => {
      this.failure ??= err instanceof Error ? err : new Error(String(err));
    });
  }
}

/** Creates a segment file atomically: header to `<name>.tmp`, fsync, rename (the caller fsyncs the directory). */
async function createSegmentFile(seg: Segment, disk: Disk): Promise<void> {
  const tmp = seg.path.slice(0, -'.seg'.length) + SEGMENT_TMP_SUFFIX;
  const fh = await disk.open(tmp, 'w+');
  try {
    const header = encodeSegmentHeader(seg.id);
    await fh.write(header, 0, header.length, 0);
    await fh.sync();
    await disk.rename(tmp, seg.path);
  } catch (err) {
    await fh.close();
    throw err;
  }
  seg.fh = fh;
  seg.fileBytes = SEGMENT_HEADER_BYTES;
}
