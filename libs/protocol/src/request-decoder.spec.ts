import fc from 'fast-check';
import {
  DEFAULT_LIMITS,
  KEY_BYTES_CEILING,
  Opcode,
  REQUEST_HEADER_BYTES,
  RequestDecoder,
  RequestFlags,
  Status,
  VALUE_BYTES_CEILING,
  encodeRequest,
  type DecodeEvent,
  type Request,
} from './index';

const LIMITS = { keyBytesMax: 64, valueBytesMax: 256 };

const bytes = (maxLength: number, minLength = 0) => fc.uint8Array({ minLength, maxLength }).map((a) => Buffer.from(a));

/** Valid requests within LIMITS, every opcode, with and without the STALE flag. */
const requestArb: fc.Arbitrary<Request> = fc.oneof(
  fc.record({ opcode: fc.constant(Opcode.Ping), flags: fc.constantFrom(0, RequestFlags.Stale), requestId: fc.nat({ max: 0xffff_ffff }), key: fc.constant(Buffer.alloc(0)), value: bytes(LIMITS.valueBytesMax) }),
  fc.record({ opcode: fc.constantFrom(Opcode.Get, Opcode.Del), flags: fc.constantFrom(0, RequestFlags.Stale), requestId: fc.nat({ max: 0xffff_ffff }), key: bytes(LIMITS.keyBytesMax, 1), value: fc.constant(Buffer.alloc(0)) }),
  fc.record({ opcode: fc.constant(Opcode.Set), flags: fc.constantFrom(0, RequestFlags.Stale, RequestFlags.IfAbsent, RequestFlags.IfPresent, RequestFlags.IfAbsent | RequestFlags.Stale), requestId: fc.nat({ max: 0xffff_ffff }), key: bytes(LIMITS.keyBytesMax, 1), value: bytes(LIMITS.valueBytesMax) }),
  fc.record({ opcode: fc.constant(Opcode.Status), flags: fc.constant(0), requestId: fc.nat({ max: 0xffff_ffff }), key: fc.constant(Buffer.alloc(0)), value: fc.constant(Buffer.alloc(0)) }),
);

/** Cuts `stream` at the given fractions (sorted, deduplicated cut points). */
function split(stream: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((f) => Math.floor(f * stream.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, stream.length]) {
    if (p > prev) chunks.push(stream.subarray(prev, p));
    prev = p;
  }
  return chunks;
}

function decodeAll(chunks: Buffer[], limits = LIMITS): DecodeEvent[] {
  const dec = new RequestDecoder(limits);
  const events: DecodeEvent[] = [];
  for (const c of chunks) events.push(...dec.push(c));
  expect(dec.bufferedBytes()).toBe(0);
  return events;
}

/** Requests with plain Buffers (a view and a copy compare equal). */
const asRequests = (events: DecodeEvent[]) =>
  events.map((e) => (e.kind === 'request' ? { kind: e.kind, request: { ...e.request, key: Buffer.from(e.request.key), value: Buffer.from(e.request.value) } } : e));

function header(fields: { magic?: number; version?: number; opcode: number; flags?: number; requestId: number; keyLength: number; valueLength: number }): Buffer {
  const b = Buffer.alloc(REQUEST_HEADER_BYTES);
  b[0] = fields.magic ?? 0xca;
  b[1] = fields.version ?? 1;
  b[2] = fields.opcode;
  b[3] = fields.flags ?? 0;
  b.writeUInt32BE(fields.requestId, 4);
  b.writeUInt32BE(fields.keyLength, 8);
  b.writeUInt32BE(fields.valueLength, 12);
  return b;
}

const PING_AFTER = encodeRequest({ opcode: Opcode.Ping, requestId: 999, key: Buffer.alloc(0), value: Buffer.from('next') });
const PING_AFTER_EVENT = { kind: 'request', request: { opcode: Opcode.Ping, flags: 0, requestId: 999, key: Buffer.alloc(0), value: Buffer.from('next') } };

describe('RequestDecoder round trips', () => {
  it('decodes random requests under random chunkings to the same requests', () => {
    fc.assert(
      fc.property(fc.array(requestArb, { minLength: 1, maxLength: 20 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 }), (reqs, cuts) => {
        const stream = Buffer.concat(reqs.map((r) => encodeRequest(r)));
        const expected = reqs.map((request) => ({ kind: 'request', request }));
        expect(asRequests(decodeAll(split(stream, cuts)))).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('decodes 1-byte chunks and many frames coalesced in one chunk', () => {
    fc.assert(
      fc.property(fc.array(requestArb, { minLength: 1, maxLength: 10 }), (reqs) => {
        const stream = Buffer.concat(reqs.map((r) => encodeRequest(r)));
        const expected = reqs.map((request) => ({ kind: 'request', request }));
        const oneByte = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
        expect(asRequests(decodeAll(oneByte))).toEqual(expected);
        expect(asRequests(decodeAll([stream]))).toEqual(expected);
      }),
      { numRuns: 100 },
    );
  });

  it('hands out views of the chunk for a body inside one chunk, and a copy for a split body', () => {
    const frame = encodeRequest({ opcode: Opcode.Set, requestId: 1, key: Buffer.from('k'), value: Buffer.from('value') });
    const [whole] = new RequestDecoder(LIMITS).push(frame);
    expect(whole.kind === 'request' && whole.request.value.buffer).toBe(frame.buffer);
    const dec = new RequestDecoder(LIMITS);
    expect(dec.push(frame.subarray(0, 18))).toEqual([]);
    expect(dec.bufferedBytes()).toBe(2);
    const [split] = dec.push(frame.subarray(18));
    expect(split.kind === 'request' && split.request.value.toString()).toBe('value');
    expect(dec.bufferedBytes()).toBe(0);
  });
});

describe('RequestDecoder bad headers', () => {
  const cases: [string, Buffer, { kind: 'reject' | 'fatal'; requestId: number; status: Status; match: RegExp }][] = [
    ['bad magic', Buffer.concat([header({ magic: 0x47, opcode: Opcode.Get, requestId: 1, keyLength: 1, valueLength: 0 }), Buffer.from('k')]), { kind: 'fatal', requestId: 0, status: Status.BadRequest, match: /magic/ }],
    ['bad version', Buffer.concat([header({ version: 2, opcode: Opcode.Get, requestId: 2, keyLength: 1, valueLength: 0 }), Buffer.from('k')]), { kind: 'fatal', requestId: 0, status: Status.BadRequest, match: /version 2/ }],
    ['unknown opcode', Buffer.concat([header({ opcode: 0x7e, requestId: 3, keyLength: 2, valueLength: 3 }), Buffer.from('kkvvv')]), { kind: 'reject', requestId: 3, status: Status.BadRequest, match: /opcode 0x7e/ }],
    ['oversized key', Buffer.concat([header({ opcode: Opcode.Get, requestId: 4, keyLength: 65, valueLength: 0 }), Buffer.alloc(65, 1)]), { kind: 'reject', requestId: 4, status: Status.TooLarge, match: /key of 65 bytes exceeds keyBytesMax 64/ }],
    ['oversized value', Buffer.concat([header({ opcode: Opcode.Set, requestId: 5, keyLength: 1, valueLength: 257 }), Buffer.alloc(258, 2)]), { kind: 'reject', requestId: 5, status: Status.TooLarge, match: /value of 257 bytes exceeds valueBytesMax 256/ }],
    ['oversized PING payload', Buffer.concat([header({ opcode: Opcode.Ping, requestId: 6, keyLength: 0, valueLength: 257 }), Buffer.alloc(257, 2)]), { kind: 'reject', requestId: 6, status: Status.TooLarge, match: /valueBytesMax/ }],
    ['zero key for GET', header({ opcode: Opcode.Get, requestId: 7, keyLength: 0, valueLength: 0 }), { kind: 'reject', requestId: 7, status: Status.BadRequest, match: /GET needs a key/ }],
    ['zero key for SET', Buffer.concat([header({ opcode: Opcode.Set, requestId: 8, keyLength: 0, valueLength: 1 }), Buffer.from('v')]), { kind: 'reject', requestId: 8, status: Status.BadRequest, match: /SET needs a key/ }],
    ['zero key for DEL', header({ opcode: Opcode.Del, requestId: 9, keyLength: 0, valueLength: 0 }), { kind: 'reject', requestId: 9, status: Status.BadRequest, match: /DEL needs a key/ }],
    ['key on PING', Buffer.concat([header({ opcode: Opcode.Ping, requestId: 10, keyLength: 1, valueLength: 0 }), Buffer.from('k')]), { kind: 'reject', requestId: 10, status: Status.BadRequest, match: /PING takes no key/ }],
    ['key on STATUS', Buffer.concat([header({ opcode: Opcode.Status, requestId: 11, keyLength: 1, valueLength: 0 }), Buffer.from('k')]), { kind: 'reject', requestId: 11, status: Status.BadRequest, match: /STATUS takes no key/ }],
    ['value on GET', Buffer.concat([header({ opcode: Opcode.Get, requestId: 12, keyLength: 1, valueLength: 1 }), Buffer.from('kv')]), { kind: 'reject', requestId: 12, status: Status.BadRequest, match: /GET takes no value/ }],
    ['value on DEL', Buffer.concat([header({ opcode: Opcode.Del, requestId: 13, keyLength: 1, valueLength: 1 }), Buffer.from('kv')]), { kind: 'reject', requestId: 13, status: Status.BadRequest, match: /DEL takes no value/ }],
    ['value on STATUS', Buffer.concat([header({ opcode: Opcode.Status, requestId: 14, keyLength: 0, valueLength: 1 }), Buffer.from('v')]), { kind: 'reject', requestId: 14, status: Status.BadRequest, match: /STATUS takes no value/ }],
    ['unknown flags', Buffer.concat([header({ opcode: Opcode.Get, flags: 0x81, requestId: 15, keyLength: 1, valueLength: 0 }), Buffer.from('k')]), { kind: 'reject', requestId: 15, status: Status.BadRequest, match: /flag bits 0x80/ }],
    ['IF_ABSENT on GET', Buffer.concat([header({ opcode: Opcode.Get, flags: 0x02, requestId: 16, keyLength: 1, valueLength: 0 }), Buffer.from('k')]), { kind: 'reject', requestId: 16, status: Status.BadRequest, match: /apply to SET only, got GET/ }],
    ['IF_PRESENT on DEL', Buffer.concat([header({ opcode: Opcode.Del, flags: 0x04, requestId: 17, keyLength: 1, valueLength: 0 }), Buffer.from('k')]), { kind: 'reject', requestId: 17, status: Status.BadRequest, match: /apply to SET only, got DEL/ }],
    ['IF_REVISION on GET', Buffer.concat([header({ opcode: Opcode.Get, flags: 0x10, requestId: 40, keyLength: 1, valueLength: 0 }), Buffer.from('k')]), { kind: 'reject', requestId: 40, status: Status.BadRequest, match: /IF_REVISION/ }],
    ['IF_REVISION with IF_ABSENT', Buffer.concat([header({ opcode: Opcode.Set, flags: 0x12, requestId: 41, keyLength: 1, valueLength: 8 }), Buffer.alloc(9)]), { kind: 'reject', requestId: 41, status: Status.BadRequest, match: /excludes/ }],
    ['DEL with IF_REVISION and a 7-byte operand', Buffer.concat([header({ opcode: Opcode.Del, flags: 0x10, requestId: 42, keyLength: 1, valueLength: 7 }), Buffer.alloc(8)]), { kind: 'reject', requestId: 42, status: Status.BadRequest, match: /8-byte revision operand/ }],
    ['IF_ABSENT and IF_PRESENT on SET', Buffer.concat([header({ opcode: Opcode.Set, flags: 0x06, requestId: 18, keyLength: 1, valueLength: 1 }), Buffer.from('kv')]), { kind: 'reject', requestId: 18, status: Status.BadRequest, match: /exclude each other/ }],
  ];

  describe.each(cases)('%s', (_name, frame, want) => {
    for (const [how, chunkBytes] of [
      ['in one chunk', Number.MAX_SAFE_INTEGER],
      ['byte by byte', 1],
      ['in 5-byte chunks', 5],
    ] as const) {
      it(`gives the defined event ${how}; the next frame ${want.kind === 'reject' ? 'still decodes' : 'is ignored'}`, () => {
        const stream = Buffer.concat([frame, PING_AFTER]);
        const chunks: Buffer[] = [];
        for (let i = 0; i < stream.length; i += chunkBytes) chunks.push(stream.subarray(i, i + chunkBytes));
        const dec = new RequestDecoder(LIMITS);
        const events = chunks.flatMap((c) => dec.push(c));
        expect(events[0]).toMatchObject({ kind: want.kind, requestId: want.requestId, status: want.status });
        expect((events[0] as { message: string }).message).toMatch(want.match);
        if (want.kind === 'reject') {
          expect(asRequests(events.slice(1))).toEqual([PING_AFTER_EVENT]);
        } else {
          expect(events).toHaveLength(1);
          expect(dec.push(PING_AFTER)).toEqual([]);
        }
        expect(dec.bufferedBytes()).toBe(0);
      });
    }
  });

  it('stops at the first byte of a bad magic, without waiting for a whole header', () => {
    const dec = new RequestDecoder(LIMITS);
    expect(dec.push(Buffer.from([0x16]))).toMatchObject([{ kind: 'fatal', requestId: 0, status: Status.BadRequest }]);
  });

  it('accepts the STALE flag on every opcode', () => {
    const frames = [Opcode.Ping, Opcode.Status].map((opcode, i) => encodeRequest({ opcode, flags: RequestFlags.Stale, requestId: i, key: Buffer.alloc(0), value: Buffer.alloc(0) }));
    frames.push(...[Opcode.Get, Opcode.Del].map((opcode) => encodeRequest({ opcode, flags: RequestFlags.Stale, requestId: 9, key: Buffer.from('k'), value: Buffer.alloc(0) })));
    expect(decodeAll(frames).map((e) => e.kind)).toEqual(['request', 'request', 'request', 'request']);
  });
});

describe('RequestDecoder memory bounds', () => {
  it('does not allocate for huge declared lengths: rejects from the header and skips by count', () => {
    const dec = new RequestDecoder(DEFAULT_LIMITS);
    const events = dec.push(header({ opcode: Opcode.Set, requestId: 1, keyLength: 1, valueLength: 0xffff_ffff }));
    expect(events).toMatchObject([{ kind: 'reject', requestId: 1, status: Status.TooLarge }]);
    const junk = Buffer.alloc(1024 * 1024, 0xca);
    for (let i = 0; i < 64; i++) {
      expect(dec.push(junk)).toEqual([]);
      expect(dec.bufferedBytes()).toBe(0);
    }
  });

  it('holds at most the declared body of an accepted frame while it arrives', () => {
    const dec = new RequestDecoder(DEFAULT_LIMITS);
    const frame = encodeRequest({ opcode: Opcode.Set, requestId: 1, key: Buffer.from('k'), value: Buffer.alloc(DEFAULT_LIMITS.valueBytesMax, 7) });
    let maxBuffered = 0;
    const events: DecodeEvent[] = [];
    for (let i = 0; i < frame.length; i += 65536) {
      events.push(...dec.push(frame.subarray(i, i + 65536)));
      maxBuffered = Math.max(maxBuffered, dec.bufferedBytes());
    }
    expect(maxBuffered).toBeLessThan(frame.length - REQUEST_HEADER_BYTES);
    expect(events).toHaveLength(1);
    expect(events[0].kind === 'request' && events[0].request.value.equals(Buffer.alloc(DEFAULT_LIMITS.valueBytesMax, 7))).toBe(true);
  });

  it('bounds bufferedBytes by a partial header between frames', () => {
    const dec = new RequestDecoder(LIMITS);
    const frame = encodeRequest({ opcode: Opcode.Ping, requestId: 1, key: Buffer.alloc(0), value: Buffer.alloc(0) });
    dec.push(frame.subarray(0, 7));
    expect(dec.bufferedBytes()).toBe(7);
  });

  it('validates limits against the hard ceilings', () => {
    expect(() => new RequestDecoder({ keyBytesMax: KEY_BYTES_CEILING + 1, valueBytesMax: 1 })).toThrow(RangeError);
    expect(() => new RequestDecoder({ keyBytesMax: 1, valueBytesMax: VALUE_BYTES_CEILING + 1 })).toThrow(RangeError);
    expect(() => new RequestDecoder({ keyBytesMax: 0, valueBytesMax: 1 })).toThrow(/keyBytesMax/);
    expect(() => new RequestDecoder({ keyBytesMax: KEY_BYTES_CEILING, valueBytesMax: VALUE_BYTES_CEILING })).not.toThrow();
  });
});
