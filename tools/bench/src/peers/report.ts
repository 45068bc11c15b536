import { WORKLOADS, type StoreName, type Workload } from './options';

/**
 * A column of the table: one store through one client. Cairn has two (the TLV door through
 * @cairn/client, the RESP door through ioredis); each peer one.
 */
export const DOORS = ['cairn-tlv', 'cairn-resp', 'etcd', 'nats', 'redis'] as const;
export type DoorId = (typeof DOORS)[number];

export const DOOR_LABEL: Record<DoorId, string> = {
  'cairn-tlv': 'Cairn TLV',
  'cairn-resp': 'Cairn RESP',
  etcd: 'etcd',
  nats: 'NATS KV R3',
  redis: 'Redis AOF always',
};

export const STORE_OF_DOOR: Record<DoorId, StoreName> = { 'cairn-tlv': 'cairn', 'cairn-resp': 'cairn', etcd: 'etcd', nats: 'nats', redis: 'redis' };

/** The workloads each door serves (a store without linearizable reads has no `get`; Cairn's RESP door has no stale read). */
export const DOOR_WORKLOADS: Record<DoorId, readonly Workload[]> = {
  'cairn-tlv': ['put', 'get', 'staleGet'],
  'cairn-resp': ['put', 'get'],
  etcd: ['put', 'get', 'staleGet'],
  nats: ['put', 'staleGet'],
  redis: ['put', 'staleGet'],
};

export const WORKLOAD_LABEL: Record<Workload, string> = { put: 'put', get: 'linearizable get', staleGet: 'stale/serializable get' };

/** One measured round of one point. */
export interface RoundResult {
  /** Answered requests per second of the round's measured time. */
  opsPerSec: number;
  /** Latency percentiles from issue to answer of the answered requests, ms. */
  p50Ms: number;
  p99Ms: number;
  /** Requests that failed (each counted, the client goes on). */
  errors: number;
}

/** One point (door × workload × clients) over every round: the table shows the medians. */
export interface PointResult {
  door: DoorId;
  workload: Workload;
  clients: number;
  rounds: RoundResult[];
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** The first error's message, when any. */
  firstError?: string;
}

/** Median of a non-empty list (mean of the middle two for an even count). @throws RangeError when empty */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median of an empty list');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * The p-th percentile (0 < p ≤ 100) of ascending `sorted` by the nearest-rank method (the value
 * at rank ⌈p/100 × n⌉), as HdrHistogram reports. @throws RangeError when empty or p out of range
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of an empty list');
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Cairn's ops/s over a peer's: null when either is missing or the peer's is 0. */
export function ratio(cairn: number | undefined, peer: number | undefined): number | null {
  if (cairn === undefined || peer === undefined || !(peer > 0)) return null;
  return cairn / peer;
}

/** Folds the rounds of one point into their medians. @throws RangeError when `rounds` is empty */
export function pointOf(door: DoorId, workload: Workload, clients: number, rounds: RoundResult[], firstError?: string): PointResult {
  return {
    door,
    workload,
    clients,
    rounds,
    opsPerSec: median(rounds.map((r) => r.opsPerSec)),
    p50Ms: median(rounds.map((r) => r.p50Ms)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
    errors: rounds.reduce((a, r) => a + r.errors, 0),
    ...(firstError === undefined ? {} : { firstError }),
  };
}

const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** `1,439 (0.63)`: ops/s with thousands separators, p50 in ms to 2 decimals; `—` for no point. */
export function formatCell(p: PointResult | undefined): string {
  if (p === undefined) return '—';
  return `${intFmt.format(p.opsPerSec)} (${p.p50Ms.toFixed(2)})${p.errors > 0 ? ' !' : ''}`;
}

/** `0.47×`, or `—`. */
export function formatRatio(r: number | null): string {
  return r === null ? '—' : `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

function rowLabel(w: Workload, clients: number): string {
  return `${WORKLOAD_LABEL[w]}, ${clients} client${clients === 1 ? '' : 's'}`;
}

/** The points of `results`, keyed `door/workload/clients`. */
function index(results: readonly PointResult[]): Map<string, PointResult> {
  return new Map(results.map((p) => [`${p.door}/${p.workload}/${p.clients}`, p]));
}

/**
 * The results as two Markdown tables: ops/s (p50 ms) per door and point, then Cairn TLV's ops/s
 * over each peer's (and the RESP door's over TLV's). Only the doors in `doors` get a column; a
 * row appears when some door has that point. A cell marked `!` had errors (see the JSON).
 */
export function formatTables(results: readonly PointResult[], doors: readonly DoorId[], clients: readonly number[]): string {
  const at = index(results);
  const get = (d: DoorId, w: Workload, c: number) => at.get(`${d}/${w}/${c}`);
  const peers = doors.filter((d) => STORE_OF_DOOR[d] !== 'cairn');
  const points = WORKLOADS.flatMap((w) => clients.map((c) => [w, c] as const)).filter(([w, c]) => doors.some((d) => get(d, w, c)));
  const lines = [row(['ops/s (p50 ms)', ...doors.map((d) => DOOR_LABEL[d])]), row(['---', ...doors.map(() => '---:')])];
  for (const [w, c] of points) lines.push(row([rowLabel(w, c), ...doors.map((d) => formatCell(get(d, w, c)))]));
  const ratioCols = [...peers.map((d) => `TLV / ${DOOR_LABEL[d]}`), ...(doors.includes('cairn-resp') ? ['RESP / TLV'] : [])];
  if (!doors.includes('cairn-tlv') || ratioCols.length === 0) return lines.join('\n') + '\n';
  lines.push('', row(["Cairn's ratio (ops/s)", ...ratioCols]), row(['---', ...ratioCols.map(() => '---:')]));
  for (const [w, c] of points) {
    const tlv = get('cairn-tlv', w, c)?.opsPerSec;
    const cells = peers.map((d) => formatRatio(ratio(tlv, get(d, w, c)?.opsPerSec)));
    if (doors.includes('cairn-resp')) cells.push(formatRatio(ratio(get('cairn-resp', w, c)?.opsPerSec, tlv)));
    lines.push(row([rowLabel(w, c), ...cells]));
  }
  return lines.join('\n') + '\n';
}

/** The doors of the stores in `only`, in column order. */
export function doorsOf(only: readonly StoreName[]): DoorId[] {
  return DOORS.filter((d) => only.includes(STORE_OF_DOOR[d]));
}

/** The machine's limits measured in the run, each ops/s with p50 and p99 in ms. */
export interface Limits {
  fsync?: { opsPerSec: number; p50Ms: number; p99Ms: number };
  pingPong?: { opsPerSec: number; p50Ms: number; p99Ms: number };
}

/** One line per limit measured, e.g. `limit: 4 KiB append + fdatasync: 3,740/s, p50 0.25 ms, p99 0.80 ms`. */
export function formatLimits(l: Limits): string {
  const line = (what: string, r: NonNullable<Limits['fsync']>) => `limit: ${what}: ${intFmt.format(r.opsPerSec)}/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms\n`;
  return (l.fsync ? line('4 KiB append + fdatasync, one at a time', l.fsync) : '') + (l.pingPong ? line('64-byte TCP ping-pong between two Node processes', l.pingPong) : '');
}
