import type { Entry, HardState, Ready, Snapshot } from '../types';

/**
 * What a driver keeps on "disk" for one node: the last persisted hard state, the last snapshot
 * (compacted prefix, Raft §7) and the durable log after it (contiguous from `firstIndex()`).
 * `persist(rd)` applies a Ready exactly as the Ready contract says (snapshot first: the log is
 * discarded; hard state replaced; entries truncate-then-append from `entries[0].index`);
 * `compact(index)` drops a prefix as a driver does after `RaftNode.compact`. A crash-restart
 * rebuilds the node from this alone.
 */
export class DurableStore {
  hardState: HardState = { term: 0, vote: null, commit: 0 };
  snapshot: Snapshot | null = null;
  /** Entries `firstIndex()..lastIndex()`. */
  entries: Entry[] = [];
  /** Number of Readies that carried something to persist (fsyncs a driver would do). */
  syncs = 0;

  firstIndex(): number {
    return (this.snapshot?.index ?? 0) + 1;
  }

  lastIndex(): number {
    return this.firstIndex() - 1 + this.entries.length;
  }

  persist(rd: Pick<Ready, 'hardState' | 'entries'> & { snapshot?: Snapshot | null }): void {
    if (rd.snapshot) {
      this.snapshot = { ...rd.snapshot };
      this.entries = [];
    }
    if (rd.hardState) this.hardState = { ...rd.hardState };
    if (rd.entries.length) {
      const first = rd.entries[0].index;
      if (first < this.firstIndex() || first > this.lastIndex() + 1) throw new Error(`DurableLogGap: Ready entries start at ${first}, durable log ${this.firstIndex()}..${this.lastIndex()}`);
      this.entries.length = first - this.firstIndex();
      for (const e of rd.entries) {
        if (e.index !== this.lastIndex() + 1) throw new Error(`DurableLogGap: entry ${e.index} after ${this.lastIndex()}`);
        this.entries.push(e);
      }
    }
    if (rd.hardState || rd.entries.length || rd.snapshot) this.syncs++;
    if (this.hardState.commit > this.lastIndex()) {
      throw new Error(`DurableCommitBeyondLog: persisted commit ${this.hardState.commit} > durable last index ${this.lastIndex()}`);
    }
  }

  /** Durable entries lo..hi within `bytesMax` data bytes, at least one (a bounded log cache's LogStorage). @throws RangeError outside the durable log. */
  read(lo: number, hi: number, bytesMax: number): Entry[] {
    if (lo < this.firstIndex() || hi > this.lastIndex() || lo > hi) throw new RangeError(`DurableRead: ${lo}..${hi} outside the durable log ${this.firstIndex()}..${this.lastIndex()}`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i <= hi; i++) {
      const e = this.entries[i - this.firstIndex()];
      if (out.length > 0 && bytes + e.data.length > bytesMax) break;
      bytes += e.data.length;
      out.push(e);
    }
    return out;
  }

  /** Drops the durable entries up to `snap.index` (the driver's side of `RaftNode.compact`). */
  compact(snap: Snapshot): void {
    if (snap.index <= (this.snapshot?.index ?? 0)) return;
    if (snap.index > this.lastIndex()) throw new Error(`DurableCompactBeyondLog: ${snap.index} > ${this.lastIndex()}`);
    this.entries = this.entries.slice(snap.index - this.firstIndex() + 1);
    this.snapshot = { ...snap };
  }
}
