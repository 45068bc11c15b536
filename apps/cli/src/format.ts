/**
 * Liveness of one process as the gateway reports it (apps/gateway ClusterView.snapshot): `ageMs`
 * since its last status heartbeat reached the gateway, `live` (heartbeat fresh), `lastSeenAtMs`
 * and `downSinceMs` (Unix ms, the gateway's clock; downSinceMs null while live). Older gateways
 * send only `ageMs`: the CLI then applies the same rule itself (STATUS_STALE_MS).
 */
export interface Liveness {
  ageMs?: number;
  live?: boolean;
  lastSeenAtMs?: number;
  downSinceMs?: number | null;
}

/** Gateway STATUS reply (JSON): the gateway's view of every consensus replica and storage node. */
export interface ClusterStatus {
  gateway: { id: string };
  leaderId: string | null;
  term: number;
  /** `role` is 'down' for a replica whose heartbeats stopped (never its last role). */
  consensus: ({
    id: string;
    role: string;
    term: number;
    commitIndex: number;
    lastIndex: number;
    appliedIndex?: number;
    /** The configuration the replica has in effect (thesis §4.1) and its index; absent from older replicas. */
    conf?: { voters: string[]; learners: string[]; storage: string[] };
    confIndex?: number;
  } & Liveness)[];
  storage: ({ id: string; appliedIndex: number; knownCommitIndex?: number; keys: number; dataBytes?: number } & Liveness)[];
}

/** A heartbeat older than this means the process is down, ms: the gateway's rule (10 heartbeat intervals). */
export const STATUS_STALE_MS = 1000;

/** Left-aligned text table: columns as wide as their widest cell, two spaces apart. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

/** Whether the gateway still hears `p`: its own `live` flag, else the age rule. Unknown age counts as live. */
export function isLive(p: Liveness): boolean {
  if (p.live !== undefined) return p.live;
  return p.ageMs === undefined || p.ageMs <= STATUS_STALE_MS;
}

/** `12 ms`, `3.4 s`, `2 min 5 s`, `1 h 3 min`. */
export function formatAge(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/**
 * The STATE cell: `up` (last heartbeat age), or `DOWN since <UTC time> (<how long>)`. The
 * duration is the gateway's own `ageMs` (no clock skew); the time is its `downSinceMs`, else
 * `nowMs - ageMs`.
 */
export function formatState(p: Liveness, nowMs: number): string {
  if (isLive(p)) return p.ageMs === undefined ? 'up' : `up (${formatAge(p.ageMs)} ago)`;
  const sinceMs = p.downSinceMs ?? p.lastSeenAtMs ?? (p.ageMs !== undefined ? nowMs - p.ageMs : undefined);
  const since = sinceMs === undefined ? '' : ` since ${new Date(sinceMs).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')}`;
  return `DOWN${since}${p.ageMs === undefined ? '' : ` (${formatAge(p.ageMs)})`}`;
}

/** STATE of a member of the configuration that no heartbeat of has reached the gateway. */
export const SILENT_STATE = 'UNREACHABLE (in the configuration, never heard by this gateway)';

/**
 * Members of the configuration in effect that the gateway has no heartbeat from at all (never
 * started, or cut off since before the gateway started): the configuration is the one with the
 * highest index among the live replicas' (as the gateway's membership API picks it). Empty when
 * no live replica reports one (older replicas).
 */
export function silentMembers(s: ClusterStatus): { replicas: string[]; storage: string[] } {
  let best: ClusterStatus['consensus'][number] | null = null;
  for (const c of s.consensus) if (c.conf && isLive(c) && (!best || (c.confIndex ?? 0) > (best.confIndex ?? 0))) best = c;
  if (!best?.conf) return { replicas: [], storage: [] };
  const seen = new Set([...s.consensus, ...s.storage].map((p) => p.id));
  const missing = (ids: string[]) => ids.filter((id) => !seen.has(id)).sort();
  return { replicas: missing([...best.conf.voters, ...best.conf.learners]), storage: missing(best.conf.storage) };
}

/**
 * The `cairn status` report: the leader, then a consensus table and a storage table. A process
 * whose heartbeats stopped shows as DOWN (since when), and a replica that is down is never shown
 * with its last role nor named leader, whatever an older gateway says. A member of the
 * configuration the gateway never heard from shows as UNREACHABLE (`silentMembers`).
 */
export function formatStatus(s: ClusterStatus, nowMs: number = Date.now()): string {
  const byId = <T extends { id: string }>(xs: T[]) => [...xs].sort((a, b) => a.id.localeCompare(b.id));
  const silent = silentMembers(s);
  const consensus = table(
    ['REPLICA', 'ROLE', 'TERM', 'COMMIT', 'LAST', 'STATE'],
    [
      ...byId(s.consensus).map((c) => [c.id, isLive(c) ? c.role : 'down', c.term, c.commitIndex, c.lastIndex, formatState(c, nowMs)]),
      ...silent.replicas.map((id) => [id, 'down', '-', '-', '-', SILENT_STATE]),
    ],
  );
  const storage = table(
    ['STORAGE', 'APPLIED', 'KEYS', 'STATE'],
    [...byId(s.storage).map((n) => [n.id, n.appliedIndex, n.keys, formatState(n, nowMs)]), ...silent.storage.map((id) => [id, '-', '-', SILENT_STATE])],
  );
  const leaderRow = s.consensus.find((c) => c.id === s.leaderId);
  const leader = s.leaderId && (!leaderRow || isLive(leaderRow)) ? s.leaderId : '(none)';
  const down = [...[...s.consensus, ...s.storage].filter((p) => !isLive(p)).map((p) => p.id), ...silent.replicas, ...silent.storage];
  return [
    `gateway: ${s.gateway.id}`,
    `leader:  ${leader} (term ${s.term})`,
    ...(down.length ? [`down:    ${down.sort().join(', ')}`] : []),
    '',
    consensus,
    '',
    storage,
  ].join('\n');
}

export interface PingSummary {
  count: number;
  minUs: number;
  avgUs: number;
  p50Us: number;
  maxUs: number;
}

/** Min/avg/p50 (nearest rank)/max of round-trip times in µs. @throws RangeError on an empty list. */
export function summarizePings(rttUs: number[]): PingSummary {
  if (rttUs.length === 0) throw new RangeError('no ping round trips to summarize');
  const sorted = [...rttUs].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    minUs: sorted[0],
    avgUs: Math.round(sum / sorted.length),
    p50Us: sorted[Math.ceil(sorted.length * 0.5) - 1],
    maxUs: sorted[sorted.length - 1],
  };
}

export function formatPingSummary(s: PingSummary): string {
  return `${s.count} pings: min=${s.minUs}µs avg=${s.avgUs}µs p50=${s.p50Us}µs max=${s.maxUs}µs`;
}

/** One endpoint of the CLI's connection and whether it has a live connection (CairnPool `stats`). */
export interface EndpointState {
  host: string;
  port: number;
  up: boolean;
}

/** `endpoints: 127.0.0.1:7380 up, 127.0.0.1:7381 UNREACHABLE` (the gateways the CLI connected to, not the gateway's view). */
export function formatEndpoints(eps: { address: string; reachable: boolean }[]): string {
  return `endpoints: ${eps.length ? eps.map((e) => `${e.address} ${e.reachable ? 'up' : 'UNREACHABLE'}`).join(', ') : '(unknown)'}`;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A value in `--json` output: `{ value }` when it is UTF-8 text, else `{ valueBase64 }`. */
export function valueJson(bytes: Uint8Array): { value: string } | { valueBase64: string } {
  try {
    return { value: utf8.decode(bytes) };
  } catch {
    return { valueBase64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') };
  }
}
