import { encodeCommand, encodeRaftMessages, CommandOp, encodeFetchReply, encodeShipBatch, encodeReadReply, encodeSnapshotChunkReply, SNAPSHOT_CHUNK_BYTES_MAX, Status } from '@cairn/protocol';
import { PAYLOAD_HEADROOM_BYTES, PayloadBoundsError, assertPayloadBounds, busSizes, payloadBoundsProblems, type BusLimits } from './index';

const MiB = 1024 * 1024;
const defaults: BusLimits = { consensus: { msgBytesMax: MiB, entriesPerMsgMax: 1024 }, gateway: { keyBytesMax: 1024, valueBytesMax: MiB } };
const id64 = 'x'.repeat(64);

describe('payload bounds (start-up check of the settings against max_payload)', () => {
  it('the defaults fit the 8 MiB the launchers configure, not nats-server\'s default 1 MiB', () => {
    expect(payloadBoundsProblems(defaults, 8 * MiB)).toEqual([]);
    const problems = payloadBoundsProblems(defaults, MiB);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^gateway\.valueBytesMax \(1048576\) \+ gateway\.keyBytesMax \(1024\)/);
    expect(problems[1]).toMatch(/^consensus\.msgBytesMax \(1048576\) \+ consensus\.entriesPerMsgMax \(1024\)/);
    expect(() => assertPayloadBounds(defaults, MiB)).toThrow(PayloadBoundsError);
    expect(() => assertPayloadBounds(defaults, MiB)).toThrow(/max_payload of 1048576 bytes/);
  });

  it('names only the setting that does not fit', () => {
    const small: BusLimits = { consensus: { msgBytesMax: 512 * 1024, entriesPerMsgMax: 1024 }, gateway: { keyBytesMax: 1024, valueBytesMax: 256 * 1024 } };
    expect(payloadBoundsProblems(small, MiB)).toEqual([]);
    const bigMsg = { ...small, consensus: { msgBytesMax: MiB, entriesPerMsgMax: 1024 } };
    expect(payloadBoundsProblems(bigMsg, MiB)).toEqual([expect.stringMatching(/^consensus\.msgBytesMax/)]);
  });

  it('a txn result must fit an outcome reply alone: gateway.txnResultBytesMax is named when it does not', () => {
    const small: BusLimits = { consensus: { msgBytesMax: 512 * 1024, entriesPerMsgMax: 1024 }, gateway: { keyBytesMax: 1024, valueBytesMax: 256 * 1024, txnResultBytesMax: MiB - 1024 } };
    expect(payloadBoundsProblems(small, 8 * MiB)).toEqual([]);
    expect(payloadBoundsProblems(small, MiB)).toEqual([expect.stringMatching(/^gateway\.txnResultBytesMax \(1047552\) \+ 27 bytes of outcome reply/)]);
    const edge = MiB - 1024 + 27 + PAYLOAD_HEADROOM_BYTES;
    expect(payloadBoundsProblems(small, edge)).toEqual([]);
    expect(payloadBoundsProblems(small, edge - 1)).toHaveLength(1);
  });

  it('each bound is exact at the edge: one byte less max_payload is refused', () => {
    const s = busSizes(defaults);
    const need = Math.max(s.appendMessageBytesMax, s.singleItemReplyBytesMax) + PAYLOAD_HEADROOM_BYTES;
    expect(payloadBoundsProblems(defaults, need)).toEqual([]);
    expect(payloadBoundsProblems(defaults, need - 1)).not.toEqual([]);
  });

  it('the computed sizes are upper bounds of the real encodings', () => {
    const { keyBytesMax, valueBytesMax } = defaults.gateway;
    const s = busSizes(defaults);
    const data = encodeCommand({ op: CommandOp.Set, key: Buffer.alloc(keyBytesMax), value: Buffer.alloc(valueBytesMax), session: { sessionId: 2n ** 64n - 1n, seq: 2 ** 53 - 1, firstPendingSeq: 1 } });
    expect(data.length).toBeLessThanOrEqual(s.entryDataBytesMax);
    const entry = { index: 2 ** 53 - 1, term: 2 ** 53 - 1, type: 1, data: Buffer.alloc(s.entryDataBytesMax) };
    const append = (entries: (typeof entry)[]) =>
      encodeRaftMessages([{ type: 1, from: id64, to: id64, term: 1, logTerm: 1, index: 1, entries, commit: 1, reject: false, rejectHint: 0, context: 0 }]).length;
    expect(append([entry])).toBeLessThanOrEqual(s.appendMessageBytesMax);
    // A full Append: entriesPerMsgMax entries whose data adds up to msgBytesMax.
    const n = defaults.consensus.entriesPerMsgMax;
    const full = Array.from({ length: n }, (_, i) => ({ ...entry, data: Buffer.alloc(Math.floor(defaults.consensus.msgBytesMax / n) + (i === 0 ? defaults.consensus.msgBytesMax % n : 0)) }));
    expect(append(full)).toBeLessThanOrEqual(s.appendMessageBytesMax);
    expect(encodeShipBatch({ leaderId: id64, term: 1, commitIndex: 1, entries: [entry] }).length).toBeLessThanOrEqual(s.singleItemReplyBytesMax);
    expect(encodeFetchReply({ status: Status.Error, commitIndex: 1, entries: [entry], message: 'm'.repeat(1024) }).length).toBeLessThanOrEqual(s.singleItemReplyBytesMax);
    expect(encodeReadReply({ appliedIndex: 1, results: [{ status: Status.Ok, revision: 1, value: Buffer.alloc(valueBytesMax), message: 'm'.repeat(1024) }] }).length).toBeLessThanOrEqual(s.singleItemReplyBytesMax);
    expect(encodeSnapshotChunkReply({ status: Status.Ok, message: '', data: Buffer.alloc(SNAPSHOT_CHUNK_BYTES_MAX + 64) }).length).toBeLessThanOrEqual(s.singleItemReplyBytesMax);
  });
});
