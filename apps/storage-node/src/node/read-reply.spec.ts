import { Status, decodeReadReply } from '@cairn/protocol';
import { encodeBoundedReadReply } from './read-reply';

const ok = (bytes: number) => ({ status: Status.Ok, revision: 3, value: Buffer.alloc(bytes, 7), message: '' });

describe('encodeBoundedReadReply', () => {
  it('answers every read when the whole reply fits', () => {
    const { reply, answered } = encodeBoundedReadReply(9, 3, () => ok(100), 1024);
    expect(answered).toBe(3);
    const d = decodeReadReply(reply);
    expect(d.appliedIndex).toBe(9);
    expect(d.results.map((r) => r.value.length)).toEqual([100, 100, 100]);
  });

  it('answers the prefix that fits, never above the bound, and computes nothing past it', () => {
    const asked: number[] = [];
    // 16 reads of 64 KiB under a 256 KiB bound: 3 fit (each result adds 64 KiB + 15 bytes).
    const { reply, answered } = encodeBoundedReadReply(
      1,
      16,
      (i) => {
        asked.push(i);
        return ok(64 * 1024);
      },
      256 * 1024,
    );
    expect(reply.length).toBeLessThanOrEqual(256 * 1024);
    expect(answered).toBe(3);
    expect(decodeReadReply(reply).results).toHaveLength(3);
    expect(asked).toEqual([0, 1, 2, 3]);
  });

  it('answers TOO_LARGE for a first value that alone cannot fit, and only for it', () => {
    const { reply, answered } = encodeBoundedReadReply(1, 2, () => ok(2000), 1024);
    expect(answered).toBe(1);
    expect(reply.length).toBeLessThanOrEqual(1024);
    const [r] = decodeReadReply(reply).results;
    expect(r.status).toBe(Status.TooLarge);
    expect(r.message).toMatch(/2000 bytes.*1024 bytes/);
  });

  it('withholds a value above its read\'s valueBytesMax: OK, empty, withheldBytes = its size (read flow control)', () => {
    const sizes = [100, 5000, 300];
    const bounds = [1000, 1000, undefined];
    const { reply, answered } = encodeBoundedReadReply(2, 3, (i) => ok(sizes[i]), 64 * 1024, (i) => bounds[i]);
    expect(answered).toBe(3);
    const d = decodeReadReply(reply).results;
    expect(d.map((r) => [r.status, r.value.length, r.withheldBytes])).toEqual([
      [Status.Ok, 100, undefined],
      [Status.Ok, 0, 5000],
      [Status.Ok, 300, undefined],
    ]);
    // Value bytes sent never exceed what was reserved for the bounded reads.
    expect(reply.length).toBeLessThan(1000 + 300 + 200);
  });

  it('withholds rather than answering TOO_LARGE when the bound is below the payload bound', () => {
    const { reply } = encodeBoundedReadReply(1, 1, () => ok(2000), 1024, () => 512);
    const [r] = decodeReadReply(reply).results;
    expect([r.status, r.withheldBytes]).toEqual([Status.Ok, 2000]);
  });

  it('withExpiry: every result carries its expiresAtMs in the trailer, counted against the bound', () => {
    const r = (i: number) => ({ ...ok(100), expiresAtMs: i === 0 ? 0 : 1_700_000_000_000 + i });
    const all = encodeBoundedReadReply(9, 2, r, 1024, () => undefined, true);
    expect(decodeReadReply(all.reply).results.map((x) => x.expiresAtMs)).toEqual([0, 1_700_000_000_001]);
    // a bound that fits two results without their trailers but not with them answers one
    const one = encodeBoundedReadReply(9, 2, r, all.reply.length - 1, () => undefined, true);
    expect(one.answered).toBe(1);
    expect(one.reply.length).toBeLessThan(all.reply.length);
  });

  it('answers an empty request with an empty reply', () => {
    expect(decodeReadReply(encodeBoundedReadReply(4, 0, () => ok(1), 1024).reply).results).toEqual([]);
  });
});
