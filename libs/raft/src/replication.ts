import { pruneProgress, stepDownRemoved } from './membership';
import type { Progress } from './progress';
import type { Raft } from './raft';
import { onCommittedInTerm, onHeartbeatAck } from './read-index';
import { sendSnapshot } from './snapshot';
import { MessageType, type Message, type NodeId } from './types';

/**
 * Replication, leader side (Raft §5.3, etcd Progress flow control), and commit (Raft §5.4.2).
 * The follower side (AppendEntries receiver) is in step-follower.
 */

/** A reply to an Append: on a reject, backtrack `next` (probe); on success, advance `match` and maybe the commit. */
export function handleAppendResponse(r: Raft, m: Message, pr: Progress): void {
  if (m.reject) return handleAppendReject(r, m, pr);
  if (m.index > r.log.lastIndex()) throw new Error(`MatchBeyondLog: ${m.from} acknowledged ${m.index} > leader last index ${r.log.lastIndex()}`);
  if (!pr.maybeUpdate(m.index)) return; // duplicate or reordered ack: harmless
  if (pr.state === 'probe') pr.becomeReplicate();
  else pr.freeLE(m.index);
  maybeCommit(r);
  // Further entries for this follower go out at the next ready() (flushAppends).
}

function handleAppendReject(r: Raft, m: Message, pr: Progress): void {
  // A reject of a prevLogIndex below match (or of a probe we no longer wait for) is stale.
  if (m.index < pr.match) return;
  if (m.index === pr.match) {
    // The follower rejects the very probe at its match index: its log now ends below what it
    // once acknowledged (its disk lost fsynced entries, e.g. a torn tail cut into them). etcd
    // drops this as stale and would probe at `match` forever; instead forget the lost
    // acknowledgements and probe from the end of its log. Lowering match never lowers commit.
    if (pr.state === 'probe' && m.index === pr.next - 1 && m.rejectHint <= pr.match) {
      pr.match = Math.max(0, m.rejectHint - 1);
      pr.becomeProbe(m.rejectHint);
      sendAppend(r, m.from, true);
    }
    return;
  }
  if (pr.state === 'probe' && m.index !== pr.next - 1) return;
  if (pr.state === 'replicate' && m.index >= pr.next) return;
  // Fast backtracking (Raft §5.3): skip the follower's whole conflicting term, or to its end.
  let next = m.rejectHint;
  if (m.logTerm > 0) {
    const j = r.log.lastIndexOfTerm(m.logTerm);
    if (j > 0) next = j + 1;
  }
  next = Math.min(Math.max(next, pr.match + 1), m.index);
  pr.becomeProbe(next);
  sendAppend(r, m.from, true);
}

/** etcd: a heartbeat response unpauses a probe and re-sends what the follower lacks (lost Appends). */
export function handleHeartbeatResponse(r: Raft, m: Message, pr: Progress): void {
  onHeartbeatAck(r, m.from, m.context ?? 0);
  pr.probeSent = false;
  if (pr.match < r.log.lastIndex()) {
    if (pr.state === 'replicate' && pr.isPaused()) pr.freeFirstOne();
    sendAppend(r, m.from, true);
  }
}

/**
 * Sends one Append to `to` from its next index, bounded by entriesPerMsgMax/msgBytesMax, or the
 * snapshot if that index is compacted. Returns false if paused (probe with one in flight, or a
 * full pipelining window) or if there is nothing to send and `sendIfEmpty` is false.
 */
export function sendAppend(r: Raft, to: NodeId, sendIfEmpty: boolean): boolean {
  const pr = r.prs().get(to)!;
  if (pr.isPaused()) return false;
  const prevIndex = pr.next - 1;
  if (prevIndex < r.log.snapshotIndex) return sendSnapshot(r, to, pr);
  const prevTerm = r.log.term(prevIndex);
  if (prevTerm === undefined) throw new Error(`ProgressBeyondLog: next ${pr.next} for ${to} > last index ${r.log.lastIndex()} + 1`);
  const entries = r.log.sliceBounded(pr.next, r.cfg.entriesPerMsgMax, r.cfg.msgBytesMax);
  if (entries.length === 0 && !sendIfEmpty) return false;
  r.send({ type: MessageType.Append, to, index: prevIndex, logTerm: prevTerm, entries, commit: r.commit });
  if (pr.state === 'probe') pr.probeSent = true;
  else if (entries.length) pr.sent(entries[entries.length - 1].index);
  return true;
}

/** At ready(): send every follower what it lacks (as far as flow control allows), or the new commit. */
export function flushAppends(r: Raft): void {
  for (const to of r.prs().keys()) {
    if (to === r.id) continue;
    let sent = false;
    while (sendAppend(r, to, false)) sent = true;
    if (!sent && r.commitBroadcastPending) sendAppend(r, to, true);
  }
  r.commitBroadcastPending = false;
}

/** Whether `flushAppends` would send anything. */
export function appendsPending(r: Raft): boolean {
  if (r.role !== 'leader') return false;
  if (r.commitBroadcastPending) return true;
  const last = r.log.lastIndex();
  for (const [to, pr] of r.prs()) if (to !== r.id && !pr.isPaused() && pr.next <= last) return true;
  return false;
}

/** Raft §5.4.2 / Figure 8: commit the quorum match index only if its entry is of the current term. */
export function maybeCommit(r: Raft): void {
  // Voters only: learners do not count, nor does a leader its configuration removed (thesis §4.2.2).
  const matches = r.voters.map((v) => r.prs().get(v)!.match).sort((a, b) => b - a);
  const mci = matches[r.quorum() - 1];
  if (mci <= r.commit || r.log.term(mci) !== r.term) return;
  r.commitTo(mci);
  if (r.cfg.broadcastCommit !== false) r.commitBroadcastPending = true;
  if (!r.committedInTerm) {
    r.committedInTerm = true;
    onCommittedInTerm(r);
  }
  if (r.confIndex <= r.commit) {
    pruneProgress(r);
    if (!r.isVoter()) stepDownRemoved(r);
  }
}
