import { ReadWaiters } from './read-waiters';

describe('ReadWaiters', () => {
  it('wakes waiters whose index was applied and keeps the others', async () => {
    const w = new ReadWaiters(10, 60_000);
    const a = w.wait(5);
    const b = w.wait(9);
    w.notify(6);
    await expect(a).resolves.toBe(true);
    expect(w.size()).toBe(1);
    w.cancelAll();
    await expect(b).resolves.toBe(false);
  });

  it('answers false at once when full, and on timeout', async () => {
    const w = new ReadWaiters(1, 1);
    const a = w.wait(5);
    await expect(w.wait(5)).resolves.toBe(false);
    await expect(a).resolves.toBe(false);
    expect(w.size()).toBe(0);
  });
});
