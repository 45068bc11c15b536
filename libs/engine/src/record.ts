/**
 * Layout of one Bitcask data record, the payload of one `@cairn/log` record (so it is already
 * framed by the log's `u32 length | u32 CRC32`). Big-endian (docs/engine.md "Data record layout").
 * Format 2 (written since per-key metadata) stores a Set as op byte 3 with the key's create
 * revision and version; format 1 Set records (op byte 1) are still read.
 * ```
 * offset size field
 *      0    1 op byte: 0 Noop, 1 Set (format 1), 2 Delete (tombstone), 3 Set (format 2)   03
 *      1    8 timestampMs (u64, wall clock at apply)               00 00 01 8b cf e5 68 00
 *      9    8 revision (u64, = Raft log index, < 2^53)             00 00 00 00 00 00 00 07
 *     17    4 keySize (u32)                                        00 00 00 01
 *     21    4 valueSize (u32)                                      00 00 00 02
 * op byte 3 only:
 *     25    8 createRevision (u64: revision of the write that created the key)  00 .. 00 05
 *     33    8 version (u64: writes since creation, 1 = the creating write)       00 .. 00 02
 *  h = 25 (op 0, 1, 2) or 41 (op 3):
 *      h    k key                                                  6b        ("k")
 *    h+k    v value                                                76 31     ("v1")
 * ```
 * i.e. `SET k=v1` at revision 7, 1700000000000 ms, the key's second write since it was created at
 * revision 5. A format-1 Set record decodes with createRevision = revision and version = 1 (what
 * the record alone says; docs/engine.md "Per-key metadata").
 */
import { readU64, writeU64 } from '@cairn/log';

export enum EngineOp {
  Noop = 0,
  Set = 1,
  Delete = 2,
}

/** Op byte of a format-2 Set record (with createRevision and version). */
export const RECORD_OP_SET_META = 3;
/** Header bytes of a Noop, Delete or format-1 Set record. */
export const RECORD_HEADER_BYTES = 25;
/** Header bytes of a format-2 Set record. */
export const RECORD_META_HEADER_BYTES = 41;

/** Per-key metadata as etcd's mvcc keeps it: revision = mod revision. */
export interface KeyMeta {
  /** Revision (Raft index) of the write that created the key (first write after absence). */
  createRevision: number;
  /** Writes to the key since it was created (1 = the creating write); a delete resets it. */
  version: number;
}

export interface DataRecord extends KeyMeta {
  /** Set for both Set formats. createRevision/version are 0 for Noop and Delete. */
  op: EngineOp;
  timestampMs: number;
  revision: number;
  key: Buffer;
  value: Buffer;
}

/**
 * Encodes a record: a Set with `meta` in format 2 (op byte 3), anything else (and a Set without
 * `meta`, format 1: tests of the old format) with the 25-byte header.
 */
export function encodeRecord(op: EngineOp, timestampMs: number, revision: number, key: Uint8Array, value: Uint8Array, meta?: KeyMeta): Buffer {
  const withMeta = op === EngineOp.Set && meta !== undefined;
  const header = withMeta ? RECORD_META_HEADER_BYTES : RECORD_HEADER_BYTES;
  const buf = Buffer.allocUnsafe(header + key.length + value.length);
  buf[0] = withMeta ? RECORD_OP_SET_META : op;
  writeU64(buf, timestampMs, 1);
  writeU64(buf, revision, 9);
  buf.writeUInt32BE(key.length, 17);
  buf.writeUInt32BE(value.length, 21);
  if (withMeta) {
    writeU64(buf, meta.createRevision, 25);
    writeU64(buf, meta.version, 33);
  }
  buf.set(key, header);
  buf.set(value, header + key.length);
  return buf;
}

/** Decodes a record (key and value are views into `buf`), or returns why it is not one. */
export function decodeRecord(buf: Buffer): DataRecord | { error: string } {
  if (buf.length < RECORD_HEADER_BYTES) return { error: `data record of ${buf.length} bytes is shorter than its ${RECORD_HEADER_BYTES}-byte header` };
  const opByte = buf[0];
  if (opByte !== EngineOp.Noop && opByte !== EngineOp.Set && opByte !== EngineOp.Delete && opByte !== RECORD_OP_SET_META) return { error: `unknown data record op ${opByte}` };
  const header = opByte === RECORD_OP_SET_META ? RECORD_META_HEADER_BYTES : RECORD_HEADER_BYTES;
  const keySize = buf.readUInt32BE(17);
  const valueSize = buf.readUInt32BE(21);
  if (header + keySize + valueSize !== buf.length) {
    return { error: `data record sizes (key ${keySize}, value ${valueSize}) do not add up to its ${buf.length} bytes` };
  }
  const revision = readU64(buf, 9);
  if (!Number.isSafeInteger(revision)) return { error: `data record revision ${revision} above 2^53` };
  let createRevision = 0;
  let version = 0;
  if (opByte === RECORD_OP_SET_META) {
    createRevision = readU64(buf, 25);
    version = readU64(buf, 33);
    if (!(createRevision >= 1 && createRevision <= revision && version >= 1 && Number.isSafeInteger(version))) {
      return { error: `data record metadata (create revision ${createRevision}, version ${version}) invalid at revision ${revision}` };
    }
  } else if (opByte === EngineOp.Set) {
    createRevision = revision;
    version = 1;
  }
  const op = opByte === RECORD_OP_SET_META ? EngineOp.Set : (opByte as EngineOp);
  const keyEnd = header + keySize;
  return { op, timestampMs: readU64(buf, 1), revision, createRevision, version, key: buf.subarray(header, keyEnd), value: buf.subarray(keyEnd) };
}
