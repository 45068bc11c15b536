import { getHeapSpaceStatistics } from 'node:v8';
import { SimScheduler } from '@cairn/world';
import { BufferReclaimPolicy, BufferReclaimer, exposedCompactingGc, exposedGc } from './buffer-reclaimer';

const MiB = 1024 * 1024;
const oldSpaceBytes = (): number => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_size;

describe('BufferReclaimPolicy', () => {
  it('asks for a collection once Buffer memory grew by more than garbageBytesMax since the last one', () => {
    const p = new BufferReclaimPolicy(64 * MiB);
    p.collected(10 * MiB);
    expect(p.shouldCollect(74 * MiB)).toBe(false);
    expect(p.shouldCollect(74 * MiB + 1)).toBe(true);
    // What survived the collection is the new baseline: live Buffers never trigger one on their own.
    p.collected(60 * MiB);
    expect(p.shouldCollect(124 * MiB)).toBe(false);
    expect(p.shouldCollect(125 * MiB)).toBe(true);
    expect(p.count()).toBe(2);
  });

  it('measures growth from the lowest sample since the last collection (V8 collected on its own)', () => {
    const p = new BufferReclaimPolicy(8 * MiB);
    p.baseline(40 * MiB); // taken while 30 MiB of garbage waited
    expect(p.shouldCollect(10 * MiB)).toBe(false); // V8 freed it
    expect(p.shouldCollect(18 * MiB)).toBe(false);
    expect(p.shouldCollect(18 * MiB + 1)).toBe(true);
    expect(p.count()).toBe(0);
  });

  it('after a burst, collects once the gateway is quiet: what the burst held live at its last collection is garbage now', () => {
    const p = new BufferReclaimPolicy(64 * MiB);
    p.baseline(20 * MiB);
    const sample = (bytes: number, pending: number): 'growth' | 'idle' | null => {
      if (p.shouldCollect(bytes)) return 'growth';
      return p.shouldCollectIdle(bytes, pending) ? 'idle' : null;
    };
    // A burst: growth past garbageBytesMax collects, and 85 MiB was live then (replies queued for a client that never reads).
    expect(sample(60 * MiB, 40 * MiB)).toBeNull();
    expect(sample(90 * MiB, 60 * MiB)).toBe('growth');
    p.collected(85 * MiB);
    // Still busy: no idle collection however long it lasts.
    expect([85, 85, 85, 85, 85, 85].map((m) => sample(m * MiB, 60 * MiB)).some(Boolean)).toBe(false);
    // The client closed: nothing pending, nothing grows, so no growth rule could fire. The fifth quiet sample collects.
    expect([85, 85, 85, 85].map((m) => sample(m * MiB, 0))).toEqual([null, null, null, null]);
    expect(sample(85 * MiB, 0)).toBe('idle');
    p.collectedIdle(25 * MiB);
    // Once per burst: quiet at what is live now, no further idle collection.
    expect([25, 26, 25, 27, 25, 25, 25, 25].map((m) => sample(m * MiB, 0)).some(Boolean)).toBe(false);
  });

  it('a quiet process that never grew by garbageBytesMax / 2 above its floor is not collected; one that did is, once quiet', () => {
    const p = new BufferReclaimPolicy(64 * MiB);
    p.baseline(20 * MiB);
    const idle = (bytes: number) => (p.shouldCollect(bytes), p.shouldCollectIdle(bytes, 4096));
    expect([30, 40, 50, 50, 50, 50, 50, 50, 50, 45, 45, 45, 45, 45, 45].map((m) => idle(m * MiB)).some(Boolean)).toBe(false);
    // More than 32 MiB above the floor is a burst: still quiet, so it collects at once.
    expect(idle(53 * MiB)).toBe(true);
  });

  it('refuses a bound that is not positive', () => {
    expect(() => new BufferReclaimPolicy(0)).toThrow(/BufferGarbageBytesMaxPositive/);
  });
});

describe('exposedGc', () => {
  it("gives V8's collector: an object nothing references is gone after it runs", async () => {
    const gc = exposedGc();
    expect(gc).not.toBeNull();
    const ref = new WeakRef(Buffer.alloc(4 * MiB, 1));
    // A WeakRef keeps its target alive until the current job ends.
    await new Promise<void>((r) => setImmediate(r));
    gc!();
    expect(ref.deref()).toBeUndefined();
  });
});

describe('exposedCompactingGc', () => {
  // Whether a plain collection keeps the burst's pages is V8's choice (its memory reducer may release
  // them too: a fresh-clone CI run saw a plain collection leave only 2 MiB to compact), so the check
  // is what the reclaimer relies on: after the compacting collection the old space is back near its
  // size before the burst, though sparse survivors were left on every page the burst used. (The new
  // space keeps the semi-space size the burst grew it to either way, so heapTotal is not the measure.)
  it('gives back the heap pages a burst left, sparse survivors included', async () => {
    const gc = exposedGc()!;
    const compact = exposedCompactingGc()!;
    compact();
    const before = oldSpaceBytes();
    let burst: { a: number; b: string }[] | null = Array.from({ length: 600_000 }, (_, i) => ({ a: i, b: `x${i}` }));
    const survivors = burst.filter((_, i) => i % 500 === 0);
    const peak = oldSpaceBytes();
    burst = null;
    await new Promise<void>((r) => setImmediate(r));
    gc();
    compact();
    const afterCompact = oldSpaceBytes();
    expect(survivors).toHaveLength(1200);
    expect(peak - before).toBeGreaterThan(16 * MiB); // the burst did grow the old space
    expect(afterCompact - before).toBeLessThan(8 * MiB);
  });
});

describe('BufferReclaimer', () => {
  it('checks every intervalMs on the clock it is given (virtual here), until stopped', () => {
    const sched = new SimScheduler(1);
    let quietChecks = 0;
    // pendingBytes is read on each check that does not collect for growth; Infinity: never idle, never collects.
    const r = new BufferReclaimer(1024 * MiB, 250, () => undefined, null, () => {
      quietChecks++;
      return Infinity;
    }, undefined, sched.incarnation('p').clock);
    r.start();
    expect(sched.nextAtMs()).toBe(sched.nowMs + 250);
    sched.step();
    sched.step();
    expect(quietChecks).toBe(2);
    expect(r.collections()).toBe(0);
    r.stop();
    expect(sched.nextAtMs()).toBe(Infinity);
  });

  it('collects at its interval only when the policy says so', async () => {
    let calls = 0;
    let resolveCall: () => void = () => undefined;
    const called = new Promise<void>((r) => (resolveCall = r));
    const gc = exposedGc()!;
    const r = new BufferReclaimer(8 * MiB, 10, () => {
      calls++;
      gc();
      resolveCall();
    });
    // A clean baseline: garbage an earlier suite of this worker left, freed by V8 between start()
    // and the first check, would otherwise lower the baseline past our growth (policy spec above).
    gc();
    r.start();
    try {
      // Held until the reclaimer reacts: a collection by V8 itself must not take the growth away first.
      const grown: Buffer[] = [];
      for (let i = 0; i < 8; i++) grown.push(Buffer.alloc(2 * MiB, i));
      await called;
      expect(grown).toHaveLength(8);
      expect(calls).toBeGreaterThanOrEqual(1);
      expect(r.collections()).toBe(calls);
    } finally {
      r.stop();
    }
  });
});
