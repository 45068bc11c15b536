import fc from 'fast-check';
import { mulberry32 } from '@cairn/raft'; // seeded PRNG: reproducible histories
import { HistoryError, HistoryRecorder, casStep, checkHistory, type Operation } from './index';

/**
 * Histories of a compare-and-swap register linearizable by construction: each operation gets a
 * point inside its interval (an info write: any time after its invocation, or never), a real
 * sequential register applies them in point order, and the outputs (get values, cas applied) are
 * what it answered.
 */
function generate(random: () => number, o: { clients: number; opsPerClient: number; values: number; infoRate: number }): Operation[] {
  const int = (n: number) => Math.floor(random() * n);
  const value = () => (int(o.values + 1) === 0 ? null : `v${int(o.values)}`);
  const planned: { op: Operation; pointMs: number; applies: boolean }[] = [];
  for (let clientId = 0; clientId < o.clients; clientId++) {
    let t = random() * 3;
    for (let n = 0; n < o.opsPerClient; n++) {
      const invokeMs = t + random() * 3;
      const completeMs = invokeMs + random() * 10;
      const outcome = random() < o.infoRate ? 'info' : 'ok';
      const roll = random();
      const kind = roll < 0.3 ? 'get' : roll < 0.5 ? 'put' : roll < 0.6 ? 'delete' : 'cas';
      const op: Operation = { clientId, kind, key: 'k', invokeMs, completeMs, outcome };
      if (kind === 'put' || kind === 'cas') op.value = `v${int(o.values)}`;
      if (kind === 'cas') op.expected = value();
      const pointMs = outcome === 'info' ? invokeMs + random() * 100 : invokeMs + random() * (completeMs - invokeMs);
      planned.push({ op, pointMs, applies: outcome === 'ok' || random() < 0.5 });
      t = completeMs;
    }
  }
  let state: string | null = null;
  for (const p of [...planned].sort((a, b) => a.pointMs - b.pointMs)) {
    if (!p.applies) continue;
    const { op } = p;
    if (op.kind === 'get') op.value = state;
    else if (op.kind === 'cas') {
      op.applied = op.expected === state;
      if (op.applied) state = op.value!;
    } else state = op.kind === 'put' ? op.value! : null;
  }
  for (const p of planned) if (p.op.outcome === 'info') delete p.op.applied;
  return planned.map((p) => p.op);
}

/** Brute force: some subset of the info operations plus every ok one, in some order respecting real time, each step legal. */
function bruteForce(history: Operation[]): boolean {
  const ops = history.filter((op) => op.outcome !== 'fail' && !(op.outcome === 'info' && op.kind === 'get'));
  const end = (op: Operation) => (op.outcome === 'ok' ? op.completeMs! : Infinity);
  // An info operation never chosen never took effect: the search ends once every ok one is placed.
  const search = (left: Operation[], state: string | null): boolean => {
    if (left.every((op) => op.outcome !== 'ok')) return true;
    return left.some((op, i) => {
      // op may go next only if nothing left completed before op was invoked
      if (left.some((other) => other !== op && end(other) < op.invokeMs)) return false;
      const next = casStep(op, op.outcome === 'ok', state);
      return next !== undefined && search(
        left.filter((_, j) => j !== i),
        next,
      );
    });
  };
  return search(ops, null);
}

describe('compare-and-swap register (cas.ts)', () => {
  const put = (clientId: number, value: string, invokeMs: number, completeMs: number): Operation => ({ clientId, kind: 'put', key: 'k', value, invokeMs, completeMs, outcome: 'ok' });
  const cas = (clientId: number, expected: string | null, value: string, applied: boolean | null, invokeMs: number, completeMs: number): Operation => ({
    clientId,
    kind: 'cas',
    key: 'k',
    expected,
    value,
    invokeMs,
    completeMs,
    outcome: applied === null ? 'info' : 'ok',
    ...(applied === null ? {} : { applied }),
  });
  const get = (clientId: number, value: string | null, invokeMs: number, completeMs: number): Operation => ({ clientId, kind: 'get', key: 'k', value, invokeMs, completeMs, outcome: 'ok' });

  it('a lost update: two cas from the same value both applied is a violation; one applied and one not is fine', () => {
    const base = put(0, 'a', 0, 1);
    const bad = checkHistory([base, cas(1, 'a', 'b', true, 2, 5), cas(2, 'a', 'c', true, 2, 5)]);
    expect(bad.ok).toBe(false);
    expect(bad.violations[0]!.message).toMatch(/no linearization: cas "k" if "a"/);
    expect(checkHistory([base, cas(1, 'a', 'b', true, 2, 5), cas(2, 'a', 'c', false, 2, 5), get(3, 'b', 6, 7)]).ok).toBe(true);
  });

  it('a cas that was not applied is an observation: it needs another value at its point', () => {
    expect(checkHistory([put(0, 'a', 0, 1), cas(1, 'a', 'b', false, 2, 3)]).ok).toBe(false);
    expect(checkHistory([put(0, 'a', 0, 1), cas(1, null, 'b', false, 2, 3)]).ok).toBe(true);
    // a cas on an absent key (expected null = mod revision 0)
    expect(checkHistory([cas(1, null, 'b', true, 0, 1), get(2, 'b', 2, 3)]).ok).toBe(true);
    expect(checkHistory([cas(1, null, 'b', true, 0, 1), cas(2, null, 'c', true, 2, 3)]).ok).toBe(false);
  });

  it('an info cas may apply late, or never; a get of its value needs it applied, after a state that holds its expected value', () => {
    expect(checkHistory([put(0, 'a', 0, 1), cas(1, 'a', 'b', null, 2, 3), get(2, 'b', 10, 11)]).ok).toBe(true);
    expect(checkHistory([put(0, 'a', 0, 1), cas(1, 'a', 'b', null, 2, 3), get(2, 'a', 10, 11)]).ok).toBe(true);
    // its expected value was gone before it was invoked: it cannot have written b
    expect(checkHistory([put(0, 'a', 0, 1), put(0, 'z', 2, 3), cas(1, 'a', 'b', null, 4, 5), get(2, 'b', 10, 11)]).ok).toBe(false);
  });

  it('recorder: invokeCas / okCas; a malformed cas is a HistoryError', () => {
    let t = 0;
    const rec = new HistoryRecorder(() => t++);
    const id = rec.invokeCas(1, 'k', null, 'v1');
    rec.okCas(id, true);
    const g = rec.invoke(2, 'get', 'k');
    rec.ok(g, 'v1');
    expect(checkHistory(HistoryRecorder.fromJSON(rec.toJSON()).operations()).ok).toBe(true);
    expect(() => rec.ok(rec.invokeCas(1, 'k', 'v1', 'v2'))).toThrow(HistoryError);
    expect(() => checkHistory([{ clientId: 1, kind: 'cas', key: 'k', value: 'v', expected: 'a', invokeMs: 0, completeMs: 1, outcome: 'ok' }])).toThrow(/applied/);
    expect(() => checkHistory([{ clientId: 1, kind: 'cas', key: 'k', value: 'v', invokeMs: 0, completeMs: 1, outcome: 'info' }])).toThrow(/expected/);
  });

  it('histories from a real sequential CAS register are all accepted (fast-check)', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 15 }), fc.integer({ min: 1, max: 6 }), fc.constantFrom(0, 0.1, 0.3), (seed, clients, opsPerClient, values, infoRate) => {
        const r = checkHistory(generate(mulberry32(seed), { clients, opsPerClient, values, infoRate }));
        expect(r.violations).toEqual([]);
        expect(r.ok).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('decides 8 clients × 150 operations on one key with distinct values (not unknown)', () => {
    const r = checkHistory(generate(mulberry32(11), { clients: 8, opsPerClient: 150, values: 100_000, infoRate: 0.05 }));
    expect(r).toMatchObject({ ok: true, violations: [] });
  });

  it('agrees with a brute-force search on random tiny histories, linearizable or not (fast-check)', () => {
    let violations = 0;
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 2 }), fc.constantFrom(0, 0.3), (seed, clients, opsPerClient, infoRate) => {
        const random = mulberry32(seed);
        const history = generate(random, { clients, opsPerClient, values: 2, infoRate });
        // scramble outputs so that some histories are not linearizable
        for (const op of history) {
          if (random() < 0.3 && op.outcome === 'ok') {
            if (op.kind === 'get') op.value = random() < 0.5 ? null : `v${Math.floor(random() * 2)}`;
            if (op.kind === 'cas') op.applied = !op.applied;
          }
        }
        const expected = bruteForce(history);
        if (!expected) violations++;
        expect(checkHistory(history).ok).toBe(expected);
      }),
      { numRuns: 1500 },
    );
    expect(violations).toBeGreaterThan(50);
  });
});
