import type { Entry } from './types';

/**
 * The in-memory Raft log of one node: entries `firstIndex()..lastIndex()`, the ones up to
 * `snapshotIndex` compacted away (Raft §7: only their last index and term are kept), plus the two
 * cursors the Ready cycle needs:
 *
 * - `unstableFrom`: entries at or after it were not yet handed to the driver in a Ready;
 * - `persistedIndex`: entries at or below it are durable on this node (acknowledged by `advance`)
 *   and equal to what is on disk. A node counts only these toward commit (etcd's async storage).
 *
 * Invariants (Raft §5.3, asserted): indexes contiguous from 1, terms non-decreasing.
 */
export class RaftLog {
  /** `ents[i].index === snapshotIndex + i + 1`. */
  private ents: Entry[] = [];
  /** Last index covered by the snapshot (compacted prefix); 0 = nothing compacted. */
  snapshotIndex = 0;
  /** Term of the entry at `snapshotIndex` (0 when nothing is compacted). */
  snapshotTerm = 0;
  unstableFrom: number;
  persistedIndex: number;

  constructor(restored: Entry[], snapshot?: { index: number; term: number }) {
    if (snapshot) {
      this.snapshotIndex = snapshot.index;
      this.snapshotTerm = snapshot.term;
    }
    for (const e of restored) this.push(e);
    this.persistedIndex = this.lastIndex();
    this.unstableFrom = this.lastIndex() + 1;
  }

  firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  lastIndex(): number {
    return this.snapshotIndex + this.ents.length;
  }

  lastTerm(): number {
    return this.ents.length ? this.ents[this.ents.length - 1].term : this.snapshotTerm;
  }

  /** Term of the entry at `index`; 0 for index 0; the snapshot term at `snapshotIndex`; undefined if outside the log or compacted. */
  term(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    if (index < this.snapshotIndex || index > this.lastIndex()) return undefined;
    return this.ents[index - this.snapshotIndex - 1].term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** @throws Error `LogIndexOutOfRange` outside the log, `LogCompacted` at or below `snapshotIndex`. */
  entry(index: number): Entry {
    if (index <= this.snapshotIndex && index >= 1) throw new Error(`LogCompacted: entry ${index} is compacted (snapshot index ${this.snapshotIndex})`);
    const e = this.ents[index - this.snapshotIndex - 1];
    if (!e) throw new Error(`LogIndexOutOfRange: entry ${index} not in log ${this.firstIndex()}..${this.lastIndex()}`);
    return e;
  }

  /** Entries lo..hi inclusive (copy of the array; entries themselves are immutable). @throws LogCompacted / LogIndexOutOfRange */
  slice(lo: number, hi: number): Entry[] {
    if (lo > hi) return [];
    if (lo <= this.snapshotIndex) throw new Error(`LogCompacted: slice ${lo}..${hi} reaches below the first index ${this.firstIndex()}`);
    if (hi > this.lastIndex()) throw new Error(`LogIndexOutOfRange: slice ${lo}..${hi} of log ${this.firstIndex()}..${this.lastIndex()}`);
    return this.ents.slice(lo - this.snapshotIndex - 1, hi - this.snapshotIndex);
  }

  /** Entries from `lo` (> snapshotIndex) on, at most `countMax` and `bytesMax` data bytes (at least one entry if any). */
  sliceBounded(lo: number, countMax: number, bytesMax: number): Entry[] {
    if (lo <= this.snapshotIndex) throw new Error(`LogCompacted: entries from ${lo} are compacted (first index ${this.firstIndex()})`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i <= this.lastIndex() && out.length < countMax; i++) {
      const e = this.ents[i - this.snapshotIndex - 1];
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
   */
  truncateAndAppend(entries: Entry[]): void {
    if (entries.length === 0) return;
    const from = entries[0].index;
    if (from <= this.snapshotIndex || from > this.lastIndex() + 1) throw new Error(`LogNotContiguous: truncate-append at ${from} with log ${this.firstIndex()}..${this.lastIndex()}`);
    this.ents.length = from - this.snapshotIndex - 1;
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

  /** First index (> snapshotIndex) whose term is >= `term` (lastIndex+1 if none). Binary search: terms are sorted. */
  firstIndexWithTermAtLeast(term: number): number {
    let lo = 0;
    let hi = this.ents.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ents[mid].term < term) lo = mid + 1;
      else hi = mid;
    }
    return this.snapshotIndex + lo + 1;
  }

  /** Last index holding an entry of exactly `term`, 0 if none (the snapshot index if only it has that term). */
  lastIndexOfTerm(term: number): number {
    const i = this.firstIndexWithTermAtLeast(term + 1) - 1;
    return i >= this.firstIndex() && this.ents[i - this.snapshotIndex - 1].term === term ? i : i === this.snapshotIndex && this.snapshotTerm === term && i > 0 ? i : 0;
  }

  /** Entries not yet handed to a Ready. */
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
    this.ents = this.ents.slice(index - this.snapshotIndex);
    this.snapshotIndex = index;
    this.snapshotTerm = term;
  }

  /**
   * Replaces the whole log with a snapshot at (`index`, `term`) (InstallSnapshot, Raft §7): the
   * log becomes empty after `index`; it counts as persisted once the driver saved the snapshot.
   */
  restore(index: number, term: number): void {
    this.ents = [];
    this.snapshotIndex = index;
    this.snapshotTerm = term;
    this.persistedIndex = index;
    this.unstableFrom = index + 1;
  }

  private push(e: Entry): void {
    const want = this.lastIndex() + 1;
    if (e.index !== want) throw new Error(`LogNotContiguous: entry index ${e.index}, expected ${want}`);
    if (e.term < this.lastTerm()) throw new Error(`LogTermDecreasing: entry ${e.index} has term ${e.term} < previous term ${this.lastTerm()}`);
    if (!Number.isInteger(e.term) || e.term < 1) throw new Error(`EntryTermInvalid: entry ${e.index} has term ${e.term}`);
    this.ents.push(e);
  }
}
