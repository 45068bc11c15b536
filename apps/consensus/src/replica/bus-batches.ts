import { encodeRaftMessages, encodeShipBatch, type WireEntry, type WireRaftMessage } from '@cairn/protocol';

/**
 * Splitting what a replica publishes into payloads that fit NATS (docs/protocol.md, "Message size
 * bounds on the internal bus"). Sizes are the exact encodings of libs/protocol internal.ts.
 */

/** `u64 index | u64 term | u8 type | u32 length` around each entry's data. */
const ENTRY_FRAMING_BYTES = 8 + 8 + 1 + 4;
/** `u8 type | u8 version` + `u32 count` of a RaftMessages batch. */
const RAFT_BATCH_HEADER_BYTES = 2 + 4;

/** Encoded bytes of `entries` as a list (count + each entry). */
export function wireEntriesBytes(entries: readonly WireEntry[]): number {
  let n = 4;
  for (const e of entries) n += ENTRY_FRAMING_BYTES + e.data.length;
  return n;
}

/** Encoded bytes of one Raft message inside a RaftMessages batch. */
export function raftMessageBytes(m: WireRaftMessage): number {
  return 1 + 2 + Buffer.byteLength(m.from) + 2 + Buffer.byteLength(m.to) + 8 * 4 + 1 + 8 + 8 + wireEntriesBytes(m.entries);
}

/**
 * Packs one peer's Raft messages, in order, into RaftMessages payloads of at most `bytesMax`
 * each (greedy; order kept so an Append pipeline arrives in sequence). A message that alone is
 * larger than `bytesMax` goes alone: start-up validation (assertPayloadBounds) makes that
 * impossible for the configured limits, and if the server's max_payload shrank since, the
 * publish fails and is handled as a lost message (Raft retransmits).
 */
export function packRaftMessages(msgs: readonly WireRaftMessage[], bytesMax: number): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  let bytes = RAFT_BATCH_HEADER_BYTES;
  for (let i = 0; i < msgs.length; i++) {
    const b = raftMessageBytes(msgs[i]);
    if (i > start && bytes + b > bytesMax) {
      out.push(encodeRaftMessages(msgs.slice(start, i) as WireRaftMessage[]));
      start = i;
      bytes = RAFT_BATCH_HEADER_BYTES;
    }
    bytes += b;
  }
  if (start < msgs.length) out.push(encodeRaftMessages(msgs.slice(start) as WireRaftMessage[]));
  return out;
}

/**
 * Packs committed entries into ShipBatch payloads of at most `bytesMax` bytes and `entriesMax`
 * entries each, in index order; each batch's commitIndex is its last entry's index. One entry
 * larger than the bound goes alone (see packRaftMessages).
 */
export function packShipBatches(entries: readonly WireEntry[], o: { leaderId: string; term: number; bytesMax: number; entriesMax: number }): Buffer[] {
  const fixed = 2 + 2 + Buffer.byteLength(o.leaderId) + 16 + 4;
  const out: Buffer[] = [];
  let start = 0;
  while (start < entries.length) {
    let bytes = fixed;
    let end = start;
    while (end < entries.length && end - start < o.entriesMax && (end === start || bytes + ENTRY_FRAMING_BYTES + entries[end].data.length <= o.bytesMax)) {
      bytes += ENTRY_FRAMING_BYTES + entries[end].data.length;
      end++;
    }
    const batch = entries.slice(start, end) as WireEntry[];
    out.push(encodeShipBatch({ leaderId: o.leaderId, term: o.term, commitIndex: batch[batch.length - 1].index, entries: batch }));
    start = end;
  }
  return out;
}

/**
 * The longest prefix of `entries` (at least one) whose FetchReply encoding, with a `messageBytes`
 * message, stays within `bytesMax`.
 */
export function clampFetchEntries<E extends WireEntry>(entries: E[], bytesMax: number, messageBytes = 0): E[] {
  let bytes = 2 + 1 + 8 + 2 + messageBytes + 4;
  for (let i = 0; i < entries.length; i++) {
    bytes += ENTRY_FRAMING_BYTES + entries[i].data.length;
    if (i > 0 && bytes > bytesMax) return entries.slice(0, i);
  }
  return entries;
}
