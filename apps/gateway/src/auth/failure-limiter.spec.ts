import { FailureLimiter } from './failure-limiter';

describe('FailureLimiter', () => {
  it('blocks an address after failuresMax failures until its window ends', () => {
    let now = 0;
    const l = new FailureLimiter(3, 1000, () => now);
    l.fail('a');
    l.fail('a');
    expect(l.blocked('a')).toBe(false);
    l.fail('a');
    expect(l.blocked('a')).toBe(true);
    expect(l.blocked('b')).toBe(false);
    now = 999;
    expect(l.blocked('a')).toBe(true);
    now = 1000;
    expect(l.blocked('a')).toBe(false);
  });

  it('tracks at most addressesMax addresses, forgetting the oldest', () => {
    const l = new FailureLimiter(1, 1000, () => 0, 2);
    l.fail('a');
    l.fail('b');
    l.fail('c');
    expect(l.size()).toBe(2);
    expect(l.blocked('a')).toBe(false);
    expect(l.blocked('c')).toBe(true);
  });
});
