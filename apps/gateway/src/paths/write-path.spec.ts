import {
  ApplyOutcome,
  CommandCondition,
  CommandOp,
  CounterRefusal,
  LeaseRefusal,
  Status,
  TxnOpKind,
  TxnRefusal,
  encodeIncrDelta,
  encodeTxnCommandValue,
  encodeTxnResult,
  decodeOutcomeRequest,
  decodeProposeRequest,
  encodeOutcomeReply,
  type OutcomeRequest,
  type OutcomeResult,
  type ProposeRequest,
} from '@cairn/protocol';
import { payloadBytesMax, Subjects } from '@cairn/messaging';
import { createLogger } from '@cairn/logging';
import { proposeReply as reply, useNatsTestBus } from './nats-bus.spec-helpers';
import { ClusterView } from '../cluster/cluster-view';
import { WritePath } from './write-path';

const set = (key: string, value: string) => ({ op: CommandOp.Set, key: Buffer.from(key), value: Buffer.from(value) });

describe('WritePath sessions and re-sends (real nats-server, fake leader and storage node)', () => {
  const bus = useNatsTestBus('wp');
  const subjects = new Subjects('wp');

  /** A leader answering proposals with `answers` in turn (recording them), and a storage node answering outcome queries with `outcome`. */
  function cluster(leader: string, answers: Uint8Array[], outcome: (q: OutcomeRequest['queries'][number]) => OutcomeResult) {
    const proposals: { raw: Buffer; req: ProposeRequest }[] = [];
    const queries: OutcomeRequest['queries'] = [];
    const subs = [
      bus.nc.subscribe(subjects.propose(leader), {
        callback: (_e, m) => {
          proposals.push({ raw: Buffer.from(m.data), req: decodeProposeRequest(m.data) });
          m.respond(answers[Math.min(proposals.length - 1, answers.length - 1)]);
        },
      }),
      bus.nc.subscribe(subjects.read('s1'), {
        callback: (_e, m) => {
          const q = decodeOutcomeRequest(m.data).queries;
          queries.push(...q);
          m.respond(encodeOutcomeReply({ appliedIndex: 1000, results: q.map(outcome) }));
        },
      }),
    ];
    const view = new ClusterView();
    view.hintLeader(leader);
    view.onStorageStatus({ kind: 'storage', id: 's1', appliedIndex: 1000, knownCommitIndex: 1000, keys: 1, dataBytes: 1, atMs: Date.now() });
    const writes = new WritePath(bus.nc, subjects, view, { commandsPerProposalMax: 64, proposalsInflightMax: 4, writeTimeoutMs: 5000, sessionId: 0xabcdef0123456789n }, createLogger('test', 'silent'));
    return { writes, proposals, queries, stop: () => subs.forEach((s) => s.unsubscribe()) };
  }

  it('every write carries the session, a growing seq and the lowest seq awaiting a reply; a write sent once is answered from the commit alone', async () => {
    const c = cluster('l1', [reply({ firstIndex: 10, lastIndex: 11 }), reply({ firstIndex: 12, lastIndex: 12 })], () => ({ outcome: ApplyOutcome.Unknown, revision: 0 }));
    const [a, b] = await Promise.all([c.writes.submit(set('a', '1')), c.writes.submit(set('b', '2'))]);
    expect([a, b]).toEqual([
      { status: Status.Ok, revision: 10, message: '' },
      { status: Status.Ok, revision: 11, message: '' },
    ]);
    expect(await c.writes.submit(set('c', '3'))).toEqual({ status: Status.Ok, revision: 12, message: '' });
    expect(c.proposals.map((p) => p.req.commands.map((x) => x.session))).toEqual([
      [
        { sessionId: 0xabcdef0123456789n, seq: 1, firstPendingSeq: 1 },
        { sessionId: 0xabcdef0123456789n, seq: 2, firstPendingSeq: 1 },
      ],
      [{ sessionId: 0xabcdef0123456789n, seq: 3, firstPendingSeq: 3 }],
    ]);
    expect(c.queries).toEqual([]); // no extra round trip
    c.stop();
  });

  it('asks a storage node for an Incr\'s new value (or refusal) after commit, even when sent once', async () => {
    const results: Record<number, { outcome: ApplyOutcome; revision: number; counter?: bigint; refusal?: CounterRefusal }> = {
      20: { outcome: ApplyOutcome.Applied, revision: 20, counter: -(1n << 63n) },
      21: { outcome: ApplyOutcome.ConditionFailed, revision: 21, refusal: CounterRefusal.Overflow },
      22: { outcome: ApplyOutcome.Applied, revision: 22 },
    };
    const c = cluster('l9', [reply({ firstIndex: 20, lastIndex: 22 })], (q) => results[q.index]);
    const incr = (key: string) => ({ op: CommandOp.Incr, key: Buffer.from(key), value: encodeIncrDelta(1n) });
    const [a, b, d] = await Promise.all([c.writes.submit(incr('a')), c.writes.submit(incr('b')), c.writes.submit(incr('c'))]);
    expect(a).toEqual({ status: Status.Ok, revision: 20, message: '', counter: -(1n << 63n) });
    expect(b).toEqual({ status: Status.ConditionFailed, revision: 21, message: 'increment or decrement would overflow', refusal: CounterRefusal.Overflow });
    // applied, but the node no longer knows the value (recorded before a restart): an error, not a retryable failure
    expect(d).toMatchObject({ status: Status.Error, revision: 22 });
    expect(c.queries.map((q) => q.index)).toEqual([20, 21, 22]);
    c.stop();
  });

  it("asks a storage node for a Txn's result after commit: OK with the TxnResult (also for failed compares), TOO_LARGE when refused, CONDITION_FAILED with the refusal when a put's lease is missing or full, ERROR when no longer known", async () => {
    const res = { succeeded: false, responses: [{ kind: TxnOpKind.Get as const }] };
    const results: Record<number, OutcomeResult> = {
      30: { outcome: ApplyOutcome.Applied, revision: 30, txn: encodeTxnResult(res) },
      31: { outcome: ApplyOutcome.ConditionFailed, revision: 31, txnRefusal: TxnRefusal.TooLarge },
      32: { outcome: ApplyOutcome.Applied, revision: 32 },
      33: { outcome: ApplyOutcome.ConditionFailed, revision: 33, leaseRefusal: LeaseRefusal.NotFound },
      34: { outcome: ApplyOutcome.ConditionFailed, revision: 34, leaseRefusal: LeaseRefusal.KeysFull },
    };
    const c = cluster('l8', [reply({ firstIndex: 30, lastIndex: 34 })], (q) => results[q.index]);
    const txn = () => ({ op: CommandOp.Txn, key: Buffer.alloc(0), value: encodeTxnCommandValue({ limits: { resultBytesMax: 100, keysMax: 1 }, request: { compares: [], success: [], failure: [{ kind: TxnOpKind.Get, key: Buffer.from('k') }] } }) });
    const [a, b, d, e, f] = await Promise.all([c.writes.submit(txn()), c.writes.submit(txn()), c.writes.submit(txn()), c.writes.submit(txn()), c.writes.submit(txn())]);
    expect(a).toEqual({ status: Status.Ok, revision: 30, message: '', txn: res });
    expect(b).toMatchObject({ status: Status.TooLarge, revision: 31 });
    expect(d).toMatchObject({ status: Status.Error, revision: 32 });
    expect(e).toEqual({ status: Status.ConditionFailed, revision: 33, message: "transaction refused: a put's lease not found (nothing applied)", leaseRefusal: LeaseRefusal.NotFound });
    expect(f).toMatchObject({ status: Status.ConditionFailed, revision: 34, leaseRefusal: LeaseRefusal.KeysFull });
    expect(c.queries.map((q) => q.index)).toEqual([30, 31, 32, 33, 34]);
    c.stop();
  });

  it("an Incr in a client's own session keeps that session (not the gateway's), takes no gateway seq, and its outcome is asked with it", async () => {
    const c = cluster('l8', [reply({ status: Status.Unavailable, retrySafe: false, message: 'leadership lost; outcome unknown' }), reply({ firstIndex: 31, lastIndex: 31 }), reply({ firstIndex: 32, lastIndex: 32 })], (q) =>
      q.session?.sessionId === 0x77n ? { outcome: ApplyOutcome.Applied, revision: 30, counter: 5n } : { outcome: ApplyOutcome.Unknown, revision: 0 },
    );
    const client = { sessionId: 0x77n, seq: 9, firstPendingSeq: 8 };
    const r = await c.writes.submit({ op: CommandOp.Incr, key: Buffer.from('n'), value: encodeIncrDelta(1n), session: client });
    expect(r).toEqual({ status: Status.Ok, revision: 30, message: '', counter: 5n });
    expect(c.proposals.map((p) => p.req.commands[0].session)).toEqual([client, client]);
    expect(c.queries).toEqual([{ index: 31, session: { sessionId: 0x77n, seq: 9 } }]);
    // The gateway's own numbering is untouched: its first write is seq 1.
    expect(await c.writes.submit(set('k', 'v'))).toEqual({ status: Status.Ok, revision: 32, message: '' });
    expect(c.proposals[2].req.commands[0].session).toEqual({ sessionId: 0xabcdef0123456789n, seq: 1, firstPendingSeq: 1 });
    c.stop();
  });

  it('re-sends a write whose outcome is unknown, byte for byte, and answers the outcome the storage node recorded (the original index for a duplicate)', async () => {
    const c = cluster(
      'l2',
      [reply({ status: Status.Unavailable, retrySafe: false, message: 'leadership lost; outcome unknown' }), reply({ firstIndex: 40, lastIndex: 40 })],
      // the first copy was applied at index 37; the re-sent copy at 40 is its duplicate
      (q) => (q.index === 40 && q.session?.seq === 1 ? { outcome: ApplyOutcome.Applied, revision: 37 } : { outcome: ApplyOutcome.Unknown, revision: 0 }),
    );
    expect(await c.writes.submit(set('k', 'v'))).toEqual({ status: Status.Ok, revision: 37, message: '' });
    expect(c.proposals).toHaveLength(2);
    expect(c.proposals[1].raw.equals(c.proposals[0].raw)).toBe(true);
    expect(c.queries).toEqual([{ index: 40, session: { sessionId: 0xabcdef0123456789n, seq: 1 } }]);
    c.stop();
  });

  it('cuts proposals at the NATS payload bound; a write that alone cannot fit is TOO_LARGE and nothing else fails', async () => {
    const sizes: number[] = [];
    let next = 100;
    const sub = bus.nc.subscribe(subjects.propose('l4'), {
      callback: (_e, m) => {
        sizes.push(m.data.length);
        const n = decodeProposeRequest(m.data).commands.length;
        m.respond(reply({ firstIndex: next, lastIndex: next + n - 1 }));
        next += n;
      },
    });
    const view = new ClusterView();
    view.hintLeader('l4');
    // 12 MiB through a real nats-server: under a loaded CI box that took more than 5 s (all 12 answered
    // UNAVAILABLE by the write timeout). The timeout is not what this test checks; 30 s stays under jest's 60 s.
    const writes = new WritePath(bus.nc, subjects, view, { commandsPerProposalMax: 1024, proposalsInflightMax: 4, writeTimeoutMs: 30_000 }, createLogger('test', 'silent'));
    const value = 'v'.repeat(1024 * 1024);
    const results = await Promise.all([...Array.from({ length: 12 }, (_, i) => writes.submit(set(`k${i}`, value))), writes.submit(set('huge', 'x'.repeat(payloadBytesMax(bus.nc))))]);
    expect(results.slice(0, 12).map((r) => r.status)).toEqual(Array(12).fill(Status.Ok));
    expect(results[12]).toMatchObject({ status: Status.TooLarge, message: expect.stringMatching(/cannot fit/) });
    expect(sizes.length).toBeGreaterThanOrEqual(2); // 12 MiB of values in 8 MiB messages
    expect(Math.max(...sizes)).toBeLessThanOrEqual(payloadBytesMax(bus.nc));
    sub.unsubscribe();
  });

  it('outcome queries left out of a reply cut at the payload bound are asked again, and every conditional write gets its outcome', async () => {
    const leader = bus.nc.subscribe(subjects.propose('l5'), {
      callback: (_e, m) => {
        const n = decodeProposeRequest(m.data).commands.length;
        m.respond(reply({ firstIndex: 200, lastIndex: 200 + n - 1 }));
      },
    });
    const asked: number[] = [];
    // A storage node that answers only the first query of each request (as a reply at its bound would).
    const node = bus.nc.subscribe(subjects.read('s5'), {
      callback: (_e, m) => {
        const [q] = decodeOutcomeRequest(m.data).queries;
        asked.push(q.index);
        m.respond(encodeOutcomeReply({ appliedIndex: 1000, results: [{ outcome: q.index % 2 ? ApplyOutcome.ConditionFailed : ApplyOutcome.Applied, revision: q.index }] }));
      },
    });
    const view = new ClusterView(() => 0);
    view.hintLeader('l5');
    view.onStorageStatus({ kind: 'storage', id: 's5', appliedIndex: 1000, knownCommitIndex: 1000, keys: 1, dataBytes: 1, atMs: 0 });
    const writes = new WritePath(bus.nc, subjects, view, { commandsPerProposalMax: 64, proposalsInflightMax: 4, writeTimeoutMs: 5000 }, createLogger('test', 'silent'));
    const nx = (k: string) => ({ ...set(k, 'v'), condition: CommandCondition.IfAbsent });
    const results = await Promise.all(['a', 'b', 'c', 'd'].map((k) => writes.submit(nx(k))));
    expect(results.map((r) => [r.status, r.revision])).toEqual([
      [Status.Ok, 200],
      [Status.ConditionFailed, 201],
      [Status.Ok, 202],
      [Status.ConditionFailed, 203],
    ]);
    expect([...asked].sort()).toEqual([200, 201, 202, 203]); // one batch (answered for 200), then 201..203 alone
    leader.unsubscribe();
    node.unsubscribe();
  });

  it('a re-sent write whose outcome no storage node knows is answered UNAVAILABLE, never OK', async () => {
    const c = cluster('l3', [reply({ status: Status.Unavailable, retrySafe: false, message: 'lost' }), reply({ firstIndex: 50, lastIndex: 50 })], () => ({ outcome: ApplyOutcome.Unknown, revision: 0 }));
    const r = await c.writes.submit(set('k', 'v'));
    expect(r.status).toBe(Status.Unavailable);
    expect(r.message).toMatch(/outcome unknown.*index 50/);
    c.stop();
  });
});
