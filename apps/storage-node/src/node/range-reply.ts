import type { BitcaskEngine } from '@cairn/engine';
import { RESERVED_KEY_PREFIX } from './lease-index';
import { RANGE_REPLY_BYTES_BASE, RANGE_REPLY_ITEM_OVERHEAD_BYTES, Status, encodeRangeReply, type RangeRequest } from '@cairn/protocol';

/** Pages of only expired keys one range reply reads past at most (then UNAVAILABLE: the gateway retries). */
const HIDDEN_PAGES_MAX = 64;
const ZERO = Buffer.from([0]);

/** How a range page treats lease state: `hidden` keys (their expiry passed) are left out. */
export interface RangeKeyRules {
  hidden?: (key: Uint8Array) => boolean;
}

/**
 * One range page as a RangeReply that never exceeds `payloadBytesMax` bytes (docs/protocol.md
 * "Range replies"): the engine reads at most `req.limit` keys and `min(req.bytesMax, what fits)`
 * bytes in one synchronous step (one revision), always at least the first key; when that key
 * alone cannot fit, the page is TOO_LARGE (the start-up payload check makes that impossible with
 * an accepted valueBytesMax). A read error (a corrupt record) is UNAVAILABLE: the gateway asks
 * another node.
 */
export function encodeBoundedRangeReply(engine: Pick<BitcaskEngine, 'range'>, req: RangeRequest, payloadBytesMax: number, onError: (e: unknown) => void, keys: RangeKeyRules = {}): Buffer {
  const fail = (status: Status, message: string) => encodeRangeReply({ status, revision: 0, count: 0, more: false, message, items: [] });
  try {
    const room = payloadBytesMax - RANGE_REPLY_BYTES_BASE;
    // A client's range ends where the reserved keyspace starts (docs/leases.md "Storage").
    const clamp = req.end === null || Buffer.compare(Buffer.from(req.end), RESERVED_KEY_PREFIX) > 0;
    if (Buffer.compare(Buffer.from(req.start), RESERVED_KEY_PREFIX) >= 0) return encodeRangeReply({ status: Status.Ok, revision: 0, count: 0, more: false, message: '', items: [] });
    const end = clamp ? RESERVED_KEY_PREFIX : req.end;
    const read = (start: Uint8Array, end: Uint8Array | null) =>
      engine.range({
        start,
        end,
        limit: Math.max(1, req.limit),
        bytesMax: Math.max(1, Math.min(req.bytesMax, room)),
        itemOverheadBytes: RANGE_REPLY_ITEM_OVERHEAD_BYTES,
        keysOnly: req.keysOnly,
        countOnly: req.countOnly,
        reverse: req.reverse,
      });
    let page = read(req.start, end);
    const first = page.items[0];
    if (page.items.length === 1 && RANGE_REPLY_ITEM_OVERHEAD_BYTES + first.key.length + first.value.length > room) {
      return fail(Status.TooLarge, `the value of one key (${first.value.length} bytes) cannot fit in one internal reply of at most ${payloadBytesMax} bytes (NATS max_payload)`);
    }
    const hidden = keys.hidden;
    if (!hidden) return encodeRangeReply({ status: Status.Ok, revision: page.revision, count: page.count, more: page.more, message: '', items: page.items });
    // Keys whose expiry passed are left out (the count still includes them until their delete
    // applies). A page of only such keys would end the client's paging (an empty page with more
    // set has no key to continue from), so the next page is read, HIDDEN_PAGES_MAX at most.
    let items = page.items.filter((it) => !hidden(it.key));
    for (let pages = 1; items.length === 0 && page.more && page.items.length > 0; pages++) {
      if (pages >= HIDDEN_PAGES_MAX) return fail(Status.Unavailable, `range pages held only expired keys whose deletes are not applied yet; retry`);
      const last = Buffer.from(page.items[page.items.length - 1].key);
      page = req.reverse ? read(req.start, last) : read(Buffer.concat([last, ZERO]), end);
      items = page.items.filter((it) => !hidden(it.key));
    }
    return encodeRangeReply({ status: Status.Ok, revision: page.revision, count: page.count, more: page.more, message: '', items });
  } catch (e) {
    onError(e);
    return fail(Status.Unavailable, `range read failed: ${(e as Error).message}`);
  }
}
