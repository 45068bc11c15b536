import { LeaseRequestKind, Status, decodeLeaseReply, encodeLeaseRequest, type LeaseReply } from '@cairn/protocol';
import { realWorld } from '@cairn/world';
import { requestLeader, type LeaderRequestDeps } from './leader-request';

/** A LeaseReply, or why none came (UNAVAILABLE: no leader answered within `timeoutMs`). */
export type LeaseAnswer = LeaseReply;

/**
 * Gateway → consensus leader on `lease.<replica>` (docs/leases.md "Keep-alive"): keep-alive, time
 * to live and list are answered from the leader's LeaseTable, not through the log (etcd
 * LeaseKeepAlive goes to the leader, which resets the deadline). Follows NOT_LEADER hints and
 * elections like every leader request (`requestLeader`); all three are idempotent (a keep-alive
 * sent twice renews twice: the same deadline give or take the delay), so every failure is retried
 * until `timeoutMs`, then answered UNAVAILABLE.
 */
export class LeaseClient {
  constructor(
    private readonly deps: LeaderRequestDeps,
    private readonly opts: { timeoutMs: number },
  ) {}

  /** Renews `leaseId`: OK with its ttlMs, NOT_FOUND when it is not live. */
  keepAlive(leaseId: number): Promise<LeaseAnswer> {
    return this.ask(LeaseRequestKind.KeepAlive, leaseId, 0);
  }

  /** OK with ttlMs and remainingMs, NOT_FOUND when not live. */
  timeToLive(leaseId: number): Promise<LeaseAnswer> {
    return this.ask(LeaseRequestKind.TimeToLive, leaseId, 0);
  }

  /** Live ids > `afterId`, ascending, at most `limit` (1..LEASE_LIST_PAGE_MAX); `more`. */
  list(afterId: number, limit: number): Promise<LeaseAnswer> {
    return this.ask(LeaseRequestKind.List, afterId, limit);
  }

  private async ask(kind: LeaseRequestKind, leaseId: number, limit: number): Promise<LeaseAnswer> {
    const { clock } = this.deps.world ?? realWorld;
    const r = await requestLeader(this.deps, (leader) => this.deps.subjects.lease(leader), encodeLeaseRequest({ kind, leaseId, limit }), decodeLeaseReply, clock.nowMs() + this.opts.timeoutMs, { idempotent: true });
    if ('timedOut' in r || 'unknown' in r) {
      const why = 'timedOut' in r ? r.timedOut : r.unknown;
      return { status: Status.Unavailable, leaderHint: '', message: `no leader answered the lease request within ${this.opts.timeoutMs} ms: ${why}`, ttlMs: 0, remainingMs: 0, ids: [], more: false };
    }
    return r;
  }
}
