import { Keydir, type KeydirEntry } from './keydir';
import { EngineOp } from './record';

const b = (key: string): Buffer => Buffer.from(key, 'latin1');
const set = (kd: Keydir, key: string, fileId: number, offset: number, sizeBytes: number, revision: number): void => {
  const k = b(key);
  kd.record(EngineOp.Set, k, 0, k.length, fileId, offset, sizeBytes, revision);
};
const del = (kd: Keydir, key: string, fileId: number, offset: number, sizeBytes: number): void => {
  const k = b(key);
  kd.record(EngineOp.Delete, k, 0, k.length, fileId, offset, sizeBytes, 0);
};
const get = (kd: Keydir, key: string): KeydirEntry | undefined => kd.get(b(key));

/** Deterministic PRNG (a 32-bit LCG, Numerical Recipes constants) so a failure reproduces. */
function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 4294967296;
  };
}

describe('Keydir (buffer-backed hash table, packed slab)', () => {
  it('keeps each key at its latest Set, across table, slab and arena growth, and accounts live and dead bytes', () => {
    const kd = new Keydir();
    const n = 5000; // several regrowths of the 1024-slot slab and the table
    for (let i = 0; i < n; i++) set(kd, `k${i}`, 1, 24 + i * 100, 100, i + 1);
    for (let i = 0; i < n; i += 2) set(kd, `k${i}`, 7, 24 + i * 50, 50, n + i + 1);
    expect(kd.size).toBe(n);
    expect(get(kd, 'k0')).toEqual({ fileId: 7, offset: 24, sizeBytes: 50, revision: n + 1, createRevision: n + 1, version: 1 });
    expect(get(kd, 'k1')).toEqual({ fileId: 1, offset: 124, sizeBytes: 100, revision: 2, createRevision: 2, version: 1 });
    expect(get(kd, `k${n - 1}`)).toEqual({ fileId: 1, offset: 24 + (n - 1) * 100, sizeBytes: 100, revision: n, createRevision: n, version: 1 });
    expect(get(kd, 'missing')).toBeUndefined();
    expect(kd.liveBytesOf(1)).toBe((n / 2) * 100);
    expect(kd.liveBytesOf(7)).toBe((n / 2) * 50);
    expect(kd.liveBytes).toBe((n / 2) * 150);
    expect(kd.deadBytes).toBe((n / 2) * 100);
  });

  it('keys are bytes: zero bytes, the empty key, long keys, and a key inside a larger buffer', () => {
    const kd = new Keydir();
    set(kd, '\0', 1, 24, 30, 1);
    set(kd, '\0\0', 1, 54, 30, 2);
    set(kd, '', 1, 84, 30, 3);
    const long = 'x'.repeat(70_000);
    set(kd, long, 1, 114, 70_033, 4);
    set(kd, long.slice(1) + 'y', 1, 70_147, 70_033, 5);
    expect(get(kd, '\0')!.revision).toBe(1);
    expect(get(kd, '\0\0')!.revision).toBe(2);
    expect(get(kd, '')!.revision).toBe(3);
    expect(get(kd, long)!.revision).toBe(4);
    expect(get(kd, long.slice(1) + 'y')!.revision).toBe(5);
    expect(get(kd, '\0\0\0')).toBeUndefined();
    const framed = b('..abc..');
    kd.record(EngineOp.Set, framed, 2, 5, 3, 24, 30, 6);
    expect(get(kd, 'abc')).toEqual({ fileId: 3, offset: 24, sizeBytes: 30, revision: 6, createRevision: 6, version: 1 });
    expect(kd.get(framed, 2, 5)!.revision).toBe(6);
    expect(kd.pointsAt(framed, 2, 5, 3, 24)).toBe(true);
  });

  it('get returns a copy: changing it does not move the key', () => {
    const kd = new Keydir();
    set(kd, 'a', 3, 24, 40, 9);
    const e = get(kd, 'a')!;
    e.offset = 999;
    expect(get(kd, 'a')!.offset).toBe(24);
  });

  it('a Delete frees the slot for reuse and counts the value and the tombstone dead', () => {
    const kd = new Keydir();
    set(kd, 'a', 3, 24, 40, 1);
    set(kd, 'b', 3, 64, 40, 2);
    const capacity = kd.capacity;
    del(kd, 'a', 3, 104, 33);
    expect(get(kd, 'a')).toBeUndefined();
    expect(kd.size).toBe(1);
    expect(kd.liveBytesOf(3)).toBe(40);
    expect(kd.deadBytes).toBe(40 + 33);
    del(kd, 'never-set', 3, 137, 33);
    expect(kd.size).toBe(1);
    // Churning keys reuses freed slots (and compacts the arena) instead of growing.
    for (let i = 0; i < 3 * capacity; i++) {
      set(kd, `x${i}`.padEnd(1000, '-'), 3, 200, 10, 10 + 2 * i);
      del(kd, `x${i}`.padEnd(1000, '-'), 3, 210, 33);
    }
    expect(kd.capacity).toBe(capacity);
    expect(get(kd, 'b')).toEqual({ fileId: 3, offset: 64, sizeBytes: 40, revision: 2, createRevision: 2, version: 1 });
    // A Noop only adds dead bytes.
    const dead = kd.deadBytes;
    kd.record(EngineOp.Noop, Buffer.alloc(0), 0, 0, 3, 300, 33, 99);
    expect(kd.deadBytes).toBe(dead + 33);
  });

  it('agrees with a Map model under random sets and deletes (collisions, backward-shift deletes, arena compaction)', () => {
    for (const seed of [1, 2]) {
      const random = rng(seed);
      const kd = new Keydir();
      const model = new Map<string, KeydirEntry>();
      let revision = 0;
      for (let step = 0; step < 25_000; step++) {
        // A small key space so keys come and go; long keys make the arena churn past its compaction threshold.
        const id = Math.floor(random() * 3000);
        const key = id % 5 === 0 ? `long-${id}-`.padEnd(1000 + (id % 7), '#') : `k${id}`;
        revision++;
        if (random() < 0.35) {
          del(kd, key, 2, revision * 10, 33);
          model.delete(key);
        } else {
          const e = { fileId: 1 + (id % 4), offset: revision * 10, sizeBytes: 40 + (id % 9), revision, createRevision: revision, version: 1 };
          set(kd, key, e.fileId, e.offset, e.sizeBytes, e.revision);
          model.set(key, e);
        }
        if (step % 12_500 === 12_499) {
          expect(kd.size).toBe(model.size);
          for (let i = 0; i < 3000; i++) {
            const k = i % 5 === 0 ? `long-${i}-`.padEnd(1000 + (i % 7), '#') : `k${i}`;
            expect(get(kd, k)).toEqual(model.get(k));
          }
        }
      }
      let live = 0;
      for (const e of model.values()) live += e.sizeBytes;
      expect(kd.liveBytes).toBe(live);
    }
  });

  it('repoint moves only keys still at the copied revision; forgetFile requires the file to be empty', () => {
    const kd = new Keydir();
    set(kd, 'a', 5, 24, 40, 1);
    set(kd, 'b', 5, 64, 40, 2);
    set(kd, 'b', 6, 24, 40, 3); // b overwritten after the merge copied revision 2
    const a = b('a');
    const bb = b('b');
    expect(kd.pointsAt(a, 0, 1, 5, 24)).toBe(true);
    expect(kd.pointsAt(a, 0, 1, 5, 64)).toBe(false);
    expect(kd.pointsAt(bb, 0, 1, 5, 64)).toBe(false);
    expect(kd.repoint(a, 0, 1, 1, -1, 24)).toBe(true);
    expect(kd.repoint(bb, 0, 1, 2, -1, 64)).toBe(false);
    expect(kd.repoint(b('zz'), 0, 2, 1, -1, 24)).toBe(false);
    expect(get(kd, 'a')).toEqual({ fileId: -1, offset: 24, sizeBytes: 40, revision: 1, createRevision: 1, version: 1 });
    expect(kd.liveBytesOf(5)).toBe(0);
    expect(kd.liveBytesOf(-1)).toBe(40);
    expect(() => kd.forgetFile(6, 40)).toThrow(/MergeInputHasNoLiveRecords/);
    const dead = kd.deadBytes;
    kd.forgetFile(5, 80);
    expect(kd.deadBytes).toBe(dead - 80);
    expect(kd.liveBytesOf(5)).toBe(0);
    // A later file with a new id gets its own entry in the file table.
    set(kd, 'c', 9, 24, 40, 4);
    expect(get(kd, 'c')!.fileId).toBe(9);
    expect(get(kd, 'a')!.fileId).toBe(-1);
  });

  it('reserve sizes the slab once; a frame too large for the size column is refused', () => {
    const kd = new Keydir();
    kd.reserve(100_000, 100_000 * 8);
    const capacity = kd.capacity;
    expect(capacity).toBeGreaterThanOrEqual(100_000);
    for (let i = 0; i < 100_000; i++) set(kd, `k${i}`, 1, 24, 10, i + 1);
    expect(kd.capacity).toBe(capacity);
    expect(() => set(kd, 'big', 1, 24, 2 ** 32, 200_000)).toThrow(/KeydirSizeBytesFits/);
  });
});
