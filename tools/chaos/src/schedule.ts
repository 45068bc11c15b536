import { mulberry32 } from '@cairn/raft';

/**
 * Fault kinds the chaos run injects (docs/reliability.md, fault table):
 * - `kill` / `kill-leader`: SIGKILL a Cairn process (any role) / the current Raft leader, restart it after `holdMs`.
 * - `pause` / `pause-leader`: SIGSTOP a process / the leader for `holdMs` (longer than the election timeout), then SIGCONT.
 * - `nats-restart`: stop nats-server for `holdMs`, start it again on the same port.
 * - `torn-write`: SIGKILL one consensus replica, append the first `tornBytes` of a record to its last
 *   Raft log segment (a crash in the middle of writing a record that was never fsynced, so never
 *   acknowledged), restart it after `holdMs`.
 * - `torn-tail`: SIGKILL one consensus replica, cut `tornBytes` off the end of its last Raft log
 *   segment, restart it after `holdMs`. The records cut were fsynced and may have been
 *   acknowledged: this is a lost write on one replica, beyond what a crash does to an fsynced log.
 * - `wipe`: SIGKILL one storage node, delete its whole data directory, restart it after `holdMs`:
 *   it rebuilds from a peer's snapshot (once the replicas compacted past its start) plus the log.
 * - `partition` / `partition-leader`: cut one process (any role) / the leader off NATS for
 *   `holdMs` through its own TCP proxy in front of nats-server (TcpProxy): its connections are
 *   reset and new ones refused, the rest of the cluster keeps talking.
 */
export type FaultKind =
  | 'kill'
  | 'kill-leader'
  | 'pause'
  | 'pause-leader'
  | 'nats-restart'
  | 'torn-write'
  | 'torn-tail'
  | 'wipe'
  | 'partition'
  | 'partition-leader';

export const FAULT_KINDS: readonly FaultKind[] = ['kill', 'kill-leader', 'pause', 'pause-leader', 'nats-restart', 'torn-write', 'torn-tail', 'wipe', 'partition', 'partition-leader'];

/** Kinds that need every process behind its own NATS proxy. */
export const PARTITION_KINDS: readonly FaultKind[] = ['partition', 'partition-leader'];

export type FaultRole = 'consensus' | 'storage' | 'gateway';

/** Who a fault hits: the leader at injection time, nats-server, or the `index`-th process (config order) of a role. */
export type FaultTarget = { kind: 'leader' } | { kind: 'nats' } | { kind: 'process'; role: FaultRole; index: number };

/** One planned fault. Times are offsets from the start of the run, ms. */
export interface PlannedFault {
  kind: FaultKind;
  /** Not before this offset: faults run one at a time, so a fault starts after the previous one healed. */
  atMs: number;
  /** Process down / paused / nats-server down for this long, ms. */
  holdMs: number;
  target: FaultTarget;
  /** torn-tail: bytes cut from the end of the last segment (capped at run time by the bytes past its header); torn-write: bytes of the partial record appended. */
  tornBytes?: number;
}

export interface FaultPlanOptions {
  seed: number;
  /** Length of the run, ms: no fault starts after `durationMs - endMarginMs`. */
  durationMs: number;
  /** First fault not before this offset, ms (default 2000): lets clients get going. */
  startMs?: number;
  /** No fault starts in the last `endMarginMs` of the run (default 2000), so the run ends healed. */
  endMarginMs?: number;
  /** Quiet time between one fault's start + hold and the next fault's start, ms (defaults 2000..8000). */
  gapMinMs?: number;
  gapMaxMs?: number;
  /** Hold of a kill / torn-tail / nats-restart / partition, ms (defaults 500..5000). */
  downMinMs?: number;
  downMaxMs?: number;
  /** Hold of a pause, ms (defaults 500..3000); must exceed the election timeout so followers elect. */
  pauseMinMs?: number;
  pauseMaxMs?: number;
  /** Kinds to draw from (default all, weighted by KIND_WEIGHTS). */
  kinds?: readonly FaultKind[];
  /** True: take `kinds` in order, round-robin (targets and holds still seeded); false (default): draw by weight. */
  cycle?: boolean;
  /** Consensus replicas / storage nodes / gateways in the cluster (defaults 3, 2, 1). */
  counts?: Record<FaultRole, number>;
}

/** Relative frequency of each kind when drawn at random: leader faults matter most, so they are frequent. */
export const KIND_WEIGHTS: Readonly<Record<FaultKind, number>> = {
  kill: 3,
  'kill-leader': 3,
  pause: 2,
  'pause-leader': 2,
  'nats-restart': 1,
  'torn-write': 1,
  'torn-tail': 1,
  wipe: 1,
  partition: 2,
  'partition-leader': 2,
};

/** Thrown on plan options that cannot describe a valid run (e.g. min above max, no kind). */
export class FaultPlanError extends Error {
  readonly code = 'FAULT_PLAN_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'FaultPlanError';
  }
}

/**
 * The fault schedule of a run: a pure function of the options, so a seed replays the same faults
 * in the same order with the same holds and targets (the leader itself is resolved at injection).
 * Faults never overlap: each starts no earlier than the previous one's `atMs + holdMs + gap`, so at
 * most one process (and never a majority of consensus replicas) is down or paused at a time, and
 * a torn tail only ever hits one replica. Processes are drawn from every role: consensus replicas
 * half the time, then storage nodes and gateways.
 * @throws FaultPlanError on inconsistent options.
 */
export function planFaults(opts: FaultPlanOptions): PlannedFault[] {
  const o = {
    startMs: 2000,
    endMarginMs: 2000,
    gapMinMs: 2000,
    gapMaxMs: 8000,
    downMinMs: 500,
    downMaxMs: 5000,
    pauseMinMs: 500,
    pauseMaxMs: 3000,
    kinds: FAULT_KINDS,
    cycle: false,
    counts: { consensus: 3, storage: 2, gateway: 1 },
    ...opts,
  };
  for (const [min, max] of [
    ['gapMinMs', 'gapMaxMs'],
    ['downMinMs', 'downMaxMs'],
    ['pauseMinMs', 'pauseMaxMs'],
  ] as const) {
    if (!(o[min] >= 0 && o[min] <= o[max])) throw new FaultPlanError(`${min} ${o[min]} must be >= 0 and <= ${max} ${o[max]}`);
  }
  if (o.kinds.length === 0) throw new FaultPlanError('kinds must name at least one fault kind');
  for (const k of o.kinds) if (!FAULT_KINDS.includes(k)) throw new FaultPlanError(`unknown fault kind ${JSON.stringify(k)}`);
  if (!(o.counts.consensus >= 1)) throw new FaultPlanError('a cluster has at least one consensus replica');

  const rng = mulberry32(opts.seed ^ 0x5eed_fa17);
  const between = (min: number, max: number) => Math.round(min + rng() * (max - min));
  const totalWeight = o.kinds.reduce((s, k) => s + KIND_WEIGHTS[k], 0);
  const drawKind = (i: number): FaultKind => {
    if (o.cycle) return o.kinds[i % o.kinds.length]!;
    let r = rng() * totalWeight;
    for (const k of o.kinds) if ((r -= KIND_WEIGHTS[k]) < 0) return k;
    return o.kinds[o.kinds.length - 1]!;
  };
  const drawProcess = (): FaultTarget => {
    const r = rng();
    const role: FaultRole = r < 0.5 || (o.counts.storage < 1 && o.counts.gateway < 1) ? 'consensus' : (r < 0.8 && o.counts.storage >= 1) || o.counts.gateway < 1 ? 'storage' : 'gateway';
    return { kind: 'process', role, index: Math.floor(rng() * o.counts[role]) };
  };

  const plan: PlannedFault[] = [];
  const lastStartMs = o.durationMs - o.endMarginMs;
  for (let at = o.startMs, i = 0; at <= lastStartMs; i++) {
    const kind = drawKind(i);
    const pause = kind === 'pause' || kind === 'pause-leader';
    // A fault must be over before the run ends: cap its hold at what is left.
    const holdMs = Math.max(0, Math.min(pause ? between(o.pauseMinMs, o.pauseMaxMs) : between(o.downMinMs, o.downMaxMs), o.durationMs - at));
    const fault: PlannedFault = { kind, atMs: at, holdMs, target: { kind: 'leader' } };
    if (kind === 'kill' || kind === 'pause' || kind === 'partition') fault.target = drawProcess();
    else if (kind === 'nats-restart') fault.target = { kind: 'nats' };
    else if (kind === 'wipe') {
      if (o.counts.storage < 1) throw new FaultPlanError('wipe needs a storage node');
      fault.target = { kind: 'process', role: 'storage', index: Math.floor(rng() * o.counts.storage) };
    }
    else if (kind === 'torn-tail' || kind === 'torn-write') {
      fault.target = { kind: 'process', role: 'consensus', index: Math.floor(rng() * o.counts.consensus) };
      fault.tornBytes = between(1, 64);
    }
    plan.push(fault);
    at += holdMs + between(o.gapMinMs, o.gapMaxMs);
  }
  return plan;
}

/** Human-readable target: `leader`, `nats-server`, `consensus#1`. */
export function describeTarget(t: FaultTarget): string {
  return t.kind === 'leader' ? 'leader' : t.kind === 'nats' ? 'nats-server' : `${t.role}#${t.index}`;
}

/**
 * Parses a duration: `600s`, `10m`, `1500ms`, `1h`, or a bare number of seconds.
 * @throws RangeError on anything else or a non-positive value.
 */
export function parseDurationMs(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) throw new RangeError(`bad duration ${JSON.stringify(text)}: use e.g. 600s, 10m, 1500ms`);
  const ms = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  if (!(ms > 0)) throw new RangeError(`duration must be positive, got ${JSON.stringify(text)}`);
  return Math.round(ms);
}
