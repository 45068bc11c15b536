import { CommandCondition, CompareResult, CompareTarget, CommandOp, Status, TxnOpFlags, TxnOpKind, decodeTxnCommandValue, type Command, type RangeReply, type RangeRequest } from '@cairn/protocol';
import { KvSession, TXN_BOUNDS_DEFAULT, type KvPaths } from './kv-session';
import type { ReadIndexResult } from './read-index';
import type { ReadResult } from './read-path';
import type { WriteResult } from './write-path';

function session(readIndex: ReadIndexResult | null) {
  const reads: number[] = [];
  let calls = 0;
  const ok: ReadResult = { status: Status.Ok, revision: 1, value: Buffer.from('v'), message: '' };
  const paths: KvPaths = {
    reads: { get: async (_k: Uint8Array, minIndex: number) => (reads.push(minIndex), ok) },
    writes: { submit: async (): Promise<WriteResult> => ({ status: Status.Ok, revision: 7, message: '' }) },
    readIndex: readIndex ? { readIndex: async () => (calls++, readIndex) } : undefined,
    limits: { keyBytesMax: 4, valueBytesMax: 8 },
  };
  return { s: new KvSession(paths), reads, calls: () => calls };
}

describe('KvSession', () => {
  it('reads at max(read index, last acknowledged write)', async () => {
    const t = session({ ok: true, index: 5 });
    await t.s.get(Buffer.from('k'));
    await t.s.set(Buffer.from('k'), Buffer.from('v'));
    await t.s.get(Buffer.from('k'));
    expect(t.reads).toEqual([5, 7]);
    expect(t.s.lastAcknowledgedIndex()).toBe(7);
    expect(t.calls()).toBe(2);
  });

  it('a stale read skips the ReadIndex round and the write index', async () => {
    const t = session({ ok: true, index: 5 });
    await t.s.set(Buffer.from('k'), Buffer.from('v'));
    await t.s.get(Buffer.from('k'), { stale: true });
    expect(t.reads).toEqual([0]);
    expect(t.calls()).toBe(0);
  });

  it('answers the ReadIndex failure instead of reading', async () => {
    const t = session({ ok: false, status: Status.Unavailable, message: 'no leader' });
    expect(await t.s.get(Buffer.from('k'))).toMatchObject({ status: Status.Unavailable, message: 'no leader' });
    expect(t.reads).toEqual([]);
  });

  it('applies the same limits for every door', async () => {
    const t = session(null);
    expect(await t.s.get(Buffer.alloc(0))).toMatchObject({ status: Status.BadRequest });
    expect(await t.s.set(Buffer.from('kkkkk'), Buffer.from('v'))).toMatchObject({ status: Status.TooLarge });
    expect(await t.s.set(Buffer.from('k'), Buffer.alloc(9))).toMatchObject({ status: Status.TooLarge });
    expect(await t.s.del(Buffer.from('k'))).toMatchObject({ status: Status.Ok, revision: 7 });
  });

  it('refuses keys in the reserved keyspace (eight 0xff bytes first) on every operation, reads included, without reaching a storage node', async () => {
    const sent: unknown[] = [];
    const paths: KvPaths = {
      reads: { get: async (...a: unknown[]) => (sent.push(a), { status: Status.NotFound, revision: 0, value: Buffer.alloc(0), message: '' }), range: async (q: RangeRequest) => (sent.push([q]), { status: Status.Ok, revision: 0, count: 0, more: false, message: '', items: [] }) },
      writes: { submit: async (c: Command): Promise<WriteResult> => (sent.push(c), { status: Status.Ok, revision: 7, message: '' }) },
      limits: { keyBytesMax: 16, valueBytesMax: 8 },
    };
    const s = new KvSession(paths);
    const reserved = Buffer.concat([Buffer.alloc(8, 0xff), Buffer.from('K')]);
    const bad = { status: Status.BadRequest, message: expect.stringContaining('reserved') };
    expect(await s.get(reserved)).toMatchObject(bad);
    expect(await s.get(Buffer.alloc(8, 0xff), { stale: true })).toMatchObject(bad);
    expect(await s.set(reserved, Buffer.from('v'))).toMatchObject(bad);
    expect(await s.del(reserved)).toMatchObject(bad);
    expect(await s.incr(reserved, 1n)).toMatchObject(bad);
    expect(await s.range({ start: reserved })).toMatchObject(bad);
    expect(await s.range({ start: Buffer.alloc(8, 0xff), prefix: true })).toMatchObject(bad);
    expect(await s.txn({ compares: [], success: [{ kind: TxnOpKind.Put, key: reserved, value: Buffer.from('v') }], failure: [] })).toMatchObject(bad);
    expect(await s.txn({ compares: [], success: [], failure: [{ kind: TxnOpKind.Delete, key: reserved, end: Buffer.from([0]) }] })).toMatchObject(bad);
    expect(await s.txn({ compares: [{ key: reserved, target: CompareTarget.Version, result: CompareResult.Equal, operand: 0 }], success: [], failure: [] })).toMatchObject(bad);
    expect(sent).toEqual([]);
    // Seven 0xff bytes are a client key; a range may reach into the reserved keyspace (storage nodes stop there).
    expect(await s.set(Buffer.alloc(7, 0xff), Buffer.from('v'))).toMatchObject({ status: Status.Ok });
    await s.range({ start: Buffer.from('a'), end: Buffer.alloc(9, 0xff), stale: true });
    expect(sent).toHaveLength(2);
  });

  it('sends a compare-and-swap SET or DEL as an IF_REVISION command and refuses bad operands without writing', async () => {
    const sent: Command[] = [];
    const paths: KvPaths = {
      reads: { get: async () => ({ status: Status.Ok, revision: 1, value: Buffer.from('v'), message: '' }) },
      writes: { submit: async (c: Command): Promise<WriteResult> => (sent.push(c), { status: Status.ConditionFailed, revision: 9, message: 'condition not met' }) },
      limits: { keyBytesMax: 4, valueBytesMax: 8 },
    };
    const s = new KvSession(paths);
    expect(await s.set(Buffer.from('k'), Buffer.from('v'), { ifRevision: 3 })).toMatchObject({ status: Status.ConditionFailed, revision: 9 });
    expect(await s.del(Buffer.from('k'), { ifRevision: 0 })).toMatchObject({ status: Status.ConditionFailed });
    expect(sent.map((c) => [c.op, c.condition, c.revision])).toEqual([
      [CommandOp.Set, CommandCondition.IfRevision, 3],
      [CommandOp.Delete, CommandCondition.IfRevision, 0],
    ]);
    // the failed compare was evaluated at index 9: later reads of this session see at least that state
    expect(s.lastAcknowledgedIndex()).toBe(9);
    expect(await s.set(Buffer.from('k'), Buffer.from('v'), { ifRevision: -1 })).toMatchObject({ status: Status.BadRequest });
    expect(await s.set(Buffer.from('k'), Buffer.from('v'), { ifRevision: 1, condition: CommandCondition.IfAbsent })).toMatchObject({ status: Status.BadRequest });
    expect(sent).toHaveLength(2);
  });

  it('sends a txn as one Txn command carrying the gateway bounds, answers its TxnResult, and refuses bad ones without writing', async () => {
    const sent: Command[] = [];
    const result = { succeeded: true, responses: [{ kind: TxnOpKind.Put as const }] };
    const paths: KvPaths = {
      reads: { get: async () => ({ status: Status.Ok, revision: 1, value: Buffer.from('v'), message: '' }) },
      writes: { submit: async (c: Command): Promise<WriteResult> => (sent.push(c), { status: Status.Ok, revision: 11, message: '', txn: result }) },
      limits: { keyBytesMax: 4, valueBytesMax: 8 },
    };
    const s = new KvSession(paths);
    const request = { compares: [], success: [{ kind: TxnOpKind.Put, key: Buffer.from('k'), value: Buffer.from('v') }], failure: [{ kind: TxnOpKind.Range, key: Buffer.alloc(0), flags: TxnOpFlags.Prefix }] };
    expect(await s.txn(request)).toMatchObject({ status: Status.Ok, revision: 11, txn: result });
    expect(s.lastAcknowledgedIndex()).toBe(11);
    expect(sent.map((c) => [c.op, c.key.length, decodeTxnCommandValue(c.value)])).toEqual([[CommandOp.Txn, 0, { limits: { resultBytesMax: TXN_BOUNDS_DEFAULT.resultBytesMax, keysMax: TXN_BOUNDS_DEFAULT.keysMax }, request: { compares: [], success: [{ ...request.success[0], flags: 0 }], failure: [{ ...request.failure[0], end: Buffer.alloc(0), limit: 0 }] } }]]);
    const put = (key: string, value = 'v') => ({ kind: TxnOpKind.Put, key: Buffer.from(key), value: Buffer.from(value) });
    expect(await s.txn({ compares: [], success: [put('')], failure: [] })).toMatchObject({ status: Status.BadRequest });
    expect(await s.txn({ compares: [], success: [put('kkkkk')], failure: [] })).toMatchObject({ status: Status.TooLarge });
    expect(await s.txn({ compares: [], success: [put('k', 'v'.repeat(9))], failure: [] })).toMatchObject({ status: Status.TooLarge });
    expect(await s.txn({ compares: [], success: Array.from({ length: TXN_BOUNDS_DEFAULT.opsMax + 1 }, () => put('k')), failure: [] })).toMatchObject({ status: Status.BadRequest });
    expect(sent).toHaveLength(1);
  });

  it('applies the configured txn bounds: more compares and ops than opsMax refused before proposing, resultBytesMax and keysMax carried in the command', async () => {
    const sent: Command[] = [];
    const paths: KvPaths = {
      reads: { get: () => Promise.reject(new Error('a txn reads through its write')) },
      writes: { submit: async (c: Command): Promise<WriteResult> => (sent.push(c), { status: Status.Ok, revision: 3, message: '', txn: { succeeded: true, responses: [] } }) },
      limits: { keyBytesMax: 4, valueBytesMax: 8 },
      txnBounds: { opsMax: 2, resultBytesMax: 5000, keysMax: 7 },
    };
    const s = new KvSession(paths);
    const get = { kind: TxnOpKind.Get, key: Buffer.from('k') };
    const refused = await s.txn({ compares: [], success: [get, get], failure: [get] });
    expect(refused).toMatchObject({ status: Status.BadRequest, message: 'a transaction holds at most 2 compares and ops (txnOpsMax), got 3' });
    expect(sent).toHaveLength(0);
    expect(await s.txn({ compares: [], success: [get], failure: [get] })).toMatchObject({ status: Status.Ok, revision: 3 });
    expect(decodeTxnCommandValue(sent[0].value).limits).toEqual({ resultBytesMax: 5000, keysMax: 7 });
  });

  it('checks a txn against the guard like etcd: read on compared / got / ranged keys, write on put / deleted keys and whole deleted ranges; nothing sent when denied', async () => {
    const sent: Command[] = [];
    const asked: string[] = [];
    const deny = { status: Status.PermissionDenied, message: 'no' };
    const guard = {
      key: async (k: Uint8Array, write: boolean) => (asked.push(`${write ? 'w' : 'r'}:${Buffer.from(k).toString()}`), write && Buffer.from(k).toString().startsWith('ro/') ? deny : null),
      range: async (start: Uint8Array, end: Uint8Array | null, write?: boolean) => (asked.push(`${write ? 'W' : 'R'}:${Buffer.from(start).toString()}..${end ? Buffer.from(end).toString() : ''}`), write && Buffer.from(start).toString().startsWith('ro/') ? deny : null),
    };
    const paths: KvPaths = {
      reads: { get: async () => ({ status: Status.Ok, revision: 1, value: Buffer.from('v'), message: '' }) },
      writes: { submit: async (c: Command): Promise<WriteResult> => (sent.push(c), { status: Status.Ok, revision: 11, message: '', txn: { succeeded: true, responses: [] } }) },
      limits: { keyBytesMax: 8, valueBytesMax: 8 },
    };
    const s = new KvSession(paths, guard);
    const k = (x: string) => Buffer.from(x);
    const ok = await s.txn({ compares: [{ key: k('c'), target: 2, result: 0, operand: 1 }], success: [{ kind: TxnOpKind.Put, key: k('p'), value: k('v') }, { kind: TxnOpKind.Range, key: k('a/'), flags: TxnOpFlags.Prefix }], failure: [{ kind: TxnOpKind.Delete, key: k('d/'), flags: TxnOpFlags.Prefix }] });
    expect(ok.status).toBe(Status.Ok);
    expect(asked).toEqual(['r:c', 'w:p', 'R:a/..a0', 'W:d/..d0']);
    expect(await s.txn({ compares: [], success: [{ kind: TxnOpKind.Put, key: k('ro/x'), value: k('v') }], failure: [] })).toMatchObject({ status: Status.PermissionDenied });
    expect(await s.txn({ compares: [], success: [], failure: [{ kind: TxnOpKind.Delete, key: k('ro/'), flags: TxnOpFlags.Prefix }] })).toMatchObject({ status: Status.PermissionDenied });
    expect(sent).toHaveLength(1);
  });
});

/** A promise settled by the test: the order in which the ReadIndex round and the storage read answer is the test's. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A session with `gateway.readAlongsideReadIndex` on: every ReadIndex request and storage read waits until the test answers it. */
function alongside() {
  const rounds: ReturnType<typeof deferred<ReadIndexResult>>[] = [];
  const reads: { minIndex: number; answer: ReturnType<typeof deferred<ReadResult>> }[] = [];
  const ranges: { minIndex: number; answer: ReturnType<typeof deferred<RangeReply>> }[] = [];
  const paths: KvPaths = {
    reads: {
      get: (_k: Uint8Array, minIndex: number) => {
        const answer = deferred<ReadResult>();
        reads.push({ minIndex, answer });
        return answer.promise;
      },
      range: (req: RangeRequest) => {
        const answer = deferred<RangeReply>();
        ranges.push({ minIndex: req.minIndex, answer });
        return answer.promise;
      },
    },
    writes: { submit: async (): Promise<WriteResult> => ({ status: Status.Ok, revision: 7, message: '' }) },
    readIndex: {
      readAlongside: true,
      readIndex: () => {
        const d = deferred<ReadIndexResult>();
        rounds.push(d);
        return d.promise;
      },
    },
    limits: { keyBytesMax: 4, valueBytesMax: 8 },
  };
  const at = (appliedIndex: number, v = 'v'): ReadResult => ({ status: Status.Ok, revision: 1, value: Buffer.from(v), message: '', appliedIndex });
  return { s: new KvSession(paths), rounds, reads, ranges, at };
}

/** Lets every settled promise's continuation run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

describe('KvSession: a guard that decides at once (keyNow)', () => {
  const paths = (order: string[]): KvPaths => ({
    reads: { get: async (k: Uint8Array) => (order.push(`read ${Buffer.from(k).toString()}`), { status: Status.Ok, revision: 1, value: Buffer.from('v'), message: '' }) },
    writes: { submit: async (c: Command): Promise<WriteResult> => (order.push(`write ${Buffer.from(c.key).toString()}`), { status: Status.Ok, revision: 7, message: '' }) },
    limits: { keyBytesMax: 4, valueBytesMax: 8 },
  });

  it('runs an allowed request in the same turn, answers a denied one without sending it, and asks `key` while the state is not known', async () => {
    const order: string[] = [];
    let known = false;
    const asked: string[] = [];
    const guard = {
      key: async (k: Uint8Array) => (asked.push(Buffer.from(k).toString()), Buffer.from(k).toString() === 'no' ? { status: Status.PermissionDenied, message: 'denied' } : null),
      keyNow: (k: Uint8Array) => (!known ? undefined : Buffer.from(k).toString() === 'no' ? { status: Status.PermissionDenied, message: 'denied' } : null),
      range: async () => null,
    };
    const s = new KvSession(paths(order), guard);
    const first = s.set(Buffer.from('a'), Buffer.from('1'));
    expect(order).toEqual([]); // not known: waits for `key`
    expect(await first).toMatchObject({ status: Status.Ok });
    known = true;
    const second = s.set(Buffer.from('b'), Buffer.from('2'));
    expect(order).toEqual(['write a', 'write b']); // sent in the caller's turn
    await second;
    expect(await s.get(Buffer.from('no'))).toMatchObject({ status: Status.PermissionDenied, message: 'denied' });
    expect(asked).toEqual(['a']);
    expect(order).toEqual(['write a', 'write b']);
  });

  it('while an earlier check of the session waits, later requests wait behind it: pipelined writes keep their order', async () => {
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let known = false;
    const guard = {
      key: async () => (await gate, null),
      keyNow: () => (known ? null : undefined),
      range: async () => null,
    };
    const s = new KvSession(paths(order), guard);
    const first = s.set(Buffer.from('a'), Buffer.from('1'));
    known = true; // the state became known while the first check still waits
    const second = s.set(Buffer.from('b'), Buffer.from('2'));
    expect(order).toEqual([]);
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(['write a', 'write b']);
    const third = s.set(Buffer.from('c'), Buffer.from('3'));
    expect(order).toEqual(['write a', 'write b', 'write c']); // nothing waits any more: at once again
    await third;
  });
});

describe('KvSession: the storage read beside the ReadIndex round (gateway.readAlongsideReadIndex)', () => {
  for (const order of ['read index first', 'read first'] as const) {
    it(`sends both at once and keeps the node's answer when its applied index is at least the read index (${order})`, async () => {
      const t = alongside();
      const got = t.s.get(Buffer.from('k'));
      // Both left before either answered; the read with the session's last acknowledged write (none yet).
      expect(t.rounds).toHaveLength(1);
      expect(t.reads.map((r) => r.minIndex)).toEqual([0]);
      if (order === 'read index first') {
        t.rounds[0].resolve({ ok: true, index: 5 });
        await settle();
        t.reads[0].answer.resolve(t.at(5));
      } else {
        t.reads[0].answer.resolve(t.at(6));
        await settle();
        t.rounds[0].resolve({ ok: true, index: 6 });
      }
      expect(await got).toMatchObject({ status: Status.Ok, value: Buffer.from('v') });
      expect(t.reads).toHaveLength(1);
    });

    it(`reads again at the read index when the node had not applied it (${order})`, async () => {
      const t = alongside();
      const got = t.s.get(Buffer.from('k'));
      if (order === 'read index first') {
        t.rounds[0].resolve({ ok: true, index: 5 });
        await settle();
        t.reads[0].answer.resolve(t.at(4, 'old'));
      } else {
        t.reads[0].answer.resolve(t.at(4, 'old'));
        await settle();
        t.rounds[0].resolve({ ok: true, index: 5 });
      }
      await settle();
      expect(t.reads.map((r) => r.minIndex)).toEqual([0, 5]);
      t.reads[1].answer.resolve(t.at(5, 'new'));
      expect(await got).toMatchObject({ status: Status.Ok, value: Buffer.from('new') });
    });
  }

  it("reads at the session's last acknowledged write and keeps only an answer at max(read index, that write)", async () => {
    const t = alongside();
    await t.s.set(Buffer.from('k'), Buffer.from('v')); // acknowledged at 7
    const got = t.s.get(Buffer.from('k'));
    expect(t.reads.map((r) => r.minIndex)).toEqual([7]);
    t.rounds[0].resolve({ ok: true, index: 3 });
    t.reads[0].answer.resolve(t.at(7));
    expect(await got).toMatchObject({ status: Status.Ok });
    expect(t.reads).toHaveLength(1);
    // An answer without an applied index (not a node's) is never kept: read again at the read index.
    const again = t.s.get(Buffer.from('k'));
    t.rounds[1].resolve({ ok: true, index: 9 });
    t.reads[1].answer.resolve({ status: Status.NotFound, revision: 0, value: Buffer.alloc(0), message: '' });
    await settle();
    expect(t.reads.map((r) => r.minIndex)).toEqual([7, 7, 9]);
    t.reads[2].answer.resolve(t.at(9, 'x'));
    expect(await again).toMatchObject({ status: Status.Ok, value: Buffer.from('x') });
  });

  it('answers a failed ReadIndex round with its failure, whatever the read returned, and reads no more', async () => {
    const t = alongside();
    const got = t.s.get(Buffer.from('k'));
    t.reads[0].answer.resolve(t.at(100));
    await settle();
    t.rounds[0].resolve({ ok: false, status: Status.Unavailable, message: 'no leader' });
    expect(await got).toMatchObject({ status: Status.Unavailable, message: 'no leader', value: Buffer.alloc(0) });
    expect(t.reads).toHaveLength(1);
  });

  it('answers a read that failed (UNAVAILABLE after readTimeoutMs) with its failure, and reads no more', async () => {
    const t = alongside();
    const got = t.s.get(Buffer.from('k'));
    t.rounds[0].resolve({ ok: true, index: 5 });
    t.reads[0].answer.resolve({ status: Status.Unavailable, revision: 0, value: Buffer.alloc(0), message: 'read not served within 5000 ms' });
    expect(await got).toMatchObject({ status: Status.Unavailable, message: 'read not served within 5000 ms' });
    expect(t.reads).toHaveLength(1);
  });

  it('a range page is kept when its revision is at least the read index, else read again at it; a stale page skips the round', async () => {
    const t = alongside();
    const page = (revision: number): RangeReply => ({ status: Status.Ok, revision, count: 1, more: false, message: '', items: [{ key: Buffer.from('a'), value: Buffer.from('1'), revision: 1, createRevision: 1, version: 1 }] });
    const kept = t.s.range({ start: Buffer.from('a'), prefix: true });
    await settle(); // the guard-free range plans before sending
    expect(t.ranges.map((r) => r.minIndex)).toEqual([0]);
    expect(t.rounds).toHaveLength(1);
    t.ranges[0].answer.resolve(page(5));
    t.rounds[0].resolve({ ok: true, index: 5 });
    expect(await kept).toMatchObject({ status: Status.Ok, revision: 5 });
    const behind = t.s.range({ start: Buffer.from('a'), prefix: true });
    await settle();
    t.rounds[1].resolve({ ok: true, index: 8 });
    t.ranges[1].answer.resolve(page(6));
    await settle();
    expect(t.ranges.map((r) => r.minIndex)).toEqual([0, 0, 8]);
    t.ranges[2].answer.resolve(page(8));
    expect(await behind).toMatchObject({ status: Status.Ok, revision: 8 });
    const stale = t.s.range({ start: Buffer.from('a'), prefix: true, stale: true });
    await settle();
    t.ranges[3].answer.resolve(page(1));
    expect(await stale).toMatchObject({ status: Status.Ok, revision: 1 });
    expect(t.rounds).toHaveLength(2);
  });
});

describe('KvSession leases', () => {
  /** A session whose writes answer from `answers` in turn (recording each command) and whose lease client answers `reply`. */
  function leased(answers: WriteResult[], opts: { denied?: boolean; keys?: boolean } = {}) {
    const submitted: Command[] = [];
    const ids = [41, 42];
    const reply = { status: Status.Ok, leaderHint: '', message: '', ttlMs: 3000, remainingMs: 1200, ids: [41], more: false };
    const paths: KvPaths = {
      reads: { get: async () => ({ status: Status.NotFound, revision: 0, value: Buffer.alloc(0), message: '' }) },
      writes: { submit: async (c: Command): Promise<WriteResult> => (submitted.push(c), answers.shift()!) },
      readIndex: { readIndex: async () => ({ ok: true, index: 9 }) },
      limits: { keyBytesMax: 4, valueBytesMax: 8 },
      leases: {
        client: { keepAlive: async () => reply, timeToLive: async () => reply, list: async () => reply },
        newLeaseId: () => ids.shift()!,
        ...(opts.keys ? { keys: async (_id: number, minIndex: number) => ({ status: Status.Ok, message: '', keys: [Buffer.from(`at-${minIndex}`)], more: false }) } : {}),
      },
    };
    const guard = { key: async () => null, range: async () => null, authenticated: async () => (opts.denied ? { status: Status.Unauthenticated, message: 'authentication required' } : null) };
    return { s: new KvSession(paths, guard), submitted };
  }
  const ok = (revision: number): WriteResult => ({ status: Status.Ok, revision, message: '' });
  const exists: WriteResult = { status: Status.ConditionFailed, revision: 3, message: 'condition not met' };

  it('a grant with id 0 picks an id, and another once when the first is live; a chosen live id is CONDITION_FAILED', async () => {
    const t = leased([exists, ok(5), exists]);
    expect(await t.s.leaseGrant(3000)).toMatchObject({ status: Status.Ok, revision: 5, lease: { leaseId: 42, ttlMs: 3000 } });
    expect(t.submitted.map((c) => c.op)).toEqual([CommandOp.LeaseGrant, CommandOp.LeaseGrant]);
    expect(await t.s.leaseGrant(3000, 7)).toMatchObject({ status: Status.ConditionFailed, message: 'lease 7 already exists' });
    expect(await t.s.leaseGrant(0)).toMatchObject({ status: Status.BadRequest });
  });

  it('a revoke of a lease that is not live is NOT_FOUND; keep-alive, time to live (with keys at the read index) and list answer from the paths', async () => {
    const t = leased([exists, ok(8)], { keys: true });
    expect(await t.s.leaseRevoke(41)).toMatchObject({ status: Status.NotFound });
    expect(await t.s.leaseRevoke(41)).toMatchObject({ status: Status.Ok, revision: 8 });
    expect(await t.s.leaseKeepAlive(41)).toMatchObject({ status: Status.Ok, lease: { ttlMs: 3000 } });
    const ttl = await t.s.leaseTimeToLive(41, true);
    expect(ttl).toMatchObject({ status: Status.Ok, lease: { ttlMs: 3000, remainingMs: 1200, more: false } });
    expect(ttl.lease?.keys?.map(String)).toEqual(['at-9']);
    expect(await t.s.leaseList(0, 10)).toMatchObject({ status: Status.Ok, lease: { ids: [41], more: false } });
    expect(await t.s.leaseKeepAlive(0)).toMatchObject({ status: Status.BadRequest });
  });

  it('every lease request needs an authenticated user when auth is on; nothing is proposed', async () => {
    const t = leased([], { denied: true });
    for (const r of [await t.s.leaseGrant(1000), await t.s.leaseRevoke(1), await t.s.leaseKeepAlive(1), await t.s.leaseTimeToLive(1, false), await t.s.leaseList(0, 1)]) expect(r.status).toBe(Status.Unauthenticated);
    expect(t.submitted).toEqual([]);
  });
});
