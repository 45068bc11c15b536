import type { Entry, HardState, Ready } from '../types';

/**
 * What a driver keeps on "disk" for one node: the last persisted hard state and the durable log
 * (indexes 1..n contiguous). `persist(rd)` applies a Ready exactly as the Ready contract says
 * (hard state replaced; entries truncate-then-append from `entries[0].index`). A crash-restart
 * rebuilds the node from this alone.
 */
export class DurableStore {
  hardState: HardState = { term: 0, vote: null, commit: 0 };
  entries: Entry[] = [];
  /** Number of Readies that carried something to persist (fsyncs a driver would do). */
  syncs = 0;

  persist(rd: Pick<Ready, 'hardState' | 'entries'>): void {
    if (rd.hardState) this.hardState = { ...rd.hardState };
    if (rd.entries.length) {
      const first = rd.entries[0].index;
      if (first < 1 || first > this.entries.length + 1) throw new Error(`DurableLogGap: Ready entries start at ${first}, durable last index ${this.entries.length}`);
      this.entries.length = first - 1;
      for (const e of rd.entries) {
        if (e.index !== this.entries.length + 1) throw new Error(`DurableLogGap: entry ${e.index} after ${this.entries.length}`);
        this.entries.push(e);
      }
    }
    if (rd.hardState || rd.entries.length) this.syncs++;
    if (this.hardState.commit > this.entries.length) {
      throw new Error(`DurableCommitBeyondLog: persisted commit ${this.hardState.commit} > durable last index ${this.entries.length}`);
    }
  }

  lastIndex(): number {
    return this.entries.length;
  }
}
