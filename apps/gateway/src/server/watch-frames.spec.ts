import { RESPONSE_HEADER_BYTES, ResponseDecoder, ResponseFlags, Status, WATCH_FRAME_IDS_MAX, WatchFrameKind, decodeWatchFrame, encodeWatchEventsFrame, encodeWatchProgressFrame, WatchEventType, type Response, type WatchEvent } from '@cairn/protocol';
import { WATCH_BATCH_BYTES_MAX, WatchFrameBatch, type WatchBatchSlot } from './watch-frames';

/** A batch whose writes are recorded; `flushAll` runs every write's onFlushed (the kernel took them). */
function recorder() {
  const writes: { frames: Buffer; onFlushed: (() => void) | undefined }[] = [];
  const batch = new WatchFrameBatch((frames, onFlushed) => writes.push({ frames, onFlushed }));
  const decode = (b: Buffer): Response[] => new ResponseDecoder().push(b);
  return { batch, writes, decode, flushAll: () => writes.forEach((w) => w.onFlushed?.()) };
}

const turnEnd = () => new Promise<void>((r) => process.nextTick(r));
const eventArray: WatchEvent[] = [{ type: WatchEventType.Put, key: Buffer.from('w/1'), value: Buffer.from('v'), modRevision: 7, createRevision: 7, version: 1, prevValue: null }];
const events = encodeWatchEventsFrame(eventArray);
const slot = (): WatchBatchSlot => ({ generation: -1, lastEntry: -1 });

describe('WatchFrameBatch', () => {
  it("writes one turn's frames as one buffer, in order, each a whole response with its watch id; every flushed callback runs once the write is flushed", async () => {
    const { batch, writes, decode, flushAll } = recorder();
    const flushed: number[] = [];
    for (const id of [3, 1, 2]) batch.add(id, 7, events, () => flushed.push(id));
    batch.add(1, 9, encodeWatchProgressFrame());
    expect(writes).toHaveLength(0);
    await turnEnd();
    expect(writes).toHaveLength(1);
    const frames = decode(writes[0].frames);
    expect(frames.map((f) => [f.requestId, f.revision, f.status, f.flags])).toEqual([
      [3, 7, Status.Ok, ResponseFlags.Watch],
      [1, 7, Status.Ok, ResponseFlags.Watch],
      [2, 7, Status.Ok, ResponseFlags.Watch],
      [1, 9, Status.Ok, ResponseFlags.Watch],
    ]);
    expect(frames.slice(0, 3).every((f) => f.payload.equals(events))).toBe(true);
    expect(decodeWatchFrame(frames[3].payload).kind).toBe(decodeWatchFrame(encodeWatchProgressFrame()).kind);
    expect(flushed).toEqual([]);
    flushAll();
    expect(flushed).toEqual([3, 1, 2]);
    // The next turn starts a new batch.
    batch.add(4, 10, events);
    await turnEnd();
    expect(writes).toHaveLength(2);
    expect(decode(writes[1].frames).map((f) => f.requestId)).toEqual([4]);
  });

  it('flush() writes what is queued at once (before another reply or a close); the turn-end flush then writes nothing', async () => {
    const { batch, writes, decode } = recorder();
    batch.add(1, 7, events);
    batch.flush();
    expect(writes).toHaveLength(1);
    expect(batch.size()).toBe(0);
    batch.flush();
    await turnEnd();
    expect(writes).toHaveLength(1);
    expect(decode(writes[0].frames).map((f) => f.requestId)).toEqual([1]);
  });

  it('a batch is written before a frame that would take it past WATCH_BATCH_BYTES_MAX: no write is larger than the bound plus one frame', async () => {
    const { batch, writes, decode } = recorder();
    const big = Buffer.alloc(40 * 1024, 1);
    big[0] = 0x02; // any payload: the batch does not read it
    const n = Math.ceil((3 * WATCH_BATCH_BYTES_MAX) / (big.length + RESPONSE_HEADER_BYTES));
    for (let i = 0; i < n; i++) batch.add(i, i, big);
    await turnEnd();
    expect(writes.length).toBeGreaterThanOrEqual(3);
    for (const w of writes) expect(w.frames.length).toBeLessThan(WATCH_BATCH_BYTES_MAX + big.length + RESPONSE_HEADER_BYTES);
    for (const w of writes) expect(w.frames.length).toBeLessThanOrEqual(WATCH_BATCH_BYTES_MAX); // frames smaller than the bound: written before it is passed
    expect(writes.flatMap((w) => decode(w.frames).map((f) => f.requestId))).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it('watches that take SHARED_EVENTS and get the same events array share ONE frame naming them all; the events are written once', async () => {
    const { batch, writes, decode, flushAll } = recorder();
    const flushed: number[] = [];
    const other: WatchEvent[] = [{ ...eventArray[0], key: Buffer.from('x/1') }];
    const slots = new Map([1, 2, 3, 4, 5].map((id) => [id, slot()]));
    let before = 0;
    for (const id of [1, 2, 3]) {
      const more = batch.bytesToAdd(eventArray, events.length, slots.get(id)!);
      batch.addShared(id, 7, eventArray, events, slots.get(id)!, () => flushed.push(id));
      expect(batch.pendingBytes() - before).toBe(more); // what refused() is asked about is what is written
      before = batch.pendingBytes();
    }
    batch.addShared(4, 7, other, encodeWatchEventsFrame(other), slots.get(4)!); // another array: its own frame
    batch.add(5, 7, events, undefined, slots.get(5)!); // a watch without the option: a plain EVENTS frame
    expect(batch.size()).toBe(3);
    await turnEnd();
    expect(writes).toHaveLength(1);
    expect(writes[0].frames.length).toBe(before + RESPONSE_HEADER_BYTES + encodeWatchEventsFrame(other).length + RESPONSE_HEADER_BYTES + events.length);
    const frames = decode(writes[0].frames);
    expect(frames.map((f) => [f.requestId, f.revision, f.flags])).toEqual([
      [1, 7, ResponseFlags.Watch],
      [4, 7, ResponseFlags.Watch],
      [5, 7, ResponseFlags.Watch],
    ]);
    expect(decodeWatchFrame(frames[0].payload)).toEqual({ kind: WatchFrameKind.SharedEvents, watchIds: [1, 2, 3], events: eventArray });
    expect(frames[1].payload.equals(encodeWatchEventsFrame(other))).toBe(true); // a group of one is a plain EVENTS frame
    expect(frames[2].payload.equals(events)).toBe(true);
    flushAll();
    expect(flushed).toEqual([1, 2, 3]);
  });

  it("a watch does not join a shared frame queued before one of its own frames (its frames keep their order); a full frame starts another", async () => {
    const { batch, writes, decode } = recorder();
    const a = slot();
    const b = slot();
    batch.addShared(1, 7, eventArray, events, a);
    batch.add(2, 6, encodeWatchProgressFrame(), undefined, b); // watch 2's progress, queued after the shared frame
    batch.addShared(2, 7, eventArray, events, b);
    await turnEnd();
    const frames = decode(writes[0].frames);
    expect(frames.map((f) => [f.requestId, decodeWatchFrame(f.payload).kind])).toEqual([
      [1, WatchFrameKind.Events],
      [2, WatchFrameKind.Progress],
      [2, WatchFrameKind.Events],
    ]);
    // A shared frame whose events alone pass WATCH_BATCH_BYTES_MAX stays open to the turn's other watches.
    const bigArray: WatchEvent[] = [{ ...eventArray[0], value: Buffer.alloc(WATCH_BATCH_BYTES_MAX, 1) }];
    const bigFrame = encodeWatchEventsFrame(bigArray);
    batch.add(9, 5, encodeWatchProgressFrame());
    for (const id of [1, 2, 3]) batch.addShared(id, 7, bigArray, bigFrame, slot());
    await turnEnd();
    expect(writes.slice(1).map((w) => decode(w.frames).map((f) => decodeWatchFrame(f.payload)).map((f) => (f.kind === WatchFrameKind.SharedEvents ? f.watchIds : f.kind)))).toEqual([[WatchFrameKind.Progress], [[1, 2, 3]]]);
    // WATCH_FRAME_IDS_MAX ids at most per frame.
    const n = WATCH_FRAME_IDS_MAX + 3;
    for (let id = 1; id <= n; id++) batch.addShared(id, 7, eventArray, events, slot());
    await turnEnd();
    const shared = decode(writes[3].frames).map((f) => decodeWatchFrame(f.payload));
    expect(shared.map((f) => (f.kind === WatchFrameKind.SharedEvents ? f.watchIds.length : f.kind === WatchFrameKind.Events ? 1 : 0))).toEqual([WATCH_FRAME_IDS_MAX, 3]);
  });
});
