import {
  ProtocolError,
  RangeOptions,
  Status,
  decodeRangePage,
  decodeRangeReply,
  decodeRangeRequest,
  decodeRangeSpec,
  decodeRangeToken,
  encodeRangePage,
  encodeRangeReply,
  encodeRangeRequest,
  encodeRangeSpec,
  encodeRangeToken,
  prefixEnd,
  RANGE_REPLY_BYTES_BASE,
  RANGE_REPLY_ITEM_OVERHEAD_BYTES,
  RANGE_PAGE_BASE_BYTES,
  RANGE_ITEM_OVERHEAD_BYTES,
} from './index';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const item = (k: string, v: string, rev: number) => ({ key: b(k), value: b(v), revision: rev, createRevision: rev - 1, version: 2 });

describe('RANGE codecs', () => {
  it('range spec: documented layout, round trip, unknown option bits and trailing bytes refused', () => {
    const spec = encodeRangeSpec({ options: RangeOptions.Prefix | RangeOptions.Reverse, limit: 10, token: b('\x01k') });
    expect(spec.toString('hex')).toBe('09' + '0000000a' + '0000' + '0002' + '016b');
    expect(decodeRangeSpec(spec)).toEqual({ options: 9, limit: 10, end: b(''), token: b('\x01k') });
    expect(() => decodeRangeSpec(Buffer.from('10000000000000' + '0000', 'hex'))).toThrow(ProtocolError);
    expect(() => decodeRangeSpec(Buffer.concat([spec, b('x')]))).toThrow(ProtocolError);
    expect(() => decodeRangeSpec(spec.subarray(0, 6))).toThrow(ProtocolError);
  });

  it('range page: round trip with its documented size', () => {
    const page = { count: 3, more: true, token: encodeRangeToken(b('b')), items: [item('a', 'x', 5), item('b', '', 7)] };
    const bytes = encodeRangePage(page);
    expect(bytes.length).toBe(RANGE_PAGE_BASE_BYTES + page.token.length + 2 * RANGE_ITEM_OVERHEAD_BYTES + 3);
    expect(decodeRangePage(bytes)).toEqual(page);
    expect(() => decodeRangePage(bytes.subarray(0, bytes.length - 1))).toThrow(ProtocolError);
  });

  it('tokens and prefix ends', () => {
    expect(decodeRangeToken(encodeRangeToken(b('key')))).toEqual(b('key'));
    expect(() => decodeRangeToken(b('\x02key'))).toThrow(ProtocolError);
    expect(() => decodeRangeToken(b(''))).toThrow(ProtocolError);
    expect(prefixEnd(b('a/'))).toEqual(b('a0'));
    expect(prefixEnd(b('a\xff'))).toEqual(b('b'));
    expect(prefixEnd(b('\xff\xff'))).toBeNull();
    expect(prefixEnd(b(''))).toBeNull();
  });

  it('internal RangeRequest and RangeReply round trip; reply size is base + overhead per item', () => {
    const req = { minIndex: 42, start: b('a'), end: null, limit: 100, bytesMax: 1 << 20, keysOnly: true, countOnly: false, reverse: true };
    expect(decodeRangeRequest(encodeRangeRequest(req))).toEqual(req);
    const bounded = { ...req, end: b('b'), keysOnly: false, countOnly: true, reverse: false };
    expect(decodeRangeRequest(encodeRangeRequest(bounded))).toEqual(bounded);
    const reply = { status: Status.Ok, revision: 9, count: 2, more: false, message: '', items: [item('a', 'xy', 8), item('ab', '', 9)] };
    const bytes = encodeRangeReply(reply);
    expect(bytes.length).toBe(RANGE_REPLY_BYTES_BASE + 2 * RANGE_REPLY_ITEM_OVERHEAD_BYTES + 3 + 2);
    expect(decodeRangeReply(bytes)).toEqual(reply);
    expect(() => decodeRangeReply(bytes.subarray(0, 10))).toThrow(ProtocolError);
    const unavailable = { status: Status.Unavailable, revision: 0, count: 0, more: false, message: 'bootstrapping', items: [] };
    expect(decodeRangeReply(encodeRangeReply(unavailable))).toEqual(unavailable);
  });
});
