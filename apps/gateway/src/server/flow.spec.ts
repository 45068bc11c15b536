import { ByteBudget } from './flow';

describe('ByteBudget', () => {
  it('wakes the connections waiting on it once released bytes bring it back under the bound', () => {
    const b = new ByteBudget(100);
    const woken: string[] = [];
    b.take(150);
    expect(b.over()).toBe(true);
    b.whenUnder(() => woken.push('a'));
    b.give(20);
    expect(woken).toEqual([]); // 130: still over
    b.give(30);
    expect(woken).toEqual(['a']); // 100: at the bound is not over
    expect(() => b.give(101)).toThrow(/ByteBudgetNonNegative/);
  });

  it('estimates a read as the largest value seen lately, decaying 1% per value seen', () => {
    const b = new ByteBudget(100);
    expect(b.readEstimate()).toBe(0);
    b.observeValue(1_000_000);
    expect(b.readEstimate()).toBe(1_000_000);
    for (let i = 0; i < 100; i++) b.observeValue(10);
    expect(b.readEstimate()).toBe(Math.round(1_000_000 * 0.99 ** 100));
    b.observeValue(2_000_000);
    expect(b.readEstimate()).toBe(2_000_000);
  });
});
