import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CommandCondition,
  CommandOp,
  DEFAULT_LIMITS,
  MessageType,
  OUTCOME_REPLY_TYPE,
  OUTCOME_REQUEST_TYPE,
  ProtocolError,
  REQUEST_HEADER_BYTES,
  REQUEST_MAGIC,
  RESPONSE_HEADER_BYTES,
  RESPONSE_MAGIC,
  RequestDecoder,
  ResponseDecoder,
  SNAPSHOT_BEGIN_REPLY_TYPE,
  SNAPSHOT_BEGIN_REQUEST_TYPE,
  SNAPSHOT_CHUNK_REPLY_TYPE,
  SNAPSHOT_CHUNK_REQUEST_TYPE,
  SnapshotPart,
  Status,
  opcodeName,
  statusName,
  type DecodeEvent,
  type Response,
} from './index';
import * as p from './index';

/**
 * Every hex example in docs/protocol.md is checked here, so the document cannot drift from the
 * codec: the client-protocol table row by row against test-vectors/client-v1.json, and every other
 * hex span (internal messages) by decoding and re-encoding it.
 */
const DOC = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'protocol.md'), 'utf8');
const vectors = JSON.parse(readFileSync(join(__dirname, '..', 'test-vectors', 'client-v1.json'), 'utf8')) as { name: string; hex: string; limits?: p.FrameLimits; expect: Record<string, unknown>[] }[];

/** `ca 01 \| 0000` → `ca010000`; null when the span is not written as hex bytes. */
function hexOf(span: string): string | null {
  const h = span.replace(/\\\|/g, ' ').replace(/\|/g, ' ').replace(/\s+/g, '');
  return /^([0-9a-f]{2})+$/.test(h) ? h : null;
}

/** Every backticked span of `text` that is hex bytes in groups (at least two groups: `ca 01 …`, `01 01 | …`). */
function hexSpans(text: string): string[] {
  const prose = text.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, ''); // fenced blocks would pair their backticks wrongly
  return [...prose.matchAll(/`([^`]+)`/g)].map((m) => m[1]).filter((s) => /^[0-9a-f]{2}(\s|\\?\|)/.test(s) && hexOf(s) !== null);
}

/** The rows of the client-protocol examples table: [example, vector, hex]. */
function exampleRows(): { example: string; vector: string; hex: string }[] {
  const start = DOC.indexOf('### Examples (hex)');
  const end = DOC.indexOf('\n## ', start);
  expect(start).toBeGreaterThan(0);
  const rows: { example: string; vector: string; hex: string }[] = [];
  for (const line of DOC.slice(start, end).split('\n')) {
    if (!line.startsWith('| ') || line.startsWith('| example') || line.startsWith('| ---')) continue;
    const cells = line
      .slice(2, -2)
      .split(/(?<!\\)\| /)
      .map((c) => c.trim());
    expect(cells).toHaveLength(3);
    const [example, vector, frame] = cells;
    const hex = hexOf(frame.replace(/^`|`$/g, ''));
    if (hex === null) throw new Error(`example "${example}": frame ${frame} is not complete hex (no "…" cuts)`);
    rows.push({ example, vector: vector.replace(/^`|`$/g, ''), hex });
  }
  return rows;
}

/**
 * Walks whole frames by their length fields; returns the byte count of the complete frames, so a
 * frame that declares more than is shown ends the walk early. Stops at the first byte that is not
 * a magic byte (a fatal example).
 */
function completeFramesBytes(b: Buffer): number {
  let off = 0;
  for (;;) {
    if (off + 1 > b.length) return off;
    if (b[off] === REQUEST_MAGIC) {
      if (off + REQUEST_HEADER_BYTES > b.length) return off;
      const next = off + REQUEST_HEADER_BYTES + b.readUInt32BE(off + 8) + b.readUInt32BE(off + 12);
      if (next > b.length) return off;
      off = next;
    } else if (b[off] === RESPONSE_MAGIC) {
      if (off + RESPONSE_HEADER_BYTES > b.length) return off;
      const next = off + RESPONSE_HEADER_BYTES + b.readUInt32BE(off + 16);
      if (next > b.length) return off;
      off = next;
    } else return b.length; // not a frame: the decoder's fatal outcome is checked instead
  }
}

/** Decoder events in the JSON vectors' spelling. */
function describeRequestEvent(ev: DecodeEvent, like: Record<string, unknown> | undefined): Record<string, unknown> {
  if (ev.kind === 'request') {
    const r = ev.request;
    return { kind: 'request', opcode: opcodeName(r.opcode), flags: r.flags, requestId: r.requestId, keyHex: r.key.toString('hex'), valueHex: r.value.toString('hex') };
  }
  const contains = typeof like?.messageContains === 'string' ? like.messageContains : '';
  return { kind: ev.kind, requestId: ev.requestId, status: statusName(ev.status), messageContains: ev.message.includes(contains) ? contains : ev.message };
}

function describeResponse(r: Response): Record<string, unknown> {
  return { kind: 'response', status: statusName(r.status), flags: r.flags, requestId: r.requestId, revision: r.revision, payloadHex: r.payload.toString('hex') };
}

describe('docs/protocol.md client-protocol examples', () => {
  const rows = exampleRows();

  it('has rows, each naming a vector that exists', () => {
    expect(rows.length).toBeGreaterThanOrEqual(20);
    for (const r of rows) expect(vectors.map((v) => v.name)).toContain(r.vector);
  });

  it.each(rows.map((r) => [r.example, r] as const))('%s', (_example, row) => {
    const v = vectors.find((x) => x.name === row.vector)!;
    const bytes = Buffer.from(row.hex, 'hex');
    // The example is the vector's first frames, byte for byte, and every length field is honoured.
    expect(v.hex.startsWith(row.hex)).toBe(true);
    const truncated = v.expect.length === 0;
    expect(completeFramesBytes(bytes)).toBe(truncated ? 0 : bytes.length);
    let events: Record<string, unknown>[];
    if (bytes[0] === RESPONSE_MAGIC) {
      events = new ResponseDecoder().push(bytes).map(describeResponse);
    } else {
      const dec = new RequestDecoder(v.limits ?? DEFAULT_LIMITS);
      const evs = dec.push(bytes);
      events = evs.map((ev, i) => describeRequestEvent(ev, v.expect[i]));
      // A complete example leaves nothing buffered; the truncated one holds its partial body.
      expect(dec.bufferedBytes()).toBe(truncated ? bytes.length - REQUEST_HEADER_BYTES : 0);
    }
    expect(events.length).toBeGreaterThan(truncated ? -1 : 0);
    expect(events).toEqual(v.expect.slice(0, events.length));
  });

  it('the TOO_LARGE example carries its whole 42-byte message', () => {
    const row = rows.find((r) => r.vector === 'response/too-large')!;
    const [res] = new ResponseDecoder().push(Buffer.from(row.hex, 'hex'));
    expect(res).toMatchObject({ status: Status.TooLarge, requestId: 0x16, revision: 0 });
    expect(res.payload.toString()).toBe('key of 1025 bytes exceeds keyBytesMax 1024');
  });
});

/** Decode-then-encode for every internal message type an example may use. */
const internalCodecs: Record<number, [(b: Uint8Array) => unknown, (x: never) => Buffer]> = {
  [MessageType.Command]: [p.decodeCommand, p.encodeCommand],
  [MessageType.RaftMessages]: [p.decodeRaftMessages, p.encodeRaftMessages],
  [MessageType.ProposeRequest]: [p.decodeProposeRequest, p.encodeProposeRequest],
  [MessageType.ProposeReply]: [p.decodeProposeReply, p.encodeProposeReply],
  [MessageType.ShipBatch]: [p.decodeShipBatch, p.encodeShipBatch],
  [MessageType.FetchRequest]: [p.decodeFetchRequest, p.encodeFetchRequest],
  [MessageType.FetchReply]: [p.decodeFetchReply, p.encodeFetchReply],
  [MessageType.ReadRequest]: [p.decodeReadRequest, p.encodeReadRequest],
  [MessageType.ReadReply]: [p.decodeReadReply, p.encodeReadReply],
  [MessageType.ReadIndexRequest]: [p.decodeReadIndexRequest, p.encodeReadIndexRequest],
  [MessageType.ReadIndexReply]: [p.decodeReadIndexReply, p.encodeReadIndexReply],
  [OUTCOME_REQUEST_TYPE]: [p.decodeOutcomeRequest, p.encodeOutcomeRequest],
  [OUTCOME_REPLY_TYPE]: [p.decodeOutcomeReply, p.encodeOutcomeReply],
  [SNAPSHOT_BEGIN_REQUEST_TYPE]: [p.decodeSnapshotBeginRequest, p.encodeSnapshotBeginRequest],
  [SNAPSHOT_BEGIN_REPLY_TYPE]: [p.decodeSnapshotBeginReply, p.encodeSnapshotBeginReply],
  [SNAPSHOT_CHUNK_REQUEST_TYPE]: [p.decodeSnapshotChunkRequest, p.encodeSnapshotChunkRequest],
  [SNAPSHOT_CHUNK_REPLY_TYPE]: [p.decodeSnapshotChunkReply, p.encodeSnapshotChunkReply],
  [p.LEASE_STATE_REQUEST_TYPE]: [p.decodeLeaseStateRequest, p.encodeLeaseStateRequest],
  [p.LEASE_STATE_REPLY_TYPE]: [p.decodeLeaseStateReply, p.encodeLeaseStateReply],
};

/** What the prose says each internal example is (hex → decoded value). */
const internalMeaning: Record<string, unknown> = {
  '010101000000016b000000027631': { op: CommandOp.Set, key: Buffer.from('k'), value: Buffer.from('v1') },
  '0101910123456789abcdef00000000000000070000000000000005000000016b0000000176': {
    op: CommandOp.Set,
    condition: CommandCondition.IfAbsent,
    session: { sessionId: 0x0123456789abcdefn, seq: 7, firstPendingSeq: 5 },
    key: Buffer.from('k'),
    value: Buffer.from('v'),
  },
  '1601000273320000000000000007': { requesterId: 's2', minAppliedIndex: 7 },
  '180100026162010001780000000000000003': { transferId: 'ab', part: SnapshotPart.Engine, file: 'x', offset: 3 },
  '1901000000000000026869': { status: Status.Ok, message: '', data: Buffer.from('hi') },
};

describe('docs/protocol.md hex examples outside the client-protocol table', () => {
  const tableHex = new Set(exampleRows().map((r) => r.hex));
  const others = [...new Set(hexSpans(DOC).map((s) => hexOf(s)!))].filter((h) => !tableHex.has(h));

  it('finds them (the internal-message examples)', () => {
    expect(others.length).toBeGreaterThanOrEqual(5);
  });

  it.each(others.map((h) => [h] as const))('%s decodes completely and re-encodes to the same bytes', (hex) => {
    const bytes = Buffer.from(hex, 'hex');
    const codec = internalCodecs[bytes[0]];
    if (!codec) throw new Error(`hex example ${hex}: type ${bytes[0]} is neither a client frame in the examples table nor a known internal message`);
    const [decode, encode] = codec;
    let decoded: unknown;
    try {
      decoded = decode(bytes); // decoders refuse truncation and trailing bytes
    } catch (e) {
      if (e instanceof ProtocolError) throw new Error(`hex example ${hex} does not decode: ${e.message}`);
      throw e;
    }
    expect(encode(decoded as never).toString('hex')).toBe(hex);
    if (hex in internalMeaning) expect(decoded).toMatchObject(internalMeaning[hex] as object);
  });

  it('every example whose meaning the prose states is in the document', () => {
    for (const hex of Object.keys(internalMeaning)) expect(others).toContain(hex);
  });
});
