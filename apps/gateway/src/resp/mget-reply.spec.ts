import { Status } from '@cairn/protocol';
import { ReplyDecoder, encodeBulkArray, encodeError, type RespValue } from '@cairn/resp';
import type { KvResult, KvSession } from '../paths/kv-session';
import type { ReadReservation } from '../server/flow';
import { ByteBudget, RequestHold } from '../server/flow';
import { idleFlow } from '../server/testing';
import { mgetReply, type CommandReads } from './mget-reply';

/** A session whose reads answer from `values` (missing: NOT_FOUND; 'bad': UNAVAILABLE), counting reads in flight. */
function session(values: Map<string, Buffer>) {
  let inflight = 0;
  let inflightMax = 0;
  const s = {
    get: async (key: Uint8Array, opts: { reservation?: ReadReservation }): Promise<KvResult> => {
      inflight++;
      inflightMax = Math.max(inflightMax, inflight);
      await Promise.resolve();
      inflight--;
      const k = Buffer.from(key).toString();
      // As the read path does: the reservation grows to the value's size before the value comes.
      const v = values.get(k);
      if (v && opts.reservation && v.length > opts.reservation.bytes) opts.reservation.grow(v.length - opts.reservation.bytes);
      if (k === 'bad') return { status: Status.Unavailable, revision: 0, value: new Uint8Array(0), message: 'no storage node is alive' };
      return v ? { status: Status.Ok, revision: 1, value: v, message: '' } : { status: Status.NotFound, revision: 0, value: new Uint8Array(0), message: '' };
    },
  } satisfies Pick<KvSession, 'get'>;
  return { session: s, inflightMax: () => inflightMax };
}

function commandReads(windowBytes: number, estimate: number) {
  const budget = new ByteBudget(1 << 30);
  const { socket, flow } = idleFlow(budget);
  const hold = new RequestHold(flow, budget, 0);
  const reads: CommandReads = { reserve: () => hold.read(estimate), release: (r) => hold.releaseRead(r), windowBytes, closed: () => flow.closed() };
  return { reads, hold, socket };
}

const failed = (r: KvResult) => encodeError(`TRYAGAIN ${r.message}`);

/** Writes the reply as the connection does (part after part), returning the one RESP value and the most held at once. */
async function collect(reply: Buffer | Awaited<ReturnType<typeof mgetReply>>, hold: RequestHold): Promise<{ value: RespValue; heldMax: number; parts: number }> {
  const dec = new ReplyDecoder();
  let heldMax = hold.held();
  if (Buffer.isBuffer(reply)) return { value: dec.push(reply)[0], heldMax, parts: 1 };
  const out: RespValue[] = dec.push(reply.first);
  let parts = 1;
  for (let part = await reply.next(); part !== null; part = await reply.next()) {
    heldMax = Math.max(heldMax, hold.held());
    out.push(...dec.push(part));
    parts++;
  }
  await reply.done;
  expect(out).toHaveLength(1);
  return { value: out[0], heldMax, parts };
}

describe('mgetReply (RESP MGET with read flow control)', () => {
  const values = new Map<string, Buffer>(Array.from({ length: 10 }, (_, i) => [`k${i}`, Buffer.alloc(1000, i)]));

  it('keys that fit one window: one buffer, as an MGET without flow control', async () => {
    const s = session(values);
    const c = commandReads(100_000, 1000);
    const keys = ['k1', 'nope', 'k2'].map((k) => Buffer.from(k));
    const reply = await mgetReply(s.session, keys, c.reads, failed);
    expect(Buffer.isBuffer(reply)).toBe(true);
    expect(reply).toEqual(encodeBulkArray([values.get('k1')!, null, values.get('k2')!]));
  });

  it('keys past one window: written in parts, in order, never more than one window of values held', async () => {
    const s = session(values);
    const c = commandReads(3000, 1000);
    const keys = Array.from({ length: 10 }, (_, i) => Buffer.from(`k${i}`));
    const { value, heldMax, parts } = await collect(await mgetReply(s.session, keys, c.reads, failed), c.hold);
    expect(value).toEqual({ type: 'array', value: keys.map((k) => ({ type: 'bulk', value: values.get(k.toString()) })) });
    expect(parts).toBeGreaterThan(2);
    expect(s.inflightMax()).toBeLessThanOrEqual(3);
    expect(heldMax).toBeLessThanOrEqual(3000);
    c.hold.release();
    expect(c.hold.held()).toBe(0);
  });

  it('a value larger than the window still goes, alone', async () => {
    const big = new Map<string, Buffer>([...values, ['big', Buffer.alloc(10_000, 9)]]);
    const s = session(big);
    const c = commandReads(3000, 1000);
    const keys = ['k0', 'big', 'k1'].map((k) => Buffer.from(k));
    const { value } = await collect(await mgetReply(s.session, keys, c.reads, failed), c.hold);
    expect(value).toEqual({ type: 'array', value: keys.map((k) => ({ type: 'bulk', value: big.get(k.toString()) })) });
  });

  it('a failed read: the whole command fails within the first window; past it, that element is an error', async () => {
    const s = session(values);
    const first = await mgetReply(s.session, ['k0', 'bad', 'k1'].map((k) => Buffer.from(k)), commandReads(100_000, 1000).reads, failed);
    expect(first.toString()).toBe('-TRYAGAIN no storage node is alive\r\n');
    const c = commandReads(2000, 1000);
    const keys = ['k0', 'k1', 'k2', 'bad', 'k3'].map((k) => Buffer.from(k));
    const { value } = await collect(await mgetReply(s.session, keys, c.reads, failed), c.hold);
    expect(value.type).toBe('array');
    expect((value.value as RespValue[]).map((v) => v.type)).toEqual(['bulk', 'bulk', 'bulk', 'error', 'bulk']);
  });

  it('a connection that closed between parts: the reply ends there and nothing more is read', async () => {
    const s = session(values);
    const c = commandReads(2000, 1000);
    const keys = Array.from({ length: 10 }, (_, i) => Buffer.from(`k${i}`));
    const reply = await mgetReply(s.session, keys, c.reads, failed);
    if (Buffer.isBuffer(reply)) throw new Error('expected a reply in parts');
    c.socket.emit('close');
    expect(await reply.next()).toBeNull();
    await reply.done;
    expect(s.inflightMax()).toBeLessThanOrEqual(2);
  });
});
