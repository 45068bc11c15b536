/**
 * A client's own write session (Raft thesis §6.3; docs/protocol.md "INCR"): a 64-bit id chosen by
 * the client and a seq per write, so storage nodes apply each (sessionId, seq) at most once
 * whichever gateway carries it. `firstPendingSeq` tells them the lowest seq still awaiting an
 * answer: results below it may be forgotten (and a late copy of such a seq is never applied).
 */
export class ClientSession {
  private nextSeq = 1;
  private readonly pending = new Set<number>();
  private lowestPending = 1;

  /** @throws RangeError when `sessionId` is not a u64. */
  constructor(readonly sessionId: bigint) {
    if (sessionId < 0n || sessionId >= 1n << 64n) throw new RangeError(`sessionId must be a u64, got ${sessionId}`);
  }

  /** A new seq (≥ 1) and the session's firstPendingSeq (≤ seq); call `end` once its answer (or final failure) arrived. */
  begin(): { seq: number; firstPendingSeq: number; end(): void } {
    const seq = this.nextSeq++;
    this.pending.add(seq);
    return {
      seq,
      firstPendingSeq: this.lowestPending,
      end: () => {
        if (!this.pending.delete(seq)) return;
        while (this.lowestPending < this.nextSeq && !this.pending.has(this.lowestPending)) this.lowestPending++;
      },
    };
  }

  /** Seqs begun and not ended. */
  pendingCount(): number {
    return this.pending.size;
  }
}
