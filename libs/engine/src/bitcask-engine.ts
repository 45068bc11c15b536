/**
 * `BitcaskEngine`: a Bitcask-style key-value store (Sheehy & Smith, "Bitcask: A Log-Structured
 * Hash Table for Fast Key/Value Data", 2010) whose data files are the segments of a
 * `@cairn/log` `SegmentedLog`. Every applied Raft entry becomes one data record (`record.ts`),
 * appended through the log's group commit; an in-memory keydir maps each live key to the
 * position of its latest value, so a get is one CRC-checked pread. See docs/engine.md.
 */
import * as nodePath from 'node:path';
import { LogClosedError, LogCorruptionError, SegmentedLog, segmentFileName, type FsyncPolicy, type SegmentInfo } from '@cairn/log';
import { EngineEntryTooLargeError, EngineGapError } from './errors';
import { Keydir, keyString } from './keydir';
import { EngineOp, RECORD_HEADER_BYTES, decodeRecord, encodeRecord, type DataRecord } from './record';

/** One committed Raft entry for the state machine. `index` = Raft log index = the key's new revision. */
export interface EngineEntry {
  index: number;
  op: EngineOp;
  key: Uint8Array;
  value: Uint8Array;
}

export interface EngineOptions {
  /** Directory of the data files (log segments); created if missing. */
  dir: string;
  /** Data file size before rolling to a new one; default 64 MiB (the log's default). */
  segmentBytesMax?: number;
  /** Default 'group' (see `FsyncPolicy` in `@cairn/log`). */
  fsyncPolicy?: FsyncPolicy;
  /** Default 64 KiB. */
  keyBytesMax?: number;
  /** Default 8 MiB. */
  valueBytesMax?: number;
}

export interface GetResult {
  value: Buffer;
  /** Index of the entry that wrote this value. */
  revision: number;
}

export interface EngineStats {
  /** Live keys in the keydir. */
  keys: number;
  /** Log-frame bytes of the records the keydir points to. */
  liveBytes: number;
  /** Bytes of the data files on disk (segment headers included). */
  dataBytes: number;
  /** Log-frame bytes of records no key points to (overwritten values, tombstones, noops): what a merge can reclaim. */
  deadBytes: number;
  appliedIndex: number;
}

const DEFAULT_KEY_BYTES_MAX = 64 * 1024;
const DEFAULT_VALUE_BYTES_MAX = 8 * 1024 * 1024;

export class BitcaskEngine {
  private readonly keydir = new Keydir();
  /** Highest index applied and durable. */
  private durableIndex: number;
  /** Highest index handed to the log (durable or not): where the next apply must continue. */
  private assignedIndex: number;
  /** Settles when the latest apply is durable; lets a fully skipped re-delivery wait for it. */
  private lastDurable: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly log: SegmentedLog,
    private readonly dir: string,
    private readonly keyBytesMax: number,
    private readonly valueBytesMax: number,
  ) {
    this.durableIndex = 0;
    this.assignedIndex = 0;
  }

  /**
   * Opens the data files (recovering a torn tail, see `@cairn/log`) and rebuilds the keydir by
   * scanning them oldest first. `appliedIndex()` is then the revision of the last record.
   * @throws LogCorruptionError for corrupt data files or a record that is not a valid data record.
   */
  static async open(options: EngineOptions): Promise<BitcaskEngine> {
    const keyBytesMax = options.keyBytesMax ?? DEFAULT_KEY_BYTES_MAX;
    const valueBytesMax = options.valueBytesMax ?? DEFAULT_VALUE_BYTES_MAX;
    const log = await SegmentedLog.open({
      dir: options.dir,
      segmentBytesMax: options.segmentBytesMax,
      fsyncPolicy: options.fsyncPolicy,
      recordBytesMax: RECORD_HEADER_BYTES + keyBytesMax + valueBytesMax,
      firstIndex: 1,
    });
    const engine = new BitcaskEngine(log, nodePath.resolve(options.dir), keyBytesMax, valueBytesMax);
    try {
      engine.rebuildKeydir();
    } catch (err) {
      await log.close();
      throw err;
    }
    return engine;
  }

  /** Highest entry index applied AND durable (the revision of the last data record; 0 when empty). */
  appliedIndex(): number {
    return this.durableIndex;
  }

  /** What `open` found in the data files (torn tail etc.), from `@cairn/log`. */
  get recovery(): SegmentedLog['recovery'] {
    return this.log.recovery;
  }

  /**
   * Applies committed entries (increasing index order). Entries with index <= the last applied
   * (or in-flight) index are skipped (idempotent re-delivery after a restart); the rest must be
   * contiguous from there. Writes one record per entry (Noop too, so the applied index is
   * durable), updates the keydir at once (gets see the new values before the fsync), and resolves
   * with the new appliedIndex once the records are durable (group commit through the log).
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
    const now = Date.now();
    const payloads: Buffer[] = new Array(entries.length - start);
    for (let i = start; i < entries.length; i++) {
      const e = entries[i];
      const expected = this.assignedIndex + 1 + (i - start);
      if (e.index !== expected) throw new EngineGapError(expected, e.index);
      if (e.key.length > this.keyBytesMax) throw new EngineEntryTooLargeError(e.index, 'key', e.key.length, this.keyBytesMax);
      if (e.value.length > this.valueBytesMax) throw new EngineEntryTooLargeError(e.index, 'value', e.value.length, this.valueBytesMax);
      if (e.op !== EngineOp.Noop && e.op !== EngineOp.Set && e.op !== EngineOp.Delete) throw new RangeError(`entry ${e.index}: unknown op ${String(e.op)}`);
      payloads[i - start] = encodeRecord(e.op, now, e.index, e.key, e.op === EngineOp.Set ? e.value : new Uint8Array(0));
    }
    const { positions, durable } = this.log.enqueue(payloads);
    for (let i = 0; i < positions.length; i++) {
      const e = entries[start + i];
      // The log index and the revision advance together (one record per entry, no gaps).
      if (positions[i].index !== e.index) throw new Error(`LogIndexMatchesRevision: record ${positions[i].index} for entry ${e.index}`);
      this.keydir.record(e.op, keyString(e.key), positions[i], e.index);
    }
    const last = entries[entries.length - 1].index;
    this.assignedIndex = last;
    this.lastDurable = durable;
    await durable;
    if (last > this.durableIndex) this.durableIndex = last;
    return this.durableIndex;
  }

  /**
   * The live value of `key` and the revision that wrote it, or null when absent or deleted.
   * Synchronous: one pread (or the log's pending buffer for a record not yet written).
   * @throws LogCorruptionError when the record's CRC32 (or layout) is wrong: never wrong bytes.
   */
  get(key: Uint8Array): GetResult | null {
    this.assertOpen('get');
    const entry = this.keydir.get(keyString(key));
    if (!entry) return null;
    const payload = this.log.readAt(entry.segmentId, entry.offset, entry.sizeBytes);
    const rec = this.decode(payload, entry.segmentId, entry.offset);
    // The keydir and the data file must agree; a mismatch is a bug, not a miss.
    if (rec.op !== EngineOp.Set || rec.revision !== entry.revision || !rec.key.equals(key)) {
      throw new Error(`KeydirMatchesRecord: keydir entry (revision ${entry.revision}) points to op ${rec.op} revision ${rec.revision}`);
    }
    return { value: rec.value, revision: rec.revision };
  }

  stats(): EngineStats {
    this.assertOpen('stats');
    return {
      keys: this.keydir.size,
      liveBytes: this.keydir.liveBytes,
      dataBytes: this.log.sizeBytes(),
      deadBytes: this.keydir.deadBytes,
      appliedIndex: this.durableIndex,
    };
  }

  /** Flushes and fsyncs pending records, closes the data files; later calls throw LogClosedError. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await this.log.close();
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw new LogClosedError(operation);
  }

  private decode(payload: Buffer, segmentId: number, offset: number): DataRecord {
    const rec = decodeRecord(payload);
    if ('error' in rec) throw new LogCorruptionError(nodePath.join(this.dir, segmentFileName(segmentId)), offset, rec.error);
    return rec;
  }

  /**
   * Rebuilds the keydir from the data files, oldest first. Seam for hint files (a later issue):
   * `loadDataFile` is the only per-file loader; a `loadHintFile(segment)` that feeds the same
   * `keydir.record(...)` calls from `<segmentId>.hint` (key, position, revision, op; no values)
   * will be tried first for sealed segments, falling back to the scan when absent or invalid.
   */
  private rebuildKeydir(): void {
    for (const segment of this.log.segments()) this.loadDataFile(segment);
    const last = this.log.lastIndex();
    this.durableIndex = this.assignedIndex = last >= this.log.firstIndex() ? this.revisionAt(last) : 0;
  }

  private loadDataFile(segment: SegmentInfo): void {
    for (const { position, payload } of this.log.scan(segment.firstIndex, segment.lastIndex)) {
      const rec = this.decode(payload, position.segmentId, position.offset);
      if (rec.revision !== position.index) {
        throw new LogCorruptionError(nodePath.join(this.dir, segmentFileName(position.segmentId)), position.offset, `data record revision ${rec.revision} at log index ${position.index}`);
      }
      this.keydir.record(rec.op, rec.key.toString('latin1'), position, rec.revision);
    }
  }

  private revisionAt(index: number): number {
    const pos = this.log.position(index);
    return this.decode(this.log.read(index), pos.segmentId, pos.offset).revision;
  }
}
