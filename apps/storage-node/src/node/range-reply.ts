import type { BitcaskEngine } from '@cairn/engine';
import { RANGE_REPLY_BYTES_BASE, RANGE_REPLY_ITEM_OVERHEAD_BYTES, Status, encodeRangeReply, type RangeRequest } from '@cairn/protocol';

/**
 * One range page as a RangeReply that never exceeds `payloadBytesMax` bytes (docs/protocol.md
 * "Range replies"): the engine reads at most `req.limit` keys and `min(req.bytesMax, what fits)`
 * bytes in one synchronous step (one revision), always at least the first key; when that key
 * alone cannot fit, the page is TOO_LARGE (the start-up payload check makes that impossible with
 * an accepted valueBytesMax). A read error (a corrupt record) is UNAVAILABLE: the gateway asks
 * another node.
 */
export function encodeBoundedRangeReply(engine: Pick<BitcaskEngine, 'range'>, req: RangeRequest, payloadBytesMax: number, onError: (e: unknown) => void): Buffer {
  const fail = (status: Status, message: string) => encodeRangeReply({ status, revision: 0, count: 0, more: false, message, items: [] });
  try {
    const room = payloadBytesMax - RANGE_REPLY_BYTES_BASE;
    const page = engine.range({
      start: req.start,
      end: req.end,
      limit: Math.max(1, req.limit),
      bytesMax: Math.max(1, Math.min(req.bytesMax, room)),
      itemOverheadBytes: RANGE_REPLY_ITEM_OVERHEAD_BYTES,
      keysOnly: req.keysOnly,
      countOnly: req.countOnly,
      reverse: req.reverse,
    });
    const first = page.items[0];
    if (page.items.length === 1 && RANGE_REPLY_ITEM_OVERHEAD_BYTES + first.key.length + first.value.length > room) {
      return fail(Status.TooLarge, `the value of one key (${first.value.length} bytes) cannot fit in one internal reply of at most ${payloadBytesMax} bytes (NATS max_payload)`);
    }
    return encodeRangeReply({ status: Status.Ok, revision: page.revision, count: page.count, more: page.more, message: '', items: page.items });
  } catch (e) {
    onError(e);
    return fail(Status.Unavailable, `range read failed: ${(e as Error).message}`);
  }
}
