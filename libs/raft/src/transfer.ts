import { promotable } from './membership';
import type { Raft } from './raft';
import { sendAppend } from './replication';
import { MessageType, NotLeaderError, type NodeId } from './types';

/** Leadership transfer (thesis §3.10): the leader's side and the target's TimeoutNow. */

/** See RaftNode.transferLeadership. @throws NotLeaderError; RangeError `TransferTargetUnknown`. */
export function transferLeadership(r: Raft, to: NodeId): void {
  if (r.role !== 'leader') throw new NotLeaderError(r.leaderId);
  if (!r.voters.includes(to)) throw new RangeError(`TransferTargetUnknown: ${to} is not a voter of ${JSON.stringify(r.voters)}`);
  if (to === r.id || to === r.leadTransferee) return;
  r.leadTransferee = to;
  r.transferElapsed = 0;
  // The target's campaign skips the followers' vote refusal that lease reads rely on (thesis §6.4.1).
  r.leaseForfeited = true;
  const pr = r.prs().get(to)!;
  if (pr.match === r.log.lastIndex()) return maybeSendTimeoutNow(r, to);
  // Catch the target up from its match index now rather than trusting the pipeline (Appends
  // in flight may be lost); the AppendResponse that shows match = lastIndex sends TimeoutNow.
  pr.becomeProbe(pr.match + 1);
  sendAppend(r, to, true);
}

/** Sends TimeoutNow once the transfer target holds the leader's whole log (proposals are refused meanwhile). */
export function maybeSendTimeoutNow(r: Raft, to: NodeId): void {
  if (r.role !== 'leader' || r.leadTransferee !== to) return;
  if (r.prs().get(to)!.match === r.log.lastIndex()) r.send({ type: MessageType.TimeoutNow, to });
}

export function abortLeadershipTransfer(r: Raft): void {
  r.leadTransferee = null;
  r.transferElapsed = 0;
}

/** Target (follower or candidate): the leader says we are up to date; campaign now at term+1, skipping pre-vote. */
export function handleTimeoutNow(r: Raft): void {
  if (!promotable(r)) return;
  r.startElection(true);
}
