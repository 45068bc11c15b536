/**
 * Ordered range reads (docs/protocol.md "RANGE"): the client opcode's request value and response
 * payload, the continuation token, and the internal RangeRequest / RangeReply between gateway and
 * storage node. All big-endian; u64 = a number < 2^53.
 */
import { ByteReader, ByteWriter, clampString, stringFieldBytes } from './bytes';
import { ProtocolError, type Status } from './constants';

/** Options byte of a RANGE request value. Unknown bits are BAD_REQUEST. */
export const RangeOptions = {
  /** The key is a prefix: the range is every key starting with it (end must be empty). */
  Prefix: 0x01,
  /** Keys and metadata only, no values. */
  KeysOnly: 0x02,
  /** Only the count of keys in the range, no items. */
  CountOnly: 0x04,
  /** Last key first. */
  Reverse: 0x08,
} as const;
export const RANGE_OPTIONS_KNOWN = RangeOptions.Prefix | RangeOptions.KeysOnly | RangeOptions.CountOnly | RangeOptions.Reverse;

/**
 * How a range read is paged and answered, as a client states it (every door and the client
 * library): the RANGE spec's limit and options, the STALE request flag, the continuation token
 * (docs/protocol.md "RANGE").
 */
export interface RangePageOptions {
  /** Keys per page; 0 / absent = the gateway's rangeKeysMax (also the cap). */
  limit?: number;
  /** Keys and metadata only (option KEYS_ONLY). */
  keysOnly?: boolean;
  /** Only `count`, a page with no items (option COUNT_ONLY). */
  countOnly?: boolean;
  /** Last key first (option REVERSE). */
  reverse?: boolean;
  /** Serve from any storage node at once, no ReadIndex round (request flag STALE): may miss acknowledged writes. */
  stale?: boolean;
  /** The previous page's token: this page continues after it (same range and options). */
  token?: Uint8Array;
}

/** A RANGE request's value, decoded. */
export interface RangeSpec {
  options: number;
  /** Keys per page asked for; 0 = the gateway's `rangeKeysMax`. Larger values are cut to it. */
  limit: number;
  /** Exclusive end; empty = no upper bound. */
  end: Buffer;
  /** Continuation token of the previous page; empty = the first page. */
  token: Buffer;
}

/** One key of a range page. */
export interface RangeItemWire {
  key: Uint8Array;
  value: Uint8Array;
  /** Mod revision. */
  revision: number;
  createRevision: number;
  version: number;
}

/** A RANGE OK payload, decoded (`revision` travels in the response header). */
export interface RangePageWire {
  /** Keys of the range from this page on (not only this page; the whole range on the first page). */
  count: number;
  /** More keys of the range follow this page: send the request again with `token`. */
  more: boolean;
  token: Buffer;
  items: RangeItemWire[];
}

/** `u8 options | u32 limit | u16 endLength | end | u16 tokenLength | token`. */
export function encodeRangeSpec(s: { options?: number; limit?: number; end?: Uint8Array; token?: Uint8Array }): Buffer {
  const end = s.end ?? Buffer.alloc(0);
  const token = s.token ?? Buffer.alloc(0);
  return new ByteWriter(1 + 4 + 2 + end.length + 2 + token.length)
    .u8(s.options ?? 0)
    .u32(s.limit ?? 0)
    .u16(end.length)
    .raw(end)
    .u16(token.length)
    .raw(token)
    .finish();
}

/** @throws ProtocolError when `b` is not exactly a range spec or sets unknown option bits. */
export function decodeRangeSpec(b: Uint8Array): RangeSpec {
  const r = new ByteReader(b);
  const options = r.u8();
  if (options & ~RANGE_OPTIONS_KNOWN) throw new ProtocolError(`unknown RANGE option bits 0x${(options & ~RANGE_OPTIONS_KNOWN).toString(16)}`);
  const limit = r.u32();
  const end = r.raw(r.u16());
  const token = r.raw(r.u16());
  r.end();
  return { options, limit, end, token };
}

/** Bytes an item adds to a RANGE payload besides its key and value. */
export const RANGE_ITEM_OVERHEAD_BYTES = 2 + 4 + 24;
/** Bytes of a RANGE payload with no items and an empty token. */
export const RANGE_PAGE_BASE_BYTES = 8 + 1 + 2 + 4;

/** `u64 count | u8 more | u16 tokenLength | token | u32 n | n × (u16 keyLength | key | u64 revision | u64 createRevision | u64 version | u32 valueLength | value)`. */
export function encodeRangePage(p: RangePageWire): Buffer {
  let size = RANGE_PAGE_BASE_BYTES + p.token.length;
  for (const it of p.items) size += RANGE_ITEM_OVERHEAD_BYTES + it.key.length + it.value.length;
  return new ByteWriter(size)
    .u64(p.count).bool(p.more).u16(p.token.length).raw(p.token)
    .list(p.items, (w, it) => w.u16(it.key.length).raw(it.key).u64(it.revision).u64(it.createRevision).u64(it.version).u32(it.value.length).raw(it.value))
    .finish();
}

/** Keys and values are views of `b`. @throws ProtocolError on truncation, overrun or trailing bytes. */
export function decodeRangePage(b: Uint8Array): RangePageWire {
  const r = new ByteReader(b);
  const count = r.u64();
  const more = r.bool();
  const token = r.raw(r.u16());
  const items: RangeItemWire[] = r.list(RANGE_ITEM_OVERHEAD_BYTES, () => ({ key: r.raw(r.u16()), revision: r.u64(), createRevision: r.u64(), version: r.u64(), value: r.raw(r.u32()) }));
  r.end();
  return { count, more, token, items };
}

const TOKEN_VERSION = 1;

/**
 * The continuation token after a page whose last key is `lastKey`: `u8 1 | lastKey`. The next
 * page starts after that key (forward) or ends before it (reverse); the client sends the same
 * range with it. Opaque to clients.
 */
export function encodeRangeToken(lastKey: Uint8Array): Buffer {
  const t = Buffer.allocUnsafe(1 + lastKey.length);
  t[0] = TOKEN_VERSION;
  t.set(lastKey, 1);
  return t;
}

/** The last key a token names. @throws ProtocolError for a token this version did not make. */
export function decodeRangeToken(token: Uint8Array): Buffer {
  if (token.length < 1 || token[0] !== TOKEN_VERSION) throw new ProtocolError('bad continuation token');
  return Buffer.from(token.buffer, token.byteOffset + 1, token.length - 1);
}

/**
 * The exclusive end of the keys starting with `prefix` (etcd's GetPrefixRangeEnd): the prefix with
 * its last byte below 0xff incremented and what follows dropped; null (no upper bound) when the
 * prefix is empty or all 0xff.
 */
export function prefixEnd(prefix: Uint8Array): Buffer | null {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] < 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1));
      end[i]++;
      return end;
    }
  }
  return null;
}

// ---- internal: gateway → storage node ------------------------------------------------------------

/** Internal message types (docs/protocol.md "Internal messages"); they share the read subject. */
export const RANGE_REQUEST_TYPE = 26;
export const RANGE_REPLY_TYPE = 27;
const VERSION = 1;

/** What a storage node reads for one page. */
export interface RangeRequest {
  /** The node answers once its applied index is ≥ this (as a ReadRequest's minIndex). */
  minIndex: number;
  start: Uint8Array;
  /** Exclusive; null = no upper bound. */
  end: Uint8Array | null;
  /** Keys at most (≥ 1). */
  limit: number;
  /** Page bytes at most (keys + values + RANGE_ITEM_OVERHEAD_BYTES each); the reply also stays under the node's payload bound. */
  bytesMax: number;
  keysOnly: boolean;
  countOnly: boolean;
  reverse: boolean;
}

/** OK: the page at `revision`; UNAVAILABLE / ERROR / TOO_LARGE: `message`. */
export interface RangeReply {
  status: Status;
  revision: number;
  count: number;
  more: boolean;
  message: string;
  items: RangeItemWire[];
}

/** `header(26) | u64 minIndex | bytes start | bool hasEnd | bytes end | u32 limit | u32 bytesMax | u8 flags (bit0 keysOnly, bit1 countOnly, bit2 reverse)`. */
export function encodeRangeRequest(q: RangeRequest): Buffer {
  const end = q.end ?? Buffer.alloc(0);
  return new ByteWriter(2 + 8 + 4 + q.start.length + 1 + 4 + end.length + 4 + 4 + 1)
    .u8(RANGE_REQUEST_TYPE)
    .u8(VERSION)
    .u64(q.minIndex)
    .bytes(q.start)
    .bool(q.end !== null)
    .bytes(end)
    .u32(q.limit)
    .u32(q.bytesMax)
    .u8((q.keysOnly ? 1 : 0) | (q.countOnly ? 2 : 0) | (q.reverse ? 4 : 0))
    .finish();
}


export function decodeRangeRequest(b: Uint8Array): RangeRequest {
  const r = new ByteReader(b);
  r.header(RANGE_REQUEST_TYPE, VERSION, 'RangeRequest');
  const minIndex = r.u64();
  const start = r.bytes();
  const hasEnd = r.bool();
  const end = r.bytes();
  const limit = r.u32();
  const bytesMax = r.u32();
  const flags = r.u8();
  r.end();
  if (flags > 7) throw new ProtocolError(`unknown RangeRequest flag bits 0x${flags.toString(16)}`);
  return { minIndex, start, end: hasEnd ? end : null, limit, bytesMax, keysOnly: (flags & 1) !== 0, countOnly: (flags & 2) !== 0, reverse: (flags & 4) !== 0 };
}

/** Bytes of a RangeReply with no items and an empty message. */
export const RANGE_REPLY_BYTES_BASE = 2 + 1 + 8 + 8 + 1 + 2 + 4;
/** Bytes an item adds to a RangeReply besides its key and value. */
export const RANGE_REPLY_ITEM_OVERHEAD_BYTES = 4 + 24 + 4;

/** `header(27) | u8 status | u64 revision | u64 count | bool more | string message | u32 n | n × (bytes key | u64 revision | u64 createRevision | u64 version | bytes value)`. */
export function encodeRangeReply(q: RangeReply): Buffer {
  const message = clampString(q.message);
  let size = RANGE_REPLY_BYTES_BASE - 2 + stringFieldBytes(message);
  for (const it of q.items) size += RANGE_REPLY_ITEM_OVERHEAD_BYTES + it.key.length + it.value.length;
  return new ByteWriter(size)
    .u8(RANGE_REPLY_TYPE).u8(VERSION).u8(q.status).u64(q.revision).u64(q.count).bool(q.more).string(message)
    .list(q.items, (w, it) => w.bytes(it.key).u64(it.revision).u64(it.createRevision).u64(it.version).bytes(it.value))
    .finish();
}

export function decodeRangeReply(b: Uint8Array): RangeReply {
  const r = new ByteReader(b);
  r.header(RANGE_REPLY_TYPE, VERSION, 'RangeReply');
  const status = r.status();
  const revision = r.u64();
  const count = r.u64();
  const more = r.bool();
  const message = r.string();
  const items: RangeItemWire[] = r.list(RANGE_REPLY_ITEM_OVERHEAD_BYTES, () => ({ key: r.bytes(), revision: r.u64(), createRevision: r.u64(), version: r.u64(), value: r.bytes() }));
  r.end();
  return { status, revision, count, more, message, items };
}
