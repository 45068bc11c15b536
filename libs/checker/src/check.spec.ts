import { checkHistory, formatCheckResult, type CheckOptions, type Operation } from './index';

// Builders: [invokeMs, completeMs] intervals, client ids only for readability.
const put = (clientId: number, value: string, invokeMs: number, completeMs: number | null, outcome: Operation['outcome'] = 'ok', key = 'k'): Operation => ({
  clientId,
  kind: 'put',
  key,
  value,
  invokeMs,
  completeMs,
  outcome,
});
const get = (clientId: number, value: string | null, invokeMs: number, completeMs: number | null, outcome: Operation['outcome'] = 'ok', key = 'k'): Operation => ({
  clientId,
  kind: 'get',
  key,
  value,
  invokeMs,
  completeMs,
  outcome,
});
const del = (clientId: number, invokeMs: number, completeMs: number | null, outcome: Operation['outcome'] = 'ok', key = 'k'): Operation => ({
  clientId,
  kind: 'delete',
  key,
  invokeMs,
  completeMs,
  outcome,
});

// Every verdict must hold both with the prechecks and with the Wing & Gong / Lowe search alone.
const MODES: [string, CheckOptions][] = [
  ['prechecks + search', {}],
  ['search only', { precheck: false }],
];

describe.each(MODES)('known-bad histories are rejected (%s)', (_mode, options) => {
  const rejected = (history: Operation[]) => {
    const r = checkHistory(history, options);
    expect(r.ok).toBe(false);
    expect(r.unknown).toBeUndefined();
    expect(r.violations).toHaveLength(1);
    return r.violations[0]!;
  };

  it('stale read: a get returns an older value after a newer put completed before it was invoked', () => {
    const stale = get(3, 'a', 4, 5);
    const v = rejected([put(1, 'a', 0, 1), put(2, 'b', 2, 3), stale]);
    expect(v.key).toBe('k');
    expect(v.message).toMatch(/^get k → 'a' at \[4, 5\] but no linearization: /);
    expect(v.operations).toContain(stale);
  });

  it('lost write: a put acknowledged ok, then later non-overlapping gets see the previous value', () => {
    const v = rejected([put(1, 'a', 0, 1), get(2, 'a', 2, 3), put(1, 'b', 4, 5), get(2, 'a', 6, 7), get(3, 'a', 8, 9)]);
    expect(v.message).toMatch(/^get k → 'a' at \[6, 7\] but no linearization/);
  });

  it('read of a value never written', () => {
    const v = rejected([put(1, 'a', 0, 1), get(2, 'zzz', 2, 3)]);
    expect(v.message).toMatch(/^get k → 'zzz' at \[2, 3\] but no linearization/);
  });

  it("read of a deleted key's old value after the delete completed", () => {
    const v = rejected([put(1, 'a', 0, 1), del(2, 2, 3), get(3, 'a', 4, 5)]);
    expect(v.message).toMatch(/^get k → 'a' at \[4, 5\] but no linearization/);
  });

  it('non-monotonic read pair: a later read sees the value an earlier read already saw overwritten', () => {
    // put b is concurrent with both reads, but once a read saw b, a later read cannot see a again.
    const v = rejected([put(1, 'a', 0, 1), put(2, 'b', 2, 20), get(3, 'b', 3, 4), get(3, 'a', 5, 6)]);
    expect(v.message).toMatch(/^get k → 'a' at \[5, 6\] but no linearization/);
  });

  it('an info put that appeared and then disappeared with no other write', () => {
    rejected([put(1, 'a', 0, 1), put(2, 'b', 2, null, 'info'), get(3, 'b', 5, 6), get(3, 'a', 7, 8)]);
  });

  it('a failed put that becomes visible', () => {
    rejected([put(1, 'a', 0, 1), put(2, 'b', 2, 3, 'fail'), get(3, 'b', 4, 5)]);
  });

  it('a read of not found after a put completed (the key is never deleted)', () => {
    rejected([put(1, 'a', 0, 1), get(2, null, 2, 3)]);
  });

  it('a violation on one key does not hide the verdicts of the others', () => {
    const r = checkHistory([put(1, 'a', 0, 1, 'ok', 'x'), get(2, 'a', 2, 3, 'ok', 'x'), put(1, 'a', 0, 1, 'ok', 'y'), get(2, 'b', 2, 3, 'ok', 'y')], options);
    expect(r).toMatchObject({ ok: false, keysChecked: 2, operations: 4 });
    expect(r.violations.map((v) => v.key)).toEqual(['y']);
  });
});

describe.each(MODES)('known-good histories are accepted (%s)', (_mode, options) => {
  const accepted = (history: Operation[]) => {
    const r = checkHistory(history, options);
    expect(r.violations).toEqual([]);
    expect(r).toMatchObject({ ok: true, operations: history.length });
    expect(r.unknown).toBeUndefined();
  };

  it('the empty history', () => accepted([]));

  it('concurrent puts, with reads after both seeing either value', () => {
    accepted([put(1, 'a', 0, 10), put(2, 'b', 0, 10), get(3, 'a', 11, 12), get(4, 'a', 13, 14)]);
    accepted([put(1, 'a', 0, 10), put(2, 'b', 0, 10), get(3, 'b', 11, 12), get(4, 'b', 13, 14)]);
    // During the puts a read may see b and a later one a: b took effect first, then a.
    accepted([put(1, 'a', 0, 10), put(2, 'b', 0, 10), get(3, 'b', 2, 3), get(3, 'a', 4, 5), get(4, 'a', 11, 12)]);
  });

  it('a read overlapping a write sees the old or the new value', () => {
    accepted([put(1, 'a', 0, 1), put(2, 'b', 2, 6), get(3, 'a', 3, 4)]);
    accepted([put(1, 'a', 0, 1), put(2, 'b', 2, 6), get(3, 'b', 3, 4)]);
    accepted([put(1, 'a', 0, 1), put(2, 'b', 2, 6), get(3, 'a', 3, 5), get(4, 'b', 3, 5)]);
    // A read spanning the whole write: either value.
    accepted([put(1, 'a', 0, 1), get(3, 'a', 1.5, 9), put(2, 'b', 2, 6), get(4, 'b', 7, 8)]);
  });

  it('equal instants count as concurrent', () => {
    accepted([put(1, 'a', 0, 5), get(2, null, 5, 6)]);
    accepted([put(1, 'a', 0, 5), put(2, 'b', 5, 6), get(3, 'a', 6, 7)]);
  });

  it('an info put may appear later, at any time after its invocation', () => {
    accepted([put(1, 'a', 0, 1), put(2, 'b', 2, null, 'info'), get(3, 'a', 3, 4), get(3, 'a', 50, 51), get(4, 'b', 100, 101), get(3, 'b', 102, 103)]);
    // ... even when it completed as info long before the read (completeMs is ignored).
    accepted([put(2, 'b', 2, 3, 'info'), get(3, null, 10, 11), get(4, 'b', 100, 101)]);
  });

  it('an info put may never appear', () => {
    accepted([put(1, 'a', 0, 1), put(2, 'b', 2, null, 'info'), get(3, 'a', 3, 4), get(3, 'a', 100, 101)]);
  });

  it('info deletes and many info puts of one value, some of which appear', () => {
    accepted([
      put(1, 'a', 0, 1),
      del(2, 2, null, 'info'),
      put(3, 'x', 2, null, 'info'),
      put(4, 'x', 3, null, 'info'),
      get(5, 'a', 4, 5),
      get(5, null, 6, 7),
      get(5, 'x', 8, 9),
      put(1, 'c', 10, 11),
      get(5, 'x', 12, 13), // the second info put of x takes effect after put c
      get(5, 'x', 14, 15),
    ]);
  });

  it('failed puts are never visible, and info gets constrain nothing', () => {
    accepted([put(1, 'a', 0, 1), put(2, 'b', 2, 3, 'fail'), get(3, 'a', 4, 5), get(4, 'nonsense', 6, null, 'info'), get(4, 'b', 6, 7, 'fail')]);
  });

  it('delete then not found, and put after delete', () => {
    accepted([put(1, 'a', 0, 1), del(2, 2, 3), get(3, null, 4, 5), put(1, 'a', 6, 7), get(3, 'a', 8, 9)]);
  });
});

describe('explanations', () => {
  it('a stale read names the write that completed before the read and the window of operations', () => {
    const putA = put(1, 'a', 0, 1);
    const putC = put(2, 'c', 2, 3);
    const stale = get(3, 'a', 4, 5);
    const r = checkHistory([putA, putC, put(4, 'z', 10, 11), stale]);
    expect(r.violations[0]!.message).toBe(
      "get k → 'a' at [4, 5] but no linearization: put k 'c' at [2, 3] completed before it was invoked, " +
        "and no put of 'a' can take effect after that write (the last one, put k 'a' at [0, 1], completed before that write was invoked)",
    );
    expect(r.violations[0]!.operations).toEqual([putA, putC, stale]);
  });

  it('a read of a never-written value says so', () => {
    const r = checkHistory([put(1, 'a', 0, 1), get(2, 'zzz', 2, 3)]);
    expect(r.violations[0]!.message).toBe("get k → 'zzz' at [2, 3] but no linearization: 'zzz' was never written to k");
  });

  it('a non-monotonic read names the earlier read', () => {
    const r = checkHistory([put(1, 'a', 0, 1), put(2, 'b', 2, 20), get(3, 'b', 3, 4), get(3, 'a', 5, 6)]);
    expect(r.violations[0]!.message).toContain("get k → 'b' at [3, 4] completed before it was invoked, and no put of 'a' can take effect after that read");
  });

  it('the search alone reports the blocked operation, the operations concurrent with it and the state it reached', () => {
    const putA = put(1, 'a', 0, 1);
    const putB = put(2, 'b', 2, 20);
    const readB = get(3, 'b', 3, 4);
    const readA = get(3, 'a', 5, 6);
    const r = checkHistory([putA, putB, readB, readA, get(4, 'b', 30, 31)], { precheck: false });
    const v = r.violations[0]!;
    expect(v.message).toMatch(/^get k → 'a' at \[5, 6\] but no linearization: no order of the 0 operations concurrent with it explains it/);
    expect(v.message).toContain("(the longest linearizable prefix, 3 operations, leaves k = 'b', last written by put k 'b' at [2, 20])");
    expect(v.operations).toEqual([putB, readB, readA]);
  });

  it('formatCheckResult gives the verdict and each violation with its operations', () => {
    expect(formatCheckResult(checkHistory([put(1, 'a', 0, 1)]))).toBe('linearizable: 1 operations on 1 keys');
    const text = formatCheckResult(checkHistory([put(1, 'a', 0, 1), get(2, 'b', 2, 3)]));
    expect(text.split('\n')).toEqual([
      'NOT linearizable: 2 operations on 1 keys',
      `key "k": get k → 'b' at [2, 3] but no linearization: 'b' was never written to k`,
      '  {"clientId":2,"kind":"get","key":"k","value":"b","invokeMs":2,"completeMs":3,"outcome":"ok"}',
    ]);
  });
});

describe('budgets: unknown rather than a hang', () => {
  const sequential = (n: number): Operation[] => Array.from({ length: n }, (_, i) => (i % 2 ? get(2, `v${i - 1}`, i * 2, i * 2 + 1) : put(1, `v${i}`, i * 2, i * 2 + 1)));

  it('a step budget too small for the history gives unknown, not ok', () => {
    const history = sequential(50);
    expect(checkHistory(history).ok).toBe(true);
    const r = checkHistory(history, { stepsMax: 10 });
    expect(r).toMatchObject({ ok: false, unknown: true, violations: [] });
    expect(r.unknownKeys).toEqual([{ key: 'k', reason: 'search budget of 10 steps exhausted (stepsMax)' }]);
  });

  it('a timeout on the injected clock gives unknown for the keys not decided', () => {
    let now = 0;
    const clock = () => (now += 1000); // every reading is 1 s later
    const r = checkHistory(sequential(3000), { clock, timeoutMs: 1500 });
    expect(r).toMatchObject({ ok: false, unknown: true });
    expect(r.unknownKeys![0]!.reason).toMatch(/timed out after \d+ search steps \(timeoutMs\)/);
  });

  it('a memo budget gives unknown', () => {
    const r = checkHistory(sequential(50), { memoBytesMax: 1000 });
    expect(r.unknownKeys![0]!.reason).toBe('memo exceeded 1000 bytes (memoBytesMax)');
  });
});

describe('input validation', () => {
  it('rejects malformed operations with HistoryError', () => {
    expect(() => checkHistory([{ ...put(1, 'a', 5, 1) }])).toThrow(/operation 0: completeMs 1 is before invokeMs 5/);
    expect(() => checkHistory([{ ...put(1, 'a', 0, null) }])).toThrow(/an ok operation needs completeMs/);
    // A cas without the value and expected it needs: malformed.
    const cas: Operation = { ...get(1, 'a', 0, 1), kind: 'cas' };
    expect(() => checkHistory([cas])).toThrow(expect.objectContaining({ code: 'HISTORY_INVALID' }));
  });
});
