import { busSizes, PAYLOAD_HEADROOM_BYTES, payloadBoundsProblems, type BusLimits } from '@cairn/messaging';
import { decodeFetchReply, decodeRaftMessages, decodeShipBatch, encodeFetchReply, Status, type WireEntry, type WireRaftMessage } from '@cairn/protocol';
import { MessageType } from '@cairn/raft';
import { Simulator } from '@cairn/raft/testing';
import { clampFetchEntries, packRaftMessages, packShipBatches, raftMessageBytes } from './bus-batches';

const MiB = 1024 * 1024;
/** Entry data are views of one buffer: a long log costs no memory. */
const pool = new Uint8Array(2 * MiB);
const data = (n: number) => pool.subarray(0, n);

describe('packing a replica\'s publishes under max_payload', () => {
  it('raftMessageBytes is the exact encoded size', () => {
    const m: WireRaftMessage = { type: 1, from: 'c1', to: 'c22', term: 3, logTerm: 2, index: 9, entries: [{ index: 10, term: 3, type: 1, data: data(77) }], commit: 8, reject: false, rejectHint: 0, context: 0 };
    const [one] = packRaftMessages([m], 10 * MiB);
    expect(one.length).toBe(2 + 4 + raftMessageBytes(m));
  });

  it('a leader catching up a far-behind follower (inflightMsgsMax 64, msgBytesMax 1 MiB) never produces a publish over the bound, and an entry over msgBytesMax goes alone', () => {
    const limits: BusLimits = { consensus: { msgBytesMax: MiB, entriesPerMsgMax: 1024 }, gateway: { keyBytesMax: 1024, valueBytesMax: 1.5 * MiB } };
    // The tightest max_payload start-up validation accepts for these settings.
    const bytesMax = Math.max(busSizes(limits).appendMessageBytesMax, busSizes(limits).singleItemReplyBytesMax);
    expect(payloadBoundsProblems(limits, bytesMax + PAYLOAD_HEADROOM_BYTES)).toEqual([]);

    const sim = new Simulator({ seed: 7, checkSafety: false, config: { inflightMsgsMax: 64, msgBytesMax: MiB, entriesPerMsgMax: 1024 } });
    expect(sim.elect('n1')).toBe(true);
    sim.stabilize();
    sim.crash('n3');
    // ~100 MiB of entries n3 misses: 128-256 KiB values, some tiny, one over msgBytesMax.
    const sizes: number[] = [];
    for (let i = 0; i < 600; i++) sizes.push(i === 300 ? Math.floor(1.5 * MiB) : i % 7 === 0 ? 10 : 128 * 1024 + ((i * 7919) % (128 * 1024)));
    for (let i = 0; i < sizes.length; i += 20) {
      sim.node('n1').propose(sizes.slice(i, i + 20).map(data));
      sim.stabilize();
    }
    const lastIndex = sim.node('n1').status().lastIndex;
    let publishes = 0;
    let appendsToN3 = 0;
    let aloneOverMsgBytesMax = 0;
    let maxAppendsInOneReady = 0;
    sim.onReady = (id, rd) => {
      if (id !== 'n1') return;
      const toN3: WireRaftMessage[] = rd.messages.filter((m) => m.to === 'n3');
      if (toN3.length === 0) return;
      const payloads = packRaftMessages(toN3, bytesMax);
      const decoded: WireRaftMessage[] = [];
      for (const p of payloads) {
        expect(p.length).toBeLessThanOrEqual(bytesMax);
        const msgs = decodeRaftMessages(p);
        if (msgs.some((m) => m.entries.some((e) => e.data.length > MiB))) {
          expect(msgs).toHaveLength(1);
          expect(msgs[0].entries).toHaveLength(1);
          aloneOverMsgBytesMax++;
        }
        decoded.push(...msgs);
      }
      publishes += payloads.length;
      const appends = toN3.filter((m) => m.type === MessageType.Append).length;
      appendsToN3 += appends;
      maxAppendsInOneReady = Math.max(maxAppendsInOneReady, appends);
      // Nothing lost or reordered by the split.
      expect(decoded.map((m) => [m.type, m.index, m.entries.length])).toEqual(toN3.map((m) => [m.type, m.index, m.entries.length]));
    };
    sim.restart('n3');
    for (let i = 0; i < 50 && sim.node('n3').status().lastIndex < lastIndex; i++) sim.run(5);
    expect(sim.node('n3').status().lastIndex).toBe(lastIndex);
    expect(maxAppendsInOneReady).toBeGreaterThan(32); // the pipelining window was really used
    expect(publishes).toBeGreaterThan(appendsToN3 / 2);
    expect(aloneOverMsgBytesMax).toBeGreaterThanOrEqual(1);
  });

  it('ship batches stay under the byte and count bounds, cover every entry in order, one big entry alone', () => {
    const entries: WireEntry[] = [10, 300_000, 300_000, 5, 1_200_000, 7, 7, 7].map((n, i) => ({ index: 100 + i, term: 2, type: 1, data: data(n) }));
    const payloads = packShipBatches(entries, { leaderId: 'c1', term: 2, bytesMax: MiB, entriesMax: 3 });
    const batches = payloads.map((p) => decodeShipBatch(p));
    expect(batches.map((b) => b.entries.map((e) => e.index))).toEqual([[100, 101, 102], [103], [104], [105, 106, 107]]);
    for (const [i, p] of payloads.entries()) if (batches[i].entries.length > 1) expect(p.length).toBeLessThanOrEqual(MiB);
    expect(batches.map((b) => b.commitIndex)).toEqual([102, 103, 104, 107]);
  });

  it('fetch replies are clamped to the bound, keeping at least one entry', () => {
    const entries: WireEntry[] = [400_000, 400_000, 400_000].map((n, i) => ({ index: 1 + i, term: 1, type: 1, data: data(n) }));
    const kept = clampFetchEntries(entries, MiB);
    expect(kept).toHaveLength(2);
    expect(encodeFetchReply({ status: Status.Ok, commitIndex: 3, entries: kept, message: '' }).length).toBeLessThanOrEqual(MiB);
    expect(clampFetchEntries(entries, 1000)).toHaveLength(1);
    const exact = encodeFetchReply({ status: Status.Ok, commitIndex: 3, entries, message: '' }).length;
    expect(clampFetchEntries(entries, exact)).toHaveLength(3);
    expect(clampFetchEntries(entries, exact - 1)).toHaveLength(2);
    expect(decodeFetchReply(encodeFetchReply({ status: Status.Ok, commitIndex: 3, entries: kept, message: '' })).entries).toHaveLength(2);
  });
});

