import { BufferReclaimPolicy, BufferReclaimer, exposedGc } from './buffer-reclaimer';

const MiB = 1024 * 1024;

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

describe('BufferReclaimer', () => {
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
