import fc from 'fast-check';
import { WatchEventFlags, WatchEventType, WatchFrameKind, decodeWatchEvents, decodeWatchFrame, encodeWatchEvents, encodeWatchEventsFrame, peekWatchEventsRange, type WatchEvent } from './watch';
import {
  ByteReader,
  ByteWriter,
  CommandOp,
  ProtocolError,
  Status,
  clampString,
  internal,
  type Command,
  type WireEntry,
  type WireRaftMessage,
} from './index';

const {
  MessageType,
  decodeCommand,
  decodeFetchReply,
  decodeFetchRequest,
  decodeProposeReply,
  decodeProposeRequest,
  decodeRaftMessages,
  decodeReadIndexReply,
  decodeReadIndexRequest,
  decodeReadReply,
  decodeReadRequest,
  decodeShipBatch,
  encodeCommand,
  encodeFetchReply,
  encodeFetchRequest,
  encodeProposeReply,
  encodeProposeRequest,
  encodeRaftMessages,
  encodeReadIndexReply,
  encodeReadIndexRequest,
  encodeReadReply,
  encodeReadRequest,
  encodeShipBatch,
  peekMessageType,
} = internal;

const bytes = (maxLength = 40) => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));
const index = fc.maxSafeNat();
const status = fc.constantFrom(Status.Ok, Status.NotFound, Status.Error, Status.BadRequest, Status.TooLarge, Status.Unavailable, Status.NotLeader);
const text = fc.string({ maxLength: 20, unit: 'grapheme' });

const commandArb: fc.Arbitrary<Command> = fc.record({ op: fc.constantFrom(CommandOp.Set, CommandOp.Delete), key: bytes(), value: bytes() });
const entryArb: fc.Arbitrary<WireEntry> = fc.record({ index, term: index, type: fc.nat({ max: 255 }), data: bytes() });
const raftMessageArb: fc.Arbitrary<WireRaftMessage> = fc.record({
  type: fc.nat({ max: 255 }),
  from: text,
  to: text,
  term: index,
  logTerm: index,
  index,
  entries: fc.array(entryArb, { maxLength: 4 }),
  commit: index,
  reject: fc.boolean(),
  rejectHint: index,
  context: index,
});

/** A codec under test: an arbitrary of values, its encoder and decoder. */
interface Codec<T> {
  name: string;
  arb: fc.Arbitrary<T>;
  encode(v: T): Buffer;
  decode(b: Uint8Array): T;
}
const codec = <T>(name: string, arb: fc.Arbitrary<T>, encode: (v: T) => Buffer, decode: (b: Uint8Array) => T): Codec<unknown> =>
  ({ name, arb, encode, decode }) as Codec<unknown>;

const codecs: Codec<unknown>[] = [
  codec('Command', commandArb, encodeCommand, decodeCommand),
  codec('RaftMessages', fc.array(raftMessageArb, { maxLength: 4 }), encodeRaftMessages, decodeRaftMessages),
  codec('ProposeRequest', fc.record({ commands: fc.array(commandArb, { maxLength: 5 }) }), encodeProposeRequest, decodeProposeRequest),
  codec('ProposeReply', fc.record({ status, retrySafe: fc.boolean(), firstIndex: index, lastIndex: index, leaderHint: text, message: text }), encodeProposeReply, decodeProposeReply),
  codec('ShipBatch', fc.record({ leaderId: text, term: index, commitIndex: index, entries: fc.array(entryArb, { maxLength: 5 }) }), encodeShipBatch, decodeShipBatch),
  codec('FetchRequest', fc.record({ fromIndex: index, entriesMax: fc.nat({ max: 0xffff_ffff }), bytesMax: fc.nat({ max: 0xffff_ffff }) }), encodeFetchRequest, decodeFetchRequest),
  codec('FetchReply', fc.record({ status, commitIndex: index, entries: fc.array(entryArb, { maxLength: 5 }), message: text }), encodeFetchReply, decodeFetchReply),
  codec(
    'ReadRequest',
    fc.record({ reads: fc.array(fc.record({ key: bytes(), minIndex: index, valueBytesMax: fc.nat({ max: Number.MAX_SAFE_INTEGER - 1 }) }, { requiredKeys: ['key', 'minIndex'] }), { maxLength: 5 }) }),
    encodeReadRequest,
    decodeReadRequest,
  ),
  codec(
    'ReadReply',
    fc.record({
      appliedIndex: index,
      results: fc.array(
        fc.record(
          { status, revision: index, createRevision: index, version: index, value: bytes(), message: text, withheldBytes: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }) },
          { requiredKeys: ['status', 'revision', 'createRevision', 'version', 'value', 'message'] },
        ),
        { maxLength: 5 },
      ),
    }),
    encodeReadReply,
    decodeReadReply,
  ),
  codec('ReadIndexRequest', fc.record({ reads: fc.nat({ max: 0xffffffff }) }), encodeReadIndexRequest, decodeReadIndexRequest),
  codec('ReadIndexReply', fc.record({ status, readIndex: index, leaderHint: text, message: text }), encodeReadIndexReply, decodeReadIndexReply),
];

/** Views → plain Buffers so decoded values compare equal to generated ones. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

describe.each(codecs.map((c) => [c.name, c] as const))('internal %s', (name, c) => {
  it('round-trips', () => {
    fc.assert(
      fc.property(c.arb, (v) => {
        const encoded = c.encode(v);
        expect(peekMessageType(encoded)).toBe(MessageType[name as keyof typeof MessageType]);
        expect(plain(c.decode(encoded))).toEqual(plain(v));
      }),
      { numRuns: 150 },
    );
  });

  it('decodes from a view at a non-zero offset of a larger buffer', () => {
    fc.assert(
      fc.property(c.arb, (v) => {
        const encoded = c.encode(v);
        const host = Buffer.concat([Buffer.from([9, 9, 9]), encoded, Buffer.from([7])]);
        const view = new Uint8Array(host.buffer, host.byteOffset + 3, encoded.length);
        expect(plain(c.decode(view))).toEqual(plain(v));
      }),
      { numRuns: 30 },
    );
  });

  it('throws ProtocolError on every truncation and on trailing bytes', () => {
    fc.assert(
      fc.property(c.arb, (v) => {
        const encoded = c.encode(v);
        for (let n = 0; n < encoded.length; n++) expect(() => c.decode(encoded.subarray(0, n))).toThrow(ProtocolError);
        expect(() => c.decode(Buffer.concat([encoded, Buffer.from([0])]))).toThrow(/trailing/);
      }),
      { numRuns: 30 },
    );
  });

  it('checks the message type and version', () => {
    fc.assert(
      fc.property(c.arb, (v) => {
        const encoded = Buffer.from(c.encode(v));
        const wrongType = Buffer.from(encoded);
        wrongType[0] = wrongType[0] === 1 ? 2 : 1;
        expect(() => c.decode(wrongType)).toThrow(/expected internal message type/);
        encoded[1] = 2;
        expect(() => c.decode(encoded)).toThrow(/version 2/);
      }),
      { numRuns: 5 },
    );
  });
});

describe('internal message details', () => {
  it('the Expired event flag (0x04) round-trips on the bus and is left out of client EVENTS frames', () => {
    const e: WatchEvent = { type: WatchEventType.Delete, key: Buffer.from('k'), value: Buffer.alloc(0), modRevision: 9, createRevision: 0, version: 0, prevValue: null, expired: true };
    const bus = encodeWatchEvents({ nodeId: 's1', prevRevision: 8, lastRevision: 9, events: [e] });
    expect(decodeWatchEvents(bus).events[0]).toMatchObject({ expired: true });
    const frame = encodeWatchEventsFrame([e]);
    expect(frame[5 + 1]).toBe(0); // u8 kind | u32 n | u8 type | u8 flags
    const decoded = decodeWatchFrame(frame);
    expect(decoded.kind === WatchFrameKind.Events && decoded.events[0].expired).toBeFalsy();
    // A client decoder refuses the internal-only bit, as any unknown one.
    const bad = Buffer.from(frame);
    bad[6] = WatchEventFlags.Expired;
    expect(() => decodeWatchFrame(bad)).toThrow(ProtocolError);
  });

  it('peekWatchEventsRange reads the revisions a WatchEvents message covers from its head alone', () => {
    const e: WatchEvent = { type: WatchEventType.Put, key: Buffer.from('k'), value: Buffer.from('v'), modRevision: 12, createRevision: 12, version: 1, prevValue: null };
    const bus = encodeWatchEvents({ nodeId: 's2', prevRevision: 10, lastRevision: 12, events: [e] });
    expect(peekWatchEventsRange(bus)).toEqual({ prevRevision: 10, lastRevision: 12 });
    // Events are not read: a message cut inside its events still peeks (decodeWatchEvents refuses it).
    const cut = bus.subarray(0, bus.length - 3);
    expect(peekWatchEventsRange(cut)).toEqual({ prevRevision: 10, lastRevision: 12 });
    expect(() => decodeWatchEvents(cut)).toThrow(ProtocolError);
    expect(() => peekWatchEventsRange(bus.subarray(0, 10))).toThrow(ProtocolError);
    const backwards = encodeWatchEvents({ nodeId: 's2', prevRevision: 10, lastRevision: 10, events: [] });
    backwards.writeUInt32BE(9, 2 + 2 + 2 + 8 + 4); // lastRevision's low word: 10 → 9
    expect(() => peekWatchEventsRange(backwards)).toThrow(/lastRevision 9 < prevRevision 10/);
  });

  it('encodes a Command byte for byte', () => {
    expect(encodeCommand({ op: CommandOp.Set, key: Buffer.from('k'), value: Buffer.from('v1') }).toString('hex')).toBe('0101' + '01' + '000000016b' + '000000027631');
  });

  it('returns views of the input for entry data, keys and values', () => {
    const encoded = encodeShipBatch({ leaderId: 'c1', term: 2, commitIndex: 3, entries: [{ index: 3, term: 2, type: 0, data: Buffer.from('abc') }] });
    expect((decodeShipBatch(encoded).entries[0].data as Buffer).buffer).toBe(encoded.buffer);
  });

  it('rejects a corrupt count without allocating a huge array', () => {
    const encoded = encodeReadRequest({ reads: [] });
    encoded.writeUInt32BE(0xffff_ffff, 2);
    expect(() => decodeReadRequest(encoded)).toThrow(/elements/);
  });

  it('rejects unknown statuses, command ops, booleans and u64 >= 2^53', () => {
    const reply = encodeProposeReply({ status: Status.Ok, firstIndex: 1, lastIndex: 1, leaderHint: '', message: '' });
    reply[2] = 0x77;
    expect(() => decodeProposeReply(reply)).toThrow(/unknown status/);
    const cmd = encodeCommand({ op: CommandOp.Delete, key: Buffer.from('k'), value: Buffer.alloc(0) });
    cmd[2] = 15; // ops 4..12 are allocated (txn, leases, auth)
    expect(() => decodeCommand(cmd)).toThrow(/command op 15/);
    const fetch = encodeFetchRequest({ fromIndex: 1, entriesMax: 1, bytesMax: 1 });
    fetch.writeUInt32BE(0x20_0000, 2);
    expect(() => decodeFetchRequest(fetch)).toThrow(/2\^53/);
    const msgs = encodeRaftMessages([{ type: 1, from: 'a', to: 'b', term: 1, logTerm: 0, index: 0, entries: [], commit: 0, reject: true, rejectHint: 0 }]);
    const rejectAt = 2 + 4 + 1 + 3 + 3 + 32;
    expect(msgs[rejectAt]).toBe(1);
    msgs[rejectAt] = 2;
    expect(() => decodeRaftMessages(msgs)).toThrow(/boolean/);
  });

  it('refuses out-of-range fields when encoding', () => {
    expect(() => encodeFetchRequest({ fromIndex: 2 ** 53, entriesMax: 1, bytesMax: 1 })).toThrow(RangeError);
    expect(() => encodeCommand({ op: 13 as CommandOp, key: Buffer.from('k'), value: Buffer.alloc(0) })).toThrow(/command op/);
    expect(() => encodeShipBatch({ leaderId: 'x'.repeat(70_000), term: 1, commitIndex: 1, entries: [] })).toThrow(RangeError);
  });

  it('cuts free-text messages to 65535 UTF-8 bytes at a character boundary', () => {
    const long = 'é'.repeat(40_000); // 80,000 UTF-8 bytes
    const reply = decodeProposeReply(encodeProposeReply({ status: Status.Error, firstIndex: 0, lastIndex: 0, leaderHint: '', message: long }));
    expect(reply.message).toBe('é'.repeat(32_767));
    expect(clampString('short')).toBe('short');
  });

  it('read request and reply sizes are computable item by item (a node fills a reply up to its payload bound)', () => {
    const keys = [Buffer.from('a'), Buffer.alloc(1000, 1), Buffer.alloc(0)];
    const req = encodeReadRequest({ reads: keys.map((key, i) => ({ key, minIndex: i })) });
    expect(req.length).toBe(internal.READ_REQUEST_BYTES_BASE + keys.reduce((n, k) => n + internal.readRequestItemBytes(k), 0));
    const results = [
      { status: Status.Ok, revision: 7, value: Buffer.alloc(65_536, 2), message: '' },
      { status: Status.TooLarge, revision: 0, value: Buffer.alloc(0), message: 'é'.repeat(40_000) },
      { status: Status.NotFound, revision: 0, value: Buffer.alloc(0), message: 'x' },
    ];
    const reply = encodeReadReply({ appliedIndex: 9, results });
    expect(reply.length).toBe(internal.READ_REPLY_BYTES_BASE + results.reduce((n, r) => n + internal.readResultBytes(r), 0));
  });

  it('read flow control: valueBytesMax and withheldBytes ride in 8-byte-per-item trailers, present only when used', () => {
    const reads = [
      { key: Buffer.from('a'), minIndex: 1 },
      { key: Buffer.from('b'), minIndex: 2 },
    ];
    const plainReq = encodeReadRequest({ reads });
    const boundedReq = encodeReadRequest({ reads: [{ ...reads[0], valueBytesMax: 4096 }, reads[1]] });
    expect(boundedReq.length).toBe(plainReq.length + 2 * internal.READ_REQUEST_BOUND_BYTES);
    expect(boundedReq.readBigUInt64BE(boundedReq.length - 16)).toBe(4096n);
    // A read without a bound travels as 2^53 − 1 and decodes as absent.
    expect(boundedReq.readBigUInt64BE(boundedReq.length - 8)).toBe(BigInt(internal.READ_VALUE_BYTES_UNBOUNDED));
    expect(decodeReadRequest(boundedReq).reads.map((r) => r.valueBytesMax)).toEqual([4096, undefined]);
    expect(decodeReadRequest(plainReq).reads.map((r) => r.valueBytesMax)).toEqual([undefined, undefined]);
    // Bit 31 of the count announces the trailer.
    expect(plainReq.readUInt32BE(internal.READ_REQUEST_BYTES_BASE - 4)).toBe(2);
    expect(boundedReq.readUInt32BE(internal.READ_REQUEST_BYTES_BASE - 4)).toBe(internal.READ_TRAILER_FLAG + 2);
    // A trailer that is not exactly 8 bytes per read is refused.
    expect(() => decodeReadRequest(boundedReq.subarray(0, boundedReq.length - 8))).toThrow(ProtocolError);

    const results = [
      { status: Status.Ok, revision: 3, value: Buffer.from('v'), message: '' },
      { status: Status.Ok, revision: 0, value: Buffer.alloc(0), message: '', withheldBytes: 70_000 },
    ];
    const withheld = encodeReadReply({ appliedIndex: 5, results });
    const sent = encodeReadReply({ appliedIndex: 5, results: [results[0]] });
    expect(withheld.length).toBe(internal.READ_REPLY_BYTES_BASE + results.reduce((n, r) => n + internal.readResultBytes(r) + internal.READ_REPLY_WITHHELD_BYTES, 0));
    expect(sent.length).toBe(internal.READ_REPLY_BYTES_BASE + internal.readResultBytes(results[0]));
    expect(decodeReadReply(withheld).results.map((r) => r.withheldBytes)).toEqual([undefined, 70_000]);
  });

  it('ReadRequest withExpiry (bit 30 of count) is answered with a u64 expiresAtMs trailer per result after the withheld one', () => {
    const reads = [{ key: Buffer.from('a'), minIndex: 1, valueBytesMax: 10 }, { key: Buffer.from('b'), minIndex: 2 }];
    const req = encodeReadRequest({ reads, withExpiry: true });
    expect(req.readUInt32BE(internal.READ_REQUEST_BYTES_BASE - 4)).toBe(internal.READ_TRAILER_FLAG + internal.READ_EXPIRY_FLAG + 2);
    expect(req.length).toBe(encodeReadRequest({ reads }).length);
    expect(decodeReadRequest(req)).toEqual({ reads: [reads[0], { key: Buffer.from('b'), minIndex: 2 }], withExpiry: true });
    expect(decodeReadRequest(encodeReadRequest({ reads })).withExpiry).toBeUndefined();
    const results = [
      { status: Status.Ok, revision: 3, value: Buffer.from('v'), message: '', expiresAtMs: 1_700_000_000_123 },
      { status: Status.Ok, revision: 0, value: Buffer.alloc(0), message: '', withheldBytes: 70_000, expiresAtMs: 0 },
    ];
    const reply = encodeReadReply({ appliedIndex: 5, results, withExpiry: true });
    expect(reply.length).toBe(internal.READ_REPLY_BYTES_BASE + results.reduce((n, r) => n + internal.readResultBytes(r) + internal.READ_REPLY_WITHHELD_BYTES + internal.READ_REPLY_EXPIRY_BYTES, 0));
    expect(reply.readBigUInt64BE(reply.length - 16)).toBe(1_700_000_000_123n);
    const back = decodeReadReply(reply);
    expect(back.withExpiry).toBe(true);
    expect(back.results.map((r) => [r.withheldBytes, r.expiresAtMs])).toEqual([[undefined, 1_700_000_000_123], [70_000, 0]]);
    // Without withExpiry a reply is byte-for-byte the one of before.
    expect(decodeReadReply(encodeReadReply({ appliedIndex: 5, results: [results[0]] })).results[0].expiresAtMs).toBeUndefined();
    expect(() => decodeReadReply(reply.subarray(0, reply.length - 8))).toThrow(ProtocolError);
  });

  it('ByteWriter asserts the precomputed size', () => {
    expect(() => new ByteWriter(3).u32(1)).toThrow(/EncodedSizeExceeded/);
    expect(() => new ByteWriter(3).u8(1).finish()).toThrow(/EncodedSizeMismatch/);
    const r = new ByteReader(new ByteWriter(2 + 1 + 4 + 8).string('a').u32(5).u64(2 ** 40).finish());
    expect([r.string(), r.u32(), r.u64(), r.remaining()]).toEqual(['a', 5, 2 ** 40, 0]);
    expect(() => r.u8()).toThrow(ProtocolError);
  });
});
