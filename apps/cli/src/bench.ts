import { build, type Histogram } from 'hdr-histogram-js';
import { performance } from 'node:perf_hooks';
import { TxnOpKind, type TxnOpResponse, type TxnRequest } from '@cairn/protocol';
import { compare, op as txnOp, type RangePage, type ScanOptions } from '@cairn/client';
import { UsageError, isConnectionError } from './exit-codes';

/**
 * `txn`: a transfer-style etcd Txn of two keys (compare both mod revisions, put both; else get
 * both); `range`: a linearizable range read of `rangeKeys` keys from a random key.
 */
export type BenchOp = 'set' | 'get' | 'mixed' | 'txn' | 'range';
const BENCH_OPS: BenchOp[] = ['set', 'get', 'mixed', 'txn', 'range'];

/** A validated `cairn bench` run. Exactly one of `durationMs` / `requests` is set. */
export interface BenchConfig {
  op: BenchOp;
  /** Share of GETs in `mixed`, 0..1. */
  ratio: number;
  /** Connections, each issuing `pipeline` requests at a time. */
  clients: number;
  pipeline: number;
  /** Keys are `key:` + a 12-digit number in [0, keyspace). */
  keyspace: number;
  valueSize: number;
  durationMs: number | null;
  requests: number | null;
  json: boolean;
  /** SET every key of the keyspace before measuring (default: on for every op but set). */
  warmupKeys: boolean;
  /** Keys of each range read (`--op range`), at most the keyspace; null for other ops. */
  rangeKeys: number | null;
}

/** What commander hands over (strings as typed, flags as booleans). */
export interface RawBenchOptions {
  op?: string;
  ratio?: string;
  clients?: string;
  pipeline?: string;
  keyspace?: string;
  valueSize?: string;
  duration?: string;
  requests?: string;
  json?: boolean;
  warmupKeys?: boolean;
  rangeKeys?: string;
}

/** Parses `10s`, `500ms`, `2m` or a bare number of seconds into ms. @throws UsageError. */
export function parseDurationMs(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s.trim());
  const ms = m ? Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000) : NaN;
  if (!(ms >= 1)) throw new UsageError(`--duration must look like 10s, 500ms or 2m, got "${s}"`);
  return Math.round(ms);
}

function intOption(name: string, s: string | undefined, dflt: number, min: number): number {
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, got "${s}"`);
  return n;
}

/** Validates and defaults the options of `cairn bench`. @throws UsageError. */
export function benchConfig(o: RawBenchOptions): BenchConfig {
  const op = (o.op ?? 'set') as BenchOp;
  if (!BENCH_OPS.includes(op)) throw new UsageError(`--op must be set, get, mixed, txn or range, got "${o.op}"`);
  const ratio = o.ratio === undefined ? 0.9 : Number(o.ratio);
  if (!(ratio >= 0 && ratio <= 1)) throw new UsageError(`--ratio must be between 0 and 1, got "${o.ratio}"`);
  if (o.duration !== undefined && o.requests !== undefined) throw new UsageError('give --duration or --requests, not both');
  const requests = o.requests === undefined ? null : intOption('--requests', o.requests, 0, 1);
  const keyspace = intOption('--keyspace', o.keyspace, 100_000, 1);
  if (o.rangeKeys !== undefined && op !== 'range') throw new UsageError('--range-keys goes with --op range');
  const rangeKeys = op === 'range' ? intOption('--range-keys', o.rangeKeys, 1000, 1) : null;
  if (rangeKeys !== null && rangeKeys > keyspace) throw new UsageError(`--range-keys ${rangeKeys} is more than the keyspace (${keyspace} keys)`);
  if (op === 'txn' && keyspace < 2) throw new UsageError('--op txn needs a keyspace of at least 2 keys');
  return {
    op,
    ratio,
    clients: intOption('--clients', o.clients, 16, 1),
    pipeline: intOption('--pipeline', o.pipeline, 1, 1),
    keyspace,
    valueSize: intOption('--value-size', o.valueSize, 100, 0),
    durationMs: requests === null ? parseDurationMs(o.duration ?? '10s') : null,
    requests,
    json: o.json === true,
    warmupKeys: o.warmupKeys ?? op !== 'set',
    rangeKeys,
  };
}

/** What the benchmark needs from one connection (`CairnClient` satisfies it). */
export interface BenchClient {
  get(key: string): Promise<unknown>;
  /** Resolves the write's revision (`--op txn` learns each key's mod revision from the warm-up); a client that does not tell may resolve nothing. */
  set(key: string, value: string): Promise<{ revision: number | bigint } | null | void>;
  /** `--op txn` (TLV TXN). */
  commitTxn(request: TxnRequest): Promise<{ revision: number; succeeded: boolean; responses: TxnOpResponse[] }>;
  /** `--op range`: the pages of one range read (RANGE, continuation tokens followed). */
  pages(opts: ScanOptions): AsyncIterable<RangePage>;
  close(): Promise<void> | void;
}

export interface LatencySummaryUs {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface BenchReport {
  op: BenchOp;
  ratio: number | null;
  clients: number;
  pipeline: number;
  keyspace: number;
  valueSize: number;
  /** Requests answered without error (NOT_FOUND counts as an answer). */
  requests: number;
  errors: number;
  /** Error count per error code. */
  errorCodes: Record<string, number>;
  seconds: number;
  opsPerSec: number;
  /** From issue to response of each answered request, µs (HDR histogram, 3 significant digits). */
  latencyUs: LatencySummaryUs;
  warmup: { keys: number; seconds: number } | null;
  /** `--op range`: keys per read, and keys read in all (keys/s = keysRead / seconds); else null. */
  rangeKeys: number | null;
  keysRead: number | null;
  /** `--op txn`: answered txns whose compares failed (another client moved a key first; the failure branch refreshed its mod revisions); else null. */
  txnConflicts: number | null;
}

/** One progress sample: the last interval's rate and latencies. */
export interface BenchProgress {
  elapsedS: number;
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
  errors: number;
}

export interface BenchDeps {
  /** Opens one connection. */
  connect(): Promise<BenchClient>;
  /** Monotonic clock, ms; default performance.now (tests inject one). */
  now?: () => number;
  /** For key and op choice; default Math.random. */
  random?: () => number;
  /** Called every `tickMs` (1000) with the last interval's numbers. */
  onProgress?: (p: BenchProgress) => void;
  tickMs?: number;
}

/** Requests in flight per connection while loading the keyspace. */
export const WARMUP_PIPELINE = 64;
const HIGHEST_US = 60_000_000;

export function newHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3, autoResize: false });
}

export function keyName(i: number): string {
  return 'key:' + String(i).padStart(12, '0');
}

export function summarize(h: Histogram): LatencySummaryUs {
  if (h.totalCount === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  // A percentile is reported as its bucket's highest equivalent value: cap it at the recorded max.
  const at = (p: number) => Math.min(h.getValueAtPercentile(p), h.maxValue);
  return { p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: h.maxValue, mean: Math.round(h.mean) };
}

/**
 * Keeps up to `pipeline` operations in flight on each of `clients`, issuing while `mayIssue()`.
 * A client whose connection breaks stops; other errors are counted and it goes on.
 */
async function drive(clients: BenchClient[], pipeline: number, mayIssue: () => boolean, op: (c: BenchClient) => Promise<unknown>, done: (startMs: number, err: unknown) => void, now: () => number): Promise<void> {
  await Promise.all(
    clients.map(
      (c) =>
        new Promise<void>((resolve) => {
          let inflight = 0;
          let broken = false;
          const issue = () => {
            while (!broken && inflight < pipeline && mayIssue()) {
              inflight++;
              const t0 = now();
              op(c).then(
                () => finish(t0, null),
                (e: unknown) => finish(t0, e),
              );
            }
            if (inflight === 0) resolve();
          };
          const finish = (t0: number, err: unknown) => {
            inflight--;
            if (err !== null && isConnectionError(err) && !/TIMEOUT/.test(String((err as { code?: unknown }).code))) broken = true;
            done(t0, err);
            issue();
          };
          issue();
        }),
    ),
  );
}

/** SETs every key of the keyspace, `WARMUP_PIPELINE` in flight per client, noting each key's revision in `revs`. @throws the first error. */
async function warmUp(clients: BenchClient[], cfg: BenchConfig, value: string, now: () => number, revs: Map<string, number>): Promise<NonNullable<BenchReport['warmup']>> {
  const t0 = now();
  let next = 0;
  let firstError: unknown = null;
  await drive(clients, WARMUP_PIPELINE, () => next < cfg.keyspace, (c) => {
      const key = keyName(next++);
      return c.set(key, value).then((r) => r && revs.set(key, Number(r.revision)));
    },
    (_t, e) => (firstError ??= e), now);
  if (firstError) throw firstError;
  return { keys: cfg.keyspace, seconds: (now() - t0) / 1000 };
}

/** Answers and errors of the measured phase: in total, and since the last progress tick. */
class Tally {
  readonly total = newHistogram();
  readonly errorCodes: Record<string, number> = {};
  ok = 0;
  errors = 0;
  firstError: unknown = null;
  private readonly interval = newHistogram();
  private intervalOps = 0;
  private intervalErrors = 0;
  private lastTickMs: number;

  constructor(
    private readonly now: () => number,
    private readonly startedMs: number,
  ) {
    this.lastTickMs = startedMs;
  }

  /** One request issued at `t0` (ms) finished, answered (`err` null) or failed. */
  record(t0: number, err: unknown): void {
    if (err === null) {
      const us = Math.min(HIGHEST_US, Math.max(1, Math.round((this.now() - t0) * 1000)));
      this.total.recordValue(us);
      this.interval.recordValue(us);
      this.ok++;
      this.intervalOps++;
      return;
    }
    this.firstError ??= err;
    this.errors++;
    this.intervalErrors++;
    const code = String((err as { code?: unknown }).code ?? 'ERROR');
    this.errorCodes[code] = (this.errorCodes[code] ?? 0) + 1;
  }

  /** The numbers since the last tick; starts a new interval. */
  tick(): BenchProgress {
    const t = this.now();
    // Only the two percentiles the line shows: hdr-histogram-js walks its buckets for each one (and
    // for the mean), which cost 11 % of the bench's own CPU at 128 clients when a tick summarised all.
    const h = this.interval;
    const at = (q: number) => (h.totalCount ? Math.min(h.getValueAtPercentile(q), h.maxValue) : 0);
    const p = { elapsedS: (t - this.startedMs) / 1000, opsPerSec: (this.intervalOps * 1000) / Math.max(1, t - this.lastTickMs), p50Us: at(50), p99Us: at(99), errors: this.intervalErrors };
    this.interval.reset();
    this.intervalOps = 0;
    this.intervalErrors = 0;
    this.lastTickMs = t;
    return p;
  }
}

/** What the measured ops counted beyond answers: range keys read, txn compares that failed. */
interface OpCounts {
  keysRead: number;
  txnConflicts: number;
}

/**
 * One measured request of `cfg.op` on a client, keys drawn with `random`. `txn` compares the mod
 * revision last seen of each key in `revs` (at most `keyspace` entries, filled by the warm-up and
 * by every txn; a key not seen compares as 0, so its first txn fails and learns it from the
 * failure branch).
 */
export function benchOp(cfg: BenchConfig, value: string, random: () => number, counts: OpCounts, revs: Map<string, number>): (c: BenchClient) => Promise<unknown> {
  const pick = () => Math.floor(random() * cfg.keyspace);
  switch (cfg.op) {
    case 'txn': {
      return async (c) => {
        const i = pick();
        const [a, b] = [keyName(i), keyName((i + 1 + Math.floor(random() * (cfg.keyspace - 1))) % cfg.keyspace)];
        const r = await c.commitTxn({
          compares: [compare.modRevision(a, '=', revs.get(a) ?? 0), compare.modRevision(b, '=', revs.get(b) ?? 0)],
          success: [txnOp.put(a, value), txnOp.put(b, value)],
          failure: [txnOp.get(a), txnOp.get(b)],
        });
        if (r.succeeded) [a, b].forEach((k) => revs.set(k, r.revision));
        else {
          counts.txnConflicts++;
          r.responses.forEach((x, n) => revs.set(n === 0 ? a : b, x.kind === TxnOpKind.Get && x.kv ? x.kv.modRevision : 0));
        }
      };
    }
    case 'range':
      return async (c) => {
        const start = keyName(Math.floor(random() * (cfg.keyspace - cfg.rangeKeys! + 1)));
        for await (const page of c.pages({ start, keysMax: cfg.rangeKeys! })) counts.keysRead += page.items.length;
      };
    default:
      return (c) => {
        const key = keyName(pick());
        const isGet = cfg.op === 'get' || (cfg.op === 'mixed' && random() < cfg.ratio);
        return isGet ? c.get(key) : c.set(key, value);
      };
  }
}

/**
 * Runs the benchmark: opens `clients` connections, loads the keyspace when `warmupKeys`, then
 * measures until `durationMs` has passed or `requests` were issued.
 * @throws the connect error; the first error when no request at all succeeded.
 */
export async function runBench(cfg: BenchConfig, deps: BenchDeps): Promise<BenchReport> {
  const now = deps.now ?? (() => performance.now());
  const random = deps.random ?? Math.random;
  const clients = await Promise.all(Array.from({ length: cfg.clients }, () => deps.connect()));
  const value = 'x'.repeat(cfg.valueSize);
  try {
    const revs = new Map<string, number>();
    const warmup = cfg.warmupKeys ? await warmUp(clients, cfg, value, now, revs) : null;
    let issued = 0;
    const started = now();
    const tally = new Tally(now, started);
    const endMs = cfg.durationMs === null ? Infinity : started + cfg.durationMs;
    const mayIssue = cfg.requests === null ? () => now() < endMs : () => issued < cfg.requests!;
    const counts: OpCounts = { keysRead: 0, txnConflicts: 0 };
    const measured = benchOp(cfg, value, random, counts, revs);
    const op = (c: BenchClient) => {
      issued++;
      return measured(c);
    };
    const onProgress = deps.onProgress;
    const ticker = onProgress ? setInterval(() => onProgress(tally.tick()), deps.tickMs ?? 1000) : null;
    try {
      await drive(clients, cfg.pipeline, mayIssue, op, (t0, err) => tally.record(t0, err), now);
    } finally {
      if (ticker) clearInterval(ticker);
    }
    const seconds = (now() - started) / 1000;
    if (tally.ok === 0 && tally.firstError) throw tally.firstError;
    return {
      op: cfg.op,
      ratio: cfg.op === 'mixed' ? cfg.ratio : null,
      clients: cfg.clients,
      pipeline: cfg.pipeline,
      keyspace: cfg.keyspace,
      valueSize: cfg.valueSize,
      requests: tally.ok,
      errors: tally.errors,
      errorCodes: tally.errorCodes,
      seconds,
      opsPerSec: seconds > 0 ? tally.ok / seconds : 0,
      latencyUs: summarize(tally.total),
      warmup,
      rangeKeys: cfg.rangeKeys,
      keysRead: cfg.op === 'range' ? counts.keysRead : null,
      txnConflicts: cfg.op === 'txn' ? counts.txnConflicts : null,
    };
  } finally {
    await Promise.all(clients.map((c) => Promise.resolve(c.close()).catch(() => undefined)));
  }
}

/** `set: 3s 12345 ops/s p50=812µs p99=2400µs` (+ errors when any). */
export function formatProgress(op: string, p: BenchProgress): string {
  return `${op}: ${Math.round(p.elapsedS)}s ${Math.round(p.opsPerSec)} ops/s p50=${p.p50Us}µs p99=${p.p99Us}µs${p.errors ? ` errors=${p.errors}` : ''}`;
}

/** The human-readable end report (the `--json` form is the BenchReport itself). */
export function formatBenchReport(r: BenchReport): string {
  const l = r.latencyUs;
  const lines = [
    `op=${r.op}${r.ratio === null ? '' : ` ratio=${r.ratio}`} clients=${r.clients} pipeline=${r.pipeline} keyspace=${r.keyspace} value-size=${r.valueSize}`,
  ];
  if (r.rangeKeys !== null) lines[0] += ` range-keys=${r.rangeKeys}`;
  if (r.warmup) lines.push(`warmup: ${r.warmup.keys} keys in ${r.warmup.seconds.toFixed(2)} s`);
  lines.push(
    `requests=${r.requests} errors=${r.errors} seconds=${r.seconds.toFixed(2)}`,
    `throughput: ${Math.round(r.opsPerSec)} ops/s`,
    `latency µs: p50=${l.p50} p90=${l.p90} p99=${l.p99} p99.9=${l.p999} max=${l.max} mean=${l.mean}`,
  );
  if (r.keysRead !== null) lines.push(`keys read=${r.keysRead} (${Math.round(r.seconds > 0 ? r.keysRead / r.seconds : 0)} keys/s)`);
  if (r.txnConflicts !== null) lines.push(`txn compares failed=${r.txnConflicts} (answered; counted in requests)`);
  const codes = Object.entries(r.errorCodes);
  if (codes.length) lines.push(`errors by code: ${codes.map(([c, n]) => `${c}=${n}`).join(' ')}`);
  return lines.join('\n');
}
