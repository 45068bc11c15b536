import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ConsensusStatus } from '@cairn/protocol';
import { countedCounter, readGauge } from '@cairn/nest-runtime';

/**
 * Sampling period of the event-loop delay histogram (prom-client's `eventLoopMonitoringPrecision`,
 * the `nodejs_eventloop_lag_{min,max,mean,stddev,p50,p90,p99}_seconds` families), ms. prom-client's
 * default, 10 ms, is a timer that wakes the process 100 times a second: more than everything else
 * an idle replica does (docs/benchmarks.md "Consensus replicas' CPU").
 */
export const EVENT_LOOP_MONITORING_PRECISION_MS = 100;

/** What the metrics read from a replica (Replica implements it; tests pass a fake). */
export interface ReplicaMetricsSource {
  /** Throws while the log is closed for a moment (a leader's snapshot being installed): that scrape leaves the gauges as they were. */
  status(): ConsensusStatus;
  /** Monotonic counts since start (Replica.counters). */
  readonly counters: { compactions: number; snapshotsSent: number; snapshotsInstalled: number; leaseStateSaves: number; leaseStatesAdopted: number };
  /** Entries proposed by this replica as leader since start (Replica.proposedEntries). */
  proposedEntries(): number;
  /** Leader only: last index − match index per other member, entries; null elsewhere (Replica.followerMatchLag). */
  followerMatchLag(): Record<string, number> | null;
}

type Role = 'follower' | 'candidate' | 'leader';
const ROLES: Role[] = ['follower', 'candidate', 'leader'];

/**
 * One consensus replica's Prometheus registry (docs/metrics.md): Raft state read from
 * `status()` at scrape time (term, role, commit/applied/last/first index, log bytes and entries,
 * configuration sizes), counters fed by `onSoftState` (elections started, leader changes seen) and
 * read from `counters` (compactions, snapshots sent and installed), and prom-client's default
 * process and Node.js runtime metrics. Every family is `cairn_consensus_*` except the defaults.
 */
export class ReplicaMetrics {
  readonly registry = new Registry();
  private readonly elections: Counter;
  private readonly leaderChanges: Counter;
  private readonly persistSeconds: Histogram;
  /** Term of the last campaign counted. */
  private campaignTerm = 0;
  private leaderId: string | null = null;

  constructor(private readonly source: ReplicaMetricsSource) {
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_MONITORING_PRECISION_MS });
    const registers = [this.registry];
    this.elections = new Counter({ name: 'cairn_consensus_elections_total', help: 'Elections this replica started (a new term as candidate or leader; Raft §5.2).', registers });
    this.leaderChanges = new Counter({ name: 'cairn_consensus_leader_changes_total', help: 'Changes of the leader this replica knows (including to none).', registers });
    this.persistSeconds = new Histogram({
      name: 'cairn_consensus_log_persist_duration_seconds',
      help: 'Time to make a Ready with entries durable: append to the Raft log and its group-committed fdatasync (ms resolution).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    const read = (): ConsensusStatus | null => {
      try {
        return this.source.status();
      } catch {
        return null; // the log is being swapped for a snapshot: keep the last values this scrape
      }
    };
    const gauge = (name: string, help: string, value: (s: ConsensusStatus) => number | undefined) =>
      readGauge(registers, name, help, () => {
        const s = read();
        return s ? value(s) : undefined;
      });
    gauge('cairn_consensus_term', 'Current Raft term.', (s) => s.term);
    gauge('cairn_consensus_commit_index', 'Highest log index known committed.', (s) => s.commitIndex);
    gauge('cairn_consensus_applied_index', 'Highest committed index handed on (proposals answered, entries shipped).', (s) => s.appliedIndex);
    gauge('cairn_consensus_last_index', 'Index of the last entry in the log.', (s) => s.lastIndex);
    gauge('cairn_consensus_first_index', 'Index of the first entry still in the log (after compaction).', (s) => s.firstIndex);
    gauge('cairn_consensus_log_entries', 'Entries in the log (last index - first index + 1).', (s) => (s.firstIndex === undefined ? undefined : Math.max(0, s.lastIndex - s.firstIndex + 1)));
    gauge('cairn_consensus_log_bytes', 'Bytes of the Raft log segments on disk.', (s) => s.logBytes);
    gauge('cairn_consensus_leader_known', '1 when this replica knows a leader, else 0.', (s) => (s.leaderId ? 1 : 0));
    new Gauge({
      name: 'cairn_consensus_role',
      help: '1 for the role this replica has now (follower, candidate, leader), 0 for the others.',
      labelNames: ['role'],
      registers,
      collect() {
        const s = read();
        if (s) for (const r of ROLES) this.set({ role: r }, s.role === r ? 1 : 0);
      },
    });
    new Gauge({
      name: 'cairn_consensus_members',
      help: 'Members of the configuration in effect on this replica, by kind (voter, learner, storage).',
      labelNames: ['kind'],
      registers,
      collect() {
        const conf = read()?.conf;
        if (!conf) return;
        this.set({ kind: 'voter' }, conf.voters.length);
        this.set({ kind: 'learner' }, conf.learners.length);
        this.set({ kind: 'storage' }, conf.storage.length);
      },
    });
    const replica = this.source;
    followerLagGauge(registers, replica);
    countedCounter(registers, 'cairn_consensus_proposals_total', 'Log entries this replica proposed (appended) as leader for client proposals.', () => replica.proposedEntries());
    const c = this.source.counters;
    countedCounter(registers, 'cairn_consensus_compactions_total', 'Log compactions (Raft §7): a prefix dropped after a snapshot of the state machine.', () => c.compactions);
    countedCounter(registers, 'cairn_consensus_snapshots_sent_total', 'InstallSnapshot messages sent to followers behind the log (Raft §7).', () => c.snapshotsSent);
    countedCounter(registers, 'cairn_consensus_snapshots_installed_total', "Leader snapshots this replica installed in place of its log (Raft §7).", () => c.snapshotsInstalled);
    countedCounter(registers, 'cairn_consensus_lease_state_saves_total', 'Lease-state file saves completed (in the background, before a compaction passes the last one; docs/leases.md).', () => c.leaseStateSaves);
    countedCounter(registers, 'cairn_consensus_lease_states_adopted_total', "Peers' lease tables fetched and adopted after a snapshot install, closing the lease gap (docs/leases.md \"Snapshot install\").", () => c.leaseStatesAdopted);
  }

  /** Pass as `ReplicaOptions.onSoftState`: counts elections started (once per term campaigned in) and leader changes. */
  onSoftState(ss: { role: Role; leaderId: string | null; term: number }): void {
    // A campaign is seen as a candidate or, when it was won within one Ready, only as a leader of a new term.
    if (ss.role !== 'follower' && ss.term > this.campaignTerm) {
      this.elections.inc();
      this.campaignTerm = ss.term;
    }
    if (ss.leaderId !== this.leaderId) this.leaderChanges.inc();
    this.leaderId = ss.leaderId;
  }

  /** Pass as `ReplicaOptions.onPersisted`: observes the durations of Readies that appended entries (the others need no fsync of the log). */
  onPersisted(durationMs: number, entries: number): void {
    if (entries > 0) this.persistSeconds.observe(durationMs / 1000);
  }

  /**
   * `/readyz` (docs/metrics.md): ready when this replica knows a leader and has handed on every
   * entry it knows committed. Returns null when ready, else the reason.
   */
  notReadyReason(): string | null {
    let s: ConsensusStatus;
    try {
      s = this.source.status();
    } catch {
      return 'installing a snapshot';
    }
    if (!s.leaderId) return `no leader known in term ${s.term}`;
    if (s.appliedIndex < s.commitIndex) return `applied index ${s.appliedIndex} behind commit index ${s.commitIndex}`;
    return null;
  }
}

/** `cairn_consensus_follower_match_lag_entries{follower}`, read from the replica at each scrape (only the leader has samples). */
function followerLagGauge(registers: Registry[], replica: ReplicaMetricsSource): void {
  new Gauge({
    name: 'cairn_consensus_follower_match_lag_entries',
    help: "Leader only: the leader's last log index minus each follower's match index (Raft §5.3), entries, by follower (voters and learners).",
    labelNames: ['follower'],
    registers,
    collect() {
      this.reset();
      let lag: Record<string, number> | null = null;
      try {
        lag = replica.followerMatchLag();
      } catch {
        return; // the log is being swapped for a snapshot: no leader progress to show
      }
      for (const [follower, n] of Object.entries(lag ?? {})) this.set({ follower }, n);
    },
  });
}
