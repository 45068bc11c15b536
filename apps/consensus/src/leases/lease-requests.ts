import { LeaseRequestKind, LEASE_LIST_PAGE_MAX, Status, decodeLeaseRequest, encodeLeaseReply, type LeaseReply } from '@cairn/protocol';
import type { LeaseTable } from './lease-table';

/** What the lease subject needs of its replica. */
export interface LeaseRequestHost {
  table: LeaseTable;
  isLeader(): boolean;
  leaderId(): string | null;
  nowMs(): number;
}

const reply = (r: Partial<LeaseReply> & { status: Status }): Uint8Array =>
  encodeLeaseReply({ leaderHint: '', message: '', ttlMs: 0, remainingMs: 0, ids: [], more: false, ...r });

/**
 * The leader's answers on `lease.<replica>` (libs/protocol lease.ts LeaseRequest → LeaseReply,
 * docs/leases.md "Keep-alive"). A keep-alive is not a log entry (etcd LeaseKeepAlive): the leader
 * alone holds deadlines, so it resets the lease's deadline in its LeaseTable and answers the TTL;
 * a non-leader answers NOT_LEADER with its leader hint (the gateway follows it, `requestLeader`).
 * TimeToLive and List are answered by the leader too, so a lease the leader expired is never
 * reported live. Never throws: a malformed request is answered BAD_REQUEST.
 */
export function answerLeaseRequest(host: LeaseRequestHost, data: Uint8Array): Uint8Array {
  let q;
  try {
    q = decodeLeaseRequest(data);
  } catch (e) {
    return reply({ status: Status.BadRequest, message: `bad lease request: ${(e as Error).message}` });
  }
  if (!host.isLeader()) return reply({ status: Status.NotLeader, leaderHint: host.leaderId() ?? '', message: 'not the leader' });
  const now = host.nowMs();
  switch (q.kind) {
    case LeaseRequestKind.KeepAlive: {
      const ttlMs = host.table.keepAlive(q.leaseId, now);
      return ttlMs === null ? reply({ status: Status.NotFound, message: `lease ${q.leaseId} not found` }) : reply({ status: Status.Ok, ttlMs, remainingMs: ttlMs });
    }
    case LeaseRequestKind.TimeToLive: {
      const t = host.table.timeToLive(q.leaseId, now);
      return t === null ? reply({ status: Status.NotFound, message: `lease ${q.leaseId} not found` }) : reply({ status: Status.Ok, ttlMs: t.ttlMs, remainingMs: t.remainingMs ?? t.ttlMs });
    }
    case LeaseRequestKind.List: {
      if (q.limit < 1 || q.limit > LEASE_LIST_PAGE_MAX) return reply({ status: Status.BadRequest, message: `list limit must be 1..${LEASE_LIST_PAGE_MAX}, got ${q.limit}` });
      const page = host.table.leaseIdsAfter(q.leaseId, q.limit);
      return reply({ status: Status.Ok, ids: page.ids, more: page.more });
    }
  }
}
