import { Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EngineStats } from '@cairn/engine';
import type { StorageStatus } from '@cairn/protocol';
import { countedCounter, readGauge } from '@cairn/nest-runtime';

/** A node this close to the commit index it heard counts as caught up (entries; applying under load always trails a little). */
export const READY_APPLY_LAG_ENTRIES_MAX = 1024;

/** What the metrics read from a storage node (StorageNode implements it; tests pass a fake). */
export interface NodeMetricsSource {
  status(): StorageStatus;
  /** Engine figures (null while a snapshot install swaps the stores), snapshot transfers served now, peer snapshots installed since start. */
  metrics(): { engine: EngineStats | null; transfersServing: number; snapshotsInstalled: number };
}

/**
 * One storage node's Prometheus registry (docs/metrics.md): applied index and the commit index
 * it heard, engine figures (keys, data/live/dead/hint bytes, files, merges, snapshots) read at
 * scrape time, snapshot transfers served and installed, and prom-client's default process and
 * Node.js runtime metrics. Every family is `cairn_storage_node_*` except the defaults.
 */
export class NodeMetrics {
  readonly registry = new Registry();
  private readonly readWaitSeconds: Histogram;

  constructor(private readonly source: NodeMetricsSource) {
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.readWaitSeconds = new Histogram({
      name: 'cairn_storage_node_read_wait_seconds',
      help: 'Time a read (or range page, or outcome query) waited for the applied index to reach its minIndex, seconds; only reads that had to wait (ms resolution; bounded by readWaitMs).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    const gauge = <T>(read: () => T | null, name: string, help: string, value: (s: T) => number) =>
      readGauge(registers, name, help, () => {
        const s = read();
        return s === null ? undefined : value(s);
      });
    const status = () => this.source.status();
    gauge(status, 'cairn_storage_node_applied_index', 'Highest log index applied durably to the engine.', (s) => s.appliedIndex);
    gauge(status, 'cairn_storage_node_known_commit_index', 'Highest commit index this node heard from the leader (ship batches, commit heartbeats).', (s) => s.knownCommitIndex);
    gauge(status, 'cairn_storage_node_apply_lag_entries', 'Known commit index minus applied index.', (s) => Math.max(0, s.knownCommitIndex - s.appliedIndex));
    const engine = () => this.source.metrics().engine;
    gauge(engine, 'cairn_storage_node_keys', 'Live keys in the keydir.', (e) => e.keys);
    gauge(engine, 'cairn_storage_node_data_bytes', 'Bytes of the data files on disk (merged and log files).', (e) => e.dataBytes);
    gauge(engine, 'cairn_storage_node_live_bytes', 'Record bytes the keydir points to.', (e) => e.liveBytes);
    gauge(engine, 'cairn_storage_node_dead_bytes', 'Record bytes no key points to (what merges reclaim).', (e) => e.deadBytes);
    gauge(engine, 'cairn_storage_node_dead_bytes_ratio', 'Dead bytes / (live + dead bytes); 0 when empty.', (e) => (e.liveBytes + e.deadBytes > 0 ? e.deadBytes / (e.liveBytes + e.deadBytes) : 0));
    gauge(engine, 'cairn_storage_node_hint_bytes', 'Bytes of the hint files.', (e) => e.hintBytes);
    gauge(engine, 'cairn_storage_node_data_files', 'Data files (merged + log files, the active one included).', (e) => e.files);
    gauge(engine, 'cairn_storage_node_hint_files', 'Hint files: merged files (one each) + sealed log files with a log hint file.', (e) => e.mergedFiles + e.logHintFiles);
    gauge(engine, 'cairn_storage_node_merging', '1 while a merge runs, else 0.', (e) => (e.merging ? 1 : 0));
    gauge(engine, 'cairn_storage_node_snapshots', 'Committed engine snapshots on disk.', (e) => e.snapshots);
    const figures = () => this.source.metrics();
    gauge(figures, 'cairn_storage_node_snapshot_transfers_serving', 'Snapshot transfers this node serves to bootstrapping peers now.', (f) => f.transfersServing);
    // The engine's merge count restarts at 0 when a snapshot install reopens it: count increases only.
    countedCounter(registers, 'cairn_storage_node_merges_total', 'Bitcask merges completed by the engine open now.', () => this.source.metrics().engine?.merges ?? null);
    countedCounter(registers, 'cairn_storage_node_snapshots_installed_total', 'Peer snapshots this node installed to bootstrap (the Raft log was compacted past it).', () => this.source.metrics().snapshotsInstalled);
  }

  /** Pass as `StorageNodeOptions.onReadWait`: one read that waited `waitedMs` for the applied index. */
  observeReadWait(waitedMs: number): void {
    this.readWaitSeconds.observe(waitedMs / 1000);
  }

  /**
   * `/readyz` (docs/metrics.md): ready when the stores are open and the node has applied up to the
   * commit index it heard (within READY_APPLY_LAG_ENTRIES_MAX). Returns null when ready, else the reason.
   */
  notReadyReason(): string | null {
    if (!this.source.metrics().engine) return 'stores closed (installing a snapshot or stopping)';
    const s = this.source.status();
    if (s.knownCommitIndex - s.appliedIndex > READY_APPLY_LAG_ENTRIES_MAX) return `applied index ${s.appliedIndex} behind the commit index heard ${s.knownCommitIndex}`;
    return null;
  }
}
