import fc from 'fast-check';
import { mulberry32 } from '@cairn/raft'; // seeded PRNG: the scale tests are reproducible
import { checkHistory, type CheckOptions, type Operation } from './index';

/**
 * Histories linearizable by construction: every operation gets a linearization point inside its
 * interval (for an info write that takes effect: any time after its invocation), a real sequential
 * register per key applies the operations in point order, and gets return what it holds.
 */
interface GenOptions {
  clients: number;
  opsPerClient: number;
  keys: number;
  /** Distinct values per key; small = many writes of one value (the ambiguous case for the search). */
  values: number;
  /** Probability that an operation's outcome is fail / info. */
  failRate: number;
  infoRate: number;
  durationMax: number;
  gapMax: number;
}

function generate(random: () => number, o: GenOptions): Operation[] {
  const int = (n: number) => Math.floor(random() * n);
  const planned: { op: Operation; pointMs: number; applies: boolean }[] = [];
  for (let clientId = 0; clientId < o.clients; clientId++) {
    let t = random() * o.gapMax;
    for (let n = 0; n < o.opsPerClient; n++) {
      const invokeMs = t + random() * o.gapMax;
      const completeMs = invokeMs + random() * o.durationMax;
      const roll = random();
      const outcome = roll < o.failRate ? 'fail' : roll < o.failRate + o.infoRate ? 'info' : 'ok';
      const kindRoll = random();
      const kind = kindRoll < 0.45 ? 'get' : kindRoll < 0.9 ? 'put' : 'delete';
      const op: Operation = { clientId, kind, key: `k${int(o.keys)}`, invokeMs, completeMs, outcome };
      if (kind === 'put') op.value = `v${int(o.values)}`;
      // An info write takes effect (half the time) at any point after its invocation, even long after.
      const pointMs = outcome === 'info' ? invokeMs + random() * o.durationMax * 20 : invokeMs + random() * (completeMs - invokeMs);
      planned.push({ op, pointMs, applies: outcome === 'ok' || (outcome === 'info' && random() < 0.5) });
      t = completeMs;
    }
  }
  const register = new Map<string, string | null>();
  for (const p of [...planned].sort((a, b) => a.pointMs - b.pointMs)) {
    if (!p.applies) continue;
    if (p.op.kind === 'put') register.set(p.op.key, p.op.value!);
    else if (p.op.kind === 'delete') register.set(p.op.key, null);
    else p.op.value = register.get(p.op.key) ?? null;
  }
  // Info gets have an unknown output: give them garbage, the checker must ignore it.
  for (const p of planned) if (p.op.kind === 'get' && p.op.outcome !== 'ok') p.op.value = 'garbage';
  return planned.map((p) => p.op);
}

const genOptionsArb: fc.Arbitrary<GenOptions> = fc.record({
  clients: fc.integer({ min: 1, max: 8 }),
  opsPerClient: fc.integer({ min: 1, max: 25 }),
  keys: fc.integer({ min: 1, max: 3 }),
  values: fc.integer({ min: 1, max: 30 }),
  failRate: fc.constantFrom(0, 0.1),
  infoRate: fc.constantFrom(0, 0.1, 0.3),
  durationMax: fc.constantFrom(1, 5, 20),
  gapMax: fc.constantFrom(0.5, 3),
});

const MODES: [string, CheckOptions][] = [
  ['prechecks + search', {}],
  ['search only', { precheck: false }],
];

describe.each(MODES)('random histories from a real sequential register (fast-check, %s)', (_mode, options) => {
  it('are all accepted', () => {
    fc.assert(
      fc.property(fc.integer(), genOptionsArb, (seed, o) => {
        const history = generate(mulberry32(seed), o);
        const r = checkHistory(history, options);
        expect(r.violations).toEqual([]);
        expect(r.ok).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it("are rejected once one get's output is changed to a never-written value", () => {
    fc.assert(
      fc.property(fc.integer(), genOptionsArb, fc.nat(), (seed, o, pick) => {
        const history = generate(mulberry32(seed), o);
        const gets = history.filter((op) => op.kind === 'get' && op.outcome === 'ok');
        fc.pre(gets.length > 0);
        const victim = gets[pick % gets.length]!;
        victim.value = 'never-written';
        const r = checkHistory(history, options);
        expect(r.ok).toBe(false);
        expect(r.violations).toHaveLength(1);
        expect(r.violations[0]!.key).toBe(victim.key);
        expect(r.violations[0]!.operations).toContain(victim);
      }),
      { numRuns: 150 },
    );
  });
});

/**
 * Brute force for tiny histories: try every subset of the info writes and every order of the
 * chosen operations that respects real time (a before b if a completed before b was invoked).
 */
function bruteForceLinearizable(history: Operation[]): boolean {
  const byKey = new Map<string, Operation[]>();
  for (const op of history) {
    if (op.outcome === 'fail' || (op.outcome === 'info' && op.kind === 'get')) continue;
    byKey.set(op.key, [...(byKey.get(op.key) ?? []), op]);
  }
  const end = (op: Operation) => (op.outcome === 'ok' ? op.completeMs! : Infinity);
  const orderable = (ops: Operation[]): boolean => {
    const used = ops.map(() => false);
    const dfs = (state: string | null, done: number): boolean => {
      if (done === ops.length) return true;
      for (let i = 0; i < ops.length; i++) {
        if (used[i]) continue;
        // i may go next only if no unused operation completed before i was invoked.
        if (ops.some((o, j) => !used[j] && j !== i && end(o) < ops[i]!.invokeMs)) continue;
        const op = ops[i]!;
        if (op.kind === 'get' && (op.value ?? null) !== state) continue;
        used[i] = true;
        const ok = dfs(op.kind === 'put' ? op.value! : op.kind === 'delete' ? null : state, done + 1);
        used[i] = false;
        if (ok) return true;
      }
      return false;
    };
    return dfs(null, 0);
  };
  return [...byKey.values()].every((ops) => {
    const info = ops.filter((op) => op.outcome === 'info');
    const certain = ops.filter((op) => op.outcome === 'ok');
    for (let mask = 0; mask < 1 << info.length; mask++) {
      if (orderable([...certain, ...info.filter((_, b) => mask & (1 << b))])) return true;
    }
    return false;
  });
}

const tinyOpArb: fc.Arbitrary<Operation> = fc
  .record({
    clientId: fc.nat({ max: 3 }),
    kind: fc.constantFrom<Operation['kind']>('put', 'put', 'get', 'get', 'get', 'delete'),
    key: fc.constantFrom('a', 'b'),
    value: fc.constantFrom('x', 'y', 'z', null),
    invokeMs: fc.integer({ min: 0, max: 12 }),
    durationMs: fc.integer({ min: 0, max: 6 }),
    outcome: fc.constantFrom<Operation['outcome']>('ok', 'ok', 'ok', 'ok', 'fail', 'info'),
  })
  .map(({ durationMs, ...op }) => ({
    ...op,
    value: op.kind === 'put' ? (op.value ?? 'x') : op.kind === 'get' ? op.value : undefined,
    completeMs: op.invokeMs + durationMs,
  }));

describe('agreement with a brute-force checker on tiny arbitrary histories (fast-check)', () => {
  it.each(MODES)('%s: same verdict, and a violation only on a non-linearizable key', (_mode, options) => {
    fc.assert(
      fc.property(fc.array(tinyOpArb, { maxLength: 9 }), (history) => {
        const expected = bruteForceLinearizable(history);
        const r = checkHistory(history, options);
        expect(r.ok).toBe(expected);
        for (const v of r.violations) expect(bruteForceLinearizable(history.filter((op) => op.key === v.key))).toBe(false);
      }),
      { numRuns: 1500 },
    );
  });
});

describe('realistic scale', () => {
  const realistic: GenOptions = { clients: 20, opsPerClient: 500, keys: 10, values: 1000, failRate: 0.02, infoRate: 0.03, durationMax: 8, gapMax: 1 };

  it.each(MODES)('%s: 20 clients × 500 operations over 10 keys is accepted; one phantom read in it is found', (_mode, options) => {
    const history = generate(mulberry32(42), realistic);
    expect(history).toHaveLength(10_000);
    const r = checkHistory(history, options);
    expect(r).toEqual({ ok: true, keysChecked: 10, operations: 10_000, violations: [] });

    const victim = history.filter((op) => op.kind === 'get' && op.outcome === 'ok')[1234]!;
    victim.value = 'phantom';
    const bad = checkHistory(history, options);
    expect(bad.ok).toBe(false);
    expect(bad.violations.map((v) => v.key)).toEqual([victim.key]);
  });

  it.each(MODES)('%s: 40 clients × 100 operations on ONE key (unique values) is accepted', (_mode, options) => {
    const history = generate(mulberry32(7), { ...realistic, clients: 40, opsPerClient: 100, keys: 1, values: 1e9 });
    const r = checkHistory(history, options);
    expect(r).toEqual({ ok: true, keysChecked: 1, operations: 4000, violations: [] });
  });

  it.each(MODES)('%s: 10 clients × 300 operations on ONE key with 3 distinct values is accepted', (_mode, options) => {
    const history = generate(mulberry32(11), { ...realistic, clients: 10, opsPerClient: 300, keys: 1, values: 3 });
    const r = checkHistory(history, options);
    expect(r).toEqual({ ok: true, keysChecked: 1, operations: 3000, violations: [] });
  });

  it('a stale read deep in a long single-key history is found by the search alone', () => {
    const history = generate(mulberry32(3), { ...realistic, clients: 10, opsPerClient: 200, keys: 1, values: 100000, infoRate: 0, failRate: 0 });
    // After the middle, find a completed put followed (non-overlapping) by a get; make the get return the value before that put.
    const ordered = [...history].sort((a, b) => a.invokeMs - b.invokeMs);
    const puts = ordered.filter((op) => op.kind === 'put' && op.invokeMs > ordered[1000]!.invokeMs);
    const target = puts.find((p) => ordered.some((g) => g.kind === 'get' && g.invokeMs > p.completeMs! && g.value === p.value))!;
    const read = ordered.find((g) => g.kind === 'get' && g.invokeMs > target.completeMs! && g.value === target.value)!;
    const older = ordered.filter((op) => op.kind === 'put' && op.completeMs! < target.invokeMs).at(-1)!;
    read.value = older.value;
    const r = checkHistory(history, { precheck: false });
    expect(r.ok).toBe(false);
    expect(r.unknown).toBeUndefined();
    expect(r.violations[0]!.message).toMatch(/but no linearization/);
  });
});
