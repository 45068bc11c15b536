import { benchConfig, formatBenchReport, formatProgress, keyName, newHistogram, parseDurationMs, runBench, summarize, type BenchClient, type BenchConfig, type BenchReport } from './bench';
import { run, type CliClient, type CliDeps } from './cli';
import type { ScanOptions } from '@cairn/client';
import { TxnOpKind, type TxnRequest } from '@cairn/protocol';

/** Deterministic random in [0, 1) (a 32-bit LCG). */
function lcg(seed = 1) {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

/** The CliClient calls bench never makes: they throw. */
const notInBench = (call: string) => (): never => {
  throw new Error(`bench does not call ${call}`);
};
const NOT_IN_BENCH = {
  del: notInBench('del'),
  ping: notInBench('ping'),
  status: notInBench('status'),
  range: notInBench('range'),
  watch: notInBench('watch'),
  leaseGrant: notInBench('leaseGrant'),
  leaseRevoke: notInBench('leaseRevoke'),
  leaseKeepAliveOnce: notInBench('leaseKeepAliveOnce'),
  leaseTimeToLive: notInBench('leaseTimeToLive'),
  leases: notInBench('leases'),
  keepAlive: notInBench('keepAlive'),
} satisfies Omit<CliClient, keyof BenchClient>;

/** Fake connections (CliClient, so the command line takes them too): answer on a later turn (so pipelined requests overlap), count what they saw; txn and range on a store of mod revisions (pages of 100 keys). */
function fakeClients(opts: { failEvery?: number; clock?: { t: number } } = {}) {
  const calls: { op: 'get' | 'set' | 'txn' | 'range'; key: string; conn: number }[] = [];
  const revs = new Map<string, number>();
  let revision = 0;
  const txns = { succeeded: 0, failed: 0 };
  const maxInflight: number[] = [];
  let closed = 0;
  let n = 0;
  const connect = async (): Promise<CliClient> => {
    const conn = maxInflight.push(0) - 1;
    let inflight = 0;
    const answer = (op: 'get' | 'set' | 'txn' | 'range', key: string) => {
      calls.push({ op, key, conn });
      maxInflight[conn] = Math.max(maxInflight[conn], ++inflight);
      const fail = opts.failEvery !== undefined && ++n % opts.failEvery === 0;
      return new Promise<null>((resolve, reject) =>
        setImmediate(() => {
          inflight--;
          if (opts.clock) opts.clock.t += 1;
          if (fail) reject(Object.assign(new Error('no leader'), { code: 'UNAVAILABLE' }));
          else resolve(null);
        }),
      );
    };
    return {
      get: (k) => answer('get', k),
      set: async (k) => {
        await answer('set', k);
        revs.set(k, ++revision);
        return { revision };
      },
      async commitTxn(t: TxnRequest) {
        const keys = t.compares.map((c) => Buffer.from(c.key).toString());
        await answer('txn', keys.join(','));
        const ok = t.compares.every((c) => (revs.get(Buffer.from(c.key).toString()) ?? 0) === c.operand);
        ++revision;
        txns[ok ? 'succeeded' : 'failed']++;
        if (ok) keys.forEach((k) => revs.set(k, revision));
        const kv = (k: string) => ({ key: Buffer.from(k), value: Buffer.alloc(0), modRevision: revs.get(k)!, createRevision: 1, version: 1 });
        return { revision, succeeded: ok, responses: ok ? [] : keys.map((k) => ({ kind: TxnOpKind.Get as const, kv: revs.has(k) ? kv(k) : undefined })) };
      },
      async *pages(o: ScanOptions) {
        await answer('range', String(o.start));
        const keys = [...revs.keys()].filter((k) => k >= String(o.start)).sort().slice(0, o.keysMax);
        for (let i = 0; i < keys.length; i += 100) {
          const items = keys.slice(i, i + 100).map((k) => ({ key: Buffer.from(k), value: Buffer.alloc(0), revision: revs.get(k)!, createRevision: 1, version: 1 }));
          yield { revision, count: keys.length - i, more: i + 100 < keys.length, token: null, items };
        }
      },
      close: () => void closed++,
      ...NOT_IN_BENCH,
    };
  };
  return { connect, calls, maxInflight, closed: () => closed, txns };
}

const cfg = (o: Partial<BenchConfig>): BenchConfig => ({ ...benchConfig({}), ...o });

describe('bench arguments', () => {
  it('defaults', () => {
    expect(benchConfig({})).toEqual({ op: 'set', ratio: 0.9, clients: 16, pipeline: 1, keyspace: 100_000, valueSize: 100, durationMs: 10_000, requests: null, json: false, warmupKeys: false, rangeKeys: null });
    expect(benchConfig({ op: 'get' }).warmupKeys).toBe(true);
    expect(benchConfig({ op: 'mixed', warmupKeys: false }).warmupKeys).toBe(false);
    expect(benchConfig({ op: 'set', warmupKeys: true }).warmupKeys).toBe(true);
    expect(benchConfig({ op: 'range' })).toMatchObject({ rangeKeys: 1000, warmupKeys: true });
    expect(benchConfig({ op: 'range', rangeKeys: '50', keyspace: '50' })).toMatchObject({ rangeKeys: 50 });
    expect(benchConfig({ op: 'txn' })).toMatchObject({ rangeKeys: null, warmupKeys: true });
  });

  it('durations, requests, numbers', () => {
    expect([parseDurationMs('10s'), parseDurationMs('500ms'), parseDurationMs('2m'), parseDurationMs('1.5'), parseDurationMs('3s ')]).toEqual([10_000, 500, 120_000, 1500, 3000]);
    expect(benchConfig({ requests: '5000' })).toMatchObject({ requests: 5000, durationMs: null });
    expect(benchConfig({ clients: '128', pipeline: '16', valueSize: '0', ratio: '0.5', op: 'mixed' })).toMatchObject({ clients: 128, pipeline: 16, valueSize: 0, ratio: 0.5 });
  });

  it.each([
    [{ op: 'scan' }, /--op/],
    [{ ratio: '1.5' }, /--ratio/],
    [{ clients: '0' }, /--clients/],
    [{ pipeline: '2.5' }, /--pipeline/],
    [{ duration: '10 minutes' }, /--duration/],
    [{ duration: '0s' }, /--duration/],
    [{ duration: '5s', requests: '10' }, /not both/],
    [{ valueSize: '-1' }, /--value-size/],
    [{ op: 'range', rangeKeys: '11', keyspace: '10' }, /more than the keyspace/],
    [{ op: 'range', rangeKeys: '0' }, /--range-keys/],
    [{ op: 'get', rangeKeys: '5' }, /goes with --op range/],
    [{ op: 'txn', keyspace: '1' }, /at least 2 keys/],
  ])('rejects %j', (o, msg) => {
    expect(() => benchConfig(o)).toThrow(msg);
  });

  it('through the command line: options reach the run, bad ones exit 2 without connecting', async () => {
    const fake = fakeClients();
    let connects = 0;
    const stdout: string[] = [];
    const stderr: string[] = [];
    const deps: CliDeps = {
      connect: async (o) => {
        connects++;
        expect(o).toMatchObject({ endpoints: [{ host: '10.1.2.3', port: 7000 }], inflightMax: 64, retries: 'none' });
        return fake.connect();
      },
      stdout: { write: (s) => stdout.push(String(s)) },
      stderr: { write: (s) => stderr.push(String(s)) },
      env: {},
    };
    const cairn = (...a: string[]) => run(['node', 'cairn', '-g', '10.1.2.3:7000', ...a], deps);
    expect(await cairn('bench', '--op', 'get', '--clients', '3', '--pipeline', '4', '--keyspace', '50', '--requests', '200', '--json')).toBe(0);
    expect(connects).toBe(3);
    const report = JSON.parse(stdout.join('')) as BenchReport;
    expect(report).toMatchObject({ op: 'get', clients: 3, pipeline: 4, requests: 200, errors: 0, warmup: { keys: 50 } });
    expect(fake.calls.filter((c) => c.op === 'set')).toHaveLength(50);
    expect(await cairn('bench', '--op', 'nope')).toBe(2);
    expect(await cairn('bench', '--duration', '1s', '--requests', '5')).toBe(2);
    expect(connects).toBe(3);
  });
});

describe('bench txn and range through the command line', () => {
  it('--op txn and --op range --range-keys reach the run and the JSON report', async () => {
    const fake = fakeClients();
    const stdout: string[] = [];
    const deps: CliDeps = { connect: () => fake.connect(), stdout: { write: (s) => stdout.push(String(s)) }, stderr: { write: () => true }, env: {} };
    const cairn = (...a: string[]) => run(['node', 'cairn', '--json', 'bench', '--clients', '1', '--keyspace', '40', '--requests', '10', ...a], deps);
    expect(await cairn('--op', 'range', '--range-keys', '30')).toBe(0);
    expect(JSON.parse(stdout.pop()!)).toMatchObject({ op: 'range', rangeKeys: 30, keysRead: 300, requests: 10 });
    expect(await cairn('--op', 'txn')).toBe(0);
    expect(JSON.parse(stdout.pop()!)).toMatchObject({ op: 'txn', requests: 10, txnConflicts: fake.txns.failed });
    expect(await cairn('--op', 'txn', '--range-keys', '3')).toBe(2);
  });
});

describe('bench scheduler', () => {
  it('issues exactly --requests, pipeline-deep on every client, keys within the keyspace', async () => {
    const fake = fakeClients();
    const r = await runBench(cfg({ clients: 4, pipeline: 8, keyspace: 100, requests: 1000, durationMs: null }), { connect: fake.connect, random: lcg() });
    expect(r.requests).toBe(1000);
    expect(fake.calls).toHaveLength(1000);
    expect(fake.maxInflight).toEqual([8, 8, 8, 8]);
    for (let conn = 0; conn < 4; conn++) expect(fake.calls.filter((c) => c.conn === conn).length).toBeGreaterThan(100);
    expect(fake.calls.every((c) => c.op === 'set' && /^key:\d{12}$/.test(c.key) && Number(c.key.slice(4)) < 100)).toBe(true);
    expect(new Set(fake.calls.map((c) => c.key)).size).toBeGreaterThan(50);
    expect(r.latencyUs.p50).toBeGreaterThan(0);
    expect(fake.closed()).toBe(4);
  });

  it('mixed follows --ratio; warmup loads every key once before measuring', async () => {
    const fake = fakeClients();
    const r = await runBench(cfg({ op: 'mixed', ratio: 0.9, clients: 2, pipeline: 2, keyspace: 300, requests: 2000, durationMs: null, warmupKeys: true }), { connect: fake.connect, random: lcg(7) });
    const warm = fake.calls.slice(0, 300);
    expect(warm.map((c) => c.key)).toEqual(Array.from({ length: 300 }, (_, i) => keyName(i)));
    const measured = fake.calls.slice(300);
    expect(measured).toHaveLength(2000);
    const gets = measured.filter((c) => c.op === 'get').length;
    expect(gets).toBeGreaterThan(1700);
    expect(gets).toBeLessThan(1900);
    expect(r).toMatchObject({ requests: 2000, ratio: 0.9, warmup: { keys: 300 } });
  });

  it('txn: two distinct keys compared on the mod revisions last seen and put together; a failed compare learns them from the failure branch', async () => {
    const fake = fakeClients();
    const r = await runBench(cfg({ op: 'txn', clients: 2, pipeline: 1, keyspace: 20, requests: 300, durationMs: null, warmupKeys: true }), { connect: fake.connect, random: lcg(3) });
    const txns = fake.calls.filter((c) => c.op === 'txn');
    expect(txns).toHaveLength(300);
    for (const t of txns) {
      const [a, b] = t.key.split(',');
      expect(a).not.toBe(b);
      expect([a, b].every((k) => /^key:\d{12}$/.test(k) && Number(k.slice(4)) < 20)).toBe(true);
    }
    // the warm-up's revisions are known: one client's txn fails only when the other moved a key first
    expect(fake.txns.succeeded).toBeGreaterThan(250);
    const cold = fakeClients();
    const c = await runBench(cfg({ op: 'txn', clients: 1, keyspace: 20, requests: 100, durationMs: null, warmupKeys: false }), { connect: cold.connect, random: lcg(3) });
    // without a warm-up nothing is known and the keys do not exist yet (0 = missing): every txn applies
    expect(c.txnConflicts).toBe(0);
    expect(r).toMatchObject({ op: 'txn', requests: 300, txnConflicts: fake.txns.failed, keysRead: null, rangeKeys: null });
  });

  it('range: each read pages until --range-keys keys from a random start that leaves room for them', async () => {
    const fake = fakeClients();
    const r = await runBench(cfg({ op: 'range', rangeKeys: 250, clients: 2, pipeline: 2, keyspace: 1000, requests: 20, durationMs: null, warmupKeys: true }), { connect: fake.connect, random: lcg(5) });
    const reads = fake.calls.filter((c) => c.op === 'range');
    expect(reads).toHaveLength(20);
    expect(reads.every((c) => Number(c.key.slice(4)) <= 750)).toBe(true);
    expect(r).toMatchObject({ op: 'range', requests: 20, rangeKeys: 250, keysRead: 20 * 250, txnConflicts: null });
    expect(formatBenchReport(r)).toMatch(/range-keys=250[\s\S]*keys read=5000 \(\d+ keys\/s\)/);
  });

  it('stops issuing at the end of --duration on the injected clock', async () => {
    const clock = { t: 0 };
    const fake = fakeClients({ clock });
    const r = await runBench(cfg({ clients: 2, pipeline: 1, durationMs: 100 }), { connect: fake.connect, now: () => clock.t });
    // Each answer advances the clock 1 ms: ~100 ms of fake time, whatever the machine's speed.
    expect(fake.calls.length).toBeGreaterThanOrEqual(100);
    expect(fake.calls.length).toBeLessThanOrEqual(102);
    expect(r.seconds).toBeCloseTo(fake.calls.length / 1000, 2);
  });

  it('counts errors by code and keeps going; fails when nothing succeeded', async () => {
    const fake = fakeClients({ failEvery: 4 });
    const r = await runBench(cfg({ clients: 2, pipeline: 2, requests: 400, durationMs: null }), { connect: fake.connect });
    expect(r).toMatchObject({ requests: 300, errors: 100, errorCodes: { UNAVAILABLE: 100 } });
    await expect(runBench(cfg({ clients: 1, requests: 5, durationMs: null }), { connect: fakeClients({ failEvery: 1 }).connect })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});

describe('bench report', () => {
  const report: BenchReport = {
    op: 'mixed',
    ratio: 0.9,
    clients: 16,
    pipeline: 1,
    keyspace: 100_000,
    valueSize: 100,
    requests: 123_456,
    errors: 2,
    errorCodes: { TIMEOUT: 2 },
    seconds: 10.004,
    opsPerSec: 12_340.6,
    latencyUs: { p50: 812, p90: 1500, p99: 2400, p999: 5100, max: 9000, mean: 900 },
    warmup: { keys: 100_000, seconds: 5.5 },
    rangeKeys: null,
    keysRead: null,
    txnConflicts: null,
  };

  it('formats the end report and the progress line', () => {
    expect(formatBenchReport(report)).toBe(
      [
        'op=mixed ratio=0.9 clients=16 pipeline=1 keyspace=100000 value-size=100',
        'warmup: 100000 keys in 5.50 s',
        'requests=123456 errors=2 seconds=10.00',
        'throughput: 12341 ops/s',
        'latency µs: p50=812 p90=1500 p99=2400 p99.9=5100 max=9000 mean=900',
        'errors by code: TIMEOUT=2',
      ].join('\n'),
    );
    expect(formatProgress('set', { elapsedS: 3.0001, opsPerSec: 999.6, p50Us: 700, p99Us: 2000, errors: 0 })).toBe('set: 3s 1000 ops/s p50=700µs p99=2000µs');
    expect(formatProgress('get', { elapsedS: 1, opsPerSec: 1, p50Us: 1, p99Us: 1, errors: 3 })).toContain('errors=3');
  });

  it('summarizes an HDR histogram (3 significant digits)', () => {
    const h = newHistogram();
    for (let us = 1; us <= 10_000; us++) h.recordValue(us);
    const s = summarize(h);
    expect(s.p50).toBeGreaterThanOrEqual(4995);
    expect(s.p50).toBeLessThanOrEqual(5005);
    expect(s.p999).toBeGreaterThanOrEqual(9985);
    expect(s.max).toBeGreaterThanOrEqual(10_000);
    expect(s.max).toBeLessThanOrEqual(10_010);
    expect(summarize(newHistogram())).toEqual({ p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 });
  });
});
