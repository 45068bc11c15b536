import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { testClock } from './engine-model.spec-helpers';
import { FRAME_HEADER_BYTES, LogClosedError, LogCorruptionError, SegmentedLog, segmentFileName } from '@cairn/log';
import { BitcaskEngine, ENGINE_DEFAULTS, EngineEntryTooLargeError, EngineGapError, EngineOp, decodeRecord, encodeRecord, type EngineEntry, type EngineOptions } from './index';

const b = (s: string): Buffer => Buffer.from(s);
const set = (index: number, key: string | Buffer, value: string | Buffer): EngineEntry => ({ index, op: EngineOp.Set, key: typeof key === 'string' ? b(key) : key, value: typeof value === 'string' ? b(value) : value });
const del = (index: number, key: string): EngineEntry => ({ index, op: EngineOp.Delete, key: b(key), value: Buffer.alloc(0) });
const noop = (index: number): EngineEntry => ({ index, op: EngineOp.Noop, key: Buffer.alloc(0), value: Buffer.alloc(0) });

describe('BitcaskEngine', () => {
  let dir: string;
  let engine: BitcaskEngine | null;
  const open = async (o: Partial<EngineOptions> = {}): Promise<BitcaskEngine> => {
    engine = await BitcaskEngine.open({ dir, clock: testClock, autoMerge: false, ...o });
    return engine;
  };
  const reopen = async (o: Partial<EngineOptions> = {}): Promise<BitcaskEngine> => {
    await engine?.close();
    return open(o);
  };
  beforeEach(() => {
    dir = fs.mkdtempSync(os.tmpdir() + '/cairn-');
    engine = null;
  });
  afterEach(async () => {
    await engine?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('encodes the documented record layout', () => {
    const rec = encodeRecord(EngineOp.Set, 1_700_000_000_000, 7, b('k'), b('v1'));
    expect(rec.toString('hex')).toBe('01' + '0000018bcfe56800' + '0000000000000007' + '00000001' + '00000002' + '6b' + '7631');
    expect(decodeRecord(rec)).toEqual({ op: EngineOp.Set, timestampMs: 1_700_000_000_000, revision: 7, createRevision: 7, version: 1, key: b('k'), value: b('v1') });
    expect(decodeRecord(rec.subarray(0, 27))).toEqual({ error: expect.stringMatching(/do not add up/) });
    const big = encodeRecord(EngineOp.Delete, 0, 2 ** 53 - 1, b(''), b(''));
    expect(decodeRecord(big)).toMatchObject({ revision: 2 ** 53 - 1 });
  });

  it('set / get / overwrite / delete, with revisions', async () => {
    const e = await open();
    expect(e.appliedIndex()).toBe(0);
    expect(e.get(b('a'))).toBeNull();
    expect(await e.apply([set(1, 'a', 'one'), set(2, 'b', 'two')])).toBe(2);
    expect(e.get(b('a'))).toEqual({ value: b('one'), revision: 1, createRevision: 1, version: 1 });
    expect(await e.apply([set(3, 'a', 'uno')])).toBe(3);
    expect(e.get(b('a'))).toEqual({ value: b('uno'), revision: 3, createRevision: 1, version: 2 });
    await e.apply([del(4, 'a'), del(5, 'never-set')]);
    expect(e.get(b('a'))).toBeNull();
    expect(e.get(b('b'))).toEqual({ value: b('two'), revision: 2, createRevision: 2, version: 1 });
    const s = e.stats();
    expect(s).toMatchObject({ keys: 1, appliedIndex: 5 });
    expect(s.liveBytes).toBe(FRAME_HEADER_BYTES + 41 + 1 + 3); // only b=two is live
    expect(s.liveBytes + s.deadBytes + 24).toBe(s.dataBytes); // one segment header
  });

  it('serves applied entries before they are durable', async () => {
    const e = await open({ fsyncPolicy: 'always' });
    const p = e.apply([set(1, 'k', 'v')]);
    expect(e.get(b('k'))).toEqual({ value: b('v'), revision: 1, createRevision: 1, version: 1 }); // from the log's pending buffer
    expect(e.appliedIndex()).toBe(0); // not durable yet
    expect(await p).toBe(1);
    expect(e.appliedIndex()).toBe(1);
  });

  it('pipelined applies continue from the in-flight index', async () => {
    const e = await open();
    const p1 = e.apply([set(1, 'a', '1'), set(2, 'a', '2')]);
    const p2 = e.apply([set(2, 'a', '2'), set(3, 'a', '3')]); // 2 is a re-delivery
    expect(await Promise.all([p1, p2])).toEqual([2, 3]);
    expect(e.get(b('a'))).toEqual({ value: b('3'), revision: 3, createRevision: 1, version: 3 });
  });

  it('restart rebuilds the keydir, including tombstones', async () => {
    const e = await open({ segmentBytesMax: 128 });
    await e.apply([set(1, 'a', 'A'), set(2, 'b', 'B'), set(3, 'c', 'C')]);
    await e.apply([del(4, 'b'), set(5, 'a', 'A2'), noop(6), set(7, 'b', 'B-again'), del(8, 'c')]);
    const before = e.stats();
    const r = await reopen({ segmentBytesMax: 128 });
    expect(r.appliedIndex()).toBe(8);
    expect(r.get(b('a'))).toEqual({ value: b('A2'), revision: 5, createRevision: 1, version: 2 });
    expect(r.get(b('b'))).toEqual({ value: b('B-again'), revision: 7, createRevision: 7, version: 1 }); // a delete resets
    expect(r.get(b('c'))).toBeNull(); // deleted key stays deleted
    expect(r.stats()).toEqual(before);
  });

  it('re-apply after restart is idempotent; a gap throws EngineGapError and writes nothing', async () => {
    const e = await open();
    await e.apply([set(1, 'a', 'A'), set(2, 'b', 'B')]);
    const r = await reopen();
    expect(await r.apply([set(1, 'a', 'WRONG'), set(2, 'b', 'WRONG')])).toBe(2);
    expect(r.get(b('a'))).toEqual({ value: b('A'), revision: 1, createRevision: 1, version: 1 });
    expect(await r.apply([set(2, 'b', 'WRONG'), set(3, 'c', 'C')])).toBe(3);
    expect(r.get(b('b'))).toEqual({ value: b('B'), revision: 2, createRevision: 2, version: 1 });
    const gap = await r.apply([set(5, 'x', 'X')]).catch((err: unknown) => err);
    expect(gap).toBeInstanceOf(EngineGapError);
    expect(gap).toMatchObject({ code: 'ENGINE_GAP', expectedIndex: 4, gotIndex: 5 });
    await expect(r.apply([set(4, 'x', 'X'), set(6, 'y', 'Y')])).rejects.toBeInstanceOf(EngineGapError);
    expect(r.appliedIndex()).toBe(3);
    expect(r.get(b('x'))).toBeNull();
    expect(await r.apply([set(4, 'x', 'X')])).toBe(4);
  });

  it('Noop advances appliedIndex durably', async () => {
    const e = await open();
    await e.apply([set(1, 'a', 'A')]);
    expect(await e.apply([noop(2), noop(3)])).toBe(3);
    const r = await reopen();
    expect(r.appliedIndex()).toBe(3);
    expect(r.stats()).toMatchObject({ keys: 1, appliedIndex: 3 });
    expect(await r.apply([noop(4)])).toBe(4);
  });

  it('torn tail after a crash: reopens with the last complete record', async () => {
    const e = await open();
    await e.apply([set(1, 'a', 'A'), set(2, 'b', 'B')]);
    await e.apply([set(3, 'a', 'A3-this-will-be-torn')]);
    await e.close();
    engine = null;
    const file = path.join(dir, segmentFileName(1));
    fs.truncateSync(file, fs.statSync(file).size - 5);
    const r = await open();
    expect(r.recovery.tornTail).toMatchObject({ segmentPath: file, reason: expect.stringMatching(/incomplete/) });
    expect(r.appliedIndex()).toBe(2);
    expect(r.get(b('a'))).toEqual({ value: b('A'), revision: 1, createRevision: 1, version: 1 });
    expect(await r.apply([set(3, 'a', 'A3')])).toBe(3);
    expect((await reopen()).get(b('a'))).toEqual({ value: b('A3'), revision: 3, createRevision: 1, version: 2 });
  });

  it('binary keys and values with zero bytes', async () => {
    const e = await open();
    const k1 = Buffer.from([0, 0, 1]);
    const k2 = Buffer.from([0, 0]);
    const k3 = Buffer.from([0xff, 0xfe, 0x00, 0x80]);
    const v = Buffer.from([0, 1, 0, 255, 0]);
    await e.apply([set(1, k1, v), set(2, k2, Buffer.alloc(0)), set(3, k3, Buffer.alloc(1000))]);
    const check = (x: BitcaskEngine): void => {
      expect(x.get(k1)).toEqual({ value: v, revision: 1, createRevision: 1, version: 1 });
      expect(x.get(k2)).toEqual({ value: Buffer.alloc(0), revision: 2, createRevision: 2, version: 1 });
      expect(x.get(k3)!.value).toEqual(Buffer.alloc(1000));
      expect(x.get(Buffer.from([0]))).toBeNull();
      expect(x.get(new Uint8Array([0, 0, 1, 0]).subarray(0, 3))).toEqual({ value: v, revision: 1, createRevision: 1, version: 1 }); // a view with an offset
    };
    check(e);
    check(await reopen());
  });

  it('a corrupt value raises LogCorruptionError, never wrong bytes', async () => {
    const e = await open({ valueCacheBytesMax: 0 }); // every get reads the data file
    await e.apply([set(1, 'a', 'value-of-a'), set(2, 'b', 'value-of-b')]);
    const file = path.join(dir, segmentFileName(1));
    const data = fs.readFileSync(file);
    const at = data.indexOf(b('value-of-a'));
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, b('X'), 0, 1, at);
    fs.closeSync(fd);
    expect(() => e.get(b('a'))).toThrow(LogCorruptionError);
    expect(e.get(b('b'))).toEqual({ value: b('value-of-b'), revision: 2, createRevision: 2, version: 1 });
  });

  it('refuses a data file holding something else than data records', async () => {
    const log = await SegmentedLog.open({ dir });
    await log.append([b('not a data record')]);
    await log.close();
    await expect(open()).rejects.toBeInstanceOf(LogCorruptionError);
    engine = null;
  });

  it('configured limits: documented defaults (docs/engine.md), invalid values refused', async () => {
    expect(ENGINE_DEFAULTS).toEqual({
      segmentBytesMax: 64 * 1024 * 1024,
      keyBytesMax: 64 * 1024,
      valueBytesMax: 8 * 1024 * 1024,
      valueCacheBytesMax: 8 * 1024 * 1024,
      mergeDeadBytesRatioMin: 0.5,
      mergeFilesMin: 2,
      mergeBytesPerSecondMax: 64 * 1024 * 1024,
      mergeChunkBytes: 1024 * 1024,
      snapshotsRetainedMax: 2,
      snapshotChunkBytesMax: 1024 * 1024,
    });
    for (const bad of [{ segmentBytesMax: 0 }, { segmentBytesMax: 1.5 }, { keyBytesMax: -1 }, { valueBytesMax: NaN }, { valueCacheBytesMax: -1 }, { valueCacheBytesMax: 0.5 }, { mergeDeadBytesRatioMin: 1.5 }, { mergeBytesPerSecondMax: 0 }, { mergeFilesMin: 0 }, { mergeChunkBytes: 0 }, { snapshotsRetainedMax: 0 }, { snapshotChunkBytesMax: 0.5 }]) {
      await expect(BitcaskEngine.open({ dir, clock: testClock, ...bad })).rejects.toBeInstanceOf(RangeError);
    }
    expect(fs.readdirSync(dir)).toEqual([]); // refused before touching the directory
  });

  it('bounds keys and values; close makes later calls throw LogClosedError', async () => {
    const e = await open({ keyBytesMax: 4, valueBytesMax: 8 });
    await expect(e.apply([set(1, 'abcde', 'v')])).rejects.toBeInstanceOf(EngineEntryTooLargeError);
    await expect(e.apply([set(1, 'abcd', '123456789')])).rejects.toMatchObject({ code: 'ENGINE_ENTRY_TOO_LARGE', field: 'value' });
    expect(await e.apply([set(1, 'abcd', '12345678')])).toBe(1);
    await e.close();
    expect(() => e.get(b('abcd'))).toThrow(LogClosedError);
    await expect(e.apply([set(2, 'a', 'b')])).rejects.toBeInstanceOf(LogClosedError);
    engine = null;
  });

  it('rebuilds 100k keys quickly', async () => {
    const e = await open({ fsyncPolicy: 'group', segmentBytesMax: 1 << 20 });
    const n = 100_000;
    const batch = 5_000;
    for (let start = 1; start <= n; start += batch) {
      const entries: EngineEntry[] = [];
      for (let i = start; i < start + batch; i++) entries.push(set(i, `key-${i % 90_000}`, `value-${i}`));
      await e.apply(entries);
    }
    const r = await reopen({ segmentBytesMax: 1 << 20 });
    expect(r.appliedIndex()).toBe(n);
    expect(r.stats().keys).toBe(90_000);
    expect(r.get(b('key-5'))).toEqual({ value: b('value-90005'), revision: 90_005, createRevision: 5, version: 2 });
    expect(r.get(b('key-89999'))).toEqual({ value: b('value-89999'), revision: 89_999, createRevision: 89_999, version: 1 });
  });
});
