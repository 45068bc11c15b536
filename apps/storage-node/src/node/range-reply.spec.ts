import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BitcaskEngine, EngineOp } from '@cairn/engine';
import { RANGE_REPLY_BYTES_BASE, RANGE_REPLY_ITEM_OVERHEAD_BYTES, Status, decodeRangeReply, type RangeRequest } from '@cairn/protocol';
import { encodeBoundedRangeReply } from './range-reply';

describe('encodeBoundedRangeReply', () => {
  let dir: string;
  let engine: BitcaskEngine;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-'));
    engine = await BitcaskEngine.open({ dir });
    await engine.apply([1, 2, 3, 4, 5].map((i) => ({ index: i, op: EngineOp.Set, key: Buffer.from(`k${i}`), value: Buffer.alloc(200, i) })));
  });
  afterAll(async () => {
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const req = (o: Partial<RangeRequest> = {}): RangeRequest => ({ minIndex: 0, start: Buffer.from('k'), end: Buffer.from('l'), limit: 100, bytesMax: 1 << 20, keysOnly: false, countOnly: false, reverse: false, ...o });
  const never = (e: unknown) => {
    throw e;
  };

  it('never exceeds the payload bound: a prefix of the page, the first key always, more set', () => {
    const bound = RANGE_REPLY_BYTES_BASE + 2 * (RANGE_REPLY_ITEM_OVERHEAD_BYTES + 2 + 200) + 10;
    const bytes = encodeBoundedRangeReply(engine, req(), bound, never);
    expect(bytes.length).toBeLessThanOrEqual(bound);
    const r = decodeRangeReply(bytes);
    expect(r).toMatchObject({ status: Status.Ok, revision: 5, count: 5, more: true });
    expect(r.items.map((it) => it.key.toString())).toEqual(['k1', 'k2']);
    expect(r.items[0]).toMatchObject({ revision: 1, createRevision: 1, version: 1 });
  });

  it('the request bounds apply too; a key that alone cannot fit is TOO_LARGE; a read error is UNAVAILABLE', () => {
    expect(decodeRangeReply(encodeBoundedRangeReply(engine, req({ limit: 3, reverse: true }), 1 << 20, never)).items.map((it) => it.key.toString())).toEqual(['k5', 'k4', 'k3']);
    expect(decodeRangeReply(encodeBoundedRangeReply(engine, req({ keysOnly: true, bytesMax: 1 }), 1 << 20, never)).items).toHaveLength(1);
    expect(decodeRangeReply(encodeBoundedRangeReply(engine, req(), 100, never))).toMatchObject({ status: Status.TooLarge, items: [] });
    const errors: unknown[] = [];
    const broken = { range: () => { throw new Error('record CRC32 mismatch'); } };
    expect(decodeRangeReply(encodeBoundedRangeReply(broken, req(), 1 << 20, (e) => errors.push(e)))).toMatchObject({ status: Status.Unavailable, message: expect.stringContaining('CRC32') });
    expect(errors).toHaveLength(1);
  });
});
