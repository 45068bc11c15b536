import { Status, encodeRangeToken } from '@cairn/protocol';
import { planRange, rangeResult } from './kv-range';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const limits = { keysMax: 100, bytesMax: 4096 };

describe('range planning at the gateway', () => {
  it('turns a prefix into [prefix, prefixEnd), caps the limit, and continues after a token', () => {
    expect(planRange({ start: b('user/'), prefix: true }, 16, limits)).toEqual({ start: b('user/'), end: b('user0'), limit: 100, bytesMax: 4096, keysOnly: false, countOnly: false, reverse: false });
    expect(planRange({ start: b('a'), end: b('m'), limit: 1000 }, 16, limits)).toMatchObject({ limit: 100 });
    expect(planRange({ start: b('a'), end: b('m'), limit: 7, token: encodeRangeToken(b('c')) }, 16, limits)).toMatchObject({ start: b('c\x00'), end: b('m'), limit: 7 });
    expect(planRange({ start: b('a'), end: b('m'), reverse: true, token: encodeRangeToken(b('c')) }, 16, limits)).toMatchObject({ start: b('a'), end: b('c'), reverse: true });
  });

  it('refuses bad ranges with defined statuses', () => {
    expect(planRange({ start: b('x'.repeat(17)) }, 16, limits)).toMatchObject({ status: Status.TooLarge });
    expect(planRange({ start: b('a'), end: b('y'.repeat(17)) }, 16, limits)).toMatchObject({ status: Status.TooLarge });
    expect(planRange({ start: b('a'), prefix: true, end: b('b') }, 16, limits)).toMatchObject({ status: Status.BadRequest, message: 'a prefix range takes no end' });
    expect(planRange({ start: b('a'), end: b('m'), token: encodeRangeToken(b('z')) }, 16, limits)).toMatchObject({ status: Status.BadRequest, message: 'continuation token outside the range' });
    expect(planRange({ start: b('a'), token: b('\x07junk') }, 16, limits)).toMatchObject({ status: Status.BadRequest });
    expect(planRange({ start: b('a'), limit: -1 }, 16, limits)).toMatchObject({ status: Status.BadRequest });
  });

  it('a page with more keys carries the token of its last key; errors pass through', () => {
    const item = { key: b('k2'), value: b(''), revision: 3, createRevision: 3, version: 1 };
    expect(rangeResult({ status: Status.Ok, revision: 9, count: 5, more: true, message: '', items: [item] })).toMatchObject({ status: Status.Ok, revision: 9, count: 5, more: true, token: encodeRangeToken(b('k2')) });
    expect(rangeResult({ status: Status.Ok, revision: 9, count: 1, more: false, message: '', items: [item] }).token).toEqual(b(''));
    expect(rangeResult({ status: Status.Unavailable, revision: 0, count: 0, more: false, message: 'no node', items: [] })).toMatchObject({ status: Status.Unavailable, message: 'no node' });
  });
});
