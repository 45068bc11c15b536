import type { Registry } from 'prom-client';
import { realClock, type Clock, type TimerHandle } from '@cairn/world';
import { DOORS, DURATION_BUCKETS_SECONDS, type Door } from '../metrics/request-metrics';

/** Samples kept: 5 minutes at one a second. */
export const STATS_SAMPLES_MAX = 300;
/** How often the request counters are sampled, ms. */
export const STATS_INTERVAL_MS = 1000;

/** Statuses that are the cluster's failure, not the client's answer (NOT_FOUND, CONDITION_FAILED, BAD_REQUEST are answers). */
const FAILURE_STATUSES = new Set(['UNAVAILABLE', 'ERROR']);

/** Per door, since the process started: requests answered, failures, cumulative latency buckets (last = +Inf). */
interface DoorTotals {
  count: number;
  failures: number;
  /** Cumulative counts per `le` bound, in `bounds` order, then +Inf. */
  buckets: number[];
}
interface Totals {
  atMs: number;
  bounds: readonly number[];
  doors: Record<Door, DoorTotals>;
}

/** One interval of one door: requests answered, requests per second, failures per second, latency quantiles in ms (null: no request). */
export interface DoorSample {
  requests: number;
  ops: number;
  failures: number;
  p50Ms: number | null;
  p99Ms: number | null;
}

/** What `GET /v1/cluster/stats` answers (docs/http.md): columns, oldest first, one entry per sample. */
export interface StatsColumns {
  intervalMs: number;
  samplesMax: number;
  /** Unix time of each sample's end, seconds (uPlot's x axis). */
  t: number[];
  doors: Record<Door, { requests: number[]; ops: number[]; failures: number[]; p50Ms: (number | null)[]; p99Ms: (number | null)[] }>;
}

/**
 * Prometheus `histogram_quantile`: the q-quantile of a histogram given as cumulative counts per
 * upper bound (`cumulative[i]` for `bounds[i]`, `cumulative[bounds.length]` for +Inf), linear
 * within the bucket it falls in; the first bucket starts at 0; a rank in +Inf answers the highest
 * bound. null when the histogram is empty. Units are the bounds'.
 */
export function histogramQuantile(q: number, bounds: readonly number[], cumulative: readonly number[]): number | null {
  const total = cumulative[bounds.length] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let i = 0;
  while (i < bounds.length && cumulative[i] < rank) i++;
  if (i === bounds.length) return bounds[bounds.length - 1];
  const lower = i === 0 ? 0 : bounds[i - 1];
  const before = i === 0 ? 0 : cumulative[i - 1];
  const inBucket = cumulative[i] - before;
  return inBucket > 0 ? lower + (bounds[i] - lower) * ((rank - before) / inBucket) : bounds[i];
}

interface MetricValue {
  value: number;
  labels: Record<string, string | number | undefined>;
  metricName?: string;
}

/**
 * Throughput and latency per front door over the last STATS_SAMPLES_MAX intervals, for the web
 * console's charts. Computed from the gateway's own Prometheus registry (the
 * `cairn_gateway_requests_total` counter and `cairn_gateway_request_duration_seconds` histogram,
 * docs/http.md "Metrics"): each sample is the difference of two readings, so p50/p99 are those of
 * the requests answered in that interval (histogram_quantile over the bucket deltas: an estimate
 * within the bucket bounds, 100 µs … 10 s). Bounded: a ring of STATS_SAMPLES_MAX samples.
 */
export class ConsoleStats {
  private readonly samples: { atMs: number; doors: Record<Door, DoorSample> }[] = [];
  private last: Totals | null = null;
  private timer: TimerHandle | null = null;
  private sampling = false;

  constructor(
    private readonly registry: Registry,
    private readonly samplesMax = STATS_SAMPLES_MAX,
    private readonly clock: Clock = realClock,
  ) {}

  /** Samples every `intervalMs` on `clock` (timer unref'd: it never keeps the process up). */
  start(intervalMs = STATS_INTERVAL_MS): void {
    if (this.timer) return;
    void this.sample(this.clock.nowMs());
    this.timer = this.clock.setInterval(() => void this.sample(this.clock.nowMs()), intervalMs, { unref: true });
  }

  stop(): void {
    this.clock.clearTimer(this.timer ?? undefined);
    this.timer = null;
  }

  /** Reads the registry and, after a first reading, appends one sample ending at `nowMs`. A reading still in progress makes this a no-op. */
  async sample(nowMs: number): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const totals = await this.read(nowMs);
      const prev = this.last;
      this.last = totals;
      if (!prev || totals.atMs <= prev.atMs) return;
      const seconds = (totals.atMs - prev.atMs) / 1000;
      const doors = {} as Record<Door, DoorSample>;
      for (const d of DOORS) {
        const a = prev.doors[d];
        const b = totals.doors[d];
        const delta = b.buckets.map((n, i) => Math.max(0, n - (a.buckets[i] ?? 0)));
        const q = (x: number) => {
          const s = histogramQuantile(x, totals.bounds, delta);
          return s === null ? null : s * 1000;
        };
        const requests = Math.max(0, b.count - a.count);
        doors[d] = { requests, ops: requests / seconds, failures: Math.max(0, b.failures - a.failures) / seconds, p50Ms: q(0.5), p99Ms: q(0.99) };
      }
      this.samples.push({ atMs: totals.atMs, doors });
      if (this.samples.length > this.samplesMax) this.samples.splice(0, this.samples.length - this.samplesMax);
    } finally {
      this.sampling = false;
    }
  }

  /** The samples as columns, oldest first. */
  columns(intervalMs = STATS_INTERVAL_MS): StatsColumns {
    const doors = {} as StatsColumns['doors'];
    for (const d of DOORS) doors[d] = { requests: [], ops: [], failures: [], p50Ms: [], p99Ms: [] };
    const t: number[] = [];
    for (const s of this.samples) {
      t.push(s.atMs / 1000);
      for (const d of DOORS) {
        doors[d].requests.push(s.doors[d].requests);
        doors[d].ops.push(round(s.doors[d].ops));
        doors[d].failures.push(round(s.doors[d].failures));
        doors[d].p50Ms.push(s.doors[d].p50Ms === null ? null : round(s.doors[d].p50Ms));
        doors[d].p99Ms.push(s.doors[d].p99Ms === null ? null : round(s.doors[d].p99Ms));
      }
    }
    return { intervalMs, samplesMax: this.samplesMax, t, doors };
  }

  private async read(atMs: number): Promise<Totals> {
    const doors = {} as Record<Door, DoorTotals>;
    for (const d of DOORS) doors[d] = { count: 0, failures: 0, buckets: [] };
    const requests = await valuesOf(this.registry, 'cairn_gateway_requests_total');
    for (const v of requests) {
      const door = doors[v.labels.door as Door];
      if (door && FAILURE_STATUSES.has(String(v.labels.status))) door.failures += v.value;
    }
    const bounds = DURATION_BUCKETS_SECONDS;
    for (const d of DOORS) doors[d].buckets = new Array<number>(bounds.length + 1).fill(0);
    for (const v of await valuesOf(this.registry, 'cairn_gateway_request_duration_seconds')) {
      const door = doors[v.labels.door as Door];
      if (!door) continue;
      if (v.metricName?.endsWith('_count')) door.count += v.value;
      if (!v.metricName?.endsWith('_bucket')) continue;
      // One line per (door, op, le): sum the ops of a door per bound; +Inf is the last slot.
      const i = v.labels.le === '+Inf' ? bounds.length : bounds.indexOf(Number(v.labels.le));
      if (i >= 0) door.buckets[i] += v.value;
    }
    return { atMs, bounds, doors };
  }
}

async function valuesOf(registry: Registry, name: string): Promise<MetricValue[]> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return [];
  // As the Registry does: a histogram's get() expects label fields that the gateway's
  // scrape-time histogram (metrics/request-metrics.ts) does not produce; getForPromString is its source.
  if ('getForPromString' in metric && typeof metric.getForPromString === 'function') {
    const read = metric.getForPromString as () => Promise<{ values: MetricValue[] }>;
    return (await read.call(metric)).values;
  }
  return (await metric.get()).values as MetricValue[];
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
