import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HistoryError, HistoryRecorder, checkHistoryFile, historyToJsonLines, parseHistoryJsonLines, type Operation } from './index';

/** A fake clock: each reading is the next integer, so recorded times are exact. */
const ticking = () => {
  let now = 0;
  return () => ++now;
};

describe('HistoryRecorder', () => {
  it('records invocations and outcomes on the injected clock; pending operations read as info', () => {
    const rec = new HistoryRecorder(ticking());
    const p = rec.invoke(1, 'put', 'k', 'a'); // t=1
    const g = rec.invoke(2, 'get', 'k'); // t=2
    const d = rec.invoke(3, 'delete', 'k'); // t=3
    const f = rec.invoke(4, 'put', 'k', 'b'); // t=4
    const pending = rec.invoke(5, 'put', 'k', 'c'); // t=5
    rec.ok(p); // t=6
    rec.ok(g, 'a'); // t=7
    rec.info(d); // t=8
    rec.fail(f); // t=9
    expect(pending).toBe(4);
    expect(rec.operations()).toEqual([
      { clientId: 1, kind: 'put', key: 'k', value: 'a', invokeMs: 1, completeMs: 6, outcome: 'ok' },
      { clientId: 2, kind: 'get', key: 'k', value: 'a', invokeMs: 2, completeMs: 7, outcome: 'ok' },
      { clientId: 3, kind: 'delete', key: 'k', invokeMs: 3, completeMs: 8, outcome: 'info' },
      { clientId: 4, kind: 'put', key: 'k', value: 'b', invokeMs: 4, completeMs: 9, outcome: 'fail' },
      { clientId: 5, kind: 'put', key: 'k', value: 'c', invokeMs: 5, completeMs: null, outcome: 'info' },
    ]);
  });

  it('a get answered without a value is not found (null)', () => {
    const rec = new HistoryRecorder(ticking());
    rec.ok(rec.invoke(1, 'get', 'k'));
    expect(rec.operations()[0]!.value).toBeNull();
  });

  it('throws HistoryError on an unknown id, a second completion, an output for a put, a put without value', () => {
    const rec = new HistoryRecorder(ticking());
    const id = rec.invoke(1, 'put', 'k', 'a');
    expect(() => rec.ok(id + 1)).toThrow(/unknown operation id/);
    expect(() => rec.ok(id, 'x')).toThrow(/only a get has an output value/);
    const id2 = rec.invoke(1, 'put', 'k', 'b');
    rec.ok(id2);
    expect(() => rec.fail(id2)).toThrow(/already completed/);
    expect(() => rec.invoke(1, 'put', 'k')).toThrow(HistoryError);
  });

  it('throws when the clock runs backwards', () => {
    const times = [10, 5];
    const rec = new HistoryRecorder(() => times.shift()!);
    const id = rec.invoke(1, 'get', 'k');
    expect(() => rec.ok(id, 'a')).toThrow(/completeMs 5 is before invokeMs 10/);
  });

  it('uses performance.now by default', () => {
    const rec = new HistoryRecorder();
    const before = performance.now();
    rec.invoke(1, 'get', 'k');
    expect(rec.operations()[0]!.invokeMs).toBeGreaterThanOrEqual(before);
  });
});

describe('JSON lines', () => {
  it('toJSON / fromJSON round-trip a history, one operation per line', () => {
    const rec = new HistoryRecorder(ticking());
    rec.ok(rec.invoke(1, 'put', 'k', 'a'));
    rec.ok(rec.invoke(2, 'get', 'k'), 'a');
    rec.invoke(3, 'delete', 'k');
    const text = rec.toJSON();
    expect(text.split('\n')).toHaveLength(4); // three lines and the final newline
    expect(HistoryRecorder.fromJSON(text).operations()).toEqual(rec.operations());
  });

  it('writes a non-finite completeMs (an info operation) as null', () => {
    const op: Operation = { clientId: 1, kind: 'put', key: 'k', value: 'a', invokeMs: 1, completeMs: Infinity, outcome: 'info' };
    expect(parseHistoryJsonLines(historyToJsonLines([op]))).toEqual([{ ...op, completeMs: null }]);
  });

  it('names the line of a malformed operation', () => {
    const good = historyToJsonLines([{ clientId: 1, kind: 'get', key: 'k', value: null, invokeMs: 1, completeMs: 2, outcome: 'ok' }]);
    expect(() => parseHistoryJsonLines(good + '\n{nope\n')).toThrow(/^line 3: not JSON/);
    expect(() => parseHistoryJsonLines(good + '{"clientId":1,"kind":"get","key":"k","invokeMs":1,"completeMs":2,"outcome":"maybe"}\n')).toThrow(
      /^line 2: outcome must be ok, fail or info/,
    );
  });
});

describe('checkHistoryFile', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(os.tmpdir() + '/cairn-')));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('checks a saved history: accepted as recorded, rejected after a read is tampered with', () => {
    const rec = new HistoryRecorder(ticking());
    rec.ok(rec.invoke(1, 'put', 'k', 'a'));
    rec.ok(rec.invoke(1, 'put', 'k', 'b'));
    rec.ok(rec.invoke(2, 'get', 'k'), 'b');
    const file = path.join(dir, 'history.jsonl');
    fs.writeFileSync(file, rec.toJSON());
    expect(checkHistoryFile(file)).toEqual({ ok: true, keysChecked: 1, operations: 3, violations: [] });

    const tampered = rec.operations().map((op) => (op.kind === 'get' ? { ...op, value: 'a' } : op));
    fs.writeFileSync(file, historyToJsonLines(tampered));
    const r = checkHistoryFile(file);
    expect(r.ok).toBe(false);
    expect(r.violations[0]!.message).toMatch(/^get k → 'a' at \[5, 6\] but no linearization/);
  });

  it('throws the fs error for a missing file', () => {
    expect(() => checkHistoryFile(path.join(dir, 'missing.jsonl'))).toThrow(/ENOENT/);
  });
});
