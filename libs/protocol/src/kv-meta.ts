/**
 * Per-key metadata in a GET answer (docs/protocol.md "Per-key metadata"). A GET with the request
 * flag META (0x08) is answered OK with the response flag META (0x01) and the payload
 * ```
 * offset size field
 *      0    8 createRevision (u64: Raft index of the write that created the key)
 *      8    8 version (u64: writes since creation, 1 = the creating write; a delete resets it)
 *     16    n value
 * ```
 * and the header's revision = the key's mod revision (the Raft index of its last write), as etcd's
 * mvcc keeps create_revision, mod_revision and version.
 */
import { readU64, writeU64 } from './bytes';
import { ProtocolError } from './constants';

/** Bytes of metadata before the value in a META payload. */
export const GET_META_BYTES = 16;

export interface KeyMetadata {
  createRevision: number;
  version: number;
}

/** The META payload: `u64 createRevision | u64 version | value`. @throws RangeError on a field ≥ 2^53. */
export function encodeGetMeta(meta: KeyMetadata, value: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(GET_META_BYTES + value.length);
  writeU64(buf, meta.createRevision, 0);
  writeU64(buf, meta.version, 8);
  buf.set(value, GET_META_BYTES);
  return buf;
}

/** Splits a META payload; `value` is a view. @throws ProtocolError when it is shorter than 16 bytes or a field is ≥ 2^53. */
export function decodeGetMeta(payload: Buffer): KeyMetadata & { value: Buffer } {
  if (payload.length < GET_META_BYTES) throw new ProtocolError(`META payload of ${payload.length} bytes is shorter than its ${GET_META_BYTES}-byte metadata`);
  return { createRevision: readU64(payload, 0), version: readU64(payload, 8), value: payload.subarray(GET_META_BYTES) };
}
