import type { Raft } from './raft';
import { NotLeaderError, ReadIndexPendingFullError, type NodeId, type ReadContext, type ReadState, type ReadStateFailed } from './types';

/**
 * ReadIndex (thesis §6.4), leader side: reads wait for a heartbeat round a quorum acknowledges.
 * Rounds are numbered across terms so a round number is never reused; the round travels in
 * `Message.context` of Heartbeat / HeartbeatResponse.
 */

const READ_INDEX_PENDING_MAX_DEFAULT = 4096;

/** A ReadIndex request waiting on the leader. */
interface PendingRead {
  ctx: ReadContext;
  /** Commit index to serve at; -1 until the leader has committed an entry of its term. */
  index: number;
  /** The read round (Heartbeat context) whose quorum ack confirms it: the first round started after the request. */
  round: number;
}

export interface ReadIndexState {
  /** The last read round started. */
  round: number;
  /** Leader: requests waiting for a quorum ack of their round, in request order (at most readIndexPendingMax). */
  pending: PendingRead[];
  /** Leader: highest read round each voter acknowledged in this term (this node: always `round`). */
  acks: Map<NodeId, number>;
  /** Leader, lease reads only: the tick (Raft.ticks) each round not yet behind the quorum's ack started at. */
  roundStartTicks: Map<number, number>;
  /** Confirmed since the last Ready (`Ready.readStates`). */
  confirmed: ReadState[];
  /** Given up since the last Ready (`Ready.readStatesFailed`). */
  failed: ReadStateFailed[];
}

export function newReadIndexState(): ReadIndexState {
  return { round: 0, pending: [], acks: new Map(), roundStartTicks: new Map(), confirmed: [], failed: [] };
}

/** See RaftNode.readIndex. @throws NotLeaderError; ReadIndexPendingFullError. */
export function recordRead(r: Raft, ctx: ReadContext): void {
  if (r.role !== 'leader') throw new NotLeaderError(r.leaderId);
  const max = r.cfg.readIndexPendingMax ?? READ_INDEX_PENDING_MAX_DEFAULT;
  if (r.reads.pending.length >= max) throw new ReadIndexPendingFullError(max);
  // Lease read (thesis §6.4.1): no round needed while the lease holds; behind waiting reads it
  // waits too, so reads are still confirmed in request order.
  if (r.reads.pending.length === 0 && leaseHolds(r)) {
    r.reads.confirmed.push({ index: r.commit, ctx });
    return;
  }
  r.reads.pending.push({ ctx, index: r.committedInTerm ? r.commit : -1, round: r.reads.round + 1 });
}

/** The highest read round a quorum of voters (this leader included) acknowledged. */
function quorumAckedRound(r: Raft): number {
  const acks = r.voters.map((v) => (v === r.id ? r.reads.round : (r.reads.acks.get(v) ?? 0))).sort((a, b) => b - a);
  return acks[r.quorum() - 1];
}

/**
 * Whether a lease read may be answered now (RaftConfig.readLeaseTicks): lease reads on, an entry of
 * this term committed, no transfer started in this term, no configuration change uncommitted, and
 * the round the quorum last acknowledged started less than readLeaseTicks ago.
 */
export function leaseHolds(r: Raft): boolean {
  const lease = r.cfg.readLeaseTicks ?? 0;
  if (lease === 0 || r.role !== 'leader' || !r.committedInTerm || r.leaseForfeited || r.leadTransferee !== null || r.confIndex > r.commit) return false;
  const started = r.reads.roundStartTicks.get(quorumAckedRound(r));
  return started !== undefined && r.ticks < started + lease;
}

/** Starts the next read round now (its heartbeats are the caller's to send); with lease reads, remembers its start tick. */
export function startReadRound(r: Raft): void {
  r.reads.round++;
  if (r.cfg.readLeaseTicks) r.reads.roundStartTicks.set(r.reads.round, r.ticks);
}

/** A recorded read still needs a heartbeat round started after it. */
export function readRoundPending(r: Raft): boolean {
  const p = r.reads.pending;
  return r.role === 'leader' && p.length > 0 && p[p.length - 1].round > r.reads.round;
}

/**
 * At ready(): one heartbeat round for every read recorded since the last round started (that is
 * the batching: N concurrent reads, one round). A quorum ack of round n (or later) proves we
 * were still leader after each read with `round <= n` was recorded.
 */
export function maybeStartReadRound(r: Raft): void {
  if (!readRoundPending(r)) return;
  startReadRound(r);
  r.heartbeatElapsed = 0;
  r.broadcastHeartbeat();
  releaseReads(r); // a single voter is its own quorum
}

/** A HeartbeatResponse echoed read round `round`. */
export function onHeartbeatAck(r: Raft, from: NodeId, round: number): void {
  if (round > (r.reads.acks.get(from) ?? 0)) {
    r.reads.acks.set(from, round);
    releaseReads(r);
  }
}

/**
 * Thesis §6.4 step 1: the leader's first commit of its term; only now does its commit index cover
 * every entry committed before its term, so reads recorded earlier are served at this commit index.
 */
export function onCommittedInTerm(r: Raft): void {
  for (const p of r.reads.pending) if (p.index < 0) p.index = r.commit;
  releaseReads(r);
}

/** Leaving leadership: pending reads can no longer be confirmed by this node. */
export function failPendingReads(r: Raft): void {
  for (const p of r.reads.pending) r.reads.failed.push({ ctx: p.ctx });
  r.reads.pending = [];
  r.reads.acks.clear();
  r.reads.roundStartTicks.clear();
}

/** Moves reads whose round a quorum acknowledged, and whose index is known, to `confirmed`. */
export function releaseReads(r: Raft): void {
  const { pending, roundStartTicks } = r.reads;
  const confirmed = quorumAckedRound(r);
  // Rounds behind the quorum's ack can no longer extend the lease.
  for (const round of roundStartTicks.keys()) if (round < confirmed) roundStartTicks.delete(round);
  if (pending.length === 0 || !r.committedInTerm) return;
  let n = 0;
  while (n < pending.length && pending[n].round <= confirmed) {
    const p = pending[n++];
    if (p.index < 0) throw new Error(`ReadIndexUnset: read confirmed before an entry of term ${r.term} committed`);
    r.reads.confirmed.push({ index: p.index, ctx: p.ctx });
  }
  if (n) pending.splice(0, n);
}
