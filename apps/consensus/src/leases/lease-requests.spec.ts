import { CommandOp, LeaseRequestKind, RevokeCause, Status, decodeLeaseReply, decodeLeaseRevoke, encodeLeaseGrant, encodeLeaseRequest } from '@cairn/protocol';
import { LeaseTable } from './lease-table';
import { answerLeaseRequest, type LeaseRequestHost } from './lease-requests';

const EMPTY = Buffer.alloc(0);

function host(leader: boolean, nowMs = 1000): LeaseRequestHost & { table: LeaseTable } {
  const table = new LeaseTable({ leasesMax: 2, ttlKeysMax: 10, expiriesPerCheckMax: 10, expiryRetryMs: 100 });
  for (const id of [5, 9]) table.applyCommitted({ op: CommandOp.LeaseGrant, key: EMPTY, value: encodeLeaseGrant(id, 2000) }, 0);
  if (leader) table.promote(0, 300);
  return { table, isLeader: () => leader, leaderId: () => 'c2', nowMs: () => nowMs };
}

const ask = (h: LeaseRequestHost, kind: LeaseRequestKind, leaseId: number, limit = 0) => decodeLeaseReply(answerLeaseRequest(h, encodeLeaseRequest({ kind, leaseId, limit })));

describe('lease requests at the leader (lease.<replica>)', () => {
  it('a follower answers NOT_LEADER with its leader hint; garbage is BAD_REQUEST', () => {
    expect(ask(host(false), LeaseRequestKind.KeepAlive, 5)).toMatchObject({ status: Status.NotLeader, leaderHint: 'c2' });
    expect(decodeLeaseReply(answerLeaseRequest(host(true), Buffer.from('xx')))).toMatchObject({ status: Status.BadRequest });
  });

  it('keep-alive renews to now + ttl; time to live counts down from it; an unknown lease is NOT_FOUND', () => {
    const h = host(true, 1000);
    expect(ask(h, LeaseRequestKind.TimeToLive, 5)).toMatchObject({ status: Status.Ok, ttlMs: 2000, remainingMs: 2300 - 1000 });
    expect(ask(h, LeaseRequestKind.KeepAlive, 5)).toMatchObject({ status: Status.Ok, ttlMs: 2000 });
    expect(ask(h, LeaseRequestKind.TimeToLive, 5)).toMatchObject({ status: Status.Ok, remainingMs: 2000 });
    // Lease 9 was not renewed: due at its promotion deadline; lease 5 not before 1000 + 2000.
    expect(h.table.due(2999).map((c) => decodeLeaseRevoke(c.value))).toEqual([{ leaseId: 9, cause: RevokeCause.Expired }]);
    expect(ask(h, LeaseRequestKind.KeepAlive, 6)).toMatchObject({ status: Status.NotFound });
    expect(ask(h, LeaseRequestKind.TimeToLive, 6)).toMatchObject({ status: Status.NotFound });
  });

  it('lists ids in pages; a limit outside 1..10000 is BAD_REQUEST', () => {
    const h = host(true);
    expect(ask(h, LeaseRequestKind.List, 0, 1)).toMatchObject({ status: Status.Ok, ids: [5], more: true });
    expect(ask(h, LeaseRequestKind.List, 5, 1)).toMatchObject({ status: Status.Ok, ids: [9], more: false });
    expect(ask(h, LeaseRequestKind.List, 0, 0)).toMatchObject({ status: Status.BadRequest });
  });

  it('refuses a proposal holding a grant once leasesMax leases are live', () => {
    const h = host(true);
    expect(h.table.refuseGrants([{ op: CommandOp.Set, key: Buffer.from('k'), value: EMPTY }])).toBeNull();
    expect(h.table.refuseGrants([{ op: CommandOp.LeaseGrant, key: EMPTY, value: encodeLeaseGrant(11, 10) }])).toMatch(/leasesMax = 2/);
  });
});
