import { ReadyInputs } from './ready-inputs';

describe('ReadyInputs', () => {
  it('wakes the loop on each push and drains in arrival order; a push during a drain waits for the next one', () => {
    let kicks = 0;
    const q = new ReadyInputs<number>(() => kicks++);
    expect(q.hasQueued()).toBe(false);
    q.push(1);
    q.push(2);
    expect(kicks).toBe(2);
    expect(q.hasQueued()).toBe(true);
    const seen: number[] = [];
    q.drain((n) => {
      seen.push(n);
      if (n === 1) q.push(3);
    });
    expect(seen).toEqual([1, 2]);
    expect(q.takeAll()).toEqual([3]);
    expect(q.hasQueued()).toBe(false);
    expect(q.takeAll()).toEqual([]);
  });
});
