import { join } from 'node:path';
import { SegmentedLog, type Clock, type Disk, type FsyncPolicy } from '@cairn/log';
import {
  ByteReader,
  ByteWriter,
  inWatchRange,
  readWatchEvent,
  watchEventBytes,
  WatchHistoryResult,
  withoutPrev,
  writeWatchEvent,
  WATCH_EVENT_OVERHEAD_BYTES,
  WATCH_HISTORY_REPLY_BASE_BYTES,
  type WatchEvent,
  type WatchHistoryReply,
  type WatchHistoryRequest,
} from '@cairn/protocol';

/** History bounds (StorageConfig watchHistory…; docs/watch.md "Event history"). */
export interface WatchHistoryLimits {
  /** Revisions kept: a record whose last revision is ≤ lastRevision − this is dropped. */
  revisionsMax: number;
  /** A record applied longer ago than this is dropped, ms. */
  historyMs: number;
  /** Bytes of records kept (events as encoded), the newest record always. */
  bytesMax: number;
}

export interface WatchHistoryOptions {
  /** Directory of the history's segment files (the node's `watch/`). */
  dir: string;
  limits: WatchHistoryLimits;
  fsyncPolicy: FsyncPolicy;
  /** The engine's applied index at open: the history covers no revision the engine has not applied past a gap. */
  appliedIndex: number;
  disk?: Disk;
  /** Runs the 'interval' fdatasync timer (required with that policy, `SegmentedLogOptions.clock`). */
  clock?: Clock;
}

/** Header of a history record: `u64 firstRevision | u64 lastRevision | u64 atMs | u32 n`. */
const RECORD_HEADER_BYTES = 8 + 8 + 8 + 4;
/** Event bytes per history record at most (the first event of a revision always goes): bounds one pread and one decode. */
const RECORD_EVENT_BYTES_MAX = 4 * 1024 * 1024;
/** Records a page request scans at most (bounds the CPU of one request; the gateway asks for the next page). */
const PAGE_RECORDS_SCANNED_MAX = 256;
/** History segment size: small enough that trimming frees disk in steps. */
const SEGMENT_BYTES_MAX = 16 * 1024 * 1024;
/** A record holds at most RECORD_EVENT_BYTES_MAX of events plus one revision's (a key and two values ≤ 2 × 16 MiB + 64 KiB). */
const RECORD_BYTES_MAX = 40 * 1024 * 1024;

interface RecordInfo {
  logIndex: number;
  firstRevision: number;
  lastRevision: number;
  atMs: number;
  bytes: number;
}

/**
 * A storage node's watch event history (etcd keeps its history in the MVCC store; we keep a
 * segmented log beside the engine, docs/watch.md "Event history"): one record per apply batch (or
 * several for a large one), `u64 firstRevision | u64 lastRevision | u64 atMs | u32 n | n × event`,
 * covering every event with a revision in [firstRevision, lastRevision]. Records of consecutive
 * batches chain (firstRevision = previous lastRevision + 1); a record that does not chain (the
 * node installed a peer snapshot) restarts the history there. At open, a history that ends before
 * the engine's applied index (its tail was not durable) restarts at the applied index: older
 * revisions are then answered COMPACTED, never a gap.
 *
 * Bounded by revisions, time and bytes (WatchHistoryLimits), trimmed whole records at a time, oldest
 * first; the oldest revision still available is `oldestRevision()`.
 */
export class WatchHistory {
  private records: RecordInfo[] = [];
  private head = 0;
  private bytes = 0;
  /** Every event with a revision in [oldest, last] is held. */
  private oldest: number;
  private last: number;
  private dropping: Promise<void> = Promise.resolve();

  private constructor(
    private readonly log: SegmentedLog,
    private readonly limits: WatchHistoryLimits,
    appliedIndex: number,
  ) {
    this.oldest = appliedIndex + 1;
    this.last = appliedIndex;
  }

  /** Opens (or creates) the history and rebuilds its record index (one pass over the records). */
  static async open(o: WatchHistoryOptions): Promise<WatchHistory> {
    const log = await SegmentedLog.open({ dir: o.dir, fsyncPolicy: o.fsyncPolicy, segmentBytesMax: SEGMENT_BYTES_MAX, recordBytesMax: RECORD_BYTES_MAX, disk: o.disk, clock: o.clock });
    const h = new WatchHistory(log, o.limits, o.appliedIndex);
    const found: RecordInfo[] = [];
    for (let i = log.firstIndex(); i <= log.lastIndex(); i++) {
      const b = log.read(i);
      const r = new ByteReader(b.subarray(0, RECORD_HEADER_BYTES));
      const info = { logIndex: i, firstRevision: r.u64(), lastRevision: r.u64(), atMs: r.u64(), bytes: b.length };
      // Only the chained tail counts: a record that does not follow its predecessor restarted the history.
      if (found.length > 0 && info.firstRevision !== found[found.length - 1].lastRevision + 1) found.length = 0;
      found.push(info);
    }
    const tail = found.length ? found[found.length - 1].lastRevision : 0;
    if (found.length > 0 && tail >= o.appliedIndex && found[0].firstRevision <= o.appliedIndex + 1) {
      h.records = found;
      h.bytes = found.reduce((s, x) => s + x.bytes, 0);
      h.oldest = found[0].firstRevision;
      // The engine lost unsynced entries the history holds: they are applied again and skipped then (append).
      h.last = tail;
    }
    return h;
  }

  /** The smallest revision a watch may start from: every event from it on is held (or still to come). */
  oldestRevision(): number {
    return this.oldest;
  }

  /** The last revision the history covers (the node's last applied batch). */
  lastRevision(): number {
    return this.last;
  }

  /** Bytes of the records held. */
  sizeBytes(): number {
    return this.bytes;
  }

  /**
   * Records the events of one apply batch covering revisions [firstRevision, lastRevision] (events
   * in revision order). Revisions the history already covers are skipped (an entry applied again
   * after a restart); a batch that does not follow the last one restarts the history at it.
   * Returns when the records are durable (per the fsync policy); the index is updated at once.
   */
  append(firstRevision: number, lastRevision: number, events: readonly WatchEvent[], atMs: number): Promise<unknown> {
    if (lastRevision <= this.last) return Promise.resolve();
    let evs = events;
    if (firstRevision <= this.last) {
      evs = events.filter((e) => e.modRevision > this.last);
      firstRevision = this.last + 1;
    } else if (firstRevision > this.last + 1) {
      // A gap (a peer snapshot was installed): nothing below firstRevision can be served any more.
      this.records = [];
      this.head = 0;
      this.bytes = 0;
      this.oldest = firstRevision;
    }
    const payloads: Buffer[] = [];
    const infos: RecordInfo[] = [];
    let from = firstRevision;
    let i = 0;
    do {
      // Split at revision boundaries so one record never holds part of a revision's events.
      let j = i;
      let bytes = 0;
      while (j < evs.length && (j === i || bytes + watchEventBytes(evs[j]) <= RECORD_EVENT_BYTES_MAX || evs[j].modRevision === evs[j - 1].modRevision)) bytes += watchEventBytes(evs[j++]);
      const to = j < evs.length ? evs[j].modRevision - 1 : lastRevision;
      const payload = encodeRecord(from, to, atMs, evs.slice(i, j), bytes);
      payloads.push(payload);
      infos.push({ logIndex: 0, firstRevision: from, lastRevision: to, atMs, bytes: payload.length });
      from = to + 1;
      i = j;
    } while (i < evs.length);
    const { positions, durable } = this.log.enqueue(payloads);
    infos.forEach((info, k) => {
      info.logIndex = positions[k].index;
      this.records.push(info);
      this.bytes += info.bytes;
    });
    this.last = lastRevision;
    return durable;
  }

  /**
   * Drops the oldest records beyond the limits (the newest record is kept by the bytes bound
   * only; revisions and time may drop every record, then `oldestRevision()` = last + 1) and the
   * log segments wholly before the first kept record (in the background).
   */
  trim(nowMs: number): void {
    const { revisionsMax, historyMs, bytesMax } = this.limits;
    const before = this.head;
    while (this.head < this.records.length) {
      const r = this.records[this.head];
      const keepOne = this.head === this.records.length - 1;
      const over = r.lastRevision <= this.last - revisionsMax || r.atMs < nowMs - historyMs || (!keepOne && this.bytes > bytesMax);
      if (!over) break;
      this.bytes -= r.bytes;
      this.head++;
      this.oldest = r.lastRevision + 1;
    }
    if (this.head === before) return;
    const firstKept = this.head < this.records.length ? this.records[this.head].logIndex : this.log.lastIndex() + 1;
    if (this.head > 1024 && this.head * 2 > this.records.length) {
      this.records = this.records.slice(this.head);
      this.head = 0;
    }
    this.dropping = this.dropping.then(() => this.log.dropPrefix(firstKept)).catch(() => undefined);
  }

  /**
   * One page of the events matching `q` (WatchHistoryRequest; docs/protocol.md): Compacted when
   * fromRevision < oldestRevision(); else events with revisions in [fromRevision, nextRevision),
   * whole revisions only (a revision's events always go together, the first one even over the
   * bounds), at most `q.eventsMax` events and `min(q.bytesMax, replyBytesMax)` bytes of reply.
   * An event that does not fit the reply bound with its previous value goes without it.
   * @throws LogCorruptionError when a record fails its CRC (the caller answers Unavailable).
   */
  page(q: WatchHistoryRequest, replyBytesMax: number): WatchHistoryReply {
    const base = { oldestRevision: this.oldest, lastRevision: this.last, message: '' };
    if (q.fromRevision < this.oldest) return { ...base, result: WatchHistoryResult.Compacted, nextRevision: q.fromRevision, message: `revision ${q.fromRevision} is compacted: the oldest available is ${this.oldest}`, events: [] };
    const to = q.toRevision === 0 ? this.last : Math.min(q.toRevision, this.last);
    const bytesMax = Math.min(q.bytesMax, replyBytesMax - WATCH_HISTORY_REPLY_BASE_BYTES - 1024);
    const events: WatchEvent[] = [];
    let bytes = 0;
    let next = to + 1;
    let scanned = 0;
    outer: for (let k = this.find(q.fromRevision); k < this.records.length; k++) {
      const info = this.records[k];
      if (info.firstRevision > to) break;
      if (++scanned > PAGE_RECORDS_SCANNED_MAX) {
        next = info.firstRevision;
        break;
      }
      const evs = decodeRecord(this.log.read(info.logIndex));
      for (let i = 0; i < evs.length; ) {
        const rev = evs[i].modRevision;
        let j = i;
        while (j < evs.length && evs[j].modRevision === rev) j++;
        if (rev < q.fromRevision || rev > to) {
          i = j;
          continue;
        }
        const group = evs.slice(i, j).filter((e) => inWatchRange(e.key, q.start, q.end));
        const groupBytes = group.reduce((s, e) => s + watchEventBytes(e), 0);
        if (events.length > 0 && group.length > 0 && (bytes + groupBytes > bytesMax || events.length + group.length > q.eventsMax)) {
          next = rev;
          break outer;
        }
        for (const e of group) events.push(bytes + groupBytes > bytesMax ? withoutPrev(e) : e);
        bytes += groupBytes;
        i = j;
      }
    }
    return { ...base, result: WatchHistoryResult.Ok, nextRevision: Math.max(next, q.fromRevision), events };
  }

  /** Index of the first record whose lastRevision ≥ revision (binary search over the kept records). */
  private find(revision: number): number {
    let lo = this.head;
    let hi = this.records.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.records[mid].lastRevision < revision) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  async close(): Promise<void> {
    await this.dropping;
    await this.log.close();
  }
}

/** The history directory under a storage node's data directory. */
export function watchHistoryDir(dataDir: string): string {
  return join(dataDir, 'watch');
}

function encodeRecord(first: number, last: number, atMs: number, events: readonly WatchEvent[], eventBytes: number): Buffer {
  const w = new ByteWriter(RECORD_HEADER_BYTES + eventBytes).u64(first).u64(last).u64(Math.max(0, Math.floor(atMs))).u32(events.length);
  for (const e of events) writeWatchEvent(w, e);
  return w.finish();
}

function decodeRecord(b: Uint8Array): WatchEvent[] {
  const r = new ByteReader(b);
  r.u64();
  r.u64();
  r.u64();
  const n = r.count(WATCH_EVENT_OVERHEAD_BYTES);
  const out: WatchEvent[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = readWatchEvent(r);
  r.end();
  return out;
}
