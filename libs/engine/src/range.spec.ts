import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { testClock } from './engine-model.spec-helpers';
import { BitcaskEngine, EngineOp, type EngineEntry, type RangeQuery } from './index';
import { OrderedIndex, type KeyOrder } from './ordered-index';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** A seeded xorshift generator (tests are reproducible). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** The model answer of a range query over a Map of latin1 keys. */
function modelRange(model: Map<string, string>, q: RangeQuery): { keys: string[]; count: number } {
  const start = Buffer.from(q.start);
  const keys = [...model.keys()].map(b).filter((k) => Buffer.compare(k, start) >= 0 && (q.end === null || Buffer.compare(k, Buffer.from(q.end)) < 0));
  keys.sort(Buffer.compare);
  if (q.reverse) keys.reverse();
  return { keys: keys.map((k) => k.toString('latin1')), count: keys.length };
}

describe('OrderedIndex (sorted leaves of keydir slots)', () => {
  it('agrees with a sorted model under random inserts and removes, across leaf splits and merges', () => {
    const keys: Buffer[] = [];
    const order: KeyOrder = {
      compareSlots: (a, c) => Buffer.compare(keys[a], keys[c]),
      compareKey: (key, start, end, slot) => Buffer.compare(Buffer.from(key.subarray(start, end)), keys[slot]),
    };
    const index = new OrderedIndex(order);
    const random = rng(7);
    const live = new Set<number>();
    const bySlotKey = new Map<string, number>();
    for (let step = 0; step < 40_000; step++) {
      const name = `k${Math.floor(random() * 5000)}`;
      const existing = bySlotKey.get(name);
      if (existing !== undefined && random() < 0.45) {
        index.remove(existing);
        live.delete(existing);
        bySlotKey.delete(name);
      } else if (existing === undefined) {
        const slot = keys.length;
        keys.push(b(name));
        index.insert(slot);
        live.add(slot);
        bySlotKey.set(name, slot);
      }
    }
    const want = [...live].map((s) => keys[s].toString()).sort((x, y) => Buffer.compare(b(x), b(y)));
    const got: string[] = [];
    for (let p = index.first(); !index.atEnd(p); p = index.next(p)) got.push(keys[index.slotAt(p)].toString());
    expect(index.size).toBe(want.length);
    expect(got).toEqual(want);
    expect(index.countBetween(index.seek(b('k2')), index.seek(b('k3')))).toBe(want.filter((k) => k >= 'k2' && k < 'k3').length);
    // Rebuilt in one sort: same order.
    const rebuilt = new OrderedIndex(order);
    rebuilt.build(Int32Array.from(live).sort((x, y) => order.compareSlots(x, y)));
    const again: string[] = [];
    for (let p = rebuilt.first(); !rebuilt.atEnd(p); p = rebuilt.next(p)) again.push(keys[rebuilt.slotAt(p)].toString());
    expect(again).toEqual(want);
  });
});

describe('BitcaskEngine.range', () => {
  let dir: string;
  let engine: BitcaskEngine | null = null;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-'));
  });
  afterEach(async () => {
    await engine?.close();
    engine = null;
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const open = async (): Promise<BitcaskEngine> => {
    await engine?.close();
    engine = await BitcaskEngine.open({ dir, clock: testClock, autoMerge: false, segmentBytesMax: 16 * 1024, mergeBytesPerSecondMax: Infinity });
    return engine;
  };

  it('matches a model for forward, reverse, bounded, keys-only and count-only pages, after applies, a reopen and a merge', async () => {
    let e = await open();
    const model = new Map<string, string>();
    const random = rng(3);
    let index = 0;
    const alphabet = ['a', 'b', 'ab', 'b\xff', '\x00', 'a/', 'a/b', 'z'];
    for (let round = 0; round < 6; round++) {
      const entries: EngineEntry[] = [];
      for (let i = 0; i < 500; i++) {
        index++;
        const key = `${alphabet[Math.floor(random() * alphabet.length)]}${Math.floor(random() * 300)}`;
        if (random() < 0.25) {
          entries.push({ index, op: EngineOp.Delete, key: b(key), value: Buffer.alloc(0) });
          model.delete(key);
        } else {
          entries.push({ index, op: EngineOp.Set, key: b(key), value: b(`v${index}`) });
          model.set(key, `v${index}`);
        }
      }
      await e.apply(entries);
      if (round === 2) e = await open();
      if (round === 4) await e.merge();
      const queries: RangeQuery[] = [
        { start: b(''), end: null, limit: 100_000, bytesMax: Infinity },
        { start: b('a/'), end: b('a0'), limit: 100_000, bytesMax: Infinity },
        { start: b('b'), end: b('b\xff\xff'), limit: 100_000, bytesMax: Infinity, reverse: true },
        { start: b('\x00'), end: b('ab'), limit: 100_000, bytesMax: Infinity, keysOnly: true },
      ];
      for (const q of queries) {
        const page = e.range(q);
        const want = modelRange(model, q);
        expect(page.items.map((it) => it.key.toString('latin1'))).toEqual(want.keys);
        expect(page.count).toBe(want.count);
        expect(page.more).toBe(false);
        expect(page.revision).toBe(index);
        for (const it of page.items) {
          const got = e.get(it.key)!;
          expect(it.value.toString()).toBe(q.keysOnly ? '' : got.value.toString());
          expect([it.revision, it.createRevision, it.version]).toEqual([got.revision, got.createRevision, got.version]);
        }
        // Paged by limit: the pages add up to the whole range.
        for (const limit of [1, 7, 64]) {
          const seen: string[] = [];
          let cursor: { start: Uint8Array; end: Uint8Array | null } = { start: q.start, end: q.end };
          for (;;) {
            const part = e.range({ ...q, ...cursor, limit });
            expect(part.items.length).toBeLessThanOrEqual(limit);
            seen.push(...part.items.map((it) => it.key.toString('latin1')));
            if (!part.more) break;
            const last = part.items[part.items.length - 1].key;
            cursor = q.reverse ? { start: cursor.start, end: last } : { start: Buffer.concat([last, Buffer.from([0])]), end: cursor.end };
          }
          expect(seen).toEqual(want.keys);
        }
        expect(e.range({ ...q, countOnly: true })).toEqual({ revision: index, items: [], count: want.count, more: false });
      }
    }
  });

  it('bounds a page by bytes (the first item always) and by limit; empty and inverted ranges are empty', async () => {
    const e = await open();
    await e.apply([1, 2, 3, 4].map((i) => ({ index: i, op: EngineOp.Set, key: b(`k${i}`), value: Buffer.alloc(100, i) })));
    const page = e.range({ start: b('k'), end: b('l'), limit: 10, bytesMax: 250, itemOverheadBytes: 10 });
    expect(page.items.map((it) => it.key.toString())).toEqual(['k1', 'k2']); // 112 + 112 ≤ 250 < 336
    expect(page).toMatchObject({ count: 4, more: true });
    expect(e.range({ start: b('k'), end: b('l'), limit: 10, bytesMax: 1 }).items).toHaveLength(1);
    expect(e.range({ start: b('k3'), end: b('k1'), limit: 10, bytesMax: 1000 })).toEqual({ revision: 4, items: [], count: 0, more: false });
    expect(e.range({ start: b('x'), end: null, limit: 10, bytesMax: 1000 })).toEqual({ revision: 4, items: [], count: 0, more: false });
    expect(() => e.range({ start: b(''), end: null, limit: 0, bytesMax: 1000 })).toThrow(RangeError);
  });
});
