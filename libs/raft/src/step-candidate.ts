import { handlePreVoteResponse, handleVoteResponse } from './election';
import type { Raft } from './raft';
import { stepFollower } from './step-follower';
import { handleTimeoutNow } from './transfer';
import { MessageType, type Message } from './types';

/**
 * A (pre-)candidate's messages at its own term (etcd's stepCandidate): it counts (pre-)votes
 * (Raft §5.2, thesis §9.6); a leader's message of this term means it lost: it becomes that
 * leader's follower and handles the message as one (Raft §5.2).
 * @throws Error `MessageTypeUnknown`.
 */
export function stepCandidate(r: Raft, m: Message): void {
  switch (m.type) {
    case MessageType.VoteResponse:
      return handleVoteResponse(r, m);
    case MessageType.PreVoteResponse:
      return handlePreVoteResponse(r, m);
    case MessageType.Append:
    case MessageType.Heartbeat:
    case MessageType.Snapshot:
      r.becomeFollower(m.term, m.from);
      return stepFollower(r, m);
    case MessageType.TimeoutNow:
      return handleTimeoutNow(r);
    case MessageType.AppendResponse:
    case MessageType.HeartbeatResponse:
      return; // for a leadership this node no longer holds
    default:
      throw new Error(`MessageTypeUnknown: ${String(m.type)}`);
  }
}
