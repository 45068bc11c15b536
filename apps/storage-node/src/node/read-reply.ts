import { READ_REPLY_BYTES_BASE, READ_REPLY_EXPIRY_BYTES, READ_REPLY_WITHHELD_BYTES, Status, encodeReadReply, readResultBytes, type ReadReply } from '@cairn/protocol';

type ReadResult = ReadReply['results'][number];

/**
 * Encodes a ReadReply that never exceeds `payloadBytesMax` bytes (docs/protocol.md, "Message size
 * bounds on the internal bus"): results are computed in request order by `resultAt(i)` and added
 * while they fit; the reply holds that prefix of the `count` reads and the requester asks again for
 * the rest (results not included are never computed, so no value is read for nothing). The first
 * result is always included: when even it alone cannot fit, it is replaced by TOO_LARGE for that
 * read alone (the start-up payload check makes that impossible with a sane configuration).
 *
 * Read flow control (docs/protocol.md, "Read flow control"): `valueBytesMaxAt(i)` is the bound the
 * requester reserved for read i's value (undefined: none). An OK value above it is withheld: the
 * result is OK with an empty value and `withheldBytes` = the value's size, so the requester never
 * receives more value bytes than it reserved and can reserve exactly that much before asking again.
 * `withExpiry` (the request asked for it): each result's `expiresAtMs` goes in the reply's expiry
 * trailer, its 8 bytes counted against the bound.
 * @returns the encoded reply and how many reads it answers (≥ 1 when `count` ≥ 1).
 */
export function encodeBoundedReadReply(
  appliedIndex: number,
  count: number,
  resultAt: (i: number) => ReadResult,
  payloadBytesMax: number,
  valueBytesMaxAt: (i: number) => number | undefined = () => undefined,
  withExpiry = false,
): { reply: Buffer; answered: number } {
  const trailers = READ_REPLY_WITHHELD_BYTES + (withExpiry ? READ_REPLY_EXPIRY_BYTES : 0);
  const results: ReadResult[] = [];
  let bytes = READ_REPLY_BYTES_BASE;
  for (let i = 0; i < count; i++) {
    let r = resultAt(i);
    const valueBytesMax = valueBytesMaxAt(i);
    if (r.status === Status.Ok && valueBytesMax !== undefined && r.value.length > valueBytesMax) {
      r = { status: Status.Ok, revision: 0, value: Buffer.alloc(0), message: '', withheldBytes: r.value.length, expiresAtMs: r.expiresAtMs };
    }
    // Counted as if a trailer will be present: a reply with no withheld result is only smaller.
    let size = readResultBytes(r) + trailers;
    if (bytes + size > payloadBytesMax) {
      if (i > 0) break;
      r = { status: Status.TooLarge, revision: 0, value: Buffer.alloc(0), message: `the value (${r.value.length} bytes) cannot fit in one internal reply of at most ${payloadBytesMax} bytes (NATS max_payload)` };
      size = readResultBytes(r) + trailers;
    }
    results.push(r);
    bytes += size;
  }
  return { reply: encodeReadReply(withExpiry ? { appliedIndex, results, withExpiry } : { appliedIndex, results }), answered: results.length };
}
