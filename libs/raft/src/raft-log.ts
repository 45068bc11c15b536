import type { Entry } from './types';

/**
 * The in-memory Raft log of one node (indexes 1..lastIndex, no compaction yet), plus the two
 * cursors the Ready cycle needs:
 *
 * - `unstableFrom`: entries at or after it were not yet handed to the driver in a Ready;
 * - `persistedIndex`: entries at or below it are durable on this node (acknowledged by `advance`)
 *   and equal to what is on disk. A node counts only these toward commit (etcd's async storage).
 *
 * Invariants (Raft §5.3, asserted): indexes contiguous from 1, terms non-decreasing.
 */
export class RaftLog {
  /** `ents[i].index === i + 1`. */
  private readonly ents: Entry[] = [];
  unstableFrom: number;
  persistedIndex: number;

  constructor(restored: Entry[]) {
    for (const e of restored) this.push(e);
    this.persistedIndex = this.lastIndex();
    this.unstableFrom = this.lastIndex() + 1;
  }

  lastIndex(): number {
    return this.ents.length;
  }

  lastTerm(): number {
    return this.ents.length ? this.ents[this.ents.length - 1].term : 0;
  }

  /** Term of the entry at `index`; 0 for index 0; undefined if outside the log. */
  term(index: number): number | undefined {
    if (index === 0) return 0;
    if (index < 0 || index > this.ents.length) return undefined;
    return this.ents[index - 1].term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  entry(index: number): Entry {
    const e = this.ents[index - 1];
    if (!e) throw new Error(`LogIndexOutOfRange: entry ${index} not in log 1..${this.lastIndex()}`);
    return e;
  }

  /** Entries lo..hi inclusive (copy of the array; entries themselves are immutable). */
  slice(lo: number, hi: number): Entry[] {
    if (lo > hi) return [];
    if (lo < 1 || hi > this.ents.length) throw new Error(`LogIndexOutOfRange: slice ${lo}..${hi} of log 1..${this.lastIndex()}`);
    return this.ents.slice(lo - 1, hi);
  }

  /** Entries from `lo` on, at most `countMax` and `bytesMax` data bytes (at least one entry if any). */
  sliceBounded(lo: number, countMax: number, bytesMax: number): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i <= this.ents.length && out.length < countMax; i++) {
      const e = this.ents[i - 1];
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
    if (from < 1 || from > this.lastIndex() + 1) throw new Error(`LogNotContiguous: truncate-append at ${from} with last index ${this.lastIndex()}`);
    this.ents.length = from - 1;
    this.unstableFrom = Math.min(this.unstableFrom, from);
    this.persistedIndex = Math.min(this.persistedIndex, from - 1);
    this.append(entries);
  }

  /**
   * First index in `entries` whose entry is missing or has a different term here, 0 if all match.
   * Matching entries are never rewritten, so a stale/reordered Append cannot truncate (Raft §5.3).
   */
  findConflict(entries: Entry[]): number {
    for (const e of entries) if (!this.matchTerm(e.index, e.term)) return e.index;
    return 0;
  }

  /** Raft §5.4.1: is (lastTerm, lastIndex) of a candidate at least as up-to-date as this log? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** First index whose term is >= `term` (lastIndex+1 if none). Binary search: terms are sorted. */
  firstIndexWithTermAtLeast(term: number): number {
    let lo = 0;
    let hi = this.ents.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ents[mid].term < term) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  }

  /** Last index holding an entry of exactly `term`, 0 if none. */
  lastIndexOfTerm(term: number): number {
    const i = this.firstIndexWithTermAtLeast(term + 1) - 1;
    return i >= 1 && this.ents[i - 1].term === term ? i : 0;
  }

  /** Entries not yet handed to a Ready. */
  unstableEntries(): Entry[] {
    return this.slice(this.unstableFrom, this.lastIndex());
  }

  private push(e: Entry): void {
    const want = this.ents.length + 1;
    if (e.index !== want) throw new Error(`LogNotContiguous: entry index ${e.index}, expected ${want}`);
    if (e.term < this.lastTerm()) throw new Error(`LogTermDecreasing: entry ${e.index} has term ${e.term} < previous term ${this.lastTerm()}`);
    if (!Number.isInteger(e.term) || e.term < 1) throw new Error(`EntryTermInvalid: entry ${e.index} has term ${e.term}`);
    this.ents.push(e);
  }
}
