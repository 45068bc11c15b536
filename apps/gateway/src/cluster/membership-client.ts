import { decodeMemberReply, encodeMemberRequest, type Logger, type MemberReply, type MemberRequest, type Subjects } from '@cairn/messaging';
import type { NatsConnection } from 'nats';
import type { ClusterView } from './cluster-view';

/** Default bound on one membership operation, ms: adding a replica waits for it to catch up. */
export const MEMBER_TIMEOUT_MS_DEFAULT = 90_000;
/** Pause between retries on `busy` / no leader, ms. */
const RETRY_PAUSE_MS = 100;

/**
 * Gateway → leader membership requests (`member.<replica>`, docs/protocol.md "Membership").
 * Follows NOT_LEADER hints and retries `busy` (another change in flight, or a new leader that has
 * not committed in its term) until `timeoutMs`; every other answer goes back to the caller as is.
 * Safe to retry: the leader treats asking for the current state as success.
 */
export class MembershipClient {
  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly view: ClusterView,
    private readonly log: Logger,
  ) {}

  /** @returns the leader's reply; on timeout or no leader, a synthesized `unavailable` reply. */
  async change(req: MemberRequest, timeoutMs = MEMBER_TIMEOUT_MS_DEFAULT): Promise<MemberReply> {
    const deadline = Date.now() + timeoutMs;
    let last: MemberReply | null = null;
    while (Date.now() < deadline) {
      const leader = this.view.leaderId();
      if (!leader) {
        await this.view.waitForLeader(Math.min(1000, Math.max(1, deadline - Date.now())));
        continue;
      }
      let reply: MemberReply;
      try {
        const msg = await this.nc.request(this.subjects.member(leader), encodeMemberRequest(req), { timeout: Math.max(1, deadline - Date.now()) });
        reply = decodeMemberReply(msg.data);
      } catch (e) {
        // No responder (leader died) or timeout: the outcome is unknown; a retry is safe (idempotent).
        this.log.warn({ err: e, leader, req }, 'membership request to the leader failed');
        this.view.suspectLeader(leader);
        last = { status: 'unavailable', message: `leader ${leader} did not answer: ${(e as Error).message}`, leaderHint: '', conf: null, confIndex: 0 };
        await pause(RETRY_PAUSE_MS);
        continue;
      }
      if (reply.status === 'not_leader') {
        if (reply.leaderHint && reply.leaderHint !== leader) this.view.hintLeader(reply.leaderHint);
        else this.view.suspectLeader(leader);
        last = reply;
        await pause(RETRY_PAUSE_MS);
        continue;
      }
      if (reply.status === 'busy') {
        last = reply;
        await pause(RETRY_PAUSE_MS);
        continue;
      }
      return reply;
    }
    return {
      status: 'unavailable',
      message: `membership change not done within ${timeoutMs} ms${last ? ` (last answer: ${last.status}: ${last.message})` : ' (no leader known)'}`,
      leaderHint: '',
      conf: null,
      confIndex: 0,
    };
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
