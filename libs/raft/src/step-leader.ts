import { handleAppendResponse, handleHeartbeatResponse } from './replication';
import type { Raft } from './raft';
import { maybeSendTimeoutNow } from './transfer';
import { MessageType, type Message } from './types';

/**
 * The leader's messages at its own term (etcd's stepLeader); the term rules and vote requests
 * were handled by `Raft.step`. Responses from members feed replication (Raft §5.3), ReadIndex
 * (thesis §6.4) and a leadership transfer in progress (thesis §3.10).
 * @throws Error `ElectionSafety` on an Append/Heartbeat/Snapshot/TimeoutNow of its own term
 *   (another leader in this term); `MessageTypeUnknown`.
 */
export function stepLeader(r: Raft, m: Message): void {
  switch (m.type) {
    case MessageType.AppendResponse:
    case MessageType.HeartbeatResponse: {
      const pr = r.prs().get(m.from);
      if (!pr) return;
      pr.recentActive = true;
      if (m.type === MessageType.AppendResponse) handleAppendResponse(r, m, pr);
      else handleHeartbeatResponse(r, m, pr);
      // An up-to-date target gets no AppendResponse: heartbeats repeat a lost TimeoutNow.
      maybeSendTimeoutNow(r, m.from);
      return;
    }
    case MessageType.Append:
    case MessageType.Heartbeat:
    case MessageType.Snapshot:
    case MessageType.TimeoutNow:
      throw new Error(`ElectionSafety: leader ${r.id} got ${MessageType[m.type]} from ${m.from} in its own term ${m.term}`);
    case MessageType.VoteResponse:
    case MessageType.PreVoteResponse:
      return; // late answers to the election it won
    default:
      throw new Error(`MessageTypeUnknown: ${String(m.type)}`);
  }
}
