import { Status, decodeProposeRequest, encodeCommand, encodeProposeReply, type Command, type ProposeReply } from '@cairn/protocol';
import { NotLeaderError, type Entry, type RaftNode } from '@cairn/raft';
import { respondSafe } from '@cairn/messaging';
import type { Logger } from '@cairn/logging';
import type { TransportMsg } from '@cairn/world';
import { PendingProposals, type ProposalOutcome } from './pending-proposals';
import { ReadyInputs } from './ready-inputs';

/** What the proposal path needs of its replica. */
export interface ProposalHost {
  id: string;
  log: Logger;
  /** Bound on proposals appended but not yet committed (config proposalsPendingMax). */
  proposalsPendingMax: number;
  isLeader(): boolean;
  leaderId(): string | null;
  /** Wakes the Ready loop, which calls `drain`. */
  kick(): void;
  /** Why these commands may not be proposed at all (a bound, e.g. consensus.leasesMax), or null: the request is answered TOO_LARGE, retry-safe. */
  refuse?(commands: Command[]): string | null;
}

/**
 * The leader's write path on `propose.<replica>`: a ProposeRequest waits in a queue until the
 * Ready loop proposes its commands (so all requests that arrived during one fsync share the next
 * Ready), then in PendingProposals until its entries commit, are overwritten, or the outcome
 * becomes unknown; each gets exactly one ProposeReply (docs/protocol.md, ProposeReply).
 */
export class Proposals {
  private readonly queued: ReadyInputs<{ commands: Uint8Array[]; msg: TransportMsg }>;
  private readonly pending: PendingProposals;
  /** Entries this replica appended as leader for proposals since start (metrics: cairn_consensus_proposals_total). */
  entriesProposed = 0;

  constructor(private readonly host: ProposalHost) {
    this.pending = new PendingProposals(host.proposalsPendingMax);
    this.queued = new ReadyInputs(() => host.kick());
  }

  onRequest(msg: TransportMsg): void {
    let commands: Uint8Array[];
    let decoded: Command[];
    try {
      decoded = decodeProposeRequest(msg.data).commands;
      commands = decoded.map(encodeCommand);
    } catch (e) {
      this.reply(msg, { status: Status.BadRequest, firstIndex: 0, lastIndex: 0, leaderHint: '', message: `bad proposal: ${(e as Error).message}` });
      return;
    }
    if (!this.host.isLeader()) {
      this.reply(msg, this.notLeader());
      return;
    }
    const refused = this.host.refuse?.(decoded);
    if (refused) {
      this.reply(msg, { status: Status.TooLarge, firstIndex: 0, lastIndex: 0, leaderHint: this.host.id, message: refused });
      return;
    }
    if (commands.length === 0) {
      this.reply(msg, { status: Status.BadRequest, firstIndex: 0, lastIndex: 0, leaderHint: '', message: 'empty proposal' });
      return;
    }
    this.queued.push({ commands, msg });
  }

  /** Proposals are waiting for the Ready loop. */
  hasQueued(): boolean {
    return this.queued.hasQueued();
  }

  /** Proposes the queued requests (Ready loop, with the other inputs). */
  drain(node: RaftNode): void {
    this.queued.drain((p) => this.propose(node, p.commands, p.msg));
  }

  /** Committed entries answer the proposals they complete (or overwrite). */
  onCommitted(entries: Entry[]): void {
    this.pending.onCommitted(entries);
  }

  /** Leader: answers the proposals of `term` at or below the commit index `commit` (PendingProposals.onCommitIndex). */
  onCommitIndex(commit: number, term: number): void {
    this.pending.onCommitIndex(commit, term);
  }

  /** Fails the proposals already appended: their outcome is unknown (`reason`). */
  failPending(reason: string): void {
    this.pending.failAll(reason);
  }

  /** Answers the proposals not yet appended UNAVAILABLE, safe to re-send (shutdown). */
  failQueued(message: string): void {
    for (const p of this.queued.takeAll()) this.reply(p.msg, { status: Status.Unavailable, retrySafe: true, firstIndex: 0, lastIndex: 0, leaderHint: '', message });
  }

  private propose(node: RaftNode, commands: Uint8Array[], msg: TransportMsg): void {
    const h = this.host;
    if (this.pending.full()) {
      this.reply(msg, { status: Status.Unavailable, retrySafe: true, firstIndex: 0, lastIndex: 0, leaderHint: h.id, message: 'leader overloaded: too many proposals pending' });
      return;
    }
    let r: { firstIndex: number; lastIndex: number; term: number };
    try {
      r = node.propose(commands);
    } catch (e) {
      if (e instanceof NotLeaderError) {
        // During a leadership transfer the error names the transferee: send the gateway there.
        this.reply(msg, { ...this.notLeader(), leaderHint: e.leaderId ?? h.leaderId() ?? '' });
        return;
      }
      // Nothing was appended: the gateway may re-send.
      h.log.error({ err: e }, 'proposal refused');
      this.reply(msg, { status: Status.Unavailable, retrySafe: true, firstIndex: 0, lastIndex: 0, leaderHint: h.leaderId() ?? '', message: `proposal refused: ${(e as Error).message}` });
      return;
    }
    this.entriesProposed += r.lastIndex - r.firstIndex + 1;
    this.pending.add({ ...r, resolve: (o) => this.reply(msg, this.outcomeReply(o)) });
  }

  private notLeader(): ProposeReply {
    return { status: Status.NotLeader, retrySafe: true, firstIndex: 0, lastIndex: 0, leaderHint: this.host.leaderId() ?? '', message: 'not the leader' };
  }

  private outcomeReply(o: ProposalOutcome): ProposeReply {
    switch (o.kind) {
      case 'committed':
        return { status: Status.Ok, firstIndex: o.firstIndex, lastIndex: o.lastIndex, leaderHint: this.host.id, message: '' };
      case 'overwritten':
        return { status: Status.Unavailable, retrySafe: true, firstIndex: 0, lastIndex: 0, leaderHint: this.host.leaderId() ?? '', message: 'proposal overwritten by a new leader; not applied' };
      case 'unknown':
        return { status: Status.Unavailable, firstIndex: 0, lastIndex: 0, leaderHint: this.host.leaderId() ?? '', message: o.reason };
    }
  }

  private reply(msg: TransportMsg, r: ProposeReply): void {
    respondSafe(msg, encodeProposeReply(r), this.host.log);
  }
}
