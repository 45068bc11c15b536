import type { ProgressStatus } from './types';

/**
 * The leader's view of one follower (etcd's tracker.Progress), Raft §5.3 nextIndex/matchIndex
 * plus flow control:
 *
 * - probe: the leader does not know where the follower's log matches; at most one Append is in
 *   flight (`probeSent`), re-enabled by a heartbeat response or a reject.
 * - replicate: the follower is known to match at `match`; Appends are pipelined optimistically
 *   (`next` advances on send) with at most `inflightMsgsMax` unacknowledged Appends (`inflights`
 *   holds the last index of each), freed as the acknowledged match index passes them.
 */
export class Progress {
  match = 0;
  state: 'probe' | 'replicate' = 'probe';
  probeSent = false;
  /** CheckQuorum: a response arrived from this follower since the leader's last quorum check. */
  recentActive = false;
  /** Last entry index of each in-flight Append (replicate state), ascending. */
  inflights: number[] = [];

  constructor(
    public next: number,
    private readonly inflightMsgsMax: number,
  ) {}

  isPaused(): boolean {
    return this.state === 'probe' ? this.probeSent : this.inflights.length >= this.inflightMsgsMax;
  }

  /** Follower acknowledged it matches up to `index`. Returns whether `match` advanced (stale/duplicate acks do not). */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      this.probeSent = false;
      updated = true;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  becomeProbe(next: number): void {
    this.state = 'probe';
    this.probeSent = false;
    this.inflights = [];
    this.next = Math.max(next, this.match + 1);
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.probeSent = false;
    this.inflights = [];
    this.next = this.match + 1;
  }

  /** Records an Append ending at `lastIndex` sent in replicate state. */
  sent(lastIndex: number): void {
    if (this.inflights.length >= this.inflightMsgsMax) throw new Error(`InflightsOverflow: ${this.inflights.length} in flight, max ${this.inflightMsgsMax}`);
    this.inflights.push(lastIndex);
    this.next = lastIndex + 1;
  }

  /** Frees in-flight Appends acknowledged by match index `index`. */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.inflights.length && this.inflights[n] <= index) n++;
    if (n) this.inflights.splice(0, n);
  }

  freeFirstOne(): void {
    this.inflights.shift();
  }

  status(): ProgressStatus {
    return {
      match: this.match,
      next: this.next,
      state: this.state,
      inflight: this.state === 'probe' ? (this.probeSent ? 1 : 0) : this.inflights.length,
    };
  }
}
