import { seededRandom } from '@cairn/world';
import { SnapshotMap } from './snapshot-map';

interface V {
  seq: number;
  n: number;
}

/** Reads a whole snapshot in slices of `max`, running `between()` after each slice. */
function readAll(map: SnapshotMap<string, V>, max: number, between: () => void): { size: number; got: Map<string, number>; duplicates: number } {
  const r = map.snapshot();
  const got = new Map<string, number>();
  let duplicates = 0;
  const visit = (k: string, n: number) => {
    if (got.has(k)) duplicates++;
    got.set(k, n);
  };
  for (let count = r.next(max, visit); count > 0; count = r.next(max, visit)) {
    expect(count).toBeLessThanOrEqual(max);
    between();
  }
  r.end();
  return { size: r.size, got, duplicates };
}

describe('SnapshotMap (copy-on-write snapshot of the lease table)', () => {
  it('a snapshot read in slices is the content of the instant it was taken, whatever adds, changes and deletes run between slices (seeded random runs against a copy)', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const random = seededRandom(seed);
      const map = new SnapshotMap<string, V>((v) => v.n);
      const key = () => `k${Math.floor(random.float() * 60)}`;
      const mutate = () => {
        const k = key();
        const roll = random.float();
        const v = map.get(k);
        if (roll < 0.4) {
          if (!v) map.add(k, { seq: 0, n: Math.floor(random.float() * 1000) });
        } else if (roll < 0.7) {
          if (v) {
            map.touch(k);
            v.n = Math.floor(random.float() * 1000);
          }
        } else if (roll < 0.9) map.delete(k);
        else map.add(k, { seq: 0, n: Math.floor(random.float() * 1000) }); // re-add moves it to the end
      };
      for (let i = 0; i < 40; i++) mutate();
      const expected = new Map([...map.entries()].map(([k, v]) => [k, v.n]));
      const { size, got, duplicates } = readAll(map, 1 + Math.floor(random.float() * 7), () => {
        for (let i = Math.floor(random.float() * 6); i > 0; i--) mutate();
      });
      expect({ seed, duplicates, size, got: [...got].sort() }).toEqual({ seed, duplicates: 0, size: expected.size, got: [...expected].sort() });
    }
  });

  it('without touch before an in-place change, the snapshot would see the new value (the touch is what keeps the old one; the test can fail)', () => {
    const map = new SnapshotMap<string, V>((v) => v.n);
    map.add('a', { seq: 0, n: 1 });
    map.add('b', { seq: 0, n: 2 });
    const r = map.snapshot();
    map.touch('b');
    map.get('b')!.n = 20;
    map.get('a')!.n = 10; // untouched: a bug in the owner, seen by the reader
    map.delete('a');
    const seen: [string, number][] = [];
    expect(r.next(10, (k, n) => void seen.push([k, n]))).toBe(2);
    expect(seen.sort()).toEqual([
      ['a', 10],
      ['b', 2],
    ]);
    expect(r.next(10, () => undefined)).toBe(0);
    r.end();
  });

  it('one snapshot at a time; clear is refused while one is open', () => {
    const map = new SnapshotMap<string, V>((v) => v.n);
    const r = map.snapshot();
    expect(() => map.snapshot()).toThrow(/SnapshotMapSnapshotOpen/);
    expect(() => map.clear()).toThrow(/SnapshotMapClearedDuringSnapshot/);
    r.end();
    expect(() => map.snapshot().end()).not.toThrow();
  });
});
