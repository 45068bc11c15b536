import { READ_REPLY_BYTES_BASE, Status, decodeReadRequest, encodeReadReply, readResultBytes, type ReadReply } from '@cairn/protocol';
import { payloadBytesMax, Subjects } from '@cairn/messaging';
import { createLogger } from '@cairn/logging';
import { startNatsTestBus, type NatsTestBus } from '@cairn/messaging/testing';
import type { NatsConnection } from 'nats';
import { ClusterView } from '../cluster/cluster-view';
import { ReadPath, splitReads } from './read-path';

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

  function readPath(nodeId: string): ReadPath {
    // A clock that never moves: the node's one heartbeat stays fresh however slow the machine is.
    const view = new ClusterView(() => 0);
    view.onStorageStatus({ kind: 'storage', id: nodeId, appliedIndex: 10, knownCommitIndex: 10, keys: 1, dataBytes: 1, atMs: 0 });
    return new ReadPath(nc, subjects, view, { readTimeoutMs: 10_000 }, createLogger('test', 'silent'));
  }

  it('answers 64 pipelined reads of one 8 KiB value whose results cannot share one reply', async () => {
    const value = Buffer.alloc(8 * 1024, 5);
    const n = node('s1', new Map([['big', value]]));
    const reads = readPath('s1');
    const results = await Promise.all(Array.from({ length: 64 }, () => reads.get(Buffer.from('big'), 1)));
    expect(results.every((r) => r.status === Status.Ok && Buffer.from(r.value).equals(value))).toBe(true);
    expect(n.replies.length).toBeGreaterThan(1); // 64 × 8 KiB is 512 KiB: several replies
    expect(Math.max(...n.replies.map((r) => r.bytes))).toBeLessThanOrEqual(payloadBytesMax(nc));
    expect(n.replies.reduce((s, r) => s + r.results, 0)).toBe(64); // every read answered once, none re-read for nothing
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
    // Each read adds 4 + 100 + 8 = 112 bytes to a 6-byte request: 3 fit in 400 bytes.
    expect(splitReads(Array.from({ length: 7 }, () => key(100)), 400).map((b) => b.length)).toEqual([3, 3, 1]);
    // A read larger than the bound alone still goes (alone).
    expect(splitReads([key(500), key(1)], 400).map((b) => b.length)).toEqual([1, 1]);
    expect(splitReads([], 400)).toEqual([]);
  });
});
