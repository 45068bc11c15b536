import { FRAME_HEADER_BYTES, SegmentedLog, nodeDisk, type Clock, type Disk, type FsyncPolicy } from '@cairn/log';
import { ENTRY_OVERHEAD_BYTES, EntryType, type Entry, type LogOnDisk, type LogStorage, type TermRun } from '@cairn/raft';

/** Bytes before an entry's data in its log record: u64 term (as two u32) | u8 entry type. */
const ENTRY_HEADER_BYTES = 9;

/**
 * Layout of one Raft entry as a record payload in `@cairn/log` (the record index IS the Raft
 * index, so the index is not stored again): `u32 termHigh | u32 termLow | u8 type | data`.
 */
export function encodeLogEntry(e: Entry): Buffer {
  const buf = Buffer.allocUnsafe(ENTRY_HEADER_BYTES + e.data.length);
  buf.writeUInt32BE(Math.floor(e.term / 0x1_0000_0000), 0);
  buf.writeUInt32BE(e.term >>> 0, 4);
  buf[8] = e.type;
  buf.set(e.data, ENTRY_HEADER_BYTES);
  return buf;
}

export function decodeLogEntry(index: number, buf: Buffer): Entry {
  if (buf.length < ENTRY_HEADER_BYTES) throw new Error(`raft log record ${index} is ${buf.length} bytes, shorter than an entry header`);
  return {
    index,
    term: buf.readUInt32BE(0) * 0x1_0000_0000 + buf.readUInt32BE(4),
    type: buf[8] as EntryType,
    data: buf.subarray(ENTRY_HEADER_BYTES),
  };
}

/** The Raft log of one replica on a `SegmentedLog` (group commit: one fdatasync per Ready); the LogStorage its bounded log cache reads back. */
export class RaftLogStore implements LogStorage {
  private constructor(
    private log: SegmentedLog,
    private readonly dir: string,
    private readonly opts: { segmentBytesMax: number; fsyncPolicy: FsyncPolicy; disk: Disk; clock?: Clock },
  ) {}

  /** Opens (or creates, its first record at `firstIndex`, default 1) the log in `dir`, on `opts.disk` (default node:fs); `opts.clock` runs the 'interval' fdatasync timer (required with that policy). */
  static async open(dir: string, opts: { segmentBytesMax: number; fsyncPolicy: FsyncPolicy; disk?: Disk; clock?: Clock }, firstIndex = 1): Promise<RaftLogStore> {
    const o = { ...opts, disk: opts.disk ?? nodeDisk };
    return new RaftLogStore(await SegmentedLog.open({ dir, segmentBytesMax: o.segmentBytesMax, fsyncPolicy: o.fsyncPolicy, firstIndex, disk: o.disk, clock: o.clock }), dir, o);
  }

  firstIndex(): number {
    return this.log.firstIndex();
  }

  /** Term of the stored entry at `index`, or null when it is not stored. */
  termAt(index: number): number | null {
    if (index < this.log.firstIndex() || index > this.log.lastIndex()) return null;
    return decodeLogEntry(index, this.log.read(index)).term;
  }

  /**
   * Discards the whole log and starts an empty one whose first record will be `firstIndex` (a
   * follower that installed a leader's snapshot, Raft §7). Call only after the snapshot is durable:
   * a crash in between leaves the old log, which start-up discards against the snapshot.
   */
  async reset(firstIndex: number): Promise<void> {
    await this.log.close();
    await this.opts.disk.rm(this.dir, { recursive: true, force: true });
    this.log = await SegmentedLog.open({ dir: this.dir, segmentBytesMax: this.opts.segmentBytesMax, fsyncPolicy: this.opts.fsyncPolicy, firstIndex, disk: this.opts.disk, clock: this.opts.clock });
  }

  /**
   * Start-up after a crash (Raft §7): the snapshot file is written before the log changes, so a
   * log that does not continue the snapshot — it ends before the snapshot index, starts after it,
   * or holds another term there — is the pre-install log of a crash between the two: discard it.
   * @returns whether the log was discarded.
   */
  async alignWithSnapshot(snap: { index: number; term: number }): Promise<boolean> {
    const t = this.termAt(snap.index);
    if (this.firstIndex() <= snap.index + 1 && this.lastIndex() >= snap.index && (t === null || t === snap.term)) return false;
    await this.reset(snap.index + 1);
    return true;
  }

  /** Drops whole segments below `beforeIndex` (compaction after a durable snapshot; the active segment stays). */
  dropPrefix(beforeIndex: number): Promise<void> {
    return this.log.dropPrefix(beforeIndex);
  }

  segmentCount(): number {
    return this.log.segments().length;
  }

  get recovery() {
    return this.log.recovery;
  }

  lastIndex(): number {
    return this.log.lastIndex();
  }

  sizeBytes(): number {
    return this.log.sizeBytes();
  }

  /** Every entry on disk from `from` (default the first stored), for restoring the state machine at start-up. */
  readAll(from = this.log.firstIndex()): Entry[] {
    const first = Math.max(from, this.log.firstIndex());
    const last = this.log.lastIndex();
    const out: Entry[] = new Array(Math.max(0, last - first + 1));
    for (let i = first; i <= last; i++) out[i - first] = decodeLogEntry(i, this.log.read(i));
    return out;
  }

  /**
   * What a replica with a bounded log cache restores from the entries `from..lastIndex()`: the
   * newest that fit `cacheBytesMax` (data + ENTRY_OVERHEAD_BYTES each) as entries, the older ones
   * as term runs and configuration indexes only (`onDisk`, RaftConfig.restored). One sequential
   * CRC-checked pass over the segments reads each entry's 9-byte header.
   */
  restoreTail(from: number, cacheBytesMax: number): { entries: Entry[]; onDisk: LogOnDisk } {
    const first = Math.max(from, this.log.firstIndex());
    const last = this.log.lastIndex();
    let tailFirst = last + 1;
    for (let bytes = 0; tailFirst > first; tailFirst--) {
      bytes += this.log.position(tailFirst - 1).sizeBytes - FRAME_HEADER_BYTES - ENTRY_HEADER_BYTES + ENTRY_OVERHEAD_BYTES;
      if (bytes > cacheBytesMax) break;
    }
    const termRuns: TermRun[] = [];
    const confIndexes: number[] = [];
    for (const { position, payload } of this.log.scan(first, tailFirst - 1)) {
      const term = payload.readUInt32BE(0) * 0x1_0000_0000 + payload.readUInt32BE(4);
      if (termRuns.length === 0 || termRuns[termRuns.length - 1].term !== term) termRuns.push({ index: position.index, term });
      if (payload[8] === EntryType.Config) confIndexes.push(position.index);
    }
    return { entries: this.readAll(tailFirst), onDisk: { lastIndex: tailFirst - 1, termRuns, confIndexes } };
  }

  /** Entries `fromIndex..toIndex` (inclusive), stopping once `bytesMax` is reached (at least one). */
  entries(fromIndex: number, toIndex: number, bytesMax: number): Entry[] {
    if (fromIndex > toIndex) return [];
    return this.log.readRange(fromIndex, toIndex, bytesMax).map((b, i) => decodeLogEntry(fromIndex + i, b));
  }

  /**
   * Durably appends `entries` (contiguous). When they start at or before the last stored index the
   * stored suffix is replaced (a follower resolving a conflict, Raft §5.3).
   */
  async persist(entries: Entry[]): Promise<void> {
    if (entries.length === 0) return;
    const first = entries[0].index;
    if (first <= this.log.lastIndex()) await this.log.truncateSuffix(first);
    if (first !== this.log.lastIndex() + 1) {
      throw new Error(`raft log gap: appending index ${first} after last index ${this.log.lastIndex()}`);
    }
    await this.log.append(entries.map(encodeLogEntry));
  }

  /**
   * Queues `entries` (contiguous, right after the last stored or queued index) for the next group
   * commit before it returns, so a later call is written after them; the promise settles once
   * they are durable (async storage writes: the caller does not wait before the next Ready).
   * @throws Error `raft log gap` (synchronously) when they do not follow the last index.
   */
  append(entries: Entry[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    if (entries[0].index !== this.log.lastIndex() + 1) throw new Error(`raft log gap: appending index ${entries[0].index} after last index ${this.log.lastIndex()}`);
    return this.log.append(entries.map(encodeLogEntry)).then(() => undefined);
  }

  close(): Promise<void> {
    return this.log.close();
  }
}
