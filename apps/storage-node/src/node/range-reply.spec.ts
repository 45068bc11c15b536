import { EngineOp } from '@cairn/engine';
import { RANGE_REPLY_BYTES_BASE, RANGE_REPLY_ITEM_OVERHEAD_BYTES, Status, decodeRangeReply, type RangeRequest } from '@cairn/protocol';
import { useFilledEngine } from './apply.spec-helpers';
import { encodeBoundedRangeReply } from './range-reply';

/** The read-error callback of a test where no read may fail. */
const never = (e: unknown) => {
  throw e;
};

describe('encodeBoundedRangeReply', () => {
  const engine = useFilledEngine((e) => e.apply([1, 2, 3, 4, 5].map((i) => ({ index: i, op: EngineOp.Set, key: Buffer.from(`k${i}`), value: Buffer.alloc(200, i) }))));
  const req = (o: Partial<RangeRequest> = {}): RangeRequest => ({ minIndex: 0, start: Buffer.from('k'), end: Buffer.from('l'), limit: 100, bytesMax: 1 << 20, keysOnly: false, countOnly: false, reverse: false, ...o });

  it('never exceeds the payload bound: a prefix of the page, the first key always, more set', () => {
    const bound = RANGE_REPLY_BYTES_BASE + 2 * (RANGE_REPLY_ITEM_OVERHEAD_BYTES + 2 + 200) + 10;
    const bytes = encodeBoundedRangeReply(engine(), req(), bound, never);
    expect(bytes.length).toBeLessThanOrEqual(bound);
    const r = decodeRangeReply(bytes);
    expect(r).toMatchObject({ status: Status.Ok, revision: 5, count: 5, more: true });
    expect(r.items.map((it) => it.key.toString())).toEqual(['k1', 'k2']);
    expect(r.items[0]).toMatchObject({ revision: 1, createRevision: 1, version: 1 });
  });

  it('the request bounds apply too; a key that alone cannot fit is TOO_LARGE; a read error is UNAVAILABLE', () => {
    expect(decodeRangeReply(encodeBoundedRangeReply(engine(), req({ limit: 3, reverse: true }), 1 << 20, never)).items.map((it) => it.key.toString())).toEqual(['k5', 'k4', 'k3']);
    expect(decodeRangeReply(encodeBoundedRangeReply(engine(), req({ keysOnly: true, bytesMax: 1 }), 1 << 20, never)).items).toHaveLength(1);
    expect(decodeRangeReply(encodeBoundedRangeReply(engine(), req(), 100, never))).toMatchObject({ status: Status.TooLarge, items: [] });
    const errors: unknown[] = [];
    const broken = { range: () => { throw new Error('record CRC32 mismatch'); } };
    expect(decodeRangeReply(encodeBoundedRangeReply(broken, req(), 1 << 20, (e) => errors.push(e)))).toMatchObject({ status: Status.Unavailable, message: expect.stringContaining('CRC32') });
    expect(errors).toHaveLength(1);
  });
});

describe('encodeBoundedRangeReply with lease state (docs/leases.md "Storage")', () => {
  const engine = useFilledEngine(async (e) => {
    const keys = ['a1', 'a2', 'a3', 'a4', 'a5'];
    await e.apply(keys.map((k, i) => ({ index: i + 1, op: EngineOp.Set, key: Buffer.from(k), value: Buffer.from('v') })));
    await e.apply([{ index: 6, op: EngineOp.Set, key: Buffer.concat([Buffer.alloc(8, 0xff), Buffer.from('L')]), value: Buffer.alloc(8) }]);
  });
  const req = (o: Partial<RangeRequest> = {}): RangeRequest => ({ minIndex: 0, start: Buffer.from('a'), end: null, limit: 2, bytesMax: 1 << 20, keysOnly: false, countOnly: false, reverse: false, ...o });
  const keysOf = (b: Buffer) => decodeRangeReply(b).items.map((it) => it.key.toString());
  const hidden = (k: Uint8Array) => ['a1', 'a2', 'a3'].includes(Buffer.from(k).toString());

  it('never returns the reserved keyspace; skips pages of expired keys instead of ending the range', () => {
    expect(keysOf(encodeBoundedRangeReply(engine(), req({ limit: 100 }), 1 << 20, never))).toEqual(['a1', 'a2', 'a3', 'a4', 'a5']);
    expect(keysOf(encodeBoundedRangeReply(engine(), req({ start: Buffer.alloc(8, 0xff) }), 1 << 20, never))).toEqual([]);
    const r = decodeRangeReply(encodeBoundedRangeReply(engine(), req(), 1 << 20, never, { hidden }));
    expect(r.items.map((it) => it.key.toString())).toEqual(['a4']);
    expect(r.more).toBe(true);
    expect(keysOf(encodeBoundedRangeReply(engine(), req({ reverse: true, limit: 1, start: Buffer.from('a'), end: Buffer.from('a4') }), 1 << 20, never, { hidden }))).toEqual([]);
  });
});
