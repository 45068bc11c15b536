import { readU64, writeU64 } from './bytes';
import {
  PROTOCOL_VERSION,
  ProtocolError,
  REQUEST_HEADER_BYTES,
  REQUEST_MAGIC,
  RESPONSE_HEADER_BYTES,
  RESPONSE_MAGIC,
  type Opcode,
  type Request,
  type Response,
  type Status,
} from './constants';

const EMPTY = Buffer.alloc(0);

function assertU8(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`${name} must be a u8, got ${v}`);
}

function assertU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new RangeError(`${name} must be a u32, got ${v}`);
}

/**
 * Encodes one request frame (one allocation):
 * ```
 * offset size field
 *      0    1 magic 0xCA
 *      1    1 version 1
 *      2    1 opcode
 *      3    1 flags (bit0 STALE)
 *      4    4 requestId (u32)
 *      8    4 keyLength (u32)
 *     12    4 valueLength (u32)
 *     16    k key
 *   16+k    v value
 * ```
 * Only the field ranges are checked (u8/u32), not opcode semantics or limits: the gateway's
 * RequestDecoder is the validator, and tests need to be able to build bad frames.
 * @throws RangeError when opcode/flags are not u8 or requestId is not u32.
 */
export function encodeRequest(req: Omit<Request, 'flags'> & { flags?: number }): Buffer {
  const key = req.key ?? EMPTY;
  const value = req.value ?? EMPTY;
  const flags = req.flags ?? 0;
  assertU8('opcode', req.opcode);
  assertU8('flags', flags);
  assertU32('requestId', req.requestId);
  const buf = Buffer.allocUnsafe(REQUEST_HEADER_BYTES + key.length + value.length);
  buf[0] = REQUEST_MAGIC;
  buf[1] = PROTOCOL_VERSION;
  buf[2] = req.opcode;
  buf[3] = flags;
  buf.writeUInt32BE(req.requestId, 4);
  buf.writeUInt32BE(key.length, 8);
  buf.writeUInt32BE(value.length, 12);
  buf.set(key, REQUEST_HEADER_BYTES);
  buf.set(value, REQUEST_HEADER_BYTES + key.length);
  return buf;
}

/** Encoded size of `res`, bytes: RESPONSE_HEADER_BYTES + payload length. */
export function responseBytes(res: Response): number {
  return RESPONSE_HEADER_BYTES + res.payload.length;
}

/**
 * Writes one response frame into `buf` at `offset` (hot path: many responses into one buffer).
 * ```
 * offset size field
 *      0    1 magic 0xCB
 *      1    1 version 1
 *      2    1 status
 *      3    1 flags (reserved, 0)
 *      4    4 requestId (u32)
 *      8    8 revision (u64, < 2^53)
 *     16    4 payloadLength (u32)
 *     20    n payload
 * ```
 * @returns the bytes written. @throws RangeError on out-of-range fields or when `buf` is too small.
 */
export function encodeResponseInto(res: Response, buf: Buffer, offset = 0): number {
  encodeResponseHeaderInto(res, res.payload.length, buf, offset);
  buf.set(res.payload, offset + RESPONSE_HEADER_BYTES);
  return RESPONSE_HEADER_BYTES + res.payload.length;
}

/**
 * Writes the 20-byte header of a response whose `payloadBytes` the caller writes right after it
 * (layout at encodeResponseInto; e.g. a SHARED_EVENTS watch payload assembled in place).
 * @throws RangeError on out-of-range fields or when the header and payload do not fit `buf` at `offset`
 */
export function encodeResponseHeaderInto(res: Omit<Response, 'payload'>, payloadBytes: number, buf: Buffer, offset: number): void {
  const n = RESPONSE_HEADER_BYTES + payloadBytes;
  if (offset < 0 || offset + n > buf.length) throw new RangeError(`response of ${n} bytes does not fit at offset ${offset} of a ${buf.length}-byte buffer`);
  assertU8('status', res.status);
  assertU8('flags', res.flags);
  assertU32('requestId', res.requestId);
  buf[offset] = RESPONSE_MAGIC;
  buf[offset + 1] = PROTOCOL_VERSION;
  buf[offset + 2] = res.status;
  buf[offset + 3] = res.flags;
  buf.writeUInt32BE(res.requestId, offset + 4);
  writeU64(buf, res.revision, offset + 8);
  buf.writeUInt32BE(payloadBytes, offset + 16);
}

/** Encodes one response frame (one allocation); layout at encodeResponseInto. */
export function encodeResponse(res: Response): Buffer {
  const buf = Buffer.allocUnsafe(responseBytes(res));
  encodeResponseInto(res, buf, 0);
  return buf;
}

/** A request header's fields. */
export interface RequestHeader {
  opcode: number;
  flags: number;
  requestId: number;
  keyLength: number;
  valueLength: number;
}

/** A response header's fields. */
export interface ResponseHeader {
  status: Status;
  flags: number;
  requestId: number;
  revision: number;
  payloadLength: number;
}

function checkHeaderStart(buf: Buffer, offset: number, what: string, headerBytes: number, magic: number): void {
  if (buf.length - offset < headerBytes) throw new ProtocolError(`${what} header needs ${headerBytes} bytes, got ${buf.length - offset}`);
  if (buf[offset] !== magic) throw new ProtocolError(`bad ${what} magic 0x${buf[offset].toString(16)}, expected 0x${magic.toString(16)}`);
  if (buf[offset + 1] !== PROTOCOL_VERSION) throw new ProtocolError(`unsupported protocol version ${buf[offset + 1]}, expected ${PROTOCOL_VERSION}`);
}

/**
 * Reads the fixed 16-byte request header at `offset`; opcode, flags and lengths are NOT validated
 * (RequestDecoder does that against its limits). @throws ProtocolError on bad magic / version or
 * fewer than 16 bytes.
 */
export function decodeRequestHeader(buf: Buffer, offset = 0): RequestHeader {
  checkHeaderStart(buf, offset, 'request', REQUEST_HEADER_BYTES, REQUEST_MAGIC);
  return {
    opcode: buf[offset + 2] as Opcode,
    flags: buf[offset + 3],
    requestId: buf.readUInt32BE(offset + 4),
    keyLength: buf.readUInt32BE(offset + 8),
    valueLength: buf.readUInt32BE(offset + 12),
  };
}

/**
 * Reads the fixed 20-byte response header at `offset`. The status byte is passed through
 * unchecked (a newer server may add statuses; the client maps unknown ones to a generic error).
 * @throws ProtocolError on bad magic / version, a revision >= 2^53, or fewer than 20 bytes.
 */
export function decodeResponseHeader(buf: Buffer, offset = 0): ResponseHeader {
  checkHeaderStart(buf, offset, 'response', RESPONSE_HEADER_BYTES, RESPONSE_MAGIC);
  return {
    status: buf[offset + 2] as Status,
    flags: buf[offset + 3],
    requestId: buf.readUInt32BE(offset + 4),
    revision: readU64(buf, offset + 8),
    payloadLength: buf.readUInt32BE(offset + 16),
  };
}
