import { EntryType, type Entry, type LogCache, type LogOnDisk } from './types';

/**
 * Bytes one entry costs in the log cache beyond its data: the Entry object and its Uint8Array
 * view on V8 (an order of magnitude, so that millions of small entries count as what they hold).
 */
export const ENTRY_OVERHEAD_BYTES = 128;

/** Cached-prefix length past which the evicted slots of the entry array are reclaimed. */
const HEAD_RECLAIM_MIN = 1024;

/** What the bounded log cache holds and has read back (metrics, tests). */
export interface LogCacheStats {
  /** First index held in memory (lastIndex + 1 when none is). */
  firstCachedIndex: number;
  cachedEntries: number;
  /** Data bytes + ENTRY_OVERHEAD_BYTES per cached entry. */
  cachedBytes: number;
  /** Entries read back from the log storage since start, and in how many reads. */
  storageEntriesRead: number;
  storageReads: number;
}

/**
 * The Raft log of one node: entries `firstIndex()..lastIndex()`, the ones up to `snapshotIndex`
 * compacted away (Raft §7: only their last index and term are kept), plus the two cursors the
 * Ready cycle needs:
 *
 * - `unstableFrom`: entries at or after it were not yet handed to the driver in a Ready;
 * - `persistedIndex`: entries at or below it are durable on this node (acknowledged by `advance`,
 *   or by `RaftNode.persisted` with async storage writes)
 *   and equal to what is on disk. A node counts only these toward commit (etcd's async storage).
 *
 * With a `LogCache` (RaftConfig.logCache) the entries in memory are a suffix `firstCachedIndex..
 * lastIndex()`; older ones are read back from the driver's storage. Terms are kept for every
 * entry as runs, and the configuration entries' indexes in a list, so term lookups, conflict
 * search and configuration lookups never read the disk.
 *
 * Invariants (Raft §5.3, asserted): indexes contiguous from 1, terms non-decreasing.
 */
export class RaftLog {
  /** Cached entries: `ents[head + i].index === cacheFrom + i`, up to `last`. */
  private ents: Entry[] = [];
  private head = 0;
  private cacheFrom: number;
  private last: number;
  private cachedBytes = 0;
  /** Term runs of the entries `snapshotIndex + 1..last`: run k starts at `runStart[k]` with term `runTerm[k]` (both ascending). */
  private runStart: number[] = [];
  private runTerm: number[] = [];
  /** Indexes of the config entries above `snapshotIndex`, ascending. */
  private confIndexes: number[] = [];
  private readonly cache: LogCache | null;
  private storageEntriesRead = 0;
  private storageReads = 0;
  /** Last index covered by the snapshot (compacted prefix); 0 = nothing compacted. */
  snapshotIndex = 0;
  /** Term of the entry at `snapshotIndex` (0 when nothing is compacted). */
  snapshotTerm = 0;
  unstableFrom: number;
  persistedIndex: number;

  /** @throws Error `LogOnDiskInvalid` for an `onDisk` without a cache or inconsistent with the snapshot; what `append` throws. */
  constructor(restored: Entry[], snapshot?: { index: number; term: number }, cache?: LogCache, onDisk?: LogOnDisk) {
    if (snapshot) {
      this.snapshotIndex = snapshot.index;
      this.snapshotTerm = snapshot.term;
    }
    this.cache = cache ?? null;
    this.last = this.snapshotIndex;
    if (onDisk) this.restoreOnDisk(onDisk);
    this.cacheFrom = this.last + 1;
    for (const e of restored) this.push(e);
    this.persistedIndex = this.lastIndex();
    this.unstableFrom = this.lastIndex() + 1;
  }

  firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  lastIndex(): number {
    return this.last;
  }

  lastTerm(): number {
    return this.runTerm.length ? this.runTerm[this.runTerm.length - 1] : this.snapshotTerm;
  }

  /** Term of the entry at `index`; 0 for index 0; the snapshot term at `snapshotIndex`; undefined if outside the log or compacted. */
  term(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    if (index < this.snapshotIndex || index > this.last) return undefined;
    return this.runTerm[this.runOf(index)];
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** @throws Error `LogIndexOutOfRange` outside the log, `LogCompacted` at or below `snapshotIndex`. */
  entry(index: number): Entry {
    if (index <= this.snapshotIndex && index >= 1) throw new Error(`LogCompacted: entry ${index} is compacted (snapshot index ${this.snapshotIndex})`);
    if (!(index >= 1 && index <= this.last)) throw new Error(`LogIndexOutOfRange: entry ${index} not in log ${this.firstIndex()}..${this.lastIndex()}`);
    return index >= this.cacheFrom ? this.ents[this.head + index - this.cacheFrom] : this.readStorage(index, index, Number.POSITIVE_INFINITY, true)[0];
  }

  /** Entries lo..hi inclusive (copy of the array; entries themselves are immutable). @throws LogCompacted / LogIndexOutOfRange */
  slice(lo: number, hi: number): Entry[] {
    if (lo > hi) return [];
    if (lo <= this.snapshotIndex) throw new Error(`LogCompacted: slice ${lo}..${hi} reaches below the first index ${this.firstIndex()}`);
    if (hi > this.last) throw new Error(`LogIndexOutOfRange: slice ${lo}..${hi} of log ${this.firstIndex()}..${this.lastIndex()}`);
    const fromDisk = lo < this.cacheFrom ? this.readStorage(lo, Math.min(hi, this.cacheFrom - 1), Number.POSITIVE_INFINITY, true) : [];
    if (hi < this.cacheFrom) return fromDisk;
    const cached = this.ents.slice(this.head + Math.max(lo, this.cacheFrom) - this.cacheFrom, this.head + hi - this.cacheFrom + 1);
    return fromDisk.length ? fromDisk.concat(cached) : cached;
  }

  /**
   * Entries from `lo` (> snapshotIndex) on, at most `countMax` and `bytesMax` data bytes (at least
   * one entry if any). Entries no longer in memory are read from the log storage within the same
   * bounds (one read).
   */
  sliceBounded(lo: number, countMax: number, bytesMax: number): Entry[] {
    if (lo <= this.snapshotIndex) throw new Error(`LogCompacted: entries from ${lo} are compacted (first index ${this.firstIndex()})`);
    if (lo > this.last) return [];
    let out: Entry[] = [];
    let bytes = 0;
    if (lo < this.cacheFrom) {
      const hi = Math.min(this.cacheFrom - 1, lo + countMax - 1);
      out = this.readStorage(lo, hi, bytesMax, false);
      for (const e of out) bytes += e.data.length;
      if (out.length < hi - lo + 1) return out;
    }
    for (let i = Math.max(lo, this.cacheFrom); i <= this.last && out.length < countMax; i++) {
      const e = this.ents[this.head + i - this.cacheFrom];
      if (out.length > 0 && bytes + e.data.length > bytesMax) break;
      bytes += e.data.length;
      out.push(e);
    }
    return out;
  }

  /** Appends at lastIndex+1; asserts contiguity and term monotonicity. */
  append(entries: Entry[]): void {
    for (const e of entries) this.push(e);
  }

  /**
   * Replaces the suffix from `entries[0].index` on with `entries` (follower conflict repair,
   * Raft §5.3). Moves `unstableFrom`/`persistedIndex` back so the driver rewrites that suffix.
   * @throws Error `LogNotContiguous`; `LogTruncateEvicted` below the cache (evicted entries are
   *   applied, so committed: a truncation there is a broken Raft invariant).
   */
  truncateAndAppend(entries: Entry[]): void {
    if (entries.length === 0) return;
    const from = entries[0].index;
    if (from <= this.snapshotIndex || from > this.last + 1) throw new Error(`LogNotContiguous: truncate-append at ${from} with log ${this.firstIndex()}..${this.lastIndex()}`);
    if (from < this.cacheFrom) throw new Error(`LogTruncateEvicted: truncate-append at ${from} below the first cached index ${this.cacheFrom} (applied entries)`);
    const keep = this.head + from - this.cacheFrom;
    for (let i = keep; i < this.ents.length; i++) this.cachedBytes -= costOf(this.ents[i]);
    this.ents.length = keep;
    this.last = from - 1;
    while (this.runStart.length && this.runStart[this.runStart.length - 1] >= from) {
      this.runStart.pop();
      this.runTerm.pop();
    }
    while (this.confIndexes.length && this.confIndexes[this.confIndexes.length - 1] >= from) this.confIndexes.pop();
    this.unstableFrom = Math.min(this.unstableFrom, from);
    this.persistedIndex = Math.min(this.persistedIndex, from - 1);
    this.append(entries);
  }

  /**
   * First index in `entries` whose entry is missing or has a different term here, 0 if all match.
   * Matching entries are never rewritten, so a stale/reordered Append cannot truncate (Raft §5.3).
   * Entries at or below `snapshotIndex` are committed, so they match by definition.
   */
  findConflict(entries: Entry[]): number {
    for (const e of entries) if (e.index > this.snapshotIndex && !this.matchTerm(e.index, e.term)) return e.index;
    return 0;
  }

  /** Raft §5.4.1: is (lastTerm, lastIndex) of a candidate at least as up-to-date as this log? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** First index (> snapshotIndex) whose term is >= `term` (lastIndex+1 if none). Binary search over the term runs. */
  firstIndexWithTermAtLeast(term: number): number {
    let lo = 0;
    let hi = this.runTerm.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.runTerm[mid] < term) lo = mid + 1;
      else hi = mid;
    }
    return lo === this.runTerm.length ? this.last + 1 : Math.max(this.runStart[lo], this.snapshotIndex + 1);
  }

  /** Last index holding an entry of exactly `term`, 0 if none (the snapshot index if only it has that term). */
  lastIndexOfTerm(term: number): number {
    const i = this.firstIndexWithTermAtLeast(term + 1) - 1;
    return i >= this.firstIndex() && this.term(i) === term ? i : i === this.snapshotIndex && this.snapshotTerm === term && i > 0 ? i : 0;
  }

  /** Index of the last configuration entry at or below `index` (and above `snapshotIndex`), 0 if none. */
  lastConfIndex(index: number): number {
    for (let k = this.confIndexes.length - 1; k >= 0; k--) if (this.confIndexes[k] <= index) return this.confIndexes[k];
    return 0;
  }

  /** Entries not yet handed to a Ready (always in memory). */
  unstableEntries(): Entry[] {
    return this.slice(this.unstableFrom, this.lastIndex());
  }

  /**
   * Drops entries up to `index` (Raft §7 log compaction), keeping its term as the snapshot term.
   * @throws Error `CompactInvalid` beyond the persisted index or the log.
   */
  compact(index: number): void {
    if (index <= this.snapshotIndex) return;
    if (index > this.persistedIndex || index > this.lastIndex()) throw new Error(`CompactInvalid: compact to ${index} beyond persisted index ${this.persistedIndex} / last index ${this.lastIndex()}`);
    const term = this.term(index)!;
    if (index >= this.cacheFrom) this.dropCached(index - this.cacheFrom + 1);
    let runs = 0;
    while (runs < this.runStart.length && (runs + 1 < this.runStart.length ? this.runStart[runs + 1] <= index + 1 : index === this.last)) runs++;
    this.runStart.splice(0, runs);
    this.runTerm.splice(0, runs);
    let confs = 0;
    while (confs < this.confIndexes.length && this.confIndexes[confs] <= index) confs++;
    this.confIndexes.splice(0, confs);
    this.snapshotIndex = index;
    this.snapshotTerm = term;
  }

  /**
   * Replaces the whole log with a snapshot at (`index`, `term`) (InstallSnapshot, Raft §7): the
   * log becomes empty after `index`; it counts as persisted once the driver saved the snapshot.
   */
  restore(index: number, term: number): void {
    this.ents = [];
    this.head = 0;
    this.cachedBytes = 0;
    this.runStart = [];
    this.runTerm = [];
    this.confIndexes = [];
    this.snapshotIndex = index;
    this.snapshotTerm = term;
    this.last = index;
    this.cacheFrom = index + 1;
    this.persistedIndex = index;
    this.unstableFrom = index + 1;
  }

  /**
   * Lets the oldest cached entries at or below `applied` (and persisted, and handed to a Ready)
   * leave memory while the cache holds more than its `bytesMax`. No-op without a cache.
   */
  evict(applied: number): void {
    if (!this.cache || this.cachedBytes <= this.cache.bytesMax) return;
    const upTo = Math.min(applied, this.persistedIndex, this.unstableFrom - 1);
    let n = 0;
    let bytes = this.cachedBytes;
    while (bytes > this.cache.bytesMax && this.cacheFrom + n <= upTo) bytes -= costOf(this.ents[this.head + n++]);
    this.dropCached(n);
  }

  cacheStats(): LogCacheStats {
    return {
      firstCachedIndex: this.cacheFrom,
      cachedEntries: this.ents.length - this.head,
      cachedBytes: this.cachedBytes,
      storageEntriesRead: this.storageEntriesRead,
      storageReads: this.storageReads,
    };
  }

  private dropCached(n: number): void {
    for (let i = this.head; i < this.head + n; i++) {
      this.cachedBytes -= costOf(this.ents[i]);
      (this.ents as (Entry | undefined)[])[i] = undefined; // the entry's bytes may go now
    }
    this.head += n;
    this.cacheFrom += n;
    if (this.head >= HEAD_RECLAIM_MIN && this.head * 2 >= this.ents.length) {
      this.ents = this.ents.slice(this.head);
      this.head = 0;
    }
  }

  /** Index of the term run holding `index` (snapshotIndex < index <= last). */
  private runOf(index: number): number {
    let lo = 0;
    let hi = this.runStart.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.runStart[mid] <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Entries `lo..hi` from the log storage; `all`: every one of them (else the storage's byte bound may stop early). @throws Error `LogStorageMismatch` */
  private readStorage(lo: number, hi: number, bytesMax: number, all: boolean): Entry[] {
    if (!this.cache) throw new Error(`LogStorageMismatch: entries ${lo}..${hi} are not in memory and the log has no storage`);
    const got = this.cache.storage.entries(lo, hi, bytesMax);
    this.storageReads++;
    this.storageEntriesRead += got.length;
    const want = hi - lo + 1;
    if (got.length === 0 || got.length > want || (all && got.length !== want)) throw new Error(`LogStorageMismatch: asked the log storage for ${lo}..${hi}, got ${got.length} entries`);
    for (let i = 0; i < got.length; i++) {
      const e = got[i];
      if (e.index !== lo + i || e.term !== this.term(e.index)) throw new Error(`LogStorageMismatch: storage entry ${e.index} (term ${e.term}) where the log has ${lo + i} (term ${this.term(lo + i)})`);
    }
    return got;
  }

  private restoreOnDisk(d: LogOnDisk): void {
    const bad = (why: string): never => {
      throw new Error(`LogOnDiskInvalid: ${why}`);
    };
    if (!this.cache) bad('entries left on disk need a log cache with its storage');
    if (!Number.isSafeInteger(d.lastIndex) || d.lastIndex < this.snapshotIndex) bad(`last index ${d.lastIndex} before the snapshot index ${this.snapshotIndex}`);
    if ((d.lastIndex > this.snapshotIndex) !== (d.termRuns.length > 0) || (d.termRuns.length > 0 && d.termRuns[0].index !== this.snapshotIndex + 1)) bad(`term runs must cover ${this.snapshotIndex + 1}..${d.lastIndex}`);
    let prevIndex = this.snapshotIndex;
    let termMin = Math.max(1, this.snapshotTerm);
    for (const r of d.termRuns) {
      if (!(r.index > prevIndex && r.index <= d.lastIndex && Number.isInteger(r.term) && r.term >= termMin)) bad(`term run ${JSON.stringify(r)} after index ${prevIndex}, term at least ${termMin}`);
      this.runStart.push(r.index);
      this.runTerm.push(r.term);
      prevIndex = r.index;
      termMin = r.term + 1;
    }
    let prevConf = this.snapshotIndex;
    for (const i of d.confIndexes) {
      if (!(i > prevConf && i <= d.lastIndex)) bad(`configuration entry index ${i}`);
      this.confIndexes.push(i);
      prevConf = i;
    }
    this.last = d.lastIndex;
  }

  private push(e: Entry): void {
    const want = this.last + 1;
    if (e.index !== want) throw new Error(`LogNotContiguous: entry index ${e.index}, expected ${want}`);
    if (e.term < this.lastTerm()) throw new Error(`LogTermDecreasing: entry ${e.index} has term ${e.term} < previous term ${this.lastTerm()}`);
    if (!Number.isInteger(e.term) || e.term < 1) throw new Error(`EntryTermInvalid: entry ${e.index} has term ${e.term}`);
    this.ents.push(e);
    this.last = e.index;
    this.cachedBytes += costOf(e);
    if (this.runTerm.length === 0 || this.runTerm[this.runTerm.length - 1] !== e.term) {
      this.runStart.push(e.index);
      this.runTerm.push(e.term);
    }
    if (e.type === EntryType.Config) this.confIndexes.push(e.index);
  }
}

function costOf(e: Entry): number {
  return e.data.length + ENTRY_OVERHEAD_BYTES;
}
