import { adoptConfEntries, refreshConf } from './membership';
import type { Raft } from './raft';
import { handleSnapshot } from './snapshot';
import { handleTimeoutNow } from './transfer';
import { MessageType, type Message } from './types';

/**
 * A follower's messages at its own term (etcd's stepFollower): the leader's Append / Heartbeat /
 * Snapshot (they restart the election timer, Raft §5.2) and TimeoutNow (thesis §3.10).
 * @throws Error `MessageTypeUnknown`; the receivers throw on broken invariants
 *   (`LogNotContiguous`, `CommittedEntryConflict`, `SnapshotInvalid`).
 */
export function stepFollower(r: Raft, m: Message): void {
  switch (m.type) {
    case MessageType.Append:
    case MessageType.Heartbeat:
    case MessageType.Snapshot:
      if (r.leaderId !== m.from) r.becomeFollower(m.term, m.from);
      r.electionElapsed = 0;
      if (m.type === MessageType.Snapshot) return handleSnapshot(r, m);
      return m.type === MessageType.Append ? handleAppend(r, m) : handleHeartbeat(r, m);
    case MessageType.TimeoutNow:
      return handleTimeoutNow(r);
    case MessageType.VoteResponse:
    case MessageType.PreVoteResponse:
    case MessageType.AppendResponse:
    case MessageType.HeartbeatResponse:
      return; // for an election or a leadership this node no longer runs
    default:
      throw new Error(`MessageTypeUnknown: ${String(m.type)}`);
  }
}

/**
 * AppendEntries receiver (Raft Figure 2 / §5.3). On a log-matching failure it rejects with a
 * fast-backtracking hint (`rejectAppend`).
 */
function handleAppend(r: Raft, m: Message): void {
  if (m.index < r.commit) {
    // Stale/reordered: everything up to commit is known to match the leader.
    r.send({ type: MessageType.AppendResponse, to: m.from, index: r.commit });
    return;
  }
  if (!r.log.matchTerm(m.index, m.logTerm)) return rejectAppend(r, m);
  for (let i = 0; i < m.entries.length; i++) {
    if (m.entries[i].index !== m.index + 1 + i) throw new Error(`LogNotContiguous: Append from ${m.from} with prev ${m.index} carries entry ${m.entries[i].index} at position ${i}`);
  }
  const lastNew = m.index + m.entries.length;
  const ci = r.log.findConflict(m.entries);
  if (ci !== 0) {
    if (ci <= r.commit) throw new Error(`CommittedEntryConflict: entry ${ci} conflicts but commit is ${r.commit}`);
    const appended = m.entries.slice(ci - (m.index + 1));
    r.log.truncateAndAppend(appended);
    // A config entry is in effect once in the log; a truncated one reverts (thesis §4.1).
    if (ci <= r.confIndex) refreshConf(r);
    else adoptConfEntries(r, appended);
  }
  r.commitTo(Math.min(m.commit, lastNew));
  r.send({ type: MessageType.AppendResponse, to: m.from, index: lastNew });
}

/**
 * Raft §5.3 fast backtracking: if our log is shorter than prevLogIndex, rejectHint = lastIndex+1
 * and logTerm = 0; else the first index of our conflicting term (not below commit+1) and that term.
 */
function rejectAppend(r: Raft, m: Message): void {
  let hint: number;
  let hintTerm: number;
  if (m.index > r.log.lastIndex()) {
    hint = r.log.lastIndex() + 1;
    hintTerm = 0;
  } else {
    const conflictTerm = r.log.term(m.index)!;
    hint = Math.min(Math.max(r.log.firstIndexWithTermAtLeast(conflictTerm), r.commit + 1), m.index);
    hintTerm = r.log.term(hint)!;
  }
  r.send({ type: MessageType.AppendResponse, to: m.from, index: m.index, reject: true, rejectHint: hint, logTerm: hintTerm });
}

function handleHeartbeat(r: Raft, m: Message): void {
  // The leader sends min(commit, our match), which we hold; clamp defensively.
  r.commitTo(Math.min(m.commit, r.log.lastIndex()));
  // Echo the read round so the leader can confirm its ReadIndex requests (thesis §6.4).
  r.send({ type: MessageType.HeartbeatResponse, to: m.from, context: m.context ?? 0 });
}
