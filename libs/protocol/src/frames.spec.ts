import fc from 'fast-check';
import {
  Opcode,
  ProtocolError,
  RESPONSE_HEADER_BYTES,
  ResponseDecoder,
  Status,
  decodeRequestHeader,
  decodeResponseHeader,
  encodeRequest,
  encodeResponse,
  encodeResponseInto,
  responseBytes,
  type Response,
} from './index';

const responseArb: fc.Arbitrary<Response> = fc.record({
  status: fc.constantFrom(Status.Ok, Status.NotFound, Status.Error, Status.BadRequest, Status.TooLarge, Status.Unavailable, Status.NotLeader),
  flags: fc.constant(0),
  requestId: fc.nat({ max: 0xffff_ffff }),
  revision: fc.maxSafeNat(),
  payload: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
});

const plain = (rs: Response[]) => rs.map((r) => ({ ...r, payload: Buffer.from(r.payload) }));

describe('response frames', () => {
  it('round-trip through the streaming decoder under random chunkings', () => {
    fc.assert(
      fc.property(fc.array(responseArb, { minLength: 1, maxLength: 15 }), fc.array(fc.nat(), { maxLength: 30 }), (rs, cuts) => {
        const stream = Buffer.concat(rs.map(encodeResponse));
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const dec = new ResponseDecoder();
        const out: Response[] = [];
        let prev = 0;
        for (const p of [...points, stream.length]) {
          out.push(...dec.push(stream.subarray(prev, p)));
          prev = p;
        }
        expect(plain(out)).toEqual(rs);
        expect(dec.bufferedBytes()).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('encodeResponseInto writes many responses into one buffer', () => {
    const rs: Response[] = [
      { status: Status.Ok, flags: 0, requestId: 1, revision: 7, payload: Buffer.from('a') },
      { status: Status.NotFound, flags: 0, requestId: 2, revision: 0, payload: Buffer.alloc(0) },
    ];
    const buf = Buffer.alloc(rs.reduce((n, r) => n + responseBytes(r), 0));
    let off = 0;
    for (const r of rs) off += encodeResponseInto(r, buf, off);
    expect(off).toBe(buf.length);
    expect(buf).toEqual(Buffer.concat(rs.map(encodeResponse)));
    expect(() => encodeResponseInto(rs[0], Buffer.alloc(RESPONSE_HEADER_BYTES), 0)).toThrow(RangeError);
  });

  it('refuses out-of-range fields when encoding', () => {
    const ok: Response = { status: Status.Ok, flags: 0, requestId: 1, revision: 0, payload: Buffer.alloc(0) };
    expect(() => encodeResponse({ ...ok, revision: 2 ** 53 })).toThrow(RangeError);
    expect(() => encodeResponse({ ...ok, revision: -1 })).toThrow(RangeError);
    expect(() => encodeResponse({ ...ok, requestId: 2 ** 32 })).toThrow(RangeError);
    expect(() => encodeRequest({ opcode: Opcode.Get, requestId: -1, key: Buffer.from('k'), value: Buffer.alloc(0) })).toThrow(RangeError);
    expect(() => encodeRequest({ opcode: Opcode.Get, flags: 256, requestId: 1, key: Buffer.from('k'), value: Buffer.alloc(0) })).toThrow(RangeError);
  });

  it('decodes headers at an offset', () => {
    const req = encodeRequest({ opcode: Opcode.Set, flags: 1, requestId: 77, key: Buffer.from('ab'), value: Buffer.from('xyz') });
    expect(decodeRequestHeader(Buffer.concat([Buffer.alloc(3), req]), 3)).toEqual({ opcode: Opcode.Set, flags: 1, requestId: 77, keyLength: 2, valueLength: 3 });
    const res = encodeResponse({ status: Status.NotLeader, flags: 0, requestId: 9, revision: 5, payload: Buffer.from('c2') });
    expect(decodeResponseHeader(res)).toEqual({ status: Status.NotLeader, flags: 0, requestId: 9, revision: 5, payloadLength: 2 });
    expect(() => decodeResponseHeader(res.subarray(0, 19))).toThrow(ProtocolError);
    expect(() => decodeRequestHeader(res)).toThrow(/magic/);
  });
});

describe('ResponseDecoder violations', () => {
  const good = encodeResponse({ status: Status.Ok, flags: 0, requestId: 1, revision: 1, payload: Buffer.from('x') });

  it('delivers responses before a violation in the same chunk, then throws with the offending requestId', () => {
    const big = encodeResponse({ status: Status.Ok, flags: 0, requestId: 2, revision: 1, payload: Buffer.alloc(11) });
    const dec = new ResponseDecoder({ payloadBytesMax: 10 });
    const seen: number[] = [];
    let err: unknown;
    try {
      dec.pushTo(Buffer.concat([good, big]), (r) => seen.push(r.requestId));
    } catch (e) {
      err = e;
    }
    expect(seen).toEqual([1]);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err).toMatchObject({ code: 'PROTOCOL_ERROR', requestId: 2 });
    expect(() => dec.push(good)).toThrow(ProtocolError); // stopped for good
  });

  it('throws at the first byte of a bad magic and does not allocate for a huge declared payload', () => {
    expect(() => new ResponseDecoder().push(Buffer.from([0x00]))).toThrow(/magic/);
    const huge = Buffer.from(good);
    huge.writeUInt32BE(0xffff_ffff, 16);
    const dec = new ResponseDecoder();
    expect(() => dec.push(huge.subarray(0, RESPONSE_HEADER_BYTES))).toThrow(/payloadBytesMax/);
    expect(dec.bufferedBytes()).toBe(0);
  });
});
