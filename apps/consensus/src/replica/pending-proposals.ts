import type { Entry } from '@cairn/raft';

/** A client batch appended by this leader and not yet known committed or lost. */
export interface PendingProposal {
  firstIndex: number;
  lastIndex: number;
  /** Term the entries were appended in: a committed entry at lastIndex with another term means they were overwritten. */
  term: number;
  /** Term of the committed entry at firstIndex, once seen (a batch may commit across Readies). */
  firstCommittedTerm?: number;
  resolve(outcome: ProposalOutcome): void;
}

export type ProposalOutcome =
  | { kind: 'committed'; firstIndex: number; lastIndex: number }
  /** Definitely not applied: another leader's entry was committed at that index (safe to retry). */
  | { kind: 'overwritten' }
  /** Leadership was lost or the replica stopped: the entries may or may not commit later. */
  | { kind: 'unknown'; reason: string };

/**
 * FIFO of proposals awaiting commit, in index order (a leader appends at increasing indexes).
 * Bounded by `pendingMax`; the caller answers UNAVAILABLE when `full()`.
 */
export class PendingProposals {
  private readonly queue: PendingProposal[] = [];
  private head = 0;

  constructor(private readonly pendingMax: number) {}

  size(): number {
    return this.queue.length - this.head;
  }

  full(): boolean {
    return this.size() >= this.pendingMax;
  }

  add(p: PendingProposal): void {
    const last = this.queue[this.queue.length - 1];
    if (this.size() > 0 && last.lastIndex >= p.firstIndex) {
      throw new Error(`pending proposals out of order: ${p.firstIndex} after ${last.lastIndex}`);
    }
    this.queue.push(p);
  }

  /**
   * Resolves every proposal whose last entry is in `committed` (contiguous, increasing):
   * committed when that entry is of the proposal's term (then, by log matching, all its entries
   * are); overwritten — definitely not applied — only when already its FIRST entry is of another
   * term; otherwise (a new leader kept a prefix of the batch) the outcome is unknown.
   */
  onCommitted(committed: Entry[]): void {
    if (committed.length === 0) return;
    const first = committed[0].index;
    const last = committed[committed.length - 1].index;
    for (let i = this.head; i < this.queue.length && this.queue[i].firstIndex <= last; i++) {
      const p = this.queue[i];
      if (p.firstCommittedTerm === undefined && p.firstIndex >= first) p.firstCommittedTerm = committed[p.firstIndex - first].term;
    }
    while (this.head < this.queue.length && this.queue[this.head].lastIndex <= last) {
      const p = this.queue[this.head++];
      const e = p.lastIndex >= first ? committed[p.lastIndex - first] : undefined;
      if (!e || p.firstCommittedTerm === undefined) p.resolve({ kind: 'unknown', reason: 'commit of the proposal was not observed' });
      else if (e.term === p.term) p.resolve({ kind: 'committed', firstIndex: p.firstIndex, lastIndex: p.lastIndex });
      else if (p.firstCommittedTerm !== p.term) p.resolve({ kind: 'overwritten' });
      else p.resolve({ kind: 'unknown', reason: 'a new leader kept only part of the proposal; outcome unknown' });
    }
    this.compact();
  }

  /**
   * The leader's commit index reached `commit` in its term `term` (Raft §5.4.2: a majority holds
   * every entry up to it durably). Its proposals of that term whose entries all lie at or below it
   * are committed (a leader never removes entries of its own term from its log), before the
   * leader's own write of them is done or they are applied (async storage writes): resolved in
   * FIFO order, stopping at the first that is not; the rest wait for `onCommitted`.
   */
  onCommitIndex(commit: number, term: number): void {
    while (this.head < this.queue.length && this.queue[this.head].term === term && this.queue[this.head].lastIndex <= commit) {
      const p = this.queue[this.head++];
      p.resolve({ kind: 'committed', firstIndex: p.firstIndex, lastIndex: p.lastIndex });
    }
    this.compact();
  }

  /** Fails everything still pending (leadership lost, shutdown). */
  failAll(reason: string): void {
    while (this.head < this.queue.length) this.queue[this.head++].resolve({ kind: 'unknown', reason });
    this.compact();
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    } else if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
  }
}
