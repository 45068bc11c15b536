import { BitcaskEngine } from '@cairn/engine';
import { ApplyOutcome, CommandOp, CompareResult, CompareTarget, DEFAULT_LIMITS, ExpireCondition, LeaseRefusal, encodeExpire, TxnOpFlags, TxnOpKind, TxnRefusal, decodeTxnResult, encodeTxnCommandValue, type TxnRequest, encodeLeaseGrant, encodeLeaseRevoke, encodeU64Operand, RevokeCause, type Command } from '@cairn/protocol';
import { entriesOf, useTempDir } from './apply.spec-helpers';
import { CommandApplier } from './command-applier';
import { LeaseIndex, RESERVED_KEY_PREFIX } from './lease-index';
import { realClock } from '@cairn/world';

const EMPTY = Buffer.alloc(0);
const grant = (id: number, ttlMs: number): Command => ({ op: CommandOp.LeaseGrant, key: EMPTY, value: encodeLeaseGrant(id, ttlMs) });
const revoke = (id: number): Command => ({ op: CommandOp.LeaseRevoke, key: EMPTY, value: encodeU64Operand(id) });
const put = (key: string, value: string, leaseId = 0, expiresAtMs = 0): Command => ({ op: CommandOp.Set, key: Buffer.from(key), value: Buffer.from(value), ...(leaseId || expiresAtMs ? { meta: { leaseId, expiresAtMs, keepTtl: false } } : {}) });
const expireKey = (key: string, at: number): Command => ({ op: CommandOp.ExpireKey, key: Buffer.from(key), value: encodeU64Operand(at) });

/** A storage node's apply loop in miniature: a real engine, the applier (with the lease index loaded from the engine, as at open) in front of it. */
async function node(dir: string, keysPerLeaseMax = 1000) {
  const engine = await BitcaskEngine.open({ clock: realClock, dir });
  const applier = new CommandApplier({ get: (k) => engine.get(k), leases: LeaseIndex.load(engine), keysPerLeaseMax });
  return {
    engine,
    applier,
    apply: (from: number, cmds: Command[]) => {
      const applied = engine.apply(applier.toEngineEntries(entriesOf(from, cmds)).engine);
      applier.leases.handedToEngine();
      return applied;
    },
    value: (k: string) => engine.get(Buffer.from(k))?.value.toString() ?? null,
  };
}

describe('lease and TTL apply rules (docs/leases.md "Storage")', () => {
  const dir = useTempDir();

  it('a revoke deletes the lease and every attached key at its one revision; the state survives a restart', async () => {
    let n = await node(dir());
    await n.apply(1, [grant(9, 5000), put('a', '1', 9), put('b', '2', 9), put('c', '3'), put('b', '2b', 9)]);
    expect(n.applier.leases.lease(9)?.keys.size).toBe(2);
    // a put without META detaches (etcd put): c was never attached; re-put 'a' plain detaches it
    await n.engine.close();
    n = await node(dir()); // reopened: the index is read back from the engine's reserved records
    expect(n.applier.leases.lease(9)?.keys.size).toBe(2);
    await n.apply(6, [revoke(9)]);
    expect([n.value('a'), n.value('b'), n.value('c')]).toEqual([null, null, '3']);
    expect(n.applier.leases.lease(9)).toBeUndefined();
    expect(n.applier.outcome(6)).toEqual({ outcome: ApplyOutcome.Applied, revision: 6 });
    expect(n.engine.appliedIndex()).toBe(6);
    // a second revoke: lease not found
    await n.apply(7, [revoke(9)]);
    expect(n.applier.outcome(7)).toEqual({ outcome: ApplyOutcome.ConditionFailed, revision: 7, leaseRefusal: LeaseRefusal.NotFound });
    await n.engine.close();
    n = await node(dir());
    expect(n.applier.leases.leaseIds()).toEqual([]);
    await n.engine.close();
  });

  it('refuses a put on a missing or full lease; a plain put detaches its key', async () => {
    const n = await node(dir(), 2);
    await n.apply(1, [put('x', '1', 4), grant(4, 1000), put('a', '1', 4), put('b', '1', 4), put('c', '1', 4), put('a', 'plain'), put('c', '1', 4)]);
    const o = (i: number) => n.applier.outcome(i);
    expect(o(1)).toEqual({ outcome: ApplyOutcome.ConditionFailed, revision: 1, leaseRefusal: LeaseRefusal.NotFound });
    expect(o(5)).toEqual({ outcome: ApplyOutcome.ConditionFailed, revision: 5, leaseRefusal: LeaseRefusal.KeysFull });
    expect(o(7)).toEqual({ outcome: ApplyOutcome.Applied, revision: 7 }); // 'a' left the lease at 6
    await n.apply(8, [revoke(4)]);
    expect([n.value('a'), n.value('b'), n.value('c'), n.value('x')]).toEqual(['plain', null, null, null]);
    await n.engine.close();
  });

  it('ExpireKey deletes a key only while its recorded expiry is the one named; expired keys are hidden before that', async () => {
    const n = await node(dir());
    await n.apply(1, [put('k', 'v', 0, 1000), put('j', 'v', 0, 1000), put('j', 'newer', 0, 2000)]);
    expect(n.applier.leases.expired(Buffer.from('k'), 999)).toBe(false);
    expect(n.applier.leases.expired(Buffer.from('k'), 1000)).toBe(true);
    await n.apply(4, [expireKey('k', 1000), expireKey('j', 1000)]);
    expect(n.value('k')).toBeNull();
    expect(n.value('j')).toBe('newer');
    expect(n.applier.outcome(5).outcome).toBe(ApplyOutcome.ConditionFailed);
    await n.engine.close();
  });

  it('the delete event of an ExpireKey is marked expired; a DEL and a lease revoke are not', async () => {
    const n = await node(dir());
    await n.apply(1, [grant(3, 5000), put('t', 'v', 0, 1000), put('d', 'v'), put('l', 'v', 3)]);
    const { events } = n.applier.toEngineEntries(entriesOf(5, [expireKey('t', 1000), { op: CommandOp.Delete, key: Buffer.from('d'), value: EMPTY }, revoke(3)]));
    expect(events.map((e) => [Buffer.from(e.key).toString(), e.modRevision, e.expired === true])).toEqual([
      ['t', 5, true],
      ['d', 6, false],
      ['l', 7, false],
    ]);
    await n.engine.close();
  });

  it('the deletes of a lease revoke with cause Expired (the leader\'s expiry) are marked expired, at the one revision; a client\'s revoke\'s are not', async () => {
    const n = await node(dir());
    await n.apply(1, [grant(4, 5000), grant(5, 5000), put('x', 'v', 4), put('y', 'v', 4), put('z', 'v', 5)]);
    const expired: Command = { op: CommandOp.LeaseRevoke, key: EMPTY, value: encodeLeaseRevoke(4, RevokeCause.Expired) };
    const { events } = n.applier.toEngineEntries(entriesOf(6, [expired, revoke(5)]));
    expect(events.map((e) => [Buffer.from(e.key).toString(), e.modRevision, e.expired === true]).sort()).toEqual([
      ['x', 6, true],
      ['y', 6, true],
      ['z', 7, false],
    ]);
    expect([6, 7].map((i) => n.applier.outcome(i).outcome)).toEqual([ApplyOutcome.Applied, ApplyOutcome.Applied]);
    await n.engine.close();
  });

  it('Expire applies to a live key under its NX/XX/GT/LT and its proposer\'s clock, in log order; PERSIST (0 under XX) removes the metadata record', async () => {
    const n = await node(dir());
    const expire = (key: string, expiresAtMs: number, condition: ExpireCondition, nowMs = 10): Command => ({ op: CommandOp.Expire, key: Buffer.from(key), value: encodeExpire({ expiresAtMs, condition, nowMs }) });
    await n.apply(1, [put('k', 'v'), expire('k', 1000, ExpireCondition.Xx), expire('k', 1000, ExpireCondition.Nx), expire('k', 900, ExpireCondition.Gt), expire('k', 2000, ExpireCondition.Gt), expire('gone', 5000, ExpireCondition.None)]);
    expect([2, 3, 4, 5, 6].map((i) => n.applier.outcome(i).outcome)).toEqual([ApplyOutcome.ConditionFailed, ApplyOutcome.Applied, ApplyOutcome.ConditionFailed, ApplyOutcome.Applied, ApplyOutcome.ConditionFailed]);
    expect(n.applier.leases.meta(Buffer.from('k'))).toEqual({ leaseId: 0, expiresAtMs: 2000 });
    // expired by the proposer's clock: the key counts as absent
    await n.apply(7, [expire('k', 9000, ExpireCondition.None, 2000), expire('k', 0, ExpireCondition.Xx, 1999)]);
    expect([n.applier.outcome(7).outcome, n.applier.outcome(8).outcome]).toEqual([ApplyOutcome.ConditionFailed, ApplyOutcome.Applied]);
    expect(n.applier.leases.meta(Buffer.from('k'))).toBeUndefined();
    expect([...LeaseIndex.load(n.engine).expiries()]).toEqual([]);
    expect(n.value('k')).toBe('v');
    await n.engine.close();
  });

  it('SET KEEPTTL keeps the expiry unless it passed by the proposer\'s clock (then the key is new: no expiry, and the old ExpireKey is a no-op)', async () => {
    const n = await node(dir());
    const keep = (key: string, value: string, nowMs: number): Command => ({ op: CommandOp.Set, key: Buffer.from(key), value: Buffer.from(value), meta: { leaseId: 0, expiresAtMs: nowMs, keepTtl: true } });
    await n.apply(1, [put('a', '1', 0, 1000), put('b', '1', 0, 1000), keep('a', '2', 999), keep('b', '2', 1000), expireKey('a', 1000), expireKey('b', 1000)]);
    expect(n.applier.leases.meta(Buffer.from('b'))).toBeUndefined();
    expect([n.value('a'), n.value('b')]).toEqual([null, '2']);
    await n.engine.close();
  });

  it('a client write into the reserved keyspace is never applied', async () => {
    const n = await node(dir());
    const reserved = Buffer.concat([RESERVED_KEY_PREFIX, Buffer.from('L')]);
    await n.apply(1, [{ op: CommandOp.Set, key: reserved, value: Buffer.from('x') }]);
    expect(n.engine.get(reserved)).toBeNull();
    await n.engine.close();
  });

  it('a txn neither reads, deletes nor writes the reserved keyspace: ranges stop where it starts, a write into it refuses the txn', async () => {
    const engine = await BitcaskEngine.open({ clock: realClock, dir: dir() });
    const applier = new CommandApplier({ get: (k) => engine.get(k), range: (q) => engine.range(q), leases: LeaseIndex.load(engine) });
    const txn = (request: TxnRequest): Command => ({ op: CommandOp.Txn, key: EMPTY, value: encodeTxnCommandValue({ limits: { resultBytesMax: 1 << 20, keysMax: 100 }, request }) });
    const all = { key: Buffer.from([0]), end: Buffer.from([0]) };
    const reserved = Buffer.concat([RESERVED_KEY_PREFIX, Buffer.from('L')]);
    const apply = (from: number, cmds: Command[]) => engine.apply(applier.toEngineEntries(entriesOf(from, cmds)).engine);
    await apply(1, [grant(3, 60_000), put('a', '1', 3), put('b', '2', 0, 9_000_000_000_000)]);
    await apply(4, [txn({ compares: [], success: [{ kind: TxnOpKind.Range, ...all }], failure: [] })]);
    const ranged = decodeTxnResult(applier.outcome(4).txn!).responses[0];
    expect(ranged).toMatchObject({ count: 2, more: false });
    await apply(5, [txn({ compares: [], success: [{ kind: TxnOpKind.Put, key: reserved, value: Buffer.from('x') }], failure: [] })]);
    expect(applier.outcome(5)).toEqual({ outcome: ApplyOutcome.ConditionFailed, revision: 5 });
    await apply(6, [txn({ compares: [], success: [{ kind: TxnOpKind.Delete, ...all }], failure: [] })]);
    expect(decodeTxnResult(applier.outcome(6).txn!).responses[0]).toMatchObject({ deleted: 2 });
    // The lease outlives its keys (etcd: deleting a key does not revoke its lease); no key metadata is left.
    expect(applier.leases.leaseIds()).toEqual([3]);
    expect(LeaseIndex.load(engine).leaseIds()).toEqual([3]);
    expect([...LeaseIndex.load(engine).expiries()]).toEqual([]);
    await engine.close();
  });

  it('a TTL Set, a lease Set, a plain Set, a txn put and a txn put with LEASE, each with a key and a value at keyBytesMax and valueBytesMax, fit one engine record with the key\'s metadata record, and read back after a reopen', async () => {
    const k = (c: string) => Buffer.alloc(DEFAULT_LIMITS.keyBytesMax, c);
    const v = (c: string) => Buffer.alloc(DEFAULT_LIMITS.valueBytesMax, c);
    const at = 9_000_000_000_000;
    const txnPut = (key: Buffer, value: Buffer): Command => ({ op: CommandOp.Txn, key: EMPTY, value: encodeTxnCommandValue({ limits: { resultBytesMax: 1 << 20, keysMax: 100 }, request: { compares: [], success: [{ kind: TxnOpKind.Put, key, value }], failure: [] } }) });
    const open = async () => {
      const engine = await BitcaskEngine.open({ clock: realClock, dir: dir() });
      const applier = new CommandApplier({ get: (key) => engine.get(key), range: (q) => engine.range(q), leases: LeaseIndex.load(engine) });
      return { engine, applier, apply: (from: number, cmds: Command[]) => engine.apply(applier.toEngineEntries(entriesOf(from, cmds)).engine) };
    };
    let n = await open();
    const ttl = (key: Buffer, value: Buffer, leaseId = 0): Command => ({ op: CommandOp.Set, key, value, meta: { leaseId, expiresAtMs: leaseId ? 0 : at, keepTtl: false } });
    await n.apply(1, [ttl(k('a'), v('1')), grant(5, 60_000), ttl(k('b'), v('2'), 5), ttl(k('c'), v('3')), ttl(k('d'), v('4'))]);
    // a plain Set (clears the TTL: deletes the metadata record in the same record) and a txn put (detaches likewise)
    await n.apply(6, [{ op: CommandOp.Set, key: k('c'), value: v('5') }]);
    await n.apply(7, [txnPut(k('d'), v('6'))]);
    // a txn put with LEASE (writes the metadata record in the same record)
    await n.apply(8, [{ op: CommandOp.Txn, key: EMPTY, value: encodeTxnCommandValue({ limits: { resultBytesMax: 1 << 20, keysMax: 100 }, request: { compares: [], success: [{ kind: TxnOpKind.Put, key: k('e'), value: v('7'), flags: TxnOpFlags.Lease, lease: 5 }], failure: [] } }) }]);
    for (const i of [1, 3, 4, 5, 7, 8]) expect(n.applier.outcome(i).outcome).toBe(ApplyOutcome.Applied);
    await n.engine.close();
    n = await open();
    expect(n.engine.get(k('a'))?.value.equals(v('1'))).toBe(true);
    expect(n.engine.get(k('d'))?.value.equals(v('6'))).toBe(true);
    expect(n.applier.leases.meta(k('a'))).toEqual({ leaseId: 0, expiresAtMs: at });
    expect(n.applier.leases.meta(k('b'))).toEqual({ leaseId: 5, expiresAtMs: 0 });
    expect(n.applier.leases.meta(k('e'))).toEqual({ leaseId: 5, expiresAtMs: 0 });
    expect(n.engine.get(k('e'))?.value.equals(v('7'))).toBe(true);
    expect([n.applier.leases.meta(k('c')), n.applier.leases.meta(k('d'))]).toEqual([undefined, undefined]);
    await n.engine.close();
  });

  it('a txn put with KEEP_TTL keeps the key\'s expiry and lease (Redis INCR, etcd ignore_lease); without it, or after a delete of the key in the same txn, they go; an ExpireKey of the kept expiry then deletes the key', async () => {
    const n = await node(dir());
    const txn = (success: TxnRequest['success']): Command => ({ op: CommandOp.Txn, key: EMPTY, value: encodeTxnCommandValue({ limits: { resultBytesMax: 1 << 20, keysMax: 100 }, request: { compares: [], success, failure: [] } }) });
    const keep = (key: string, value: string) => ({ kind: TxnOpKind.Put, key: Buffer.from(key), value: Buffer.from(value), flags: TxnOpFlags.KeepTtl });
    const plain = (key: string, value: string) => ({ kind: TxnOpKind.Put, key: Buffer.from(key), value: Buffer.from(value) });
    const del = (key: string) => ({ kind: TxnOpKind.Delete, key: Buffer.from(key), end: EMPTY });
    await n.apply(1, [grant(3, 60_000), put('a', '1', 0, 5000), put('b', '1', 0, 5000), put('c', '1', 0, 5000), put('l', '1', 3)]);
    await n.apply(6, [txn([keep('a', '2'), plain('b', '2'), del('c'), keep('c', '2'), keep('l', '2'), keep('new', '1')])]);
    const meta = (k: string) => n.applier.leases.meta(Buffer.from(k));
    expect([meta('a'), meta('b'), meta('c'), meta('l'), meta('new')]).toEqual([{ leaseId: 0, expiresAtMs: 5000 }, undefined, undefined, { leaseId: 3, expiresAtMs: 0 }, undefined]);
    expect(n.applier.leases.lease(3)?.keys.size).toBe(1);
    await n.apply(7, [expireKey('a', 5000), expireKey('b', 5000)]);
    expect([n.value('a'), n.value('b'), n.value('c')]).toEqual([null, '2', '2']);
    expect(n.applier.outcome(8).outcome).toBe(ApplyOutcome.ConditionFailed); // b's expiry went with the plain put
    await n.engine.close();
  });

  it('a txn put with LEASE attaches its key (clearing its TTL, leaving another lease) and the revoke deletes it; a lease that does not exist fails the whole txn LEASE_NOT_FOUND (etcd checkRequestPut), a full one LEASE_KEYS_FULL, nothing applied; only the branch that ran is checked', async () => {
    let n = await node(dir(), 2);
    const txn = (success: TxnRequest['success'], failure: TxnRequest['failure'] = [], compares: TxnRequest['compares'] = []): Command => ({ op: CommandOp.Txn, key: EMPTY, value: encodeTxnCommandValue({ limits: { resultBytesMax: 1 << 20, keysMax: 100 }, request: { compares, success, failure } }) });
    const leased = (key: string, value: string, lease: number) => ({ kind: TxnOpKind.Put, key: Buffer.from(key), value: Buffer.from(value), flags: TxnOpFlags.Lease, lease });
    const del = (key: string) => ({ kind: TxnOpKind.Delete, key: Buffer.from(key), end: EMPTY });
    const o = (i: number) => n.applier.outcome(i);
    const meta = (k: string) => n.applier.leases.meta(Buffer.from(k));
    await n.apply(1, [grant(3, 60_000), grant(4, 60_000), put('a', '1', 0, 5000), put('b', '1', 4)]);
    // 5: a (TTL) and b (lease 4) join lease 3; the TTL goes, b leaves lease 4.
    await n.apply(5, [txn([leased('a', '2', 3), leased('b', '2', 3)])]);
    expect(o(5).outcome).toBe(ApplyOutcome.Applied);
    expect([meta('a'), meta('b')]).toEqual([{ leaseId: 3, expiresAtMs: 0 }, { leaseId: 3, expiresAtMs: 0 }]);
    expect([n.applier.leases.lease(3)?.keys.size, n.applier.leases.lease(4)?.keys.size]).toEqual([2, 0]);
    // 6: lease 9 does not exist: refused whole, although its key is deleted later in the txn and 'c' names a live lease.
    await n.apply(6, [txn([leased('c', '1', 4), leased('d', '1', 9), del('d')])]);
    expect(o(6)).toEqual({ outcome: ApplyOutcome.ConditionFailed, revision: 6, leaseRefusal: LeaseRefusal.NotFound });
    expect([n.value('c'), meta('c'), n.applier.leases.lease(4)?.keys.size]).toEqual([null, undefined, 0]);
    // 7: lease 3 holds 2 keys already (keysPerLeaseMax 2): a third is refused whole; re-putting its own keys is not.
    await n.apply(7, [txn([leased('c', '1', 4), leased('e', '1', 3)])]);
    expect(o(7)).toEqual({ outcome: ApplyOutcome.ConditionFailed, revision: 7, leaseRefusal: LeaseRefusal.KeysFull });
    await n.apply(8, [txn([leased('a', '3', 3), leased('b', '3', 3)])]);
    expect(o(8).outcome).toBe(ApplyOutcome.Applied);
    // 9: the compares fail: only the failure branch runs and is checked (the success branch names no lease that exists).
    await n.apply(9, [txn([leased('x', '1', 99)], [leased('c', '9', 4)], [{ key: Buffer.from('a'), target: CompareTarget.Version, result: CompareResult.Equal, operand: 0 }])]);
    expect(o(9).outcome).toBe(ApplyOutcome.Applied);
    expect([n.value('c'), n.value('x'), meta('c')]).toEqual(['9', null, { leaseId: 4, expiresAtMs: 0 }]);
    await n.engine.close();
    n = await node(dir(), 2);
    expect([n.applier.leases.lease(3)?.keys.size, n.applier.leases.lease(4)?.keys.size]).toEqual([2, 1]);
    await n.apply(10, [revoke(3)]);
    expect([n.value('a'), n.value('b'), n.value('c')]).toEqual([null, null, '9']);
    await n.engine.close();
  });

  it('a txn whose writes fit the largest engine record only without the deletes of its keys\' metadata records is refused TOO_LARGE, nothing applied', async () => {
    const engine = await BitcaskEngine.open({ clock: realClock, dir: dir() });
    const mutationBytesMax = 1500;
    const applier = new CommandApplier({ get: (key) => engine.get(key), range: (q) => engine.range(q), leases: LeaseIndex.load(engine), mutationBytesMax });
    const apply = (from: number, cmds: Command[]) => engine.apply(applier.toEngineEntries(entriesOf(from, cmds)).engine);
    const key = (i: number) => Buffer.alloc(100, i);
    const puts = [1, 2, 3, 4, 5, 6, 7].map((i) => ({ kind: TxnOpKind.Put, key: key(i), value: Buffer.from('v') }));
    const txn: Command = { op: CommandOp.Txn, key: EMPTY, value: encodeTxnCommandValue({ limits: { resultBytesMax: 1 << 20, keysMax: 100 }, request: { compares: [], success: puts, failure: [] } }) };
    // 7 puts of 100-byte keys: 25 + 7 x 126 = 907 bytes alone; with the deletes of their 7 metadata records (118 bytes each) 1,733
    await apply(1, [txn]);
    expect(applier.outcome(1).outcome).toBe(ApplyOutcome.Applied);
    await apply(2, [1, 2, 3, 4, 5, 6, 7].map((i) => put(key(i).toString('latin1'), 'v', 0, 9_000_000_000_000)));
    await apply(9, [txn]);
    expect(applier.outcome(9)).toEqual({ outcome: ApplyOutcome.ConditionFailed, revision: 9, txnRefusal: TxnRefusal.TooLarge });
    expect(applier.leases.meta(key(1))).toEqual({ leaseId: 0, expiresAtMs: 9_000_000_000_000 });
    await engine.close();
  });
});
