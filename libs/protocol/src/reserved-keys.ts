import { ByteReader, ByteWriter } from './bytes';
import { RESERVED_KEY_PREFIX } from './constants';

/**
 * The storage nodes' lease and expiry records in the reserved keyspace (docs/leases.md
 * "Storage"), big-endian:
 * - `RESERVED_KEY_PREFIX | 'L' | u64 leaseId` → `u64 ttlMs`: a granted lease (its mod revision =
 *   the grant's index);
 * - `RESERVED_KEY_PREFIX | 'K' | key` → `u64 leaseId | u64 expiresAtMs`: a key's lease (0 = none)
 *   and absolute expiry (ms since the Unix epoch, 0 = none), written in the same batch record as
 *   the key.
 * Written and read by the storage node (LeaseIndex); read from a backup by `cairn snapshot
 * restore`, which rebuilds the consensus replicas' lease table from them.
 */
const TAG_LEASE = 0x4c; // 'L'
const TAG_KEY = 0x4b; // 'K'

/** The record key of lease `leaseId`. */
export function leaseRecordKey(leaseId: number): Buffer {
  return Buffer.concat([RESERVED_KEY_PREFIX, Buffer.from([TAG_LEASE]), new ByteWriter(8).u64(leaseId).finish()]);
}

/** The record key of `key`'s lease and expiry. */
export function keyMetaRecordKey(key: Uint8Array): Buffer {
  return Buffer.concat([RESERVED_KEY_PREFIX, Buffer.from([TAG_KEY]), key]);
}

/** A key's lease (0: none) and absolute expiry (0: none). */
export interface KeyLeaseMeta {
  leaseId: number;
  expiresAtMs: number;
}

/** The 16-byte value of a key's metadata record. */
export function encodeKeyMeta(m: KeyLeaseMeta): Buffer {
  return new ByteWriter(16).u64(m.leaseId).u64(m.expiresAtMs).finish();
}

/** One reserved record, decoded. */
export type ReservedRecord = { kind: 'lease'; leaseId: number; ttlMs: number } | { kind: 'key'; key: Buffer; meta: KeyLeaseMeta };

/** `key`/`value` as a reserved record; null for a key outside the layout (another tag, a wrong length). */
export function decodeReservedRecord(key: Uint8Array, value: Uint8Array): ReservedRecord | null {
  const at = RESERVED_KEY_PREFIX.length;
  if (key.length <= at) return null;
  const rest = key.subarray(at + 1);
  const r = new ByteReader(value);
  if (key[at] === TAG_LEASE && rest.length === 8 && value.length === 8) return { kind: 'lease', leaseId: new ByteReader(rest).u64(), ttlMs: r.u64() };
  if (key[at] === TAG_KEY && value.length === 16) return { kind: 'key', key: Buffer.from(rest), meta: { leaseId: r.u64(), expiresAtMs: r.u64() } };
  return null;
}

/** A page of a store's range read, as the engine's `range` returns it (@cairn/engine RangePage, structurally). */
export interface ReservedRangePage {
  items: { key: Uint8Array; value: Uint8Array; revision: number }[];
  more: boolean;
}

/**
 * Every reserved record of a store, in key order, with its mod revision: paged range reads of
 * `[RESERVED_KEY_PREFIX, end of keyspace)` through `range` (every key from the prefix on starts
 * with it), at most `pageKeysMax` keys and `pageBytesMax` bytes a page.
 */
export function* reservedRecords(
  range: (q: { start: Uint8Array; end: null; limit: number; bytesMax: number }) => ReservedRangePage,
  pageKeysMax = 10_000,
  pageBytesMax = 16 * 1024 * 1024,
): Generator<{ record: ReservedRecord; revision: number }> {
  let start: Uint8Array = RESERVED_KEY_PREFIX;
  for (;;) {
    const page = range({ start, end: null, limit: pageKeysMax, bytesMax: pageBytesMax });
    for (const it of page.items) {
      const record = decodeReservedRecord(it.key, it.value);
      if (record) yield { record, revision: it.revision };
    }
    if (!page.more || page.items.length === 0) return;
    start = Buffer.concat([page.items[page.items.length - 1].key, Buffer.from([0])]);
  }
}
