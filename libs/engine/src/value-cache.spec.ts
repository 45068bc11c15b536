import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LogCorruptionError, segmentFileName } from '@cairn/log';
import { testClock } from './engine-model.spec-helpers';
import { BitcaskEngine, EngineOp, type EngineEntry } from './index';
import { VALUE_CACHE_ENTRY_OVERHEAD_BYTES, ValueCache } from './value-cache';

const b = (s: string): Buffer => Buffer.from(s);
const set = (index: number, key: string, value: string): EngineEntry => ({ index, op: EngineOp.Set, key: b(key), value: b(value) });

/** Flips the first byte of `text` in the engine's first data file: a get that reads the file must fail its CRC. */
function corrupt(dir: string, text: string): void {
  const file = path.join(dir, segmentFileName(1));
  const at = fs.readFileSync(file).indexOf(b(text));
  expect(at).toBeGreaterThan(0);
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, b('X'), 0, 1, at);
  fs.closeSync(fd);
}

describe('value cache (docs/engine.md "Value cache")', () => {
  let dir: string;
  let engine: BitcaskEngine | null = null;
  beforeEach(() => {
    dir = fs.mkdtempSync(os.tmpdir() + '/cairn-');
  });
  afterEach(async () => {
    await engine?.close();
    engine = null;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('get answers a key it read from memory and keeps it current as it is written (an overwrite, a batch writing it twice, a delete); a key only written is read from the file', async () => {
    engine = await BitcaskEngine.open({ dir, clock: testClock, autoMerge: false });
    await engine.apply([set(1, 'a', 'first-a'), set(2, 'b', 'value-of-b'), set(3, 'c', 'value-of-c'), set(4, 'd', 'value-of-d'), set(5, 'e', 'value-of-e')]);
    for (const k of ['a', 'b', 'c', 'd']) expect(engine.get(b(k))).not.toBeNull(); // read once: cached
    await engine.apply([
      set(6, 'a', 'second-a'),
      { index: 7, op: EngineOp.Batch, key: Buffer.alloc(0), value: Buffer.alloc(0), mutations: [{ op: EngineOp.Set, key: b('d'), value: b('d-one') }, { op: EngineOp.Set, key: b('d'), value: b('d-two') }, { op: EngineOp.Delete, key: b('c'), value: Buffer.alloc(0) }] },
    ]);
    // The file's copies are damaged: what get answers comes from memory, and it is what was written.
    corrupt(dir, 'second-a');
    corrupt(dir, 'value-of-b');
    corrupt(dir, 'value-of-e');
    expect(engine.get(b('a'))).toEqual({ value: b('second-a'), revision: 6, createRevision: 1, version: 2 });
    expect(engine.get(b('b'))).toEqual({ value: b('value-of-b'), revision: 2, createRevision: 2, version: 1 });
    expect(engine.get(b('c'))).toBeNull();
    expect(engine.get(b('d'))).toMatchObject({ value: b('d-two'), revision: 7 });
    expect(() => engine!.get(b('e'))).toThrow(LogCorruptionError); // written, never read: not cached
    // A value kept is a copy: the written entry's buffer changing later does not change it.
    const v = b('mutable');
    await engine.apply([set(8, 'm', 'first-m')]);
    expect(engine.get(b('m'))).not.toBeNull();
    await engine.apply([{ index: 9, op: EngineOp.Set, key: b('m'), value: v }]);
    v.write('XXXXXXX');
    expect(engine.get(b('m'))!.value).toEqual(b('mutable'));
  });

  it('is bounded by valueCacheBytesMax: the entries set longest ago go first, the next ones as it goes on; a value over a 64th of the bound is not kept; update only replaces a cached key', () => {
    const entryBytes = VALUE_CACHE_ENTRY_OVERHEAD_BYTES + 3 + 10;
    const cache = new ValueCache(64 * entryBytes);
    const name = (i: number) => `k${String(i % 100).padStart(2, '0')}`;
    for (let i = 0; i < 200; i++) cache.set(name(i), i, Buffer.alloc(10, i));
    expect(cache.stats()).toEqual({ entries: 64, bytes: 64 * entryBytes });
    expect(cache.get('k99', 199)).toEqual(Buffer.alloc(10, 199)); // written last: kept
    expect(cache.get('k99', 99)).toBeNull(); // not the live revision
    expect(cache.get('k00', 100)).toBeNull(); // among the oldest: evicted
    expect(cache.get('k36', 136)).toEqual(Buffer.alloc(10, 136)); // the 64 written last are kept
    for (let i = 200; i < 300; i++) cache.set(name(i), i, Buffer.alloc(10, i)); // eviction goes on from where it stopped
    expect(cache.stats()).toEqual({ entries: 64, bytes: 64 * entryBytes });
    expect(cache.get('k35', 235)).toBeNull();
    expect(cache.get('k36', 236)).toEqual(Buffer.alloc(10, 236));
    expect(cache.get('k99', 299)).toEqual(Buffer.alloc(10, 299));
    cache.update('k99', 300, Buffer.alloc(10, 7));
    expect(cache.get('k99', 300)).toEqual(Buffer.alloc(10, 7));
    cache.update('k00', 301, Buffer.alloc(10, 7)); // evicted: not added back by a write
    expect(cache.get('k00', 301)).toBeNull();
    expect(cache.size).toBe(64);
    cache.set('big', 1, Buffer.alloc(Math.floor(cache.bytesMax / 64) + 1));
    expect(cache.get('big', 1)).toBeNull();
    expect(() => new ValueCache(-1)).toThrow(RangeError);
  });

  it('an engine whose cache holds a few values reads the others from its file, each right', async () => {
    engine = await BitcaskEngine.open({ dir, clock: testClock, autoMerge: false, valueCacheBytesMax: 4 * (VALUE_CACHE_ENTRY_OVERHEAD_BYTES + 64) });
    const entries = Array.from({ length: 50 }, (_, i) => set(i + 1, `key-${i}`, `value-${i}-${'x'.repeat(i)}`));
    await engine.apply(entries);
    for (let round = 0; round < 2; round++) for (let i = 0; i < 50; i++) expect(engine.get(b(`key-${i}`))).toMatchObject({ value: b(`value-${i}-${'x'.repeat(i)}`), revision: i + 1 });
  });
});
