import { SimScheduler } from './scheduler';

describe('SimScheduler', () => {
  it('runs timers in virtual-time order, deferred work first, intervals until cleared, nothing of a killed incarnation', () => {
    const s = new SimScheduler(1);
    const p = s.incarnation('p');
    const q = s.incarnation('q');
    const seen: string[] = [];
    p.clock.setTimeout(() => seen.push(`t30@${s.nowMs}`), 30);
    const iv = p.clock.setInterval(() => seen.push(`iv@${s.nowMs}`), 10);
    p.clock.defer(() => seen.push(`defer@${s.nowMs}`));
    q.clock.setTimeout(() => seen.push('q'), 5);
    q.kill();
    p.clock.setTimeout(() => p.clock.clearTimer(iv), 25);
    while (s.step());
    const t0 = 1_000_000;
    expect(seen).toEqual([`defer@${t0}`, `iv@${t0 + 10}`, `iv@${t0 + 20}`, `t30@${t0 + 30}`]);
  });
});
