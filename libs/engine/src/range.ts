/**
 * Ordered range reads over the keydir's ordered index (docs/engine.md "Range reads"): one page of
 * the keys in [start, end), in key order or reverse, bounded by a key count and a byte budget,
 * read in one synchronous step so the page is the store at one revision.
 */
import type { Keydir, KeydirEntry } from './keydir';
import type { OrderedIndex, OrderedPosition } from './ordered-index';

export interface RangeQuery {
  /** First key of the range (inclusive); empty = from the first key. */
  start: Uint8Array;
  /** End of the range (exclusive); null = to the last key. */
  end: Uint8Array | null;
  /** Keys per page at most (≥ 1). */
  limit: number;
  /** Page bytes at most: Σ (key + value + `itemOverheadBytes`); the first item is always included. */
  bytesMax: number;
  /** Bytes counted per item on top of its key and value (the caller's encoding overhead); default 0. */
  itemOverheadBytes?: number;
  /** Keys and metadata only (values are not read). */
  keysOnly?: boolean;
  /** Only `count` (no items). */
  countOnly?: boolean;
  /** Last key first. */
  reverse?: boolean;
}

export interface RangeItem {
  key: Buffer;
  /** Empty with `keysOnly`. */
  value: Buffer;
  /** Mod revision. */
  revision: number;
  createRevision: number;
  version: number;
}

export interface RangePage {
  /** The index the page is consistent at: every write up to it, none after. */
  revision: number;
  items: RangeItem[];
  /** Keys in the whole range [start, end) (not only this page), as etcd's RangeResponse.count. */
  count: number;
  /** Keys of the range remain after this page (in its direction). */
  more: boolean;
}

/** Reads the value of a live key's entry (CRC-checked); throws on corruption. */
export type EntryReader = (key: Buffer, entry: KeydirEntry) => Buffer;

/** One page of `q` from `keydir` (whose ordered index is built), at `revision`. */
export function readRange(keydir: Keydir, order: OrderedIndex, q: RangeQuery, revision: number, readValue: EntryReader): RangePage {
  if (!(Number.isSafeInteger(q.limit) && q.limit >= 1)) throw new RangeError(`range limit must be a positive integer, got ${q.limit}`);
  if (!(q.bytesMax >= 1)) throw new RangeError(`range bytesMax must be >= 1, got ${q.bytesMax}`);
  const from = order.seek(q.start);
  const to = q.end === null ? order.end() : order.seek(q.end);
  if (!order.before(from, to)) return { revision, items: [], count: 0, more: false };
  const count = order.countBetween(from, to);
  if (q.countOnly) return { revision, items: [], count, more: false };
  const items: RangeItem[] = [];
  const overhead = q.itemOverheadBytes ?? 0;
  let bytes = 0;
  let more = false;
  let p: OrderedPosition | null = q.reverse ? order.prev(to) : from;
  while (p !== null && (q.reverse ? !order.before(p, from) : order.before(p, to))) {
    if (items.length >= q.limit) {
      more = true;
      break;
    }
    const slot = order.slotAt(p);
    const key = keydir.keyOf(slot);
    const entry = keydir.entryOf(slot);
    const value = q.keysOnly ? Buffer.alloc(0) : readValue(key, entry);
    const size = overhead + key.length + value.length;
    if (items.length > 0 && bytes + size > q.bytesMax) {
      more = true;
      break;
    }
    bytes += size;
    items.push({ key, value, revision: entry.revision, createRevision: entry.createRevision, version: entry.version });
    p = q.reverse ? order.prev(p) : order.next(p);
  }
  return { revision, items, count, more };
}
