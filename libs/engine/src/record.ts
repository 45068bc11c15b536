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
  /**
   * Several key mutations (Sets and Deletes) at ONE revision, in one record: a transaction's
   * writes (etcd Txn), atomic because a log record is written whole or not at all. Only in
   * `EngineEntry.mutations` / a batch record; never a keydir or hint-file op.
   */
  Batch = 4,
}

/** Op byte of a batch record (`encodeBatchRecord`). */
export const RECORD_OP_BATCH = 4;
/** Bytes of one batch sub-record's header: `u8 op | u32 keySize | u32 valueSize`, plus 16 (createRevision, version) for a Set. */
const SUB_HEADER_BYTES = 9;
/** A Set sub-record's header: SUB_HEADER_BYTES + u64 createRevision + u64 version. */
const SET_SUB_HEADER_BYTES = SUB_HEADER_BYTES + 16;

/** One key mutation of a batch record: op Set or Delete (a Delete has an empty value). */
export interface BatchMutation {
  op: EngineOp.Set | EngineOp.Delete;
  key: Uint8Array;
  value: Uint8Array;
}

/** A decoded batch record: its revision and its mutations in order, each with the metadata it gave its key ({0, 0} for a Delete). Views into the payload. */
export interface BatchRecord {
  op: EngineOp.Batch;
  timestampMs: number;
  revision: number;
  mutations: (KeyMeta & { op: EngineOp.Set | EngineOp.Delete; key: Buffer; value: Buffer })[];
}

/** Encoded bytes of a batch record of `mutations`. */
export function batchRecordBytes(mutations: readonly BatchMutation[]): number {
  let n = RECORD_HEADER_BYTES;
  for (const m of mutations) n += SUB_HEADER_BYTES + (m.op === EngineOp.Set ? 16 : 0) + m.key.length + (m.op === EngineOp.Set ? m.value.length : 0);
  return n;
}

/**
 * Encodes a batch record (docs/engine.md "Batch records"):
 * ```
 * offset size field
 *      0    1 op byte 4
 *      1    8 timestampMs (u64)
 *      9    8 revision (u64, = Raft log index: every mutation takes effect at it)
 *     17    4 count (u32, >= 1)
 *     21    4 reserved (0)
 *     25      count sub-records, in order:
 *             u8 op (2 Delete, 3 Set) | u32 keySize | u32 valueSize (0 for a Delete)
 *             | Set only: u64 createRevision | u64 version | key | value
 * ```
 * `metas[i]`: the metadata mutation i gives its key (a Set's; ignored for a Delete).
 */
export function encodeBatchRecord(timestampMs: number, revision: number, mutations: readonly BatchMutation[], metas: readonly KeyMeta[]): Buffer {
  const buf = Buffer.allocUnsafe(batchRecordBytes(mutations));
  buf[0] = RECORD_OP_BATCH;
  writeU64(buf, timestampMs, 1);
  writeU64(buf, revision, 9);
  buf.writeUInt32BE(mutations.length, 17);
  buf.writeUInt32BE(0, 21);
  let at = RECORD_HEADER_BYTES;
  mutations.forEach((m, i) => {
    const set = m.op === EngineOp.Set;
    buf[at] = set ? RECORD_OP_SET_META : EngineOp.Delete;
    buf.writeUInt32BE(m.key.length, at + 1);
    buf.writeUInt32BE(set ? m.value.length : 0, at + 5);
    at += SUB_HEADER_BYTES;
    if (set) {
      writeU64(buf, metas[i].createRevision, at);
      writeU64(buf, metas[i].version, at + 8);
      at += 16;
    }
    buf.set(m.key, at);
    at += m.key.length;
    if (set) {
      buf.set(m.value, at);
      at += m.value.length;
    }
  });
  return buf;
}

/**
 * Walks the sub-records of batch record `buf` (layout above), checking each as it goes, and hands
 * each to `visit` as offsets into `buf` (no copies, no objects); returns why the record is corrupt,
 * or null. One walker for the full decode and for `lastMutationInBatch`, so both refuse the same
 * records.
 */
function walkBatch(buf: Buffer, revision: number, visit: (i: number, set: boolean, keyAt: number, keySize: number, valueSize: number, createRevision: number, version: number) => void): string | null {
  const count = buf.readUInt32BE(17);
  let at = RECORD_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + SUB_HEADER_BYTES > buf.length) return `batch record truncated in sub-record ${i} of ${count}`;
    const opByte = buf[at];
    if (opByte !== RECORD_OP_SET_META && opByte !== EngineOp.Delete) return `batch sub-record ${i} has op ${opByte}`;
    const keySize = buf.readUInt32BE(at + 1);
    const valueSize = buf.readUInt32BE(at + 5);
    at += SUB_HEADER_BYTES;
    const set = opByte === RECORD_OP_SET_META;
    if ((!set && valueSize !== 0) || at + (set ? 16 : 0) + keySize + valueSize > buf.length) return `batch sub-record ${i} sizes (key ${keySize}, value ${valueSize}) overrun the record`;
    let createRevision = 0;
    let version = 0;
    if (set) {
      createRevision = readU64(buf, at);
      version = readU64(buf, at + 8);
      at += 16;
      if (!(createRevision >= 1 && createRevision <= revision && version >= 1 && Number.isSafeInteger(version))) return `batch sub-record ${i} metadata (create revision ${createRevision}, version ${version}) invalid at revision ${revision}`;
    }
    visit(i, set, at, keySize, valueSize, createRevision, version);
    at += keySize + valueSize;
  }
  if (count === 0 || at !== buf.length) return `batch record of ${count} sub-records does not fill its ${buf.length} bytes`;
  return null;
}

function decodeBatchRecord(buf: Buffer, revision: number): BatchRecord | { error: string } {
  const mutations: BatchRecord['mutations'] = [];
  const error = walkBatch(buf, revision, (_i, set, keyAt, keySize, valueSize, createRevision, version) => {
    const valueAt = keyAt + keySize;
    mutations.push({ op: set ? EngineOp.Set : EngineOp.Delete, key: buf.subarray(keyAt, valueAt), value: buf.subarray(valueAt, valueAt + valueSize), createRevision, version });
  });
  return error === null ? { op: EngineOp.Batch, timestampMs: readU64(buf, 1), revision, mutations } : { error };
}

/**
 * The last mutation of `key` in the batch record `buf` (op byte 4), as a single record whose key
 * and value are views into `buf`; a Noop-shaped record (empty key) when the batch does not write
 * `key`. Checks the whole record as `decodeRecord` does (the same errors), but builds no object per
 * sub-record: a keydir read of one key of a 128-put TXN's record decoded all 128 before.
 */
export function lastMutationInBatch(buf: Buffer, key: Uint8Array): DataRecord | { error: string } {
  if (buf.length < RECORD_HEADER_BYTES || buf[0] !== RECORD_OP_BATCH) return { error: `not a batch record (${buf.length} bytes, op ${buf[0]})` };
  const revision = readU64(buf, 9);
  if (!Number.isSafeInteger(revision)) return { error: `data record revision ${revision} above 2^53` };
  let found = -1;
  let hit = { set: false, keySize: 0, valueSize: 0, createRevision: 0, version: 0 };
  const error = walkBatch(buf, revision, (_i, set, keyAt, keySize, valueSize, createRevision, version) => {
    // The last byte first: keys of one batch often share a prefix, and most differ at the end.
    if (keySize === key.length && (keySize === 0 || buf[keyAt + keySize - 1] === key[keySize - 1]) && buf.compare(key, 0, keySize, keyAt, keyAt + keySize) === 0) {
      found = keyAt;
      hit = { set, keySize, valueSize, createRevision, version };
    }
  });
  if (error !== null) return { error };
  const timestampMs = readU64(buf, 1);
  if (found < 0) return { op: EngineOp.Noop, timestampMs, revision, key: Buffer.alloc(0), value: Buffer.alloc(0), createRevision: 0, version: 0 };
  const valueAt = found + hit.keySize;
  return { op: hit.set ? EngineOp.Set : EngineOp.Delete, timestampMs, revision, key: buf.subarray(found, valueAt), value: buf.subarray(valueAt, valueAt + hit.valueSize), createRevision: hit.createRevision, version: hit.version };
}

/** Op byte of a format-2 Set record (with createRevision and version). */
export const RECORD_OP_SET_META = 3;
/** Header bytes of a Noop, Delete or format-1 Set record. */
export const RECORD_HEADER_BYTES = 25;
/** Header bytes of a format-2 Set record. */
export const RECORD_META_HEADER_BYTES = 41;

/** Key bytes a companion record's key has beyond its data key (a storage node's `ff×8 · 'K' · key`, docs/leases.md "Storage"). */
export const COMPANION_KEY_EXTRA_BYTES = 9;
/** Value bytes of a companion record (`u64 leaseId · u64 expiresAtMs`). */
export const COMPANION_VALUE_BYTES = 16;

/**
 * The largest record an engine with these key and value bounds writes or reads (a longer frame is
 * corrupt), bytes: a batch record holding a Set of a keyBytesMax key and a valueBytesMax value
 * plus one companion Set (a key COMPANION_KEY_EXTRA_BYTES longer, a COMPANION_VALUE_BYTES value:
 * the per-key lease/expiry record a storage node writes in the same record as its key), which is
 * larger than a single format-2 Set of the same key and value (RECORD_META_HEADER_BYTES + key +
 * value). For the defaults (1 KiB keys, 1 MiB values): 1,050,724 bytes.
 */
export function recordBytesMaxOf(keyBytesMax: number, valueBytesMax: number): number {
  const companion = SET_SUB_HEADER_BYTES + keyBytesMax + COMPANION_KEY_EXTRA_BYTES + COMPANION_VALUE_BYTES;
  return RECORD_HEADER_BYTES + SET_SUB_HEADER_BYTES + keyBytesMax + valueBytesMax + companion;
}

/** Per-key metadata as etcd's mvcc keeps it: revision = mod revision. */
export interface KeyMeta {
  /** Revision (Raft index) of the write that created the key (first write after absence). */
  createRevision: number;
  /** Writes to the key since it was created (1 = the creating write); a delete resets it. */
  version: number;
}

export interface DataRecord extends KeyMeta {
  /** Set for both Set formats. createRevision/version are 0 for Noop and Delete. */
  op: EngineOp.Noop | EngineOp.Set | EngineOp.Delete;
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

/** Decodes a record (key and value are views into `buf`), or returns why it is not one. A batch record decodes as a BatchRecord. */
export function decodeRecord(buf: Buffer): DataRecord | BatchRecord | { error: string } {
  if (buf.length < RECORD_HEADER_BYTES) return { error: `data record of ${buf.length} bytes is shorter than its ${RECORD_HEADER_BYTES}-byte header` };
  const opByte = buf[0];
  if (opByte === RECORD_OP_BATCH) {
    const revision = readU64(buf, 9);
    if (!Number.isSafeInteger(revision)) return { error: `data record revision ${revision} above 2^53` };
    return decodeBatchRecord(buf, revision);
  }
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
  const op = opByte === RECORD_OP_SET_META ? EngineOp.Set : (opByte as DataRecord['op']);
  const keyEnd = header + keySize;
  return { op, timestampMs: readU64(buf, 1), revision, createRevision, version, key: buf.subarray(header, keyEnd), value: buf.subarray(keyEnd) };
}
