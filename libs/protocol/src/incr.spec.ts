import { INCR_SESSION_REQUEST_BYTES, ProtocolError, decodeIncrReply, decodeIncrRequest, encodeIncrReply, encodeIncrRequest } from './index';

describe('INCR request and reply codecs (docs/protocol.md "INCR")', () => {
  it('round-trips a delta alone (8 bytes) and with the client session (32 bytes), i64 and u64 extremes included', () => {
    for (const delta of [1n, -1n, -(1n << 63n), (1n << 63n) - 1n]) {
      expect(decodeIncrRequest(encodeIncrRequest({ delta }))).toEqual({ delta });
      const session = { sessionId: (1n << 64n) - 1n, seq: Number.MAX_SAFE_INTEGER, firstPendingSeq: 1 };
      const b = encodeIncrRequest({ delta, session });
      expect(b.length).toBe(INCR_SESSION_REQUEST_BYTES);
      expect(decodeIncrRequest(b)).toEqual({ delta, session });
    }
    expect(encodeIncrRequest({ delta: 1n, session: { sessionId: 0x0123456789abcdefn, seq: 7, firstPendingSeq: 5 } }).toString('hex')).toBe('0000000000000001' + '0123456789abcdef' + '0000000000000007' + '0000000000000005');
  });

  it('refuses other lengths and session fields out of range', () => {
    expect(() => decodeIncrRequest(Buffer.alloc(9))).toThrow(ProtocolError);
    expect(() => decodeIncrRequest(Buffer.alloc(0))).toThrow(ProtocolError);
    const zeroSeq = Buffer.alloc(32);
    expect(() => decodeIncrRequest(zeroSeq)).toThrow(/seq/);
    const firstAfterSeq = Buffer.from('0000000000000001' + '0000000000000001' + '0000000000000002' + '0000000000000003', 'hex');
    expect(() => decodeIncrRequest(firstAfterSeq)).toThrow(/firstPendingSeq/);
    const huge = Buffer.from('0000000000000001' + '0000000000000001' + '0020000000000000' + '0000000000000001', 'hex');
    expect(() => decodeIncrRequest(huge)).toThrow(/2\^53/);
    expect(() => encodeIncrRequest({ delta: 1n << 63n })).toThrow(RangeError);
    expect(() => encodeIncrRequest({ delta: 1n, session: { sessionId: 1n, seq: 1, firstPendingSeq: 2 } })).toThrow(RangeError);
  });

  it('the OK reply is the new value as i64', () => {
    expect(encodeIncrReply(42n).toString('hex')).toBe('000000000000002a');
    expect(decodeIncrReply(encodeIncrReply(-(1n << 63n)))).toBe(-(1n << 63n));
    expect(() => decodeIncrReply(Buffer.alloc(7))).toThrow(ProtocolError);
  });
});
