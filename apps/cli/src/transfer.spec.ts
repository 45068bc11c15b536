import { ResilientConnection, type KvConnection } from './retry';
import { assertVerified, formatVerify, importRows, sameValue, verifyRows } from './transfer';
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
    close: () => undefined,
  };
  return { data, conn };
}

const noWait = { retryMs: 60_000, sleep: async () => undefined };
const lines = ['name\tversion\tdownloads_a_month\tsummary', 'a\t1.0.0\t10\tfirst\tpackage', 'b\t2.0.0\t20\t', 'c\t3.0.0\t30\tñandú'];

describe('importRows', () => {
  it('stores every row (key → rest of the row) and reports progress', async () => {
    const { data, conn } = fakeStore();
    const progress: number[] = [];
    const r = await importRows(tsvRows(lines), new ResilientConnection(async () => conn, noWait), {
      windowMax: 2,
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
    const r = await importRows(tsvRows(lines), new ResilientConnection(async () => conn, noWait), { windowMax: 8 });
    expect(r.rows).toBe(3);
    expect(data.size).toBe(3);
  });

  it('fails on a non-retryable error, naming the line', async () => {
    const { conn } = fakeStore({ set: [coded('VALUE_TOO_LARGE', { retryable: false })] });
    await expect(importRows(tsvRows(lines), new ResilientConnection(async () => conn, noWait), { windowMax: 1 })).rejects.toThrow(
      /^line 2 \(key "a"\): VALUE_TOO_LARGE/,
    );
  });
});

describe('verifyRows', () => {
  it('counts ok, missing and mismatched keys', async () => {
    const { data, conn } = fakeStore({ get: [coded('UNAVAILABLE', { retryable: true })] });
    data.set('a', '1.0.0\t10\tfirst\tpackage');
    data.set('b', '2.0.0\t20'); // lost its trailing tab
    const r = await verifyRows(tsvRows(lines), new ResilientConnection(async () => conn, noWait), { windowMax: 4 });
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
    const rc = new ResilientConnection(async () => conn, noWait);
    await importRows(tsvRows(lines), rc, { windowMax: 4 });
    const r = await verifyRows(tsvRows(lines), rc, { windowMax: 4 });
    expect(formatVerify(r)).toBe('rows=3 ok=3 missing=0 mismatched=0');
    expect(() => assertVerified(r)).not.toThrow();
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
