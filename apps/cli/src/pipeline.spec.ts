import { runPipelined } from './pipeline';

describe('runPipelined', () => {
  it('never has more than windowMax in flight and runs every item', async () => {
    const pending: (() => void)[] = [];
    let inflight = 0;
    let peak = 0;
    const done: number[] = [];
    const run = runPipelined([1, 2, 3, 4, 5, 6, 7], 3, (n) => {
      inflight++;
      peak = Math.max(peak, inflight);
      return new Promise<void>((r) =>
        pending.push(() => {
          inflight--;
          done.push(n);
          r();
        }),
      );
    });
    while (done.length < 7) {
      await new Promise((r) => setImmediate(r));
      pending.shift()?.();
    }
    await run;
    expect(peak).toBe(3);
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('stops taking items after a failure and rethrows it', async () => {
    const started: number[] = [];
    await expect(
      runPipelined([1, 2, 3, 4, 5], 1, async (n) => {
        started.push(n);
        if (n === 2) throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(started).toEqual([1, 2]);
  });

  it('rejects a bad window', async () => {
    await expect(runPipelined([], 0, async () => undefined)).rejects.toThrow(RangeError);
  });
});
