import { TxnOpKind, type TxnRequest } from '@cairn/protocol';
import { assertVerified, formatVerify, importBatches, importRows, retryRow, sameValue, verifyRows, type KvConnection } from './transfer';
import { tsvRows } from './tsv';

const coded = (code: string, extra: object = {}) => Object.assign(new Error(code), { code, ...extra });

/** An in-memory store behind the KvConnection interface, with scripted failures. */
function fakeStore(failures: { set?: Error[]; get?: Error[] } = {}) {
  const data = new Map<string, string>();
  let revision = 0;
  const conn: KvConnection = {
    async set(key, value) {
      const f = failures.set?.shift();
      if (f) throw f;
      data.set(key, value);
      return { revision: ++revision };
    },
    async get(key) {
      const f = failures.get?.shift();
      if (f) throw f;
      const v = data.get(key);
      return v === undefined ? null : { value: Buffer.from(v, 'utf8'), revision: 1 };
    },
  };
  return { data, conn };
}

const noWait = { retryMs: 60_000, sleep: async () => undefined };
const retry = noWait;
const lines = ['name\tversion\tdownloads_a_month\tsummary', 'a\t1.0.0\t10\tfirst\tpackage', 'b\t2.0.0\t20\t', 'c\t3.0.0\t30\tñandú'];

describe('importRows', () => {
  it('stores every row (key → rest of the row) and reports progress', async () => {
    const { data, conn } = fakeStore();
    const progress: number[] = [];
    const r = await importRows(tsvRows(lines), conn, {
      windowMax: 2,
      retry,
      progress: { update: (rows) => progress.push(rows) },
    });
    expect(r.rows).toBe(3);
    expect([...data.entries()]).toEqual(
      expect.arrayContaining([
        ['a', '1.0.0\t10\tfirst\tpackage'],
        ['b', '2.0.0\t20\t'],
        ['c', '3.0.0\t30\tñandú'],
      ]),
    );
    expect(progress).toEqual([1, 2, 3]);
  });

  it('retries rows that fail with retryable errors (idempotent SET)', async () => {
    const { data, conn } = fakeStore({ set: [coded('UNAVAILABLE', { retryable: true }), coded('CONNECTION_CLOSED'), coded('TIMEOUT')] });
    const r = await importRows(tsvRows(lines), conn, { windowMax: 8, retry });
    expect(r.rows).toBe(3);
    expect(data.size).toBe(3);
  });

  it('fails on a non-retryable error, naming the line', async () => {
    const { conn } = fakeStore({ set: [coded('VALUE_TOO_LARGE', { retryable: false })] });
    await expect(importRows(tsvRows(lines), conn, { windowMax: 1, retry })).rejects.toThrow(
      /^line 2 \(key "a"\): VALUE_TOO_LARGE/,
    );
  });
});

/** fakeStore with TXN: each txn's puts applied in order; `txnFailures` thrown first, one per commit. */
function fakeTxnStore(txnFailures: Error[] = [], setFailures: Error[] = []) {
  const store = fakeStore({ set: setFailures });
  const txns: string[][] = [];
  store.conn.commitTxn = async (request: TxnRequest) => {
    const f = txnFailures.shift();
    if (f) throw f;
    expect(request.compares).toEqual([]);
    expect(request.failure).toEqual([]);
    txns.push(request.success.map((o) => Buffer.from(o.key).toString()));
    for (const o of request.success) {
      expect(o.kind).toBe(TxnOpKind.Put);
      store.data.set(Buffer.from(o.key).toString(), Buffer.from(o.value!).toString('utf8'));
    }
    return {};
  };
  return { ...store, txns };
}

describe('importRows in transactions (--rows-per-txn)', () => {
  const rowsOf = (keys: string[]) => tsvRows(keys.map((k, i) => `${k}\tv${i}`), 'no');

  it('cuts batches at rowsMax, at bytesMax and before a key the batch holds already; a row alone always goes', async () => {
    const cut = async (keys: string[], rowsMax: number, bytesMax: number) => {
      const out: string[][] = [];
      for await (const b of importBatches(rowsOf(keys), { rowsMax, bytesMax, inflightMax: 1 })) out.push(b.map((r) => r.key));
      return out;
    };
    expect(await cut(['a', 'b', 'c', 'd', 'e'], 2, 1 << 20)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(await cut(['a', 'b', 'a', 'c'], 10, 1 << 20)).toEqual([['a', 'b'], ['a', 'c']]);
    // Each row counts its line bytes + 32: two rows of 'k\tvN' (5 bytes) fit 80, a third does not.
    expect(await cut(['a', 'b', 'c'], 10, 80)).toEqual([['a', 'b'], ['c']]);
    expect(await cut(['a', 'b'], 10, 1)).toEqual([['a'], ['b']]);
  });

  it('writes every row through TXNs of puts, the same values as row by row, with progress per row', async () => {
    const { data, conn, txns } = fakeTxnStore();
    const progress: number[] = [];
    const r = await importRows(tsvRows(lines), conn, { windowMax: 8, retry, progress: { update: (rows) => progress.push(rows) }, batch: { rowsMax: 2, bytesMax: 1 << 20, inflightMax: 2 } });
    expect(r.rows).toBe(3);
    expect(txns).toEqual([['a', 'b'], ['c']]);
    expect(data.get('a')).toBe('1.0.0\t10\tfirst\tpackage');
    expect(data.get('c')).toBe('3.0.0\t30\tñandú');
    expect(progress).toEqual([1, 2, 3]);
  });

  it('retries a TXN whole on a retryable error; one refused for good goes row by row, naming the row at fault', async () => {
    const t = fakeTxnStore([coded('UNAVAILABLE', { retryable: true })]);
    await importRows(tsvRows(lines), t.conn, { windowMax: 8, retry, batch: { rowsMax: 8, bytesMax: 1 << 20, inflightMax: 1 } });
    expect(t.txns).toEqual([['a', 'b', 'c']]);
    expect(t.data.size).toBe(3);
    // The TXN refused (e.g. a value over valueBytesMax); row by row, the second row's SET is refused too.
    const u = fakeTxnStore([coded('VALUE_TOO_LARGE', { retryable: false })], [coded('UNAVAILABLE', { retryable: true })]);
    const failing = u.conn.set.bind(u.conn);
    u.conn.set = async (key, value) => (key === 'b' ? Promise.reject(coded('VALUE_TOO_LARGE', { retryable: false })) : failing(key, value));
    await expect(importRows(tsvRows(lines), u.conn, { windowMax: 8, retry, batch: { rowsMax: 8, bytesMax: 1 << 20, inflightMax: 1 } })).rejects.toThrow(/^line 3 \(key "b"\): VALUE_TOO_LARGE/);
    expect(u.txns).toEqual([]);
    expect(u.data.has('a')).toBe(true);
  });

  it('SETs row by row with rowsMax 1 or a connection without TXN', async () => {
    const t = fakeTxnStore();
    await importRows(tsvRows(lines), t.conn, { windowMax: 8, retry, batch: { rowsMax: 1, bytesMax: 1 << 20, inflightMax: 4 } });
    expect(t.txns).toEqual([]);
    expect(t.data.size).toBe(3);
    const plain = fakeStore();
    await importRows(tsvRows(lines), plain.conn, { windowMax: 8, retry, batch: { rowsMax: 8, bytesMax: 1 << 20, inflightMax: 4 } });
    expect(plain.data.size).toBe(3);
  });
});

describe('verifyRows', () => {
  it('counts ok, missing and mismatched keys', async () => {
    const { data, conn } = fakeStore({ get: [coded('UNAVAILABLE', { retryable: true })] });
    data.set('a', '1.0.0\t10\tfirst\tpackage');
    data.set('b', '2.0.0\t20'); // lost its trailing tab
    const r = await verifyRows(tsvRows(lines), conn, { windowMax: 4, retry });
    expect(formatVerify(r)).toBe('rows=3 ok=1 missing=1 mismatched=1');
    expect(r.examples).toEqual(
      expect.arrayContaining([
        { key: 'b', problem: 'mismatched', lineNo: 3 },
        { key: 'c', problem: 'missing', lineNo: 4 },
      ]),
    );
    expect(() => assertVerified(r)).toThrow(/verify failed: rows=3 ok=1 missing=1 mismatched=1/);
  });

  it('passes when everything matches', async () => {
    const { conn } = fakeStore();
    await importRows(tsvRows(lines), conn, { windowMax: 4, retry });
    const r = await verifyRows(tsvRows(lines), conn, { windowMax: 4, retry });
    expect(formatVerify(r)).toBe('rows=3 ok=3 missing=0 mismatched=0');
    expect(() => assertVerified(r)).not.toThrow();
  });
});

/** A fake clock that only moves when the code under test "sleeps". */
function fakeTime() {
  let t = 0;
  const sleeps: number[] = [];
  return {
    now: () => t,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      t += ms;
    },
    sleeps,
  };
}

describe('retryRow', () => {
  it('retries retryable errors (UNAVAILABLE, a lost connection, a timeout, no gateway) until the row succeeds', async () => {
    const time = fakeTime();
    const errors = [coded('UNAVAILABLE', { retryable: true }), coded('ECONNRESET'), coded('TIMEOUT', { retryable: true }), coded('NO_GATEWAY', { retryable: true })];
    let calls = 0;
    const retries: number[] = [];
    const r = await retryRow(
      async () => {
        calls++;
        const e = errors.shift();
        if (e) throw e;
        return 7;
      },
      { retryMs: 10_000, ...time, onRetry: (_e, n) => retries.push(n) },
    );
    expect(r).toBe(7);
    expect(calls).toBe(5);
    expect(retries).toEqual([1, 2, 3, 4]);
  });

  it('waits with full jitter: uniform below a ceiling of 50 ms doubling to 2 s', async () => {
    const time = fakeTime();
    let calls = 0;
    await retryRow(
      async () => {
        if (++calls <= 8) throw coded('UNAVAILABLE', { retryable: true });
      },
      { retryMs: 60_000, ...time, random: () => 0.5 },
    );
    expect(time.sleeps).toEqual([25, 50, 100, 200, 400, 800, 1000, 1000]);
  });

  it('throws a non-retryable error at once', async () => {
    const time = fakeTime();
    await expect(retryRow(() => Promise.reject(coded('VALUE_TOO_LARGE', { retryable: false })), { retryMs: 10_000, ...time })).rejects.toMatchObject({ code: 'VALUE_TOO_LARGE' });
    expect(time.sleeps).toHaveLength(0);
  });

  it('gives up with the last retryable error after retryMs', async () => {
    const time = fakeTime();
    await expect(retryRow(() => Promise.reject(coded('UNAVAILABLE', { retryable: true })), { retryMs: 5_000, ...time })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(time.now()).toBe(5_000);
  });
});

describe('sameValue', () => {
  it('compares strings and byte arrays as UTF-8', () => {
    expect(sameValue('ñ', 'ñ')).toBe(true);
    expect(sameValue('ñ', new Uint8Array([0xc3, 0xb1]))).toBe(true);
    expect(sameValue('ñ', new Uint8Array([0x6e]))).toBe(false);
    const big = Buffer.from('xxabc');
    expect(sameValue('abc', big.subarray(2))).toBe(true);
  });
});
