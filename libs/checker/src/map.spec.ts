import { mulberry32 } from '@cairn/raft'; // seeded PRNG: reproducible histories
import { HistoryError, HistoryRecorder, checkHistory, mapStep, partition, type Operation, type TxnSpec } from './index';

type Op = Operation;
const ok = { outcome: 'ok' as const };
const incr = (clientId: number, key: string, delta: number, value: string | null, invokeMs: number, completeMs: number | null): Op =>
  value === null ? { clientId, kind: 'incr', key, delta, invokeMs, completeMs, outcome: 'info' } : { clientId, kind: 'incr', key, delta, value, invokeMs, completeMs, ...ok };
const get = (clientId: number, key: string, value: string | null, invokeMs: number, completeMs: number): Op => ({ clientId, kind: 'get', key, value, invokeMs, completeMs, ...ok });
const put = (clientId: number, key: string, value: string, invokeMs: number, completeMs: number): Op => ({ clientId, kind: 'put', key, value, invokeMs, completeMs, ...ok });
const txn = (clientId: number, spec: TxnSpec, outcome: { succeeded: boolean; results?: (string | null)[] } | 'info', invokeMs: number, completeMs: number | null): Op => ({
  clientId,
  kind: 'txn',
  key: spec.compares[0]?.key ?? spec.success[0]?.key ?? '',
  txn: spec,
  invokeMs,
  completeMs,
  ...(outcome === 'info' ? { outcome: 'info' as const } : { outcome: 'ok' as const, succeeded: outcome.succeeded, results: outcome.results ?? [] }),
});
const range = (clientId: number, start: string, end: string, entries: [string, string][], invokeMs: number, completeMs: number): Op => ({ clientId, kind: 'range', key: start, end, entries, invokeMs, completeMs, ...ok });

/** A bank transfer as the chaos workload sends it: both balances must still be what was read, then both are written. */
const transfer = (from: string, fromWas: string | null, fromNow: string, to: string, toWas: string | null, toNow: string): TxnSpec => ({
  compares: [
    { key: from, value: fromWas },
    { key: to, value: toWas },
  ],
  success: [
    { kind: 'put', key: from, value: fromNow },
    { kind: 'put', key: to, value: toNow },
  ],
  failure: [{ kind: 'get', key: from }, { kind: 'get', key: to }],
});

const verdict = (h: Op[]) => {
  const r = checkHistory(h, { clock: () => 0 });
  return r.ok ? 'ok' : r.violations.length ? 'violation' : 'unknown';
};

describe('counter (incr)', () => {
  it('concurrent increments returning 1, 2, 3 in any order of their overlap are linearizable; so is a later read of 3', () => {
    expect(verdict([incr(0, 'n', 1, '2', 0, 10), incr(1, 'n', 1, '1', 1, 9), incr(2, 'n', 1, '3', 2, 8), get(3, 'n', '3', 11, 12)])).toBe('ok');
  });

  it('a lost increment: two sequential increments both returning 1 is a violation', () => {
    const r = checkHistory([incr(0, 'n', 1, '1', 0, 1), incr(1, 'n', 1, '1', 2, 3)], { clock: () => 0 });
    expect(r.ok).toBe(false);
    expect(r.violations[0]!.message).toMatch(/incr "n" by 1 → 1/);
  });

  it('a double-applied increment: one acknowledged INCR (its retried copy applied too) then a read of 2 is a violation', () => {
    expect(verdict([incr(0, 'n', 1, '1', 0, 5), get(1, 'n', '2', 6, 7)])).toBe('violation');
    // ...while an indeterminate second increment may explain the 2
    expect(verdict([incr(0, 'n', 1, '1', 0, 5), incr(1, 'n', 1, null, 1, null), get(1, 'n', '2', 6, 7)])).toBe('ok');
  });

  it('an indeterminate increment applies at most once: one info INCR cannot explain +2', () => {
    expect(verdict([incr(0, 'n', 1, null, 0, null), get(1, 'n', '1', 5, 6)])).toBe('ok');
    expect(verdict([incr(0, 'n', 1, null, 0, null), get(1, 'n', null, 5, 6)])).toBe('ok'); // never applied
    expect(verdict([incr(0, 'n', 1, null, 0, null), get(1, 'n', '2', 5, 6)])).toBe('violation');
    // it takes effect after its invocation, not before
    expect(verdict([get(1, 'n', '1', 0, 1), incr(0, 'n', 1, null, 2, null)])).toBe('violation');
  });

  it('DECRBY, a put of a number, and an increment of a value that is not a number (refused: an ok one is a violation)', () => {
    expect(verdict([put(0, 'n', '10', 0, 1), incr(0, 'n', -3, '7', 2, 3), incr(1, 'n', 5, '12', 4, 5)])).toBe('ok');
    expect(verdict([put(0, 'n', 'abc', 0, 1), incr(0, 'n', 1, '1', 2, 3)])).toBe('violation');
    expect(verdict([put(0, 'n', 'abc', 0, 1), incr(0, 'n', 1, null, 2, null), get(1, 'n', 'abc', 4, 5)])).toBe('ok');
  });
});

describe('multi-key txn and range reads (map model)', () => {
  const opening = [put(9, 'a0', '100|o', 0, 1), put(9, 'a1', '100|o', 0, 1)];

  it('bank transfers with range reads that always see both sides of a transfer are linearizable', () => {
    const h = [
      ...opening,
      txn(0, transfer('a0', '100|o', '90|t1', 'a1', '100|o', '110|t1'), { succeeded: true }, 2, 6),
      range(1, 'a', 'b', [['a0', '100|o'], ['a1', '100|o']], 2, 3), // before the transfer took effect
      range(2, 'a', 'b', [['a0', '90|t1'], ['a1', '110|t1']], 4, 8), // after
      // a transfer on stale reads fails its compares and reports the balances it found
      txn(1, transfer('a1', '100|o', '80|t2', 'a0', '100|o', '120|t2'), { succeeded: false, results: ['110|t1', '90|t1'] }, 9, 10),
      range(3, 'a', 'b', [['a0', '90|t1'], ['a1', '110|t1']], 11, 12),
    ];
    expect(verdict(h)).toBe('ok');
  });

  it('a torn txn visible to a range read (one side of a transfer without the other) is a violation', () => {
    const h = [...opening, txn(0, transfer('a0', '100|o', '90|t1', 'a1', '100|o', '110|t1'), { succeeded: true }, 2, 6), range(1, 'a', 'b', [['a0', '90|t1'], ['a1', '100|o']], 3, 5)];
    const r = checkHistory(h, { clock: () => 0 });
    expect(r.ok).toBe(false);
    expect(r.violations[0]!.key).toBe('a0,a1');
    expect(r.violations[0]!.message).toMatch(/range \["a", "b"\)/);
  });

  it('a range read missing an acknowledged write (or returning a key outside its range) is a violation', () => {
    expect(verdict([...opening, put(0, 'a2', 'x', 2, 3), range(1, 'a', 'b', [['a0', '100|o'], ['a1', '100|o']], 4, 5)])).toBe('violation');
    expect(verdict([...opening, put(0, 'a2', 'x', 2, 3), range(1, 'a', 'b', [['a0', '100|o'], ['a1', '100|o'], ['a2', 'x']], 4, 5)])).toBe('ok');
    expect(verdict([...opening, put(0, 'b0', 'x', 2, 3), range(1, 'a', 'b', [['a0', '100|o'], ['a1', '100|o'], ['b0', 'x']], 4, 5)])).toBe('violation');
    // a range over keys the history never wrote must come back empty
    expect(verdict([range(1, 'z', 'zz', [['z1', 'ghost']], 0, 1)])).toBe('violation');
  });

  it('a txn that reports the wrong branch, or gets that do not match the state, is a violation', () => {
    expect(verdict([...opening, txn(0, transfer('a0', '100|o', '90|t1', 'a1', '100|o', '110|t1'), { succeeded: false, results: ['100|o', '100|o'] }, 2, 3)])).toBe('violation');
    expect(verdict([...opening, txn(0, transfer('a0', 'stale', '90|t1', 'a1', '100|o', '110|t1'), { succeeded: false, results: ['100|o', '100|o'] }, 2, 3)])).toBe('ok');
    expect(verdict([...opening, txn(0, transfer('a0', 'stale', '90|t1', 'a1', '100|o', '110|t1'), { succeeded: false, results: ['100|o', '90|t1'] }, 2, 3)])).toBe('violation');
    // later ops of a branch see the earlier ones' writes
    const spec: TxnSpec = { compares: [], success: [{ kind: 'put', key: 'a0', value: 'p' }, { kind: 'get', key: 'a0' }, { kind: 'delete', key: 'a0' }, { kind: 'get', key: 'a0' }], failure: [] };
    expect(verdict([txn(0, spec, { succeeded: true, results: ['p', null] }, 0, 1), get(0, 'a0', null, 2, 3)])).toBe('ok');
    expect(verdict([txn(0, spec, { succeeded: true, results: [null, null] }, 0, 1)])).toBe('violation');
  });

  it('an indeterminate transfer applies atomically or not at all, never half', () => {
    const t = txn(0, transfer('a0', '100|o', '90|t1', 'a1', '100|o', '110|t1'), 'info', 2, null);
    expect(verdict([...opening, t, range(1, 'a', 'b', [['a0', '90|t1'], ['a1', '110|t1']], 5, 6)])).toBe('ok');
    expect(verdict([...opening, t, range(1, 'a', 'b', [['a0', '100|o'], ['a1', '100|o']], 5, 6)])).toBe('ok');
    expect(verdict([...opening, t, range(1, 'a', 'b', [['a0', '90|t1'], ['a1', '100|o']], 5, 6)])).toBe('violation');
    // once applied it stays applied: a later read of the old balances is a violation
    expect(verdict([...opening, t, range(1, 'a', 'b', [['a0', '90|t1'], ['a1', '110|t1']], 5, 6), get(2, 'a0', '100|o', 7, 8)])).toBe('violation');
  });

  it('partitions the history into components: keys linked by a txn or a range read, others alone', () => {
    const h = [...opening, put(0, 'a2', 'x', 2, 3), range(1, 'a1', 'a3', [], 4, 5), put(0, 'k0', 'v', 0, 1), incr(0, 'n0', 1, '1', 0, 1), txn(0, transfer('k1', null, 'a', 'k2', null, 'b'), { succeeded: true }, 0, 1)];
    expect(partition(h).map((c) => c.keys)).toEqual([['a0'], ['a1', 'a2'], ['k0'], ['n0'], ['k1', 'k2']]);
  });
});

describe('HistoryRecorder: incr, txn, range', () => {
  it('records them, refuses malformed ones, and round-trips through JSON lines', () => {
    let t = 0;
    const rec = new HistoryRecorder(() => t++);
    const i = rec.invokeIncr(0, 'n', 5);
    rec.okIncr(i, 5n);
    const spec = transfer('a0', null, '1|x', 'a1', null, '2|x');
    const x = rec.invokeTxn(1, spec);
    rec.okTxn(x, false, [null, null]);
    const r = rec.invokeRange(2, 'a', 'b');
    rec.okRange(r, [['a0', '1|x']]);
    expect(() => rec.ok(i)).toThrow(HistoryError);
    expect(() => rec.okTxn(rec.invokeTxn(1, spec), false, [null])).toThrow(/2 values/);
    expect(() => rec.invokeIncr(0, 'n', 1.5)).toThrow(/safe integer/);
    const back = HistoryRecorder.fromJSON(rec.toJSON()).operations();
    expect(back[0]).toMatchObject({ kind: 'incr', delta: 5, value: '5' });
    expect(back[1]).toMatchObject({ kind: 'txn', key: 'a0', succeeded: false, results: [null, null] });
    expect(back[2]).toMatchObject({ kind: 'range', key: 'a', end: 'b', entries: [['a0', '1|x']] });
  });
});

/**
 * Histories linearizable by construction (each operation gets a point in its interval; an info
 * one: any time after its invocation, or never; the sequential model answers), on 3 keys with
 * put, get, incr, two-key txns and range reads; and the same histories with one output changed,
 * cross-checked against a brute-force search.
 */
function generate(random: () => number, clients: number, opsPerClient: number, infoRate: number): Operation[] {
  const keys = ['a0', 'a1', 'a2'];
  const int = (n: number) => Math.floor(random() * n);
  const planned: { op: Operation; pointMs: number; applies: boolean }[] = [];
  let w = 0;
  for (let clientId = 0; clientId < clients; clientId++) {
    let t = random() * 3;
    for (let n = 0; n < opsPerClient; n++) {
      const invokeMs = t + random() * 3;
      const completeMs = invokeMs + random() * 10;
      const roll = random();
      const key = keys[int(3)]!;
      const other = keys[int(3)]!;
      const op: Operation =
        roll < 0.2
          ? { clientId, kind: 'get', key, invokeMs, completeMs, outcome: 'ok' }
          : roll < 0.35
            ? { clientId, kind: 'put', key, value: String(int(3)), invokeMs, completeMs, outcome: 'ok' }
            : roll < 0.55
              ? { clientId, kind: 'incr', key, delta: 1 + int(2), invokeMs, completeMs, outcome: 'ok' }
              : roll < 0.8
                ? { clientId, kind: 'txn', key, txn: { compares: [{ key, value: int(2) ? null : String(int(3)) }], success: [{ kind: 'put', key, value: `w${++w}` }, { kind: 'put', key: other, value: `w${w}` }], failure: [{ kind: 'get', key: other }] }, invokeMs, completeMs, outcome: 'ok' }
                : { clientId, kind: 'range', key: 'a', end: 'b', invokeMs, completeMs, outcome: 'ok' };
      if (op.kind !== 'get' && op.kind !== 'range' && random() < infoRate) op.outcome = 'info';
      const pointMs = op.outcome === 'info' ? invokeMs + random() * 100 : invokeMs + random() * (completeMs - invokeMs);
      planned.push({ op, pointMs, applies: op.outcome === 'ok' || random() < 0.5 });
      t = completeMs;
    }
  }
  const slot = (k: string) => keys.indexOf(k);
  let state: (string | null)[] = [null, null, null];
  for (const p of [...planned].sort((a, b) => a.pointMs - b.pointMs)) {
    if (!p.applies) continue;
    const { op } = p;
    if (op.kind === 'get') op.value = state[slot(op.key)];
    if (op.kind === 'range') op.entries = keys.flatMap((k) => (state[slot(k)] === null ? [] : [[k, state[slot(k)]!] as [string, string]]));
    if (op.kind === 'incr' && !/^-?\d+$/.test(state[slot(op.key)] ?? '0')) {
      op.outcome = 'fail'; // refused: not a number
      continue;
    }
    if (op.kind === 'incr') op.value = String(Number(state[slot(op.key)] ?? '0') + op.delta!);
    if (op.kind === 'txn') {
      op.succeeded = op.txn!.compares.every((c) => state[slot(c.key)] === c.value);
      op.results = op.succeeded ? [] : [state[slot(op.txn!.failure[0]!.key)]!];
    }
    state = mapStep(op, true, state, slot, keys) as (string | null)[];
  }
  for (const p of planned) if (p.op.outcome === 'info') for (const f of ['value', 'succeeded', 'results'] as const) if (p.op.kind !== 'put' || f !== 'value') delete p.op[f];
  return planned.map((p) => p.op);
}

function bruteForce(history: Operation[]): boolean {
  const keys = ['a0', 'a1', 'a2'];
  const ops = history.filter((op) => op.outcome !== 'fail' && !(op.outcome === 'info' && (op.kind === 'get' || op.kind === 'range')));
  const end = (op: Operation) => (op.outcome === 'ok' ? op.completeMs! : Infinity);
  const search = (left: Operation[], state: readonly (string | null)[]): boolean => {
    if (left.every((op) => op.outcome !== 'ok')) return true;
    return left.some((op, i) => {
      if (left.some((other) => other !== op && end(other) < op.invokeMs)) return false;
      const next = mapStep(op, op.outcome === 'ok', state, (k) => keys.indexOf(k), keys);
      return next !== undefined && search(left.filter((_, j) => j !== i), next);
    });
  };
  return search(ops, [null, null, null]);
}

describe('map model against generated histories', () => {
  it('accepts 200 histories of a real sequential map (4 clients × 12 operations, 15 % indeterminate writes)', () => {
    const random = mulberry32(11);
    for (let n = 0; n < 200; n++) {
      const h = generate(random, 4, 12, 0.15);
      const r = checkHistory(h, { clock: () => 0 });
      if (!r.ok) throw new Error(`history ${n} rejected: ${JSON.stringify(r.violations)}`);
    }
  });

  it('agrees with a brute-force search on 300 tiny histories with one output changed', () => {
    const random = mulberry32(12);
    let violations = 0;
    for (let n = 0; n < 300; n++) {
      const h = generate(random, 3, 2, 0.2);
      const oks = h.filter((op) => op.outcome === 'ok' && op.kind !== 'put');
      const victim = oks[Math.floor(random() * oks.length)];
      if (victim?.kind === 'get') victim.value = victim.value === null ? '1' : null;
      if (victim?.kind === 'incr') victim.value = String(Number(victim.value) + 1);
      if (victim?.kind === 'txn') victim.succeeded = !victim.succeeded;
      if (victim?.kind === 'range') victim.entries = victim.entries!.slice(1);
      if (victim?.kind === 'txn' && !victim.succeeded) victim.results = [null];
      if (victim?.kind === 'txn' && victim.succeeded) victim.results = [];
      const want = bruteForce(h);
      if (!want) violations++;
      expect(checkHistory(h, { clock: () => 0 }).ok).toBe(want);
    }
    expect(violations).toBeGreaterThan(50); // the changes do make violations
  });
});

/** Opt-in (`CAIRN_CHECKER_MAP_SIZES=1`): how long bigger generated histories take (docs/checker.md "Limits"); asserts only a decision or a budget. */
(process.env.CAIRN_CHECKER_MAP_SIZES ? describe : describe.skip)('map model: history sizes (opt-in)', () => {
  it.each([
    [4, 500, 0.02],
    [8, 500, 0.02],
    [8, 1000, 0.05],
  ])('%i clients × %i operations, %f indeterminate writes', (clients, ops, info) => {
    const h = generate(mulberry32(5), clients, ops, info);
    const t0 = performance.now();
    const r = checkHistory(h, { timeoutMs: 60_000 });
    process.stderr.write(`map model: ${clients} clients × ${ops} operations, ${info * 100} % info: ${r.ok ? 'linearizable' : r.unknown ? `unknown (${r.unknownKeys?.[0]?.reason})` : 'VIOLATION'} in ${(performance.now() - t0).toFixed(0)} ms\n`);
    expect(r.violations).toEqual([]);
  });
});
