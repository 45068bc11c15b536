import { INCR_DELTA_BYTES, encodeIncrDelta, type CommandSession } from './command';
import { ProtocolError } from './constants';

/** INCR request value with a client session: `i64 delta · u64 sessionId · u64 seq · u64 firstPendingSeq`, bytes. */
export const INCR_SESSION_REQUEST_BYTES = INCR_DELTA_BYTES + 24;
/** INCR OK payload: the key's new value as `i64` (big-endian two's complement), bytes. */
export const INCR_REPLY_BYTES = 8;

/** A decoded INCR request value (TLV opcode 0x07). */
export interface IncrRequest {
  delta: bigint;
  /** The client's own session (docs/protocol.md "INCR"); absent: the gateway's session is used. */
  session?: CommandSession;
}

/**
 * The value of an INCR request: `i64 delta` (8 bytes), or with the client's session
 * `i64 delta · u64 sessionId · u64 seq · u64 firstPendingSeq` (32 bytes). seq ≥ 1 and
 * 1 ≤ firstPendingSeq ≤ seq, both < 2^53; sessionId a full u64 (docs/protocol.md "INCR").
 * @throws RangeError on a delta outside i64 or session fields out of range.
 */
export function encodeIncrRequest(r: IncrRequest): Buffer {
  const delta = encodeIncrDelta(r.delta);
  if (!r.session) return delta;
  const s = r.session;
  checkSession(s, (m) => new RangeError(m));
  const b = Buffer.alloc(INCR_SESSION_REQUEST_BYTES);
  delta.copy(b, 0);
  b.writeBigUInt64BE(s.sessionId, 8);
  b.writeBigUInt64BE(BigInt(s.seq), 16);
  b.writeBigUInt64BE(BigInt(s.firstPendingSeq), 24);
  return b;
}

/** @throws ProtocolError when the value is neither 8 nor 32 bytes or a session field is out of range. */
export function decodeIncrRequest(value: Uint8Array): IncrRequest {
  if (value.length !== INCR_DELTA_BYTES && value.length !== INCR_SESSION_REQUEST_BYTES) throw new ProtocolError(`INCR value must be 8 bytes (i64 delta) or 32 (delta and session), got ${value.length}`);
  const b = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const delta = b.readBigInt64BE(0);
  if (value.length === INCR_DELTA_BYTES) return { delta };
  const seq = b.readBigUInt64BE(16);
  const firstPendingSeq = b.readBigUInt64BE(24);
  const limit = BigInt(Number.MAX_SAFE_INTEGER);
  if (seq > limit || firstPendingSeq > limit) throw new ProtocolError('INCR session seq and firstPendingSeq must be < 2^53');
  const session = { sessionId: b.readBigUInt64BE(8), seq: Number(seq), firstPendingSeq: Number(firstPendingSeq) };
  checkSession(session, (m) => new ProtocolError(m));
  return { delta, session };
}

/** INCR OK payload: the new value, 8 bytes. */
export function encodeIncrReply(counter: bigint): Buffer {
  const b = Buffer.alloc(INCR_REPLY_BYTES);
  b.writeBigInt64BE(counter);
  return b;
}

/** @throws ProtocolError when the payload is not 8 bytes. */
export function decodeIncrReply(payload: Uint8Array): bigint {
  if (payload.length !== INCR_REPLY_BYTES) throw new ProtocolError(`INCR reply must be the 8-byte new value, got ${payload.length} bytes`);
  return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).readBigInt64BE(0);
}

function checkSession(s: CommandSession, error: (m: string) => Error): void {
  if (s.sessionId < 0n || s.sessionId >= 1n << 64n) throw error(`INCR sessionId must be a u64, got ${s.sessionId}`);
  if (!Number.isSafeInteger(s.seq) || s.seq < 1) throw error(`INCR seq must be an integer in 1..2^53-1, got ${s.seq}`);
  if (!Number.isSafeInteger(s.firstPendingSeq) || s.firstPendingSeq < 1 || s.firstPendingSeq > s.seq) throw error(`INCR firstPendingSeq must be in 1..seq (${s.seq}), got ${s.firstPendingSeq}`);
}
