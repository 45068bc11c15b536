import { FAULT_KINDS, FaultPlanError, parseDurationMs, planFaults, type PlannedFault } from './schedule';

const TEN_MINUTES_MS = 600_000;

describe('planFaults', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const a = planFaults({ seed: 42, durationMs: TEN_MINUTES_MS });
    expect(planFaults({ seed: 42, durationMs: TEN_MINUTES_MS })).toEqual(a);
    expect(planFaults({ seed: 43, durationMs: TEN_MINUTES_MS })).not.toEqual(a);
    expect(a.length).toBeGreaterThan(20);
  });

  it('never overlaps two faults, keeps every fault inside the run and holds within bounds', () => {
    for (let seed = 0; seed < 200; seed++) {
      const durationMs = 20_000 + seed * 1000;
      const plan = planFaults({ seed, durationMs, gapMinMs: 1000, gapMaxMs: 3000, downMinMs: 200, downMaxMs: 2000, pauseMinMs: 400, pauseMaxMs: 900 });
      let freeAtMs = 0;
      for (const f of plan) {
        expect(f.atMs).toBeGreaterThanOrEqual(freeAtMs);
        expect(f.atMs).toBeLessThanOrEqual(durationMs - 2000);
        expect(f.atMs + f.holdMs).toBeLessThanOrEqual(durationMs);
        const pause = f.kind === 'pause' || f.kind === 'pause-leader';
        if (f.atMs + (pause ? 900 : 2000) <= durationMs) {
          expect(f.holdMs).toBeGreaterThanOrEqual(pause ? 400 : 200);
          expect(f.holdMs).toBeLessThanOrEqual(pause ? 900 : 2000);
        }
        freeAtMs = f.atMs + f.holdMs + 1000;
      }
    }
  });

  it('aims each kind at the right target: torn tails and writes at one consensus replica, processes of every role', () => {
    const faults: PlannedFault[] = [];
    for (let seed = 0; seed < 50; seed++) faults.push(...planFaults({ seed, durationMs: TEN_MINUTES_MS }));
    const kinds = new Set(faults.map((f) => f.kind));
    expect([...kinds].sort()).toEqual([...FAULT_KINDS].sort());
    const roles = new Set<string>();
    for (const f of faults) {
      if (f.kind === 'kill-leader' || f.kind === 'pause-leader' || f.kind === 'partition-leader') expect(f.target).toEqual({ kind: 'leader' });
      if (f.kind === 'partition') expect(f.target).toMatchObject({ kind: 'process' });
      if (f.kind === 'nats-restart') expect(f.target).toEqual({ kind: 'nats' });
      if (f.kind === 'torn-tail' || f.kind === 'torn-write') {
        expect(f.target).toMatchObject({ kind: 'process', role: 'consensus' });
        expect(f.tornBytes).toBeGreaterThanOrEqual(1);
        expect(f.tornBytes).toBeLessThanOrEqual(64);
      } else expect(f.tornBytes).toBeUndefined();
      if (f.target.kind === 'process') {
        roles.add(f.target.role);
        expect(f.target.index).toBeGreaterThanOrEqual(0);
        expect(f.target.index).toBeLessThan({ consensus: 3, storage: 2, gateway: 1 }[f.target.role]);
      }
    }
    expect([...roles].sort()).toEqual(['consensus', 'gateway', 'storage']);
  });

  it('cycles through the given kinds in order when asked', () => {
    const plan = planFaults({ seed: 1, durationMs: 60_000, kinds: ['kill-leader', 'pause-leader', 'torn-tail'], cycle: true });
    expect(plan.slice(0, 6).map((f) => f.kind)).toEqual(['kill-leader', 'pause-leader', 'torn-tail', 'kill-leader', 'pause-leader', 'torn-tail']);
  });

  it('plans nothing for a run shorter than its start and end margins', () => {
    expect(planFaults({ seed: 1, durationMs: 3000 })).toEqual([]);
  });

  it('rejects inconsistent options', () => {
    expect(() => planFaults({ seed: 1, durationMs: 60_000, gapMinMs: 5, gapMaxMs: 4 })).toThrow(FaultPlanError);
    expect(() => planFaults({ seed: 1, durationMs: 60_000, kinds: [] })).toThrow(/at least one/);
    expect(() => planFaults({ seed: 1, durationMs: 60_000, kinds: ['meteor' as never] })).toThrow(/unknown fault kind/);
  });
});

describe('parseDurationMs', () => {
  it('reads s, m, ms, h and bare seconds', () => {
    expect(parseDurationMs('600s')).toBe(600_000);
    expect(parseDurationMs('10m')).toBe(600_000);
    expect(parseDurationMs('1500ms')).toBe(1500);
    expect(parseDurationMs('1h')).toBe(3_600_000);
    expect(parseDurationMs('2.5')).toBe(2500);
  });

  it('rejects garbage and zero', () => {
    expect(() => parseDurationMs('ten minutes')).toThrow(RangeError);
    expect(() => parseDurationMs('0s')).toThrow(/positive/);
    expect(() => parseDurationMs('-5s')).toThrow(RangeError);
  });
});
