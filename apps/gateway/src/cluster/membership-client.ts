import { Status, decodeMemberReply, encodeMemberRequest, type MemberReply, type MemberRequest } from '@cairn/protocol';
import { controlPlaneTransport } from '@cairn/nest-runtime';
import { realWorld } from '@cairn/world';
import type { NatsConnection } from 'nats';
import { requestLeader, type LeaderReply, type LeaderRequestDeps } from '../paths/leader-request';

/** Default bound on one membership operation, ms: adding a replica waits for it to catch up. */
export const MEMBER_TIMEOUT_MS_DEFAULT = 90_000;

/** A MemberReply in the shape `requestLeader` follows: NOT_LEADER hints, retry-safe `busy`. */
interface MemberLeaderReply extends LeaderReply {
  member: MemberReply;
}

const STATUS_OF: Record<MemberReply['status'], Status> = {
  ok: Status.Ok,
  not_leader: Status.NotLeader,
  busy: Status.Unavailable,
  unavailable: Status.Unavailable,
  invalid: Status.ConditionFailed,
  bad_request: Status.BadRequest,
};

function decode(data: Uint8Array): MemberLeaderReply {
  const member = decodeMemberReply(data);
  // `busy` (another change in flight, or a new leader not yet committed in its term) changed
  // nothing; an `unavailable` outcome is unknown but the operation is idempotent, so both retry.
  return { status: STATUS_OF[member.status] ?? Status.Error, leaderHint: member.leaderHint, message: member.message, retrySafe: member.status === 'busy', member };
}

/**
 * Gateway → leader membership requests (`member.<replica>`, docs/http.md "Membership") over the
 * gateway's one leader-following loop (`requestLeader`): NOT_LEADER hints, elections, and retries
 * of `busy` and of unknown outcomes until `timeoutMs` — safe because the leader treats asking for
 * the current state as success. One attempt may take the whole remaining time (a replica catching up).
 *
 * Given a nats.js connection, requests go through Nest's NATS ClientProxy on that connection
 * (`controlPlaneTransport`: the control plane, docs/architecture.md "Control plane and hot paths")
 * with an rxjs timeout per attempt; a Transport (tests, simulator) is used as it is.
 */
export class MembershipClient {
  private readonly deps: LeaderRequestDeps;

  constructor(deps: LeaderRequestDeps) {
    const nc = deps.nc;
    this.deps = typeof (nc as { maxPayloadBytes?: unknown }).maxPayloadBytes === 'function' ? deps : { ...deps, nc: controlPlaneTransport(nc as NatsConnection) };
  }

  /** @returns the leader's final reply; on timeout, a synthesized `unavailable` reply with the last reason. */
  async change(req: MemberRequest, timeoutMs = MEMBER_TIMEOUT_MS_DEFAULT): Promise<MemberReply> {
    const r = await requestLeader(this.deps, (leader) => this.deps.subjects.member(leader), encodeMemberRequest(req), decode, (this.deps.world ?? realWorld).clock.nowMs() + timeoutMs, {
      idempotent: true,
      requestTimeoutMs: timeoutMs,
    });
    if ('member' in r) return r.member;
    const reason = 'timedOut' in r ? r.timedOut : r.unknown;
    return { status: 'unavailable', message: `membership change not done within ${timeoutMs} ms (last: ${reason})`, leaderHint: '', conf: null, confIndex: 0 };
  }
}
