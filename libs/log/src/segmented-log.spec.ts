import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LogClosedError, LogCorruptionError, RecordTooLargeError, SegmentedLog, type SegmentedLogOptions } from './index';
import { FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES, segmentFileName } from './format';
import { VirtualClock } from './testing';

const tmpDir = (): string => fs.mkdtempSync(os.tmpdir() + '/cairn-');
const rec = (i: number, size = 10): Buffer => Buffer.alloc(size, `record-${i}|`);

describe('SegmentedLog', () => {
  let dir: string;
  let log: SegmentedLog | null;
  const open = async (o: Partial<SegmentedLogOptions> = {}): Promise<SegmentedLog> => {
    log = await SegmentedLog.open({ dir, ...o });
    return log;
  };
  beforeEach(() => {
    dir = tmpDir();
    log = null;
  });
  afterEach(async () => {
    await log?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates a missing dir as a new, empty log starting at firstIndex', async () => {
    dir = path.join(dir, 'a', 'b');
    const l = await open({ firstIndex: 42 });
    expect(l.firstIndex()).toBe(42);
    expect(l.lastIndex()).toBe(41);
    expect(l.recovery).toEqual({ segmentsScanned: 0, recordsRecovered: 0, tornTail: null });
    expect(fs.readdirSync(dir)).toEqual([segmentFileName(42)]);
    await l.close();
    const again = await open({ firstIndex: 7 });
    expect(again.firstIndex()).toBe(42);
    expect(again.lastIndex()).toBe(41);
  });

  it('appends, reads and reopens across segment rolls', async () => {
    const l = await open({ segmentBytesMax: 200 });
    const p1 = l.append([rec(1), rec(2), rec(3)]);
    expect(l.lastIndex()).toBe(3); // assigned synchronously
    expect(l.read(2)).toEqual(rec(2)); // served from the pending buffer
    const positions = await p1;
    expect(positions.map((p) => p.index)).toEqual([1, 2, 3]);
    expect(positions[0]).toEqual({ index: 1, segmentId: 1, offset: SEGMENT_HEADER_BYTES, sizeBytes: FRAME_HEADER_BYTES + 10 });
    for (let i = 4; i <= 40; i++) await l.append([rec(i, i)]);
    const segs = l.segments();
    expect(segs.length).toBeGreaterThan(3);
    for (let s = 1; s < segs.length; s++) expect(segs[s].firstIndex).toBe(segs[s - 1].lastIndex + 1);
    for (const s of segs.slice(0, -1)) expect(s.sizeBytes).toBeLessThanOrEqual(200);
    expect(l.sizeBytes()).toBe(segs.reduce((a, s) => a + s.sizeBytes, 0));
    await l.close();
    const r = await open({ segmentBytesMax: 200 });
    expect(r.recovery.segmentsScanned).toBe(segs.length);
    expect(r.recovery.recordsRecovered).toBe(40);
    expect(r.firstIndex()).toBe(1);
    expect(r.lastIndex()).toBe(40);
    for (let i = 1; i <= 40; i++) expect(r.read(i)).toEqual(i <= 3 ? rec(i) : rec(i, i));
    expect(r.segments()).toEqual(segs);
    await r.append([rec(41)]);
    expect(r.read(41)).toEqual(rec(41));
  });

  it('a record larger than segmentBytesMax gets a segment of its own', async () => {
    const l = await open({ segmentBytesMax: 64 });
    await l.append([rec(1, 100), rec(2, 100), rec(3, 1)]);
    expect(l.segments().map((s) => [s.firstIndex, s.lastIndex])).toEqual([[1, 1], [2, 2], [3, 3]]);
    expect(l.read(2)).toEqual(rec(2, 100));
  });

  it('readAt reads by position, including pending records', async () => {
    const l = await open({ segmentBytesMax: 100 });
    const positions = await l.append([rec(1), rec(2), rec(3), rec(4)]);
    for (const p of positions) {
      expect(l.readAt(p.segmentId, p.offset)).toEqual(rec(p.index));
      expect(l.readAt(p.segmentId, p.offset, p.sizeBytes)).toEqual(rec(p.index));
    }
    // Learn where the next record goes, then read it back by position before it is written.
    const [p5] = await l.append([rec(5)]);
    const p6 = l.append([rec(6)]);
    const seg = l.segments().at(-1)!;
    const offsetOf6 = seg.firstIndex === 6 ? SEGMENT_HEADER_BYTES : p5.offset + p5.sizeBytes;
    expect(l.readAt(seg.segmentId, offsetOf6)).toEqual(rec(6));
    expect((await p6)[0]).toEqual({ index: 6, segmentId: seg.segmentId, offset: offsetOf6, sizeBytes: FRAME_HEADER_BYTES + 10 });
    expect(() => l.readAt(999, SEGMENT_HEADER_BYTES)).toThrow(RangeError);
    expect(() => l.readAt(1, 1)).toThrow(RangeError);
  });

  it('readAt and read raise LogCorruptionError (never wrong bytes) on a byte flipped under an open log', async () => {
    const l = await open();
    const pos = await l.append([rec(1), rec(2), rec(3)]);
    const file = path.join(dir, segmentFileName(1));
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([0x00]), 0, 1, pos[1].offset + FRAME_HEADER_BYTES + 2);
    fs.closeSync(fd);
    let err: unknown;
    try {
      l.readAt(pos[1].segmentId, pos[1].offset);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LogCorruptionError);
    expect(err).toMatchObject({ code: 'LOG_CORRUPTION', segmentPath: file, offset: pos[1].offset, reason: 'record CRC32 mismatch' });
    expect(() => l.read(2)).toThrow(LogCorruptionError);
    expect(l.read(1)).toEqual(rec(1));
    expect(l.read(3)).toEqual(rec(3));
  });

  it('enqueue returns positions synchronously; position(index) agrees', async () => {
    const l = await open({ segmentBytesMax: 80 });
    const { positions, durable } = l.enqueue([rec(1), rec(2), rec(3), rec(4)]);
    expect(positions.map((p) => p.index)).toEqual([1, 2, 3, 4]);
    for (const p of positions) {
      expect(l.position(p.index)).toEqual(p);
      expect(l.readAt(p.segmentId, p.offset, p.sizeBytes)).toEqual(rec(p.index));
    }
    expect(await durable).toEqual(positions);
    expect(() => l.enqueue([Buffer.alloc(17 << 20)])).toThrow(RecordTooLargeError);
    expect(() => l.position(5)).toThrow(RangeError);
  });

  it('scan iterates records with positions across segments, chunk refills and pending records', async () => {
    const l = await open({ segmentBytesMax: 120 });
    await l.append(Array.from({ length: 30 }, (_, i) => rec(i + 1, 1 + (i % 7) * 5)));
    const pending = l.append([rec(31), rec(32)]);
    for (const chunkBytes of [1, 50, 1 << 20]) {
      const got = [...l.scan(l.firstIndex(), l.lastIndex(), chunkBytes)];
      expect(got.map((r) => r.position.index)).toEqual(Array.from({ length: 32 }, (_, i) => i + 1));
      for (const r of got) {
        expect(r.position).toEqual(l.position(r.position.index));
        expect(r.payload).toEqual(l.read(r.position.index));
      }
    }
    expect([...l.scan(5, 7)].map((r) => r.position.index)).toEqual([5, 6, 7]);
    expect([...l.scan(7, 6)]).toEqual([]);
    expect(() => [...l.scan(0, 3)]).toThrow(RangeError);
    await pending;
    // A byte flipped on disk is caught by the scan's CRC check too.
    const p = l.position(3);
    const fd = fs.openSync(path.join(dir, segmentFileName(p.segmentId)), 'r+');
    fs.writeSync(fd, Buffer.from([0xee]), 0, 1, p.offset + FRAME_HEADER_BYTES);
    fs.closeSync(fd);
    expect(() => [...l.scan()]).toThrow(LogCorruptionError);
  });

  it('readRange is inclusive and bounded by bytesMax, at least one record', async () => {
    const l = await open({ segmentBytesMax: 80 });
    await l.append(Array.from({ length: 10 }, (_, i) => rec(i + 1)));
    expect(l.readRange(2, 5)).toEqual([rec(2), rec(3), rec(4), rec(5)]);
    expect(l.readRange(2, 9, 30)).toEqual([rec(2), rec(3), rec(4)]);
    expect(l.readRange(2, 9, 1)).toEqual([rec(2)]);
    expect(l.readRange(5, 4)).toEqual([]);
    expect(() => l.readRange(0, 3)).toThrow(RangeError);
    expect(() => l.readRange(3, 11)).toThrow(RangeError);
  });

  it('bounds: read outside [firstIndex, lastIndex] is a RangeError', async () => {
    const l = await open({ firstIndex: 5 });
    expect(() => l.read(5)).toThrow(RangeError);
    await l.append([rec(5)]);
    expect(l.read(5)).toEqual(rec(5));
    expect(() => l.read(4)).toThrow(RangeError);
    expect(() => l.read(6)).toThrow(RangeError);
    expect(() => l.read(5.5)).toThrow(RangeError);
  });

  it('RecordTooLargeError assigns no index', async () => {
    const l = await open({ recordBytesMax: 16 });
    await l.append([rec(1, 16)]);
    const err = await l.append([rec(2, 1), rec(3, 17)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RecordTooLargeError);
    expect(err).toMatchObject({ code: 'RECORD_TOO_LARGE' });
    expect(l.lastIndex()).toBe(1);
    await l.append([rec(2, 1)]);
    expect(l.lastIndex()).toBe(2);
  });

  it('group commit coalesces concurrent appends into fewer writes and fdatasyncs', async () => {
    const l = await open({ fsyncPolicy: 'group' });
    const appends: Promise<unknown>[] = [];
    for (let i = 1; i <= 200; i++) {
      appends.push(l.append([rec(i)]));
      // Let the in-flight write+fsync progress so that later appends join the next group.
      if (i % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(appends);
    const s = l.stats();
    expect(s.appends).toBe(200);
    expect(s.fsyncs).toBeGreaterThan(0);
    expect(s.fsyncs).toBeLessThan(200);
    expect(s.writes).toBeLessThan(200);
    for (let i = 1; i <= 200; i++) expect(l.read(i)).toEqual(rec(i));
  });

  it("'always' does one write + fdatasync per append", async () => {
    const l = await open({ fsyncPolicy: 'always' });
    await Promise.all(Array.from({ length: 20 }, (_, i) => l.append([rec(i + 1)])));
    expect(l.stats()).toMatchObject({ appends: 20, writes: 20, fsyncs: 20 });
  });

  it("'interval' resolves after the write; sync() and close() make it durable", async () => {
    const l = await open({ fsyncPolicy: 'interval', fsyncIntervalMs: 60_000, clock: new VirtualClock() });
    await Promise.all(Array.from({ length: 20 }, (_, i) => l.append([rec(i + 1)])));
    expect(l.stats().fsyncs).toBe(0);
    await l.sync();
    expect(l.stats().fsyncs).toBe(1);
    await l.append([rec(21)]);
    await l.close();
    const r = await open();
    expect(r.lastIndex()).toBe(21);
  });

  it("'interval' fdatasyncs every fsyncIntervalMs on its clock (virtual here), and close() stops the timer", async () => {
    const clock = new VirtualClock();
    const l = await open({ fsyncPolicy: 'interval', fsyncIntervalMs: 50, clock });
    await l.append([rec(1), rec(2)]);
    clock.advance(49);
    expect(l.stats().fsyncs).toBe(0);
    clock.advance(1);
    while (l.stats().fsyncs === 0) await new Promise((resolve) => setImmediate(resolve)); // the timer's fdatasync is queued behind nothing
    expect(l.stats().fsyncs).toBe(1);
    clock.advance(50); // nothing unsynced: no fdatasync
    await l.sync();
    expect(l.stats().fsyncs).toBe(1);
    expect(clock.pending()).toBe(1);
    await l.close();
    expect(clock.pending()).toBe(0);
  });

  it("'interval' without a clock is a RangeError", async () => {
    await expect(open({ fsyncPolicy: 'interval' })).rejects.toThrow(/needs a clock/);
  });

  it('truncateSuffix across a segment boundary, then append and reopen', async () => {
    const l = await open({ segmentBytesMax: 100 });
    await l.append(Array.from({ length: 20 }, (_, i) => rec(i + 1)));
    const before = l.segments();
    expect(before.length).toBeGreaterThan(3);
    const cut = before[1].firstIndex + 1; // inside the second segment
    await l.truncateSuffix(cut);
    expect(l.lastIndex()).toBe(cut - 1);
    expect(l.segments().length).toBe(2);
    expect(fs.readdirSync(dir).sort()).toEqual([segmentFileName(before[0].segmentId), segmentFileName(before[1].segmentId)]);
    expect(() => l.read(cut)).toThrow(RangeError);
    await l.append([Buffer.from('new-a'), Buffer.from('new-b')]);
    await l.truncateSuffix(100); // beyond the end: no-op
    await l.close();
    const r = await open({ segmentBytesMax: 100 });
    expect(r.recovery.tornTail).toBeNull();
    expect(r.lastIndex()).toBe(cut + 1);
    expect(r.read(cut)).toEqual(Buffer.from('new-a'));
    expect(r.read(cut - 1)).toEqual(rec(cut - 1));
    await expect(r.truncateSuffix(0)).rejects.toBeInstanceOf(RangeError);
  });

  it('truncateSuffix to a segment start and to firstIndex leaves an empty log that keeps its first index', async () => {
    const l = await open({ segmentBytesMax: 100, firstIndex: 10 });
    await l.append(Array.from({ length: 12 }, (_, i) => rec(i + 10)));
    const segs = l.segments();
    await l.truncateSuffix(segs[2].firstIndex);
    expect(l.segments().length).toBe(2);
    expect(l.lastIndex()).toBe(segs[2].firstIndex - 1);
    await l.truncateSuffix(10);
    expect(l.firstIndex()).toBe(10);
    expect(l.lastIndex()).toBe(9);
    await l.close();
    const r = await open({ segmentBytesMax: 100 });
    expect([r.firstIndex(), r.lastIndex()]).toEqual([10, 9]);
    await r.append([rec(10)]);
    expect(r.read(10)).toEqual(rec(10));
  });

  it('refuses appends while truncateSuffix runs', async () => {
    const l = await open();
    await l.append([rec(1), rec(2)]);
    const t = l.truncateSuffix(2);
    await expect(l.append([rec(9)])).rejects.toThrow(/AppendDuringTruncate/);
    await t;
    await l.append([rec(2)]);
    expect(l.lastIndex()).toBe(2);
  });

  it('dropPrefix deletes whole segments below the index, never the active one, and survives reopen', async () => {
    const l = await open({ segmentBytesMax: 100 });
    await l.append(Array.from({ length: 20 }, (_, i) => rec(i + 1)));
    const segs = l.segments();
    await l.dropPrefix(segs[2].firstIndex + 1);
    expect(l.firstIndex()).toBe(segs[2].firstIndex);
    expect(() => l.read(segs[2].firstIndex - 1)).toThrow(RangeError);
    expect(l.read(segs[2].firstIndex)).toEqual(rec(segs[2].firstIndex));
    await l.dropPrefix(1_000);
    expect(l.segments()).toEqual([segs.at(-1)]);
    expect(l.lastIndex()).toBe(20);
    await l.close();
    const r = await open({ segmentBytesMax: 100 });
    expect(r.firstIndex()).toBe(segs.at(-1)!.firstIndex);
    expect(r.lastIndex()).toBe(20);
    expect(r.read(20)).toEqual(rec(20));
  });

  it('close flushes; every later call throws LogClosedError', async () => {
    const l = await open({ fsyncPolicy: 'interval', fsyncIntervalMs: 60_000, clock: new VirtualClock() });
    const p = l.append([rec(1)]);
    const closing = l.close();
    await expect(l.append([rec(2)])).rejects.toBeInstanceOf(LogClosedError);
    await p;
    await closing;
    await l.close(); // idempotent
    expect(() => l.read(1)).toThrow(LogClosedError);
    expect(() => l.lastIndex()).toThrow(LogClosedError);
    await expect(l.sync()).rejects.toMatchObject({ code: 'LOG_CLOSED' });
    log = null;
    const r = await open();
    expect(r.read(1)).toEqual(rec(1));
  });
});
