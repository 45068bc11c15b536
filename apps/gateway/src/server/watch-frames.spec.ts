import { RESPONSE_HEADER_BYTES, ResponseDecoder, ResponseFlags, Status, decodeWatchFrame, encodeWatchEventsFrame, encodeWatchProgressFrame, WatchEventType, type Response } from '@cairn/protocol';
import { WATCH_BATCH_BYTES_MAX, WatchFrameBatch } from './watch-frames';

/** A batch whose writes are recorded; `flushAll` runs every write's onFlushed (the kernel took them). */
function recorder() {
  const writes: { frames: Buffer; onFlushed: (() => void) | undefined }[] = [];
  const batch = new WatchFrameBatch((frames, onFlushed) => writes.push({ frames, onFlushed }));
  const decode = (b: Buffer): Response[] => new ResponseDecoder().push(b);
  return { batch, writes, decode, flushAll: () => writes.forEach((w) => w.onFlushed?.()) };
}

const turnEnd = () => new Promise<void>((r) => process.nextTick(r));
const events = encodeWatchEventsFrame([{ type: WatchEventType.Put, key: Buffer.from('w/1'), value: Buffer.from('v'), modRevision: 7, createRevision: 7, version: 1, prevValue: null }]);

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

  it('a batch is written as soon as it holds WATCH_BATCH_BYTES_MAX bytes: no write is larger than the bound plus one frame', async () => {
    const { batch, writes, decode } = recorder();
    const big = Buffer.alloc(40 * 1024, 1);
    big[0] = 0x02; // any payload: the batch does not read it
    const n = Math.ceil((3 * WATCH_BATCH_BYTES_MAX) / (big.length + RESPONSE_HEADER_BYTES));
    for (let i = 0; i < n; i++) batch.add(i, i, big);
    await turnEnd();
    expect(writes.length).toBeGreaterThanOrEqual(3);
    for (const w of writes) expect(w.frames.length).toBeLessThan(WATCH_BATCH_BYTES_MAX + big.length + RESPONSE_HEADER_BYTES);
    expect(writes.flatMap((w) => decode(w.frames).map((f) => f.requestId))).toEqual(Array.from({ length: n }, (_, i) => i));
  });
});
