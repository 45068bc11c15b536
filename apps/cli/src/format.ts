/** Gateway STATUS reply (JSON): the gateway's view of every consensus replica and storage node. */
export interface ClusterStatus {
  gateway: { id: string };
  leaderId: string | null;
  term: number;
  consensus: { id: string; role: string; term: number; commitIndex: number; lastIndex: number; appliedIndex?: number; ageMs?: number }[];
  storage: { id: string; appliedIndex: number; knownCommitIndex?: number; keys: number; dataBytes?: number; ageMs?: number }[];
}

/** Left-aligned text table: columns as wide as their widest cell, two spaces apart. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

const age = (ms: number | undefined) => (ms === undefined ? '-' : `${ms} ms`);

/** The `cairn status` report: the leader, then a consensus table and a storage table. */
export function formatStatus(s: ClusterStatus): string {
  const consensus = table(
    ['REPLICA', 'ROLE', 'TERM', 'COMMIT', 'LAST', 'AGE'],
    [...s.consensus].sort((a, b) => a.id.localeCompare(b.id)).map((c) => [c.id, c.role, c.term, c.commitIndex, c.lastIndex, age(c.ageMs)]),
  );
  const storage = table(
    ['STORAGE', 'APPLIED', 'KEYS', 'AGE'],
    [...s.storage].sort((a, b) => a.id.localeCompare(b.id)).map((n) => [n.id, n.appliedIndex, n.keys, age(n.ageMs)]),
  );
  return [`gateway: ${s.gateway.id}`, `leader:  ${s.leaderId ?? '(none)'} (term ${s.term})`, '', consensus, '', storage].join('\n');
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
