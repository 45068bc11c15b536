import { RESERVED_KEY_MESSAGE, Status, decodeRangeToken, isReservedKey, encodeRangeToken, prefixEnd, type RangeItemWire, type RangePageOptions, type RangeReply, type RangeRequest } from '@cairn/protocol';

/** Bounds of one range page at a gateway (config `gateway.rangeKeysMax`, `gateway.rangeBytesMax`). */
export interface RangeLimits {
  /** Keys per page at most; a request's limit above it (or 0) is cut to it. */
  keysMax: number;
  /** Page bytes at most (keys + values + 32 bytes a key); a storage node also stays under its NATS payload bound. The first key is always sent. */
  bytesMax: number;
}

export const RANGE_LIMITS_DEFAULT: RangeLimits = Object.freeze({ keysMax: 1000, bytesMax: 512 * 1024 });

/** A range read as every door asks it (docs/protocol.md "RANGE"). */
export interface KvRangeQuery extends RangePageOptions {
  /** First key (inclusive), or the prefix with `prefix`; empty = from the first key. */
  start: Uint8Array;
  /** Exclusive end; null or empty = no upper bound. Must be empty with `prefix`. */
  end?: Uint8Array | null;
  prefix?: boolean;
}

/** One page: OK with items, `count` (keys of the range from this page on), `more` and the next page's `token` (empty when no more); else an error status and message. */
export interface KvRangeResult {
  status: Status;
  /** OK: the index the page is consistent at. */
  revision: number;
  count: number;
  more: boolean;
  token: Buffer;
  items: RangeItemWire[];
  message: string;
}

export function rangeFailure(status: Status, message: string): KvRangeResult {
  return { status, revision: 0, count: 0, more: false, token: Buffer.alloc(0), items: [], message };
}

/**
 * The storage-node request of a page of `q` (without minIndex), or a BAD_REQUEST / TOO_LARGE
 * result: keys over keyBytesMax, an end with a prefix, a start in the reserved keyspace (eight 0xff
 * bytes first), a token outside the range.
 */
export function planRange(q: KvRangeQuery, keyBytesMax: number, limits: RangeLimits): Omit<RangeRequest, 'minIndex'> | KvRangeResult {
  const givenEnd = q.end && q.end.length > 0 ? Buffer.from(q.end) : null;
  if (q.start.length > keyBytesMax) return rangeFailure(Status.TooLarge, `range start of ${q.start.length} bytes exceeds keyBytesMax ${keyBytesMax}`);
  if (givenEnd && givenEnd.length > keyBytesMax) return rangeFailure(Status.TooLarge, `range end of ${givenEnd.length} bytes exceeds keyBytesMax ${keyBytesMax}`);
  if (q.prefix && givenEnd) return rangeFailure(Status.BadRequest, 'a prefix range takes no end');
  // A range may reach up to the reserved keyspace (storage nodes stop there) but not start in it.
  if (isReservedKey(q.start)) return rangeFailure(Status.BadRequest, `range start: ${RESERVED_KEY_MESSAGE}`);
  const limit = q.limit ?? 0;
  if (!Number.isSafeInteger(limit) || limit < 0) return rangeFailure(Status.BadRequest, `range limit must be a non-negative integer, got ${limit}`);
  let start = Buffer.from(q.start);
  let end = q.prefix ? prefixEnd(start) : givenEnd;
  if (q.token && q.token.length > 0 && !q.countOnly) {
    let last: Buffer;
    try {
      last = decodeRangeToken(q.token);
    } catch (e) {
      return rangeFailure(Status.BadRequest, (e as Error).message);
    }
    const inside = Buffer.compare(last, start) >= 0 && (end === null || Buffer.compare(last, end) < 0);
    if (!inside) return rangeFailure(Status.BadRequest, 'continuation token outside the range');
    // The next page starts right after the last key sent (forward) or ends at it (reverse).
    if (q.reverse) end = last;
    else start = Buffer.concat([last, Buffer.from([0])]);
  }
  return {
    start,
    end,
    limit: limit === 0 || limit > limits.keysMax ? limits.keysMax : limit,
    bytesMax: limits.bytesMax,
    keysOnly: q.keysOnly === true,
    countOnly: q.countOnly === true,
    reverse: q.reverse === true,
  };
}

/** The door-facing result of a storage node's page. */
export function rangeResult(reply: RangeReply): KvRangeResult {
  if (reply.status !== Status.Ok) return rangeFailure(reply.status, reply.message);
  const last = reply.items[reply.items.length - 1];
  const token = reply.more && last ? encodeRangeToken(last.key) : Buffer.alloc(0);
  return { status: Status.Ok, revision: reply.revision, count: reply.count, more: reply.more && last !== undefined, token, items: reply.items, message: '' };
}
