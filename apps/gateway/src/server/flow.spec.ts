import { ByteBudget, RequestHold } from './flow';
import { idleFlow } from './testing';

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

describe('read flow control: ByteBudget grows and RequestHold', () => {
  it('a reservation grows while the budget has room, or alone when it is not over; never past one value beyond bytesMax', () => {
    const b = new ByteBudget(100);
    b.take(60);
    expect(b.mayGrow(40)).toBe(true); // room
    expect(b.mayGrow(500)).toBe(true); // no room, but no other grown read: a lone large value goes
    b.take(500);
    b.growing(500);
    expect(b.mayGrow(1)).toBe(false); // over, and a grown read is unanswered
    const woken: string[] = [];
    b.whenReleased(() => woken.push('released'));
    b.growing(-500); // its read answered: its bytes stay held until written
    expect(woken).toEqual(['released']);
    expect(b.mayGrow(1)).toBe(false); // still over: waits for bytes to be released
    b.give(500);
    expect(b.mayGrow(40)).toBe(true);
    expect(() => b.growing(-1)).toThrow(/ByteBudgetGrowingNonNegative/);
  });

  it('RequestHold counts its frame, prepaid and later reads and their growth in the connection and the budget, released once', () => {
    const budget = new ByteBudget(1 << 20);
    const { flow } = idleFlow(budget, { connectionRequestBytesMax: 1000 });
    const hold = new RequestHold(flow, budget, 30);
    hold.prepay(2, 100);
    expect([hold.held(), flow.heldBytes().request, budget.used()]).toEqual([230, 230, 230]);
    const a = hold.read(7); // prepaid: 100 bytes, nothing more taken
    const b = hold.read(7);
    const c = hold.read(50); // past the prepaid ones: taken now
    expect([a.bytes, b.bytes, c.bytes, hold.held()]).toEqual([100, 100, 50, 280]);
    a.grow(900);
    expect([a.bytes, hold.held(), budget.used()]).toEqual([1000, 1180, 1180]);
    expect(flow.blocked()).toBe(true); // over connectionRequestBytesMax: the connection stops reading
    hold.releaseRead(a);
    expect([hold.held(), budget.used()]).toEqual([180, 180]);
    hold.release();
    hold.release();
    c.grow(10); // after release: a no-op for the budget
    expect([hold.held(), flow.heldBytes().request, budget.used()]).toEqual([0, 0, 0]);
  });

  it('a reservation says cancelled once its connection closed', () => {
    const budget = new ByteBudget(1 << 20);
    const { socket, flow } = idleFlow(budget);
    const r = new RequestHold(flow, budget, 0).read(10);
    expect(r.cancelled()).toBe(false);
    socket.emit('close');
    expect(r.cancelled()).toBe(true);
  });
});
