/**
 * Storage-node snapshot transfer messages (subject `snapshot.<node>`, request/reply; docs/protocol.md,
 * "Snapshot transfer"). A storage node that cannot catch up from the Raft log (its backfill answered
 * "compacted", or it starts empty) pulls a peer storage node's snapshot: one SnapshotBeginRequest,
 * then one SnapshotChunkRequest per chunk it needs, then an End request that releases the transfer.
 *
 * Every message starts with `u8 messageType | u8 version=1` (the internal message header); field
 * encodings as in `internal.ts` (big-endian; u64 < 2^53; `bytes` = `u32 length | bytes`; `string`
 * = `u16 length | UTF-8`). Decoders throw ProtocolError on truncation, a wrong type/version, an
 * unknown status or part, a u64 >= 2^53, or trailing bytes; encoders throw RangeError on
 * out-of-range fields. Decoded `bytes` fields are views of the input.
 */
import { ByteReader, ByteWriter, bytesFieldBytes, clampString, stringFieldBytes } from './bytes';
import { ProtocolError, type Status } from './constants';

/** Internal message types (same numbering space as `MessageType` in internal.ts and the outcome messages 20/21). */
export const SNAPSHOT_BEGIN_REQUEST_TYPE = 22;
export const SNAPSHOT_BEGIN_REPLY_TYPE = 23;
export const SNAPSHOT_CHUNK_REQUEST_TYPE = 24;
export const SNAPSHOT_CHUNK_REPLY_TYPE = 25;
const VERSION = 1;

/**
 * Largest `data` of a SnapshotChunkReply a sender may produce, bytes: an engine chunk message of at
 * most 512 KiB of file bytes (+ its 32-byte overhead and a ≤ 32-byte name) or a 512 KiB slice of the
 * session table. Keeps every reply far below nats-server's default `max_payload` of 1 MiB.
 */
export const SNAPSHOT_CHUNK_BYTES_MAX = 512 * 1024;

/** What a SnapshotChunkRequest asks for. */
export enum SnapshotPart {
  /** Release the transfer (the receiver is done or gave up); answered OK with empty data. */
  End = 0,
  /** An engine chunk: `file` at `offset`; `data` is the engine's chunk message (`encodeSnapshotChunk`, self-checking). */
  Engine = 1,
  /** A slice of the session table's encoded bytes from `offset` (`file` empty); checked against the begin reply's size and CRC32. */
  Sessions = 2,
}

/** Receiver → sender: start a transfer of a snapshot at an applied index of at least `minAppliedIndex`. */
export interface SnapshotBeginRequest {
  /** The requesting storage node (for the sender's log). */
  requesterId: string;
  /** The lowest applied index that helps the requester (the first index it cannot fetch from the log, minus one). */
  minAppliedIndex: number;
}

/** Sender → receiver. OK: the transfer exists until End or `snapshotTransferTimeoutMs` without a request. */
export interface SnapshotBeginReply {
  status: Status;
  /** Why not OK (UNAVAILABLE: bootstrapping itself, behind `minAppliedIndex`, too many transfers). */
  message: string;
  /** Names the transfer in chunk requests (empty unless OK). */
  transferId: string;
  /** The snapshot's applied index; the session table is exactly as of it. */
  appliedIndex: number;
  /** Largest file bytes per engine chunk and per session slice (≤ SNAPSHOT_CHUNK_BYTES_MAX). */
  chunkBytesMax: number;
  /** The engine snapshot's manifest (`snapshot.manifest`, self-checking; docs/engine.md). */
  manifest: Uint8Array;
  /** Size and CRC32 of the encoded session table as of `appliedIndex`. */
  sessionBytes: number;
  sessionCrc32: number;
}

export interface SnapshotChunkRequest {
  transferId: string;
  part: SnapshotPart;
  /** Engine part: the file name `SnapshotInstaller.next()` names; empty otherwise. */
  file: string;
  /** Byte offset in the file (Engine) or in the session table (Sessions); 0 for End. */
  offset: number;
}

export interface SnapshotChunkReply {
  status: Status;
  /** Why not OK (NOT_FOUND: unknown or expired transfer). */
  message: string;
  /** Engine: one chunk message; Sessions: up to chunkBytesMax bytes of the table; End: empty. */
  data: Uint8Array;
}


/** `header(22) | string requesterId | u64 minAppliedIndex`. */
export function encodeSnapshotBeginRequest(q: SnapshotBeginRequest): Buffer {
  return new ByteWriter(2 + stringFieldBytes(q.requesterId) + 8).u8(SNAPSHOT_BEGIN_REQUEST_TYPE).u8(VERSION).string(q.requesterId).u64(q.minAppliedIndex).finish();
}

export function decodeSnapshotBeginRequest(b: Uint8Array): SnapshotBeginRequest {
  const r = new ByteReader(b);
  r.header(SNAPSHOT_BEGIN_REQUEST_TYPE, VERSION, 'SnapshotBeginRequest');
  const q = { requesterId: r.string(), minAppliedIndex: r.u64() };
  r.end();
  return q;
}

/** `header(23) | u8 status | string message | string transferId | u64 appliedIndex | u32 chunkBytesMax | bytes manifest | u64 sessionBytes | u32 sessionCrc32`. */
export function encodeSnapshotBeginReply(q: SnapshotBeginReply): Buffer {
  const message = clampString(q.message);
  const size = 2 + 1 + stringFieldBytes(message) + stringFieldBytes(q.transferId) + 8 + 4 + bytesFieldBytes(q.manifest) + 8 + 4;
  return new ByteWriter(size)
    .u8(SNAPSHOT_BEGIN_REPLY_TYPE)
    .u8(VERSION)
    .u8(q.status)
    .string(message)
    .string(q.transferId)
    .u64(q.appliedIndex)
    .u32(q.chunkBytesMax)
    .bytes(q.manifest)
    .u64(q.sessionBytes)
    .u32(q.sessionCrc32)
    .finish();
}

export function decodeSnapshotBeginReply(b: Uint8Array): SnapshotBeginReply {
  const r = new ByteReader(b);
  r.header(SNAPSHOT_BEGIN_REPLY_TYPE, VERSION, 'SnapshotBeginReply');
  const q = { status: r.status(), message: r.string(), transferId: r.string(), appliedIndex: r.u64(), chunkBytesMax: r.u32(), manifest: r.bytes(), sessionBytes: r.u64(), sessionCrc32: r.u32() };
  r.end();
  return q;
}

/** `header(24) | string transferId | u8 part | string file | u64 offset`. */
export function encodeSnapshotChunkRequest(q: SnapshotChunkRequest): Buffer {
  if (!(q.part in SnapshotPart)) throw new RangeError(`unknown snapshot part ${q.part}`);
  return new ByteWriter(2 + stringFieldBytes(q.transferId) + 1 + stringFieldBytes(q.file) + 8)
    .u8(SNAPSHOT_CHUNK_REQUEST_TYPE)
    .u8(VERSION)
    .string(q.transferId)
    .u8(q.part)
    .string(q.file)
    .u64(q.offset)
    .finish();
}

export function decodeSnapshotChunkRequest(b: Uint8Array): SnapshotChunkRequest {
  const r = new ByteReader(b);
  r.header(SNAPSHOT_CHUNK_REQUEST_TYPE, VERSION, 'SnapshotChunkRequest');
  const transferId = r.string();
  const part = r.u8();
  if (!(part in SnapshotPart)) throw new ProtocolError(`unknown snapshot part ${part}`);
  const q = { transferId, part: part as SnapshotPart, file: r.string(), offset: r.u64() };
  r.end();
  return q;
}

/** `header(25) | u8 status | string message | bytes data`. */
export function encodeSnapshotChunkReply(q: SnapshotChunkReply): Buffer {
  const message = clampString(q.message);
  return new ByteWriter(2 + 1 + stringFieldBytes(message) + bytesFieldBytes(q.data)).u8(SNAPSHOT_CHUNK_REPLY_TYPE).u8(VERSION).u8(q.status).string(message).bytes(q.data).finish();
}

export function decodeSnapshotChunkReply(b: Uint8Array): SnapshotChunkReply {
  const r = new ByteReader(b);
  r.header(SNAPSHOT_CHUNK_REPLY_TYPE, VERSION, 'SnapshotChunkReply');
  const q = { status: r.status(), message: r.string(), data: r.bytes() };
  r.end();
  return q;
}
