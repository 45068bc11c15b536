import { CommandOp, ExpireCondition, RevokeCause, decodeLeaseRevoke, encodeCommand, encodeIncrDelta, encodeLeaseRevoke, encodeExpire, encodeLeaseGrant, encodeU64Operand, type Command } from '@cairn/protocol';
import { LeaseLimitError, LeaseTable, type LeaseTableOptions } from './lease-table';

const EMPTY = Buffer.alloc(0);
const grant = (id: number, ttlMs: number): Command => ({ op: CommandOp.LeaseGrant, key: EMPTY, value: encodeLeaseGrant(id, ttlMs) });
const revoke = (id: number): Command => ({ op: CommandOp.LeaseRevoke, key: EMPTY, value: encodeU64Operand(id) });
const setTtl = (key: string, expiresAtMs: number): Command => ({ op: CommandOp.Set, key: Buffer.from(key), value: Buffer.from('v'), meta: { leaseId: 0, expiresAtMs, keepTtl: false } });
const opts: LeaseTableOptions = { leasesMax: 3, ttlKeysMax: 2, expiriesPerCheckMax: 10, expiryRetryMs: 500 };
const describeDue = (cs: Command[]) => cs.map((c) => `${c.op === CommandOp.LeaseRevoke ? 'revoke' : 'expire'}:${c.op === CommandOp.LeaseRevoke ? decodeLeaseRevoke(c.value).leaseId : c.key.toString()}`);

describe('LeaseTable (the leader decides expiry; docs/leases.md)', () => {
  it('a follower holds leases without deadlines and proposes nothing', () => {
    const t = new LeaseTable(opts);
    t.applyCommitted(grant(1, 1000), 0);
    expect(t.timeToLive(1, 10_000)).toEqual({ ttlMs: 1000, remainingMs: null });
    expect(t.keepAlive(1, 0)).toBeNull();
    expect(t.due(1_000_000)).toEqual([]);
  });

  it('a new leader extends every live lease by its election timeout before expiring any (etcd Promote)', () => {
    const t = new LeaseTable(opts);
    t.applyCommitted(grant(1, 1000), 0);
    t.promote(5000, 300);
    expect(t.timeToLive(1, 5000)).toEqual({ ttlMs: 1000, remainingMs: 1300 });
    expect(t.due(6299)).toEqual([]);
    expect(describeDue(t.due(6300))).toEqual(['revoke:1']);
  });

  it('keep-alive renews to now + ttl; an expired lease is proposed once per retry interval and leaves with its committed revoke', () => {
    const t = new LeaseTable(opts);
    t.promote(0, 300);
    t.applyCommitted(grant(7, 1000), 100);
    expect(t.keepAlive(7, 900)).toBe(1000);
    expect(t.due(1899)).toEqual([]);
    expect(describeDue(t.due(1900))).toEqual(['revoke:7']);
    expect(t.due(2000)).toEqual([]); // proposed at 1900: not again before 2400
    expect(describeDue(t.due(2400))).toEqual(['revoke:7']);
    // Past its deadline, its revoke proposed but not committed: a keep-alive no longer renews it (etcd Renew of an expired lease).
    expect(t.keepAlive(7, 2420)).toBeNull();
    const [expiry] = t.due(2900);
    // The leader's expiry says so (RESP reports its keys' deletes `expired`); a client's revoke (the 8-byte form) removes the lease alike.
    expect(decodeLeaseRevoke(expiry.value)).toEqual({ leaseId: 7, cause: RevokeCause.Expired });
    t.applyCommitted(revoke(7), 2450);
    expect(t.timeToLive(7, 2450)).toBeNull();
    expect(t.keepAlive(7, 2450)).toBeNull();
    expect(t.leaseCount).toBe(0);
    // The leader's expiry committed (the 9-byte form) removes a lease as well.
    t.applyCommitted(grant(8, 1000), 2500);
    t.applyCommitted({ op: CommandOp.LeaseRevoke, key: EMPTY, value: encodeLeaseRevoke(8, RevokeCause.Expired) }, 2600);
    expect(t.timeToLive(8, 2600)).toBeNull();
  });

  it('key expiries: a later Set without TTL or a Delete clears one, KEEPTTL keeps it, ExpireKey of that expiry removes it', () => {
    const t = new LeaseTable(opts);
    t.promote(0, 300);
    t.applyCommitted(setTtl('a', 1000), 0);
    t.applyCommitted(setTtl('b', 1000), 0);
    t.applyCommitted({ op: CommandOp.Set, key: Buffer.from('b'), value: Buffer.from('w'), meta: { leaseId: 0, expiresAtMs: 0, keepTtl: true } }, 0);
    t.applyCommitted(setTtl('c', 1000), 0); // beyond ttlKeysMax (2): not tracked
    expect(t.trackedKeyCount).toBe(2);
    expect(describeDue(t.due(1000))).toEqual(['expire:a', 'expire:b']);
    t.applyCommitted({ op: CommandOp.Set, key: Buffer.from('a'), value: Buffer.from('x') }, 1001);
    t.applyCommitted({ op: CommandOp.ExpireKey, key: Buffer.from('b'), value: encodeU64Operand(999) }, 1001); // not b's expiry: stays
    expect(t.trackedKeyCount).toBe(1);
    t.applyCommitted({ op: CommandOp.ExpireKey, key: Buffer.from('b'), value: encodeU64Operand(1000) }, 1001);
    t.applyCommitted({ op: CommandOp.Expire, key: Buffer.from('d'), value: encodeU64Operand(5000) }, 1001);
    t.applyCommitted({ op: CommandOp.Delete, key: Buffer.from('d'), value: EMPTY }, 1001);
    expect(t.trackedKeyCount).toBe(0);
  });

  it('mayChange: a plain Set or Delete is skipped only while no key expiry is tracked; folding only what it lets through gives the same table', () => {
    const t = new LeaseTable(opts);
    const plain = (key: string): Command => ({ op: CommandOp.Set, key: Buffer.from(key), value: Buffer.from('v') });
    const del = (key: string): Command => ({ op: CommandOp.Delete, key: Buffer.from(key), value: EMPTY });
    const incr: Command = { op: CommandOp.Incr, key: Buffer.from('n'), value: encodeIncrDelta(1n) };
    const may = (c: Command) => t.mayChange(encodeCommand(c));
    expect([may(plain('a')), may(del('a')), may(incr)]).toEqual([false, false, false]);
    expect([may(setTtl('a', 5)), may(grant(1, 10)), may(revoke(1)), may({ op: CommandOp.ExpireKey, key: Buffer.from('a'), value: encodeU64Operand(5) })]).toEqual([true, true, true, true]);
    expect(may({ op: CommandOp.Expire, key: Buffer.from('a'), value: encodeExpire({ expiresAtMs: 5, condition: ExpireCondition.None, nowMs: 0 }) })).toBe(true);
    expect(t.mayChange(Buffer.from([9, 9, 9]))).toBe(true); // not a command: left to the decoder
    t.applyCommitted(setTtl('a', 5), 0);
    expect([may(plain('b')), may(del('b')), may(incr)]).toEqual([true, true, false]);
    // The same commands folded whole and through mayChange leave the same table.
    const history = [plain('x'), setTtl('a', 50), grant(2, 10), del('z'), plain('a'), setTtl('b', 60), incr, del('b'), revoke(2), setTtl('c', 70)];
    const whole = new LeaseTable(opts);
    const skipping = new LeaseTable(opts);
    for (const c of history) {
      whole.applyCommitted(c, 0);
      if (skipping.mayChange(encodeCommand(c))) skipping.applyCommitted(c, 0);
    }
    expect(skipping.content()).toEqual(whole.content());
    expect(whole.content().keys.map((k) => k.key.toString())).toEqual(['c']);
  });

  it('a conditional Expire changes a tracked expiry only when it holds as on the storage nodes (NX/XX/GT/LT, expired = absent)', () => {
    const t = new LeaseTable(opts);
    t.promote(0, 300);
    const expire = (k: string, expiresAtMs: number, condition: ExpireCondition, nowMs = 10): Command => ({ op: CommandOp.Expire, key: Buffer.from(k), value: encodeExpire({ expiresAtMs, condition, nowMs }) });
    t.applyCommitted(setTtl('a', 1000), 0);
    t.applyCommitted(expire('a', 2000, ExpireCondition.Nx), 0); // has one: refused
    t.applyCommitted(expire('a', 500, ExpireCondition.Gt), 0); // not later: refused
    expect(describeDue(t.due(1000))).toEqual(['expire:a']);
    t.applyCommitted(expire('a', 3000, ExpireCondition.Gt), 0);
    expect(t.due(2999)).toEqual([]);
    t.applyCommitted(expire('a', 4000, ExpireCondition.None, 3000), 0); // expired by the proposer's clock: absent
    expect(describeDue(t.due(3000))).toEqual(['expire:a']);
  });

  it('a KEEPTTL Set keeps a tracked expiry unless it passed by the proposer\'s clock (expiresAtMs)', () => {
    const t = new LeaseTable(opts);
    t.promote(0, 300);
    const keep = (k: string, nowMs: number): Command => ({ op: CommandOp.Set, key: Buffer.from(k), value: Buffer.from('w'), meta: { leaseId: 0, expiresAtMs: nowMs, keepTtl: true } });
    t.applyCommitted(setTtl('a', 1000), 0);
    t.applyCommitted(setTtl('b', 1000), 0);
    t.applyCommitted(keep('a', 999), 0);
    t.applyCommitted(keep('b', 1000), 0);
    expect(describeDue(t.due(1000))).toEqual(['expire:a']);
  });

  it('bounds: grants past leasesMax are refused; one tick proposes at most expiriesPerCheckMax', () => {
    const t = new LeaseTable({ ...opts, expiriesPerCheckMax: 2 });
    t.promote(0, 1);
    for (const id of [1, 2, 3]) t.applyCommitted(grant(id, 10), 0);
    expect(() => t.checkGrant()).toThrow(LeaseLimitError);
    expect(t.due(100)).toHaveLength(2);
    expect(describeDue(t.due(100))).toEqual(['revoke:3']);
    t.demote();
    expect(t.timeToLive(1, 100)?.remainingMs).toBeNull();
    expect(() => new LeaseTable({ ...opts, leasesMax: 0 })).toThrow(RangeError);
  });
});
