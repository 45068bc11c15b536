/**
 * Layout of one Bitcask data record, the payload of one `@cairn/log` record (so it is already
 * framed by the log's `u32 length | u32 CRC32`). Big-endian (docs/engine.md):
 * ```
 * offset size field
 *      0    1 op (EngineOp: 0 Noop, 1 Set, 2 Delete = tombstone)   01
 *      1    8 timestampMs (u64, wall clock at apply)               00 00 01 8b cf e5 68 00
 *      9    8 revision (u64, = Raft log index, < 2^53)             00 00 00 00 00 00 00 07
 *     17    4 keySize (u32)                                        00 00 00 01
 *     21    4 valueSize (u32)                                      00 00 00 02
 *     25    k key                                                  6b        ("k")
 *   25+k    v value                                                76 31     ("v1")
 * ```
 * i.e. `SET k=v1` at revision 7, 1700000000000 ms. The log frame around it is
 * `00 00 00 1c | 03 d6 3f a9 | <28 bytes above>`.
 */
import { readU64, writeU64 } from '@cairn/log';

export enum EngineOp {
  Noop = 0,
  Set = 1,
  Delete = 2,
}

export const RECORD_HEADER_BYTES = 25;

export interface DataRecord {
  op: EngineOp;
  timestampMs: number;
  revision: number;
  key: Buffer;
  value: Buffer;
}

export function encodeRecord(op: EngineOp, timestampMs: number, revision: number, key: Uint8Array, value: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(RECORD_HEADER_BYTES + key.length + value.length);
  buf[0] = op;
  writeU64(buf, timestampMs, 1);
  writeU64(buf, revision, 9);
  buf.writeUInt32BE(key.length, 17);
  buf.writeUInt32BE(value.length, 21);
  buf.set(key, RECORD_HEADER_BYTES);
  buf.set(value, RECORD_HEADER_BYTES + key.length);
  return buf;
}

/** Decodes a record (key and value are views into `buf`), or returns why it is not one. */
export function decodeRecord(buf: Buffer): DataRecord | { error: string } {
  if (buf.length < RECORD_HEADER_BYTES) return { error: `data record of ${buf.length} bytes is shorter than its ${RECORD_HEADER_BYTES}-byte header` };
  const op = buf[0];
  if (op !== EngineOp.Noop && op !== EngineOp.Set && op !== EngineOp.Delete) return { error: `unknown data record op ${op}` };
  const keySize = buf.readUInt32BE(17);
  const valueSize = buf.readUInt32BE(21);
  if (RECORD_HEADER_BYTES + keySize + valueSize !== buf.length) {
    return { error: `data record sizes (key ${keySize}, value ${valueSize}) do not add up to its ${buf.length} bytes` };
  }
  const revision = readU64(buf, 9);
  if (!Number.isSafeInteger(revision)) return { error: `data record revision ${revision} above 2^53` };
  const keyEnd = RECORD_HEADER_BYTES + keySize;
  return { op, timestampMs: readU64(buf, 1), revision, key: buf.subarray(RECORD_HEADER_BYTES, keyEnd), value: buf.subarray(keyEnd) };
}
