/**
 * Internal binary messages between gateway, consensus replicas and storage nodes (docs/protocol.md,
 * "Internal messages"). Every message starts with `u8 messageType | u8 version=1`; decoders check
 * both and that the message ends exactly where its last field does. Field encodings (big-endian):
 * u8/u16/u32; u64 = a number < 2^53; bool = u8 0|1; bytes = `u32 length | bytes`;
 * string = `u16 length | UTF-8`; lists = `u32 count | elements`.
 *
 * Encoders compute the exact size first and allocate once. Decoded `data`/`key`/`value` are views
 * of the input. Decoders throw ProtocolError on truncation, overrun, a wrong type/version, a u64
 * >= 2^53 or trailing bytes; encoders throw RangeError on out-of-range fields.
 */
import { asBuffer, ByteReader, ByteWriter, bytesFieldBytes, clampString, stringFieldBytes } from './bytes';
import { ProtocolError, type Status } from './constants';
import { COMMAND_BODY_BYTES_MIN, commandBodyBytes, readCommandBody, writeCommandBody, type Command } from './command';

export const INTERNAL_VERSION = 1;

export enum MessageType {
  Command = 1,
  RaftMessages = 2,
  ProposeRequest = 3,
  ProposeReply = 4,
  ShipBatch = 5,
  FetchRequest = 6,
  FetchReply = 7,
  ReadRequest = 8,
  ReadReply = 9,
  ReadIndexRequest = 10,
  ReadIndexReply = 11,
}

/** `u8 messageType | u8 version`. */
const MESSAGE_HEADER_BYTES = 2;

/**
 * A Raft log entry on the wire. The one declaration of these fields: `@cairn/raft`'s `Entry`
 * extends it, narrowing `type` to its EntryType, so the two cannot drift apart. It lives here, not
 * in raft, so this package depends on nothing and can be packed alone for third-party clients.
 */
export interface WireEntry {
  index: number;
  term: number;
  type: number;
  data: Uint8Array;
}

/**
 * A Raft message on the wire. The one declaration of these fields: `@cairn/raft`'s `Message`
 * extends it, narrowing `type` to its MessageType (field meanings there); raft's `isRaftMessage`
 * checks a decoded one before it is stepped.
 */
export interface WireRaftMessage {
  type: number;
  from: string;
  to: string;
  term: number;
  logTerm: number;
  index: number;
  entries: WireEntry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  /** Heartbeat/HeartbeatResponse: ReadIndex round (Raft thesis §6.4); Vote/PreVote: 1 = leadership transfer. Absent = 0. */
  context?: number;
}

/** Gateway → leader: client writes batched into one proposal. */
export interface ProposeRequest {
  commands: Command[];
}

/** Leader → gateway. OK: the commands committed at firstIndex..lastIndex in order (each index is that write's revision). */
export interface ProposeReply {
  status: Status;
  firstIndex: number;
  lastIndex: number;
  leaderHint: string;
  message: string;
  /**
   * UNAVAILABLE only: true when the commands were definitely NOT applied (never appended, or
   * overwritten by a new leader), so re-sending them cannot apply them twice; false = outcome unknown.
   */
  retrySafe?: boolean;
}

/** Leader → storage nodes: committed entries in index order; empty entries = a commit heartbeat. */
export interface ShipBatch {
  leaderId: string;
  term: number;
  commitIndex: number;
  entries: WireEntry[];
}

/** Storage node → any consensus replica: backfill of committed entries from `fromIndex`. */
export interface FetchRequest {
  fromIndex: number;
  entriesMax: number;
  bytesMax: number;
}

export interface FetchReply {
  status: Status;
  commitIndex: number;
  entries: WireEntry[];
  message: string;
}

/** Gateway → storage node, batched; the node answers each read once appliedIndex >= minIndex. */
/**
 * gateway → leader: "at which index may I read linearizably?" (ReadIndex, Raft thesis §6.4).
 * One request stands for `reads` client reads the gateway batched.
 */
export interface ReadIndexRequest {
  reads: number;
}

/** OK: reading at any storage node once it applied `readIndex` is linearizable. NOT_LEADER: see `leaderHint`. */
export interface ReadIndexReply {
  status: Status;
  readIndex: number;
  leaderHint: string;
  message: string;
}

/**
 * `valueBytesMax` (read flow control, docs/protocol.md "Read flow control"): the value bytes the
 * requester reserved for this read's answer; a value larger than it is withheld (the result says
 * how large it is) so the requester never holds more than it reserved. Absent: no bound but the
 * payload bound. Set on one read, the field goes on the wire for all (absent ones as 2^53 − 1).
 */
export interface ReadRequest {
  reads: { key: Uint8Array; minIndex: number; valueBytesMax?: number }[];
  /** Ask for each OK result's `expiresAtMs` (the key's absolute expiry, docs/leases.md): bit 30 of `count` (READ_EXPIRY_FLAG). */
  withExpiry?: boolean;
}

/**
 * Results in request order, for a prefix of the reads: a node whose whole reply would not fit its
 * NATS payload bound answers the first reads that fit (at least one) and the requester asks again
 * for the rest (docs/protocol.md, "Message size bounds"). OK: value + revision; NOT_FOUND:
 * revision 0, empty value; TOO_LARGE: the value alone cannot fit a reply.
 */
export interface ReadReply {
  appliedIndex: number;
  /**
   * OK: `revision` = the key's mod revision, `createRevision` / `version` its other metadata (etcd
   * mvcc's create_revision and version: writes since creation); absent = 0 on the wire.
   * `withheldBytes` > 0: the value was not sent because it is larger than the read's
   * `valueBytesMax`; it is this many bytes (status OK, empty value): reserve that much and ask again.
   */
  results: { status: Status; revision: number; createRevision?: number; version?: number; value: Uint8Array; message: string; withheldBytes?: number; expiresAtMs?: number }[];
  /**
   * Set in answer to a request `withExpiry`: every result's `expiresAtMs` is on the wire (a u64
   * trailer after the withheld one; 0 = no expiry, and for every result that is not OK).
   */
  withExpiry?: boolean;
}

function writer(type: MessageType, bodyBytes: number): ByteWriter {
  return new ByteWriter(MESSAGE_HEADER_BYTES + bodyBytes).u8(type).u8(INTERNAL_VERSION);
}

function reader(b: Uint8Array, type: MessageType): ByteReader {
  const r = new ByteReader(b);
  r.header(type, INTERNAL_VERSION, MessageType[type]);
  return r;
}

// Command (type 1) and the outcome messages live in command.ts; re-exported for the `internal` namespace.
export { CommandOp, CommandCondition, encodeCommand, decodeCommand, type Command, type CommandSession } from './command';

// ---- Entries: u64 index | u64 term | u8 type | bytes data ----------------------------------------

const ENTRY_BYTES_MIN = 8 + 8 + 1 + 4;

function entriesBytes(entries: WireEntry[]): number {
  let n = 4;
  for (const e of entries) n += 17 + bytesFieldBytes(e.data);
  return n;
}

function writeEntries(w: ByteWriter, entries: WireEntry[]): void {
  w.list(entries, (x, e) => x.u64(e.index).u64(e.term).u8(e.type).bytes(e.data));
}

function readEntries(r: ByteReader): WireEntry[] {
  const entries: WireEntry[] = r.list(ENTRY_BYTES_MIN, () => ({ index: r.u64(), term: r.u64(), type: r.u8(), data: r.bytes() }));
  return entries;
}

// ---- Raft messages ---------------------------------------------------------------------------------

/** u8 type | string from | string to | u64 term | u64 logTerm | u64 index | u64 commit | bool reject | u64 rejectHint | u64 context | entries */
const RAFT_MESSAGE_BYTES_MIN = 1 + 2 + 2 + 8 * 4 + 1 + 8 + 8 + 4;

/** `header(2) | u32 count | messages`: a batch of Raft messages for one peer. */
export function encodeRaftMessages(msgs: WireRaftMessage[]): Buffer {
  let size = 4;
  for (const m of msgs) size += 1 + stringFieldBytes(m.from) + stringFieldBytes(m.to) + 8 * 4 + 1 + 8 + 8 + entriesBytes(m.entries);
  const w = writer(MessageType.RaftMessages, size).u32(msgs.length);
  for (const m of msgs) {
    w.u8(m.type).string(m.from).string(m.to).u64(m.term).u64(m.logTerm).u64(m.index).u64(m.commit).bool(m.reject).u64(m.rejectHint).u64(m.context ?? 0);
    writeEntries(w, m.entries);
  }
  return w.finish();
}

export function decodeRaftMessages(b: Uint8Array): WireRaftMessage[] {
  const r = reader(b, MessageType.RaftMessages);
  const msgs: WireRaftMessage[] = r.list(RAFT_MESSAGE_BYTES_MIN, () => {
    const type = r.u8();
    const from = r.string();
    const to = r.string();
    const term = r.u64();
    const logTerm = r.u64();
    const index = r.u64();
    const commit = r.u64();
    const reject = r.bool();
    const rejectHint = r.u64();
    const context = r.u64();
    return { type, from, to, term, logTerm, index, entries: readEntries(r), commit, reject, rejectHint, context };
  });
  r.end();
  return msgs;
}

// ---- Propose ---------------------------------------------------------------------------------------

/** `header(3) | u32 count | (u8 op | bytes key | bytes value)*`. */
export function encodeProposeRequest(p: ProposeRequest): Buffer {
  let size = 4;
  for (const c of p.commands) size += commandBodyBytes(c);
  const w = writer(MessageType.ProposeRequest, size).u32(p.commands.length);
  for (const c of p.commands) writeCommandBody(w, c);
  return w.finish();
}

export function decodeProposeRequest(b: Uint8Array): ProposeRequest {
  const r = reader(b, MessageType.ProposeRequest);
  const commands: Command[] = r.list(COMMAND_BODY_BYTES_MIN, readCommandBody);
  r.end();
  return { commands };
}

/** `header(4) | u8 status | u64 firstIndex | u64 lastIndex | string leaderHint | string message`. Message is cut to 65535 UTF-8 bytes. */
export function encodeProposeReply(p: ProposeReply): Buffer {
  const message = clampString(p.message);
  const w = writer(MessageType.ProposeReply, 1 + 1 + 16 + stringFieldBytes(p.leaderHint) + stringFieldBytes(message));
  return w.u8(p.status).bool(p.retrySafe ?? false).u64(p.firstIndex).u64(p.lastIndex).string(p.leaderHint).string(message).finish();
}

export function decodeProposeReply(b: Uint8Array): ProposeReply {
  const r = reader(b, MessageType.ProposeReply);
  const reply = { status: r.status(), retrySafe: r.bool(), firstIndex: r.u64(), lastIndex: r.u64(), leaderHint: r.string(), message: r.string() };
  r.end();
  return reply;
}

// ---- ReadIndex -------------------------------------------------------------------------------------

/** `header(10) | u32 reads`. */
export function encodeReadIndexRequest(q: ReadIndexRequest): Buffer {
  return writer(MessageType.ReadIndexRequest, 4).u32(q.reads).finish();
}

export function decodeReadIndexRequest(b: Uint8Array): ReadIndexRequest {
  const r = reader(b, MessageType.ReadIndexRequest);
  const q = { reads: r.u32() };
  r.end();
  return q;
}

/** `header(11) | u8 status | u64 readIndex | string leaderHint | string message`. */
export function encodeReadIndexReply(q: ReadIndexReply): Buffer {
  const message = clampString(q.message);
  return writer(MessageType.ReadIndexReply, 1 + 8 + stringFieldBytes(q.leaderHint) + stringFieldBytes(message))
    .u8(q.status)
    .u64(q.readIndex)
    .string(q.leaderHint)
    .string(message)
    .finish();
}

export function decodeReadIndexReply(b: Uint8Array): ReadIndexReply {
  const r = reader(b, MessageType.ReadIndexReply);
  const q = { status: r.status(), readIndex: r.u64(), leaderHint: r.string(), message: r.string() };
  r.end();
  return q;
}

// ---- Ship ------------------------------------------------------------------------------------------

/** `header(5) | string leaderId | u64 term | u64 commitIndex | entries`. */
export function encodeShipBatch(s: ShipBatch): Buffer {
  const w = writer(MessageType.ShipBatch, stringFieldBytes(s.leaderId) + 16 + entriesBytes(s.entries));
  w.string(s.leaderId).u64(s.term).u64(s.commitIndex);
  writeEntries(w, s.entries);
  return w.finish();
}

export function decodeShipBatch(b: Uint8Array): ShipBatch {
  const r = reader(b, MessageType.ShipBatch);
  const batch = { leaderId: r.string(), term: r.u64(), commitIndex: r.u64(), entries: readEntries(r) };
  r.end();
  return batch;
}

// ---- Fetch -----------------------------------------------------------------------------------------

/** `header(6) | u64 fromIndex | u32 entriesMax | u32 bytesMax`. */
export function encodeFetchRequest(f: FetchRequest): Buffer {
  return writer(MessageType.FetchRequest, 16).u64(f.fromIndex).u32(f.entriesMax).u32(f.bytesMax).finish();
}

export function decodeFetchRequest(b: Uint8Array): FetchRequest {
  const r = reader(b, MessageType.FetchRequest);
  const req = { fromIndex: r.u64(), entriesMax: r.u32(), bytesMax: r.u32() };
  r.end();
  return req;
}

/** `header(7) | u8 status | u64 commitIndex | string message | entries`. Message is cut to 65535 UTF-8 bytes. */
export function encodeFetchReply(f: FetchReply): Buffer {
  const message = clampString(f.message);
  const w = writer(MessageType.FetchReply, 1 + 8 + stringFieldBytes(message) + entriesBytes(f.entries));
  w.u8(f.status).u64(f.commitIndex).string(message);
  writeEntries(w, f.entries);
  return w.finish();
}

export function decodeFetchReply(b: Uint8Array): FetchReply {
  const r = reader(b, MessageType.FetchReply);
  const status = r.status();
  const commitIndex = r.u64();
  const message = r.string();
  const reply = { status, commitIndex, entries: readEntries(r), message };
  r.end();
  return reply;
}

// ---- Read ------------------------------------------------------------------------------------------

/** Bytes of a ReadRequest with no reads: header(2) | u32 count. */
export const READ_REQUEST_BYTES_BASE = MESSAGE_HEADER_BYTES + 4;

/** Bytes one read adds to a ReadRequest: `bytes key | u64 minIndex`. */
export function readRequestItemBytes(key: Uint8Array): number {
  return bytesFieldBytes(key) + 8;
}

/** Bytes of a ReadReply with no results: header(2) | u64 appliedIndex | u32 count. */
export const READ_REPLY_BYTES_BASE = MESSAGE_HEADER_BYTES + 8 + 4;

/** Bytes one result adds to a ReadReply (its message cut to 65535 UTF-8 bytes, as encodeReadReply cuts it). */
export function readResultBytes(x: ReadReply['results'][number]): number {
  return 1 + 8 * 3 + bytesFieldBytes(x.value) + stringFieldBytes(clampString(x.message));
}

/** The u64 standing for "no bound" in a ReadRequest's valueBytesMax trailer. */
export const READ_VALUE_BYTES_UNBOUNDED = Number.MAX_SAFE_INTEGER;

/** Bytes the valueBytesMax trailer adds to a ReadRequest per read (when any read is bounded). */
export const READ_REQUEST_BOUND_BYTES = 8;

/** Bytes the withheldBytes trailer adds to a ReadReply per result (when any result is withheld). */
export const READ_REPLY_WITHHELD_BYTES = 8;

/** Bit 31 of a ReadRequest's / ReadReply's count: the message ends with a per-item u64 trailer. */
export const READ_TRAILER_FLAG = 0x8000_0000;

/** Bit 30 of a ReadRequest's count: answer each key's expiry; of a ReadReply's: a per-result `u64 expiresAtMs` trailer ends the message (after the withheld one). */
export const READ_EXPIRY_FLAG = 0x4000_0000;

/** Bytes the expiresAtMs trailer adds to a ReadReply per result (in answer to a request withExpiry). */
export const READ_REPLY_EXPIRY_BYTES = 8;

/**
 * Reads a count whose bit 31 says a trailer of `trailerBytes` per element follows the elements.
 * @throws ProtocolError when the elements (and trailer) cannot fit in the bytes left.
 */
function countWithTrailer(r: ByteReader, elementBytesMin: number, trailerBytes: number, expiryBytes: number): { n: number; trailer: boolean; expiry: boolean } {
  const raw = r.u32();
  const trailer = (raw & READ_TRAILER_FLAG) !== 0;
  const expiry = (raw & READ_EXPIRY_FLAG) !== 0;
  const n = raw & ~(READ_TRAILER_FLAG | READ_EXPIRY_FLAG);
  const min = n * (elementBytesMin + (trailer ? trailerBytes : 0) + (expiry ? expiryBytes : 0));
  if (min > r.remaining()) throw new ProtocolError(`truncated message: ${n} elements of >= ${elementBytesMin} bytes declared, ${r.remaining()} bytes left`);
  return { n, trailer, expiry };
}

/**
 * `header(8) | u32 count | (bytes key | u64 minIndex)* | [(u64 valueBytesMax)*count]`. The trailer
 * (read flow control) is present iff some read has `valueBytesMax`, and then bit 31 of `count`
 * (READ_TRAILER_FLAG) is set; a read without a bound carries 2^53 − 1. A node that predates the
 * trailer refuses such a request (its count is out of range), so storage nodes are upgraded before
 * gateways. Bit 30 of `count` (READ_EXPIRY_FLAG) = `withExpiry` (likewise refused by a node that
 * predates it).
 */
export function encodeReadRequest(q: ReadRequest): Buffer {
  const bounded = q.reads.some((x) => x.valueBytesMax !== undefined);
  let size = 4 + (bounded ? READ_REQUEST_BOUND_BYTES * q.reads.length : 0);
  for (const x of q.reads) size += bytesFieldBytes(x.key) + 8;
  if (q.reads.length >= READ_EXPIRY_FLAG) throw new RangeError(`a ReadRequest holds fewer than 2^30 reads, got ${q.reads.length}`);
  const w = writer(MessageType.ReadRequest, size).u32(q.reads.length + (bounded ? READ_TRAILER_FLAG : 0) + (q.withExpiry ? READ_EXPIRY_FLAG : 0));
  for (const x of q.reads) w.bytes(x.key).u64(x.minIndex);
  if (bounded) for (const x of q.reads) w.u64(Math.min(x.valueBytesMax ?? READ_VALUE_BYTES_UNBOUNDED, READ_VALUE_BYTES_UNBOUNDED));
  return w.finish();
}

/**
 * A trailer u64 of 2^53 − 1 decodes as no `valueBytesMax`.
 * @throws ProtocolError on a truncated message or trailing bytes.
 */
export function decodeReadRequest(b: Uint8Array): ReadRequest {
  const r = reader(b, MessageType.ReadRequest);
  const { n, trailer, expiry } = countWithTrailer(r, 4 + 8, READ_REQUEST_BOUND_BYTES, 0);
  const reads: ReadRequest['reads'] = new Array(n);
  for (let i = 0; i < n; i++) reads[i] = { key: r.bytes(), minIndex: r.u64() };
  if (trailer) {
    for (let i = 0; i < n; i++) {
      const valueBytesMax = r.u64();
      if (valueBytesMax !== READ_VALUE_BYTES_UNBOUNDED) reads[i].valueBytesMax = valueBytesMax;
    }
  }
  r.end();
  return expiry ? { reads, withExpiry: true } : { reads };
}

/**
 * `header(9) | u64 appliedIndex | u32 count | (u8 status | u64 revision | u64 createRevision | u64 version | bytes value | string message)* | [(u64 withheldBytes)*count] | [(u64 expiresAtMs)*count]`.
 * Messages are cut to 65535 UTF-8 bytes. The withheld trailer is present iff some result was
 * withheld (only in answer to a request with valueBytesMax), and then bit 31 of `count`
 * (READ_TRAILER_FLAG) is set; the expiry trailer iff `withExpiry` (only in answer to a request
 * withExpiry), and then bit 30 (READ_EXPIRY_FLAG).
 */
export function encodeReadReply(q: ReadReply): Buffer {
  const messages = q.results.map((x) => clampString(x.message));
  const withheld = q.results.some((x) => (x.withheldBytes ?? 0) > 0);
  let size = 8 + 4 + (withheld ? READ_REPLY_WITHHELD_BYTES * q.results.length : 0) + (q.withExpiry ? READ_REPLY_EXPIRY_BYTES * q.results.length : 0);
  for (let i = 0; i < q.results.length; i++) size += 1 + 8 * 3 + bytesFieldBytes(q.results[i].value) + stringFieldBytes(messages[i]);
  const w = writer(MessageType.ReadReply, size).u64(q.appliedIndex).u32(q.results.length + (withheld ? READ_TRAILER_FLAG : 0) + (q.withExpiry ? READ_EXPIRY_FLAG : 0));
  for (let i = 0; i < q.results.length; i++) {
    const x = q.results[i];
    w.u8(x.status).u64(x.revision).u64(x.createRevision ?? 0).u64(x.version ?? 0).bytes(x.value).string(messages[i]);
  }
  if (withheld) for (const x of q.results) w.u64(x.withheldBytes ?? 0);
  if (q.withExpiry) for (const x of q.results) w.u64(x.expiresAtMs ?? 0);
  return w.finish();
}

/** @throws ProtocolError on a truncated message or trailing bytes. */
export function decodeReadReply(b: Uint8Array): ReadReply {
  const r = reader(b, MessageType.ReadReply);
  const appliedIndex = r.u64();
  const { n, trailer, expiry } = countWithTrailer(r, 1 + 8 * 3 + 4 + 2, READ_REPLY_WITHHELD_BYTES, READ_REPLY_EXPIRY_BYTES);
  const results: ReadReply['results'] = new Array(n);
  for (let i = 0; i < n; i++) results[i] = { status: r.status(), revision: r.u64(), createRevision: r.u64(), version: r.u64(), value: r.bytes(), message: r.string() };
  if (trailer) {
    for (let i = 0; i < n; i++) {
      const withheldBytes = r.u64();
      if (withheldBytes > 0) results[i].withheldBytes = withheldBytes;
    }
  }
  if (expiry) for (let i = 0; i < n; i++) results[i].expiresAtMs = r.u64();
  r.end();
  return expiry ? { appliedIndex, results, withExpiry: true } : { appliedIndex, results };
}

/** The message type byte of an internal message (for routing / diagnostics). @throws ProtocolError on empty input. */
export function peekMessageType(b: Uint8Array): MessageType {
  if (b.length < MESSAGE_HEADER_BYTES) throw new ProtocolError(`internal message of ${b.length} bytes is shorter than its ${MESSAGE_HEADER_BYTES}-byte header`);
  return asBuffer(b)[0];
}
