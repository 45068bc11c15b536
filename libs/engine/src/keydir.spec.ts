import { Keydir } from './keydir';
import { EngineOp } from './record';

describe('Keydir (packed slab)', () => {
  it('keeps each key at its latest Set, across slab growth, and accounts live and dead bytes', () => {
    const kd = new Keydir();
    const n = 5000; // several regrowths of the 1024-slot slab
    for (let i = 0; i < n; i++) kd.record(EngineOp.Set, `k${i}`, 1, 24 + i * 100, 100, i + 1);
    for (let i = 0; i < n; i += 2) kd.record(EngineOp.Set, `k${i}`, 7, 24 + i * 50, 50, n + i + 1);
    expect(kd.size).toBe(n);
    expect(kd.get('k0')).toEqual({ fileId: 7, offset: 24, sizeBytes: 50, revision: n + 1 });
    expect(kd.get('k1')).toEqual({ fileId: 1, offset: 124, sizeBytes: 100, revision: 2 });
    expect(kd.get(`k${n - 1}`)).toEqual({ fileId: 1, offset: 24 + (n - 1) * 100, sizeBytes: 100, revision: n });
    expect(kd.get('missing')).toBeUndefined();
    expect(kd.liveBytesOf(1)).toBe((n / 2) * 100);
    expect(kd.liveBytesOf(7)).toBe((n / 2) * 50);
    expect(kd.liveBytes).toBe((n / 2) * 150);
    expect(kd.deadBytes).toBe((n / 2) * 100);
  });

  it('get returns a copy: changing it does not move the key', () => {
    const kd = new Keydir();
    kd.record(EngineOp.Set, 'a', 3, 24, 40, 9);
    const e = kd.get('a')!;
    e.offset = 999;
    expect(kd.get('a')!.offset).toBe(24);
  });

  it('a Delete frees the slot for reuse and counts the value and the tombstone dead', () => {
    const kd = new Keydir();
    kd.record(EngineOp.Set, 'a', 3, 24, 40, 1);
    kd.record(EngineOp.Set, 'b', 3, 64, 40, 2);
    const capacity = kd.capacity;
    kd.record(EngineOp.Delete, 'a', 3, 104, 33, 3);
    expect(kd.get('a')).toBeUndefined();
    expect(kd.size).toBe(1);
    expect(kd.liveBytesOf(3)).toBe(40);
    expect(kd.deadBytes).toBe(40 + 33);
    // Churning keys reuses freed slots instead of growing the slab.
    for (let i = 0; i < 10 * capacity; i++) {
      kd.record(EngineOp.Set, `x${i}`, 3, 200, 10, 10 + 2 * i);
      kd.record(EngineOp.Delete, `x${i}`, 3, 210, 33, 11 + 2 * i);
    }
    expect(kd.capacity).toBe(capacity);
    expect(kd.get('b')).toEqual({ fileId: 3, offset: 64, sizeBytes: 40, revision: 2 });
    // A Noop only adds dead bytes.
    const dead = kd.deadBytes;
    kd.record(EngineOp.Noop, '', 3, 300, 33, 99);
    expect(kd.deadBytes).toBe(dead + 33);
  });

  it('repoint moves only keys still at the copied revision; forgetFile requires the file to be empty', () => {
    const kd = new Keydir();
    kd.record(EngineOp.Set, 'a', 5, 24, 40, 1);
    kd.record(EngineOp.Set, 'b', 5, 64, 40, 2);
    kd.record(EngineOp.Set, 'b', 6, 24, 40, 3); // b overwritten after the merge copied revision 2
    expect(kd.pointsAt('a', 5, 24)).toBe(true);
    expect(kd.pointsAt('a', 5, 64)).toBe(false);
    expect(kd.pointsAt('b', 5, 64)).toBe(false);
    expect(kd.repoint('a', 1, -1, 24)).toBe(true);
    expect(kd.repoint('b', 2, -1, 64)).toBe(false);
    expect(kd.repoint('zz', 1, -1, 24)).toBe(false);
    expect(kd.get('a')).toEqual({ fileId: -1, offset: 24, sizeBytes: 40, revision: 1 });
    expect(kd.liveBytesOf(5)).toBe(0);
    expect(kd.liveBytesOf(-1)).toBe(40);
    expect(() => kd.forgetFile(6, 40)).toThrow(/MergeInputHasNoLiveRecords/);
    const dead = kd.deadBytes;
    kd.forgetFile(5, 80);
    expect(kd.deadBytes).toBe(dead - 80);
    expect(kd.liveBytesOf(5)).toBe(0);
    // A later file with a new id gets its own entry in the file table.
    kd.record(EngineOp.Set, 'c', 9, 24, 40, 4);
    expect(kd.get('c')!.fileId).toBe(9);
    expect(kd.get('a')!.fileId).toBe(-1);
  });

  it('reserve sizes the slab once; a frame too large for the size column is refused', () => {
    const kd = new Keydir();
    kd.reserve(100_000);
    const capacity = kd.capacity;
    expect(capacity).toBeGreaterThanOrEqual(100_000);
    for (let i = 0; i < 100_000; i++) kd.record(EngineOp.Set, `k${i}`, 1, 24, 10, i + 1);
    expect(kd.capacity).toBe(capacity);
    expect(() => kd.record(EngineOp.Set, 'big', 1, 24, 2 ** 32, 200_000)).toThrow(/KeydirSizeBytesFits/);
  });
});
