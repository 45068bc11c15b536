import { READ_REPLY_BYTES_BASE, Status, decodeReadRequest, encodeReadReply, readResultBytes, type ReadReply } from '@cairn/protocol';
import { payloadBytesMax, Subjects } from '@cairn/messaging';
import { createLogger } from '@cairn/logging';
import { startNatsTestBus, type NatsTestBus } from '@cairn/messaging/testing';
import type { NatsConnection } from 'nats';
import { ClusterView } from '../cluster/cluster-view';
import { ReadPath, splitReads } from './read-path';
import { ByteBudget, RequestHold } from '../server/flow';
import { idleFlow } from '../server/testing';

/** nats-server's max_payload in this spec: small, so a handful of values fill a reply. */
const MAX_PAYLOAD = 64 * 1024;

describe('ReadPath batches under the NATS payload bound (real nats-server, fake storage node)', () => {
  let bus: NatsTestBus;
  let nc: NatsConnection;
  const subjects = new Subjects('rp');
  beforeAll(async () => {
    bus = await startNatsTestBus('rp', MAX_PAYLOAD);
    nc = bus.nc;
  });
  afterAll(() => bus?.close());

  /** A storage node holding `values`, answering the prefix of each read request that fits its payload bound (as apps/storage-node does). */
  function node(id: string, values: Map<string, Buffer>) {
    const requests: { bytes: number; reads: number }[] = [];
    const replies: { bytes: number; results: number }[] = [];
    const sub = nc.subscribe(subjects.read(id), {
      callback: (_e, m) => {
        const req = decodeReadRequest(m.data);
        requests.push({ bytes: m.data.length, reads: req.reads.length });
        const results: ReadReply['results'] = [];
        let bytes = READ_REPLY_BYTES_BASE;
        for (const r of req.reads) {
          const v = values.get(Buffer.from(r.key).toString());
          const out = v ? { status: Status.Ok, revision: 1, value: v, message: '' } : { status: Status.NotFound, revision: 0, value: Buffer.alloc(0), message: '' };
          if (results.length > 0 && bytes + readResultBytes(out) > payloadBytesMax(nc)) break;
          results.push(out);
          bytes += readResultBytes(out);
        }
        const reply = encodeReadReply({ appliedIndex: 10, results });
        replies.push({ bytes: reply.length, results: results.length });
        m.respond(reply);
      },
    });
    return { requests, replies, stop: () => sub.unsubscribe() };
  }

  function readPath(nodeId: string, readTimeoutMs = 10_000): ReadPath {
    // A clock that never moves: the node's one heartbeat stays fresh however slow the machine is.
    const view = new ClusterView(() => 0);
    view.onStorageStatus({ kind: 'storage', id: nodeId, appliedIndex: 10, knownCommitIndex: 10, keys: 1, dataBytes: 1, atMs: 0 });
    return new ReadPath(nc, subjects, view, { readTimeoutMs }, createLogger('test', 'silent'));
  }

  it('answers 64 pipelined reads of one 8 KiB value whose results cannot share one reply', async () => {
    const value = Buffer.alloc(8 * 1024, 5);
    const n = node('s1', new Map([['big', value]]));
    const reads = readPath('s1');
    const results = await Promise.all(Array.from({ length: 64 }, () => reads.get(Buffer.from('big'), 1)));
    expect(results.every((r) => r.status === Status.Ok && Buffer.from(r.value).equals(value))).toBe(true);
    // Each answer carries the applied index the node read it at (KvSession's read beside the ReadIndex round).
    expect(results.every((r) => r.appliedIndex === 10)).toBe(true);
    expect(n.replies.length).toBeGreaterThan(1); // 64 × 8 KiB is 512 KiB: several replies
    expect(Math.max(...n.replies.map((r) => r.bytes))).toBeLessThanOrEqual(payloadBytesMax(nc));
    expect(n.replies.reduce((s, r) => s + r.results, 0)).toBe(64); // every read answered once, none re-read for nothing
    n.stop();
  });

  /** A storage node that withholds a value above its read's valueBytesMax (as apps/storage-node's encodeBoundedReadReply). */
  function boundedNode(id: string, values: Map<string, Buffer>) {
    const requests: (number | undefined)[][] = [];
    const sub = nc.subscribe(subjects.read(id), {
      callback: (_e, m) => {
        const req = decodeReadRequest(m.data);
        requests.push(req.reads.map((r) => r.valueBytesMax));
        const results = req.reads.map((r) => {
          const v = values.get(Buffer.from(r.key).toString())!;
          if (r.valueBytesMax !== undefined && v.length > r.valueBytesMax) return { status: Status.Ok, revision: 0, value: Buffer.alloc(0), message: '', withheldBytes: v.length };
          return { status: Status.Ok, revision: 1, value: v, message: '' };
        });
        m.respond(encodeReadReply({ appliedIndex: 10, results }));
      },
    });
    return { requests, stop: () => sub.unsubscribe() };
  }

  /** A reservation backed by a RequestHold on a connection that is never written to. */
  function reservations(budget: ByteBudget) {
    const { socket, flow } = idleFlow(budget);
    return { socket, hold: (valueBytes: number) => new RequestHold(flow, budget, 0).read(valueBytes) };
  }

  it('read flow control: asks for at most the reserved bytes; a withheld value is asked again once the reservation grew to its size', async () => {
    const value = Buffer.alloc(8 * 1024, 3);
    const n = boundedNode('f1', new Map([['v', value]]));
    const budget = new ByteBudget(1 << 20);
    const r = reservations(budget).hold(100);
    const out = await readPath('f1').get(Buffer.from('v'), 1, r);
    expect(out.status).toBe(Status.Ok);
    expect(Buffer.from(out.value).equals(value)).toBe(true);
    expect(n.requests).toEqual([[100], [8 * 1024]]);
    expect(r.bytes).toBe(8 * 1024);
    expect(budget.used()).toBe(8 * 1024); // held by the request until its reply is written
    expect(budget.mayGrow(1 << 20)).toBe(true); // no grown read left unanswered
    n.stop();
  });

  it('read flow control: a grow without room waits until the grown read before it is answered', async () => {
    const value = Buffer.alloc(8 * 1024, 4);
    const n = boundedNode('f2', new Map([['v', value]]));
    const budget = new ByteBudget(10 * 1024);
    const res = reservations(budget);
    const reads = readPath('f2');
    const out = await Promise.all([reads.get(Buffer.from('v'), 1, res.hold(0)), reads.get(Buffer.from('v'), 1, res.hold(0))]);
    expect(out.map((o) => o.value.length)).toEqual([8 * 1024, 8 * 1024]);
    // Both asked with nothing reserved; then one at a time: 2 × 8 KiB do not fit in 10 KiB.
    expect(n.requests).toEqual([[0, 0], [8 * 1024], [8 * 1024]]);
    n.stop();
  });

  it('read flow control: over pendingBytesMax a grow waits, and the read is UNAVAILABLE at its deadline', async () => {
    const n = boundedNode('f3', new Map([['v', Buffer.alloc(4096)]]));
    const budget = new ByteBudget(1024);
    budget.take(2048); // held elsewhere (say, replies a client does not read)
    const out = await readPath('f3', 300).get(Buffer.from('v'), 1, reservations(budget).hold(0));
    expect(out.status).toBe(Status.Unavailable);
    expect(out.message).toMatch(/pendingBytesMax.*4096 bytes/);
    expect(n.requests).toEqual([[0]]);
    n.stop();
  });

  it('read flow control: a read whose connection has gone is not sent', async () => {
    const n = boundedNode('f4', new Map([['v', Buffer.alloc(10)]]));
    const res = reservations(new ByteBudget(1 << 20));
    const r = res.hold(10);
    res.socket.emit('close');
    const out = await readPath('f4').get(Buffer.from('v'), 1, r);
    expect([out.status, out.message]).toEqual([Status.Unavailable, 'the client has gone']);
    expect(n.requests).toEqual([]);
    n.stop();
  });

  it('splits a batch of long keys into requests under the payload bound', async () => {
    const n = node('s2', new Map());
    const reads = readPath('s2');
    const keys = Array.from({ length: 200 }, (_, i) => Buffer.alloc(1024, i % 250)); // 200 × 1 KiB keys ≈ 205 KB of request
    const results = await Promise.all(keys.map((k) => reads.get(k, 1)));
    expect(results.every((r) => r.status === Status.NotFound)).toBe(true);
    expect(n.requests.length).toBeGreaterThanOrEqual(4);
    expect(Math.max(...n.requests.map((r) => r.bytes))).toBeLessThanOrEqual(payloadBytesMax(nc));
    expect(n.requests.reduce((s, r) => s + r.reads, 0)).toBe(200);
    n.stop();
  });
});

describe('splitReads', () => {
  const key = (bytes: number) => ({ key: Buffer.alloc(bytes) });
  it('cuts at the count bound and at the byte bound, and never leaves a read out', () => {
    expect(splitReads(Array.from({ length: 2500 }, () => key(1)), 1 << 30).map((b) => b.length)).toEqual([1024, 1024, 452]);
    // Each read adds 4 + 100 + 8 (+ 8 of valueBytesMax trailer) = 120 bytes to a 6-byte request: 3 fit in 400 bytes.
    expect(splitReads(Array.from({ length: 7 }, () => key(100)), 400).map((b) => b.length)).toEqual([3, 3, 1]);
    // A read larger than the bound alone still goes (alone).
    expect(splitReads([key(500), key(1)], 400).map((b) => b.length)).toEqual([1, 1]);
    expect(splitReads([], 400)).toEqual([]);
  });
});
