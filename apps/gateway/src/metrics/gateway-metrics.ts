import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { STATUS_STALE_MS, type ClusterView } from '../cluster/cluster-view';
import type { DoorTraffic } from './door-traffic';
import { DOORS, RequestMetrics, ScrapeTimeCounter, type Door, type MetricValue, type RequestObserver } from './request-metrics';

/** The leader the view names, if its status heartbeat is fresh (not just remembered from a hint). */
export function liveLeaderId(snapshot: ReturnType<ClusterView['snapshot']>): string | null {
  const leader = snapshot.consensus.find((c) => c.id === snapshot.leaderId);
  return leader && leader.ageMs <= STATUS_STALE_MS ? leader.id : null;
}

/**
 * The gateway's one Prometheus registry, shared by every front door (docs/http.md, "Metrics"):
 * request counts and latencies per door (RequestMetrics, fed by each door's RequestObserver), open
 * connections per door (read from each door's counter at scrape time), and the cluster as the
 * gateway sees it (ClusterView status heartbeats, read at scrape time), plus prom-client's default
 * process and Node.js metrics.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests = new RequestMetrics();
  private readonly connectionSources = new Map<Door, () => number>();
  private readonly trafficSources = new Map<Door, DoorTraffic>();
  private pendingBytes: () => number = () => 0;

  constructor(view: ClusterView) {
    // Process and Node.js runtime metrics (RSS, heap, external memory, event-loop lag), as on every Cairn process.
    collectDefaultMetrics({ register: this.registry });
    for (const m of this.requests.promMetrics()) this.registry.registerMetric(m);
    const sources = this.connectionSources;
    new Gauge({
      name: 'cairn_gateway_connections',
      help: 'Open client connections, by front door.',
      labelNames: ['door'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const door of DOORS) {
          const count = sources.get(door);
          if (count) this.set({ door }, count());
        }
      },
    });
    const pendingBytes = () => this.pendingBytes();
    new Gauge({
      name: 'cairn_gateway_pending_bytes',
      help: 'Bytes of pending requests and unflushed replies held for clients of the TLV and RESP doors (bounded by gateway.pendingBytesMax).',
      registers: [this.registry],
      collect() {
        this.set(pendingBytes());
      },
    });
    const traffic = this.trafficSources;
    const perDoor = (read: (t: DoorTraffic) => number) => (): MetricValue[] => [...traffic].map(([door, t]) => ({ value: read(t), labels: { door } }));
    for (const [name, help, read] of [
      ['cairn_gateway_received_bytes_total', 'Bytes received from clients, by front door (TLV, RESP; wire bytes, TLS records included).', (t) => t.receivedBytes()],
      ['cairn_gateway_sent_bytes_total', 'Bytes sent to clients, by front door (TLV, RESP; wire bytes, TLS records included).', (t) => t.sentBytes()],
      ['cairn_gateway_backpressure_pauses_total', 'Times a connection stopped reading because a bound was crossed (inflightPerConnectionMax, connection byte bounds, pendingBytesMax), by front door.', (t) => t.pauses],
    ] as [string, string, (t: DoorTraffic) => number][])
      this.registry.registerMetric(new ScrapeTimeCounter(name, help, perDoor(read)));
    clusterGauges(this.registry, view);
  }

  /** Registers `door`'s byte and pause counters (its DoorListener's traffic; read at each scrape). */
  trackTraffic(door: Door, traffic: DoorTraffic): void {
    this.trafficSources.set(door, traffic);
  }

  /** The hook a door calls once per answered request. */
  observer(door: Door): RequestObserver {
    return this.requests.observer(door);
  }

  /** Registers how to read the bytes held for clients (ByteBudget.used; read at each scrape). */
  trackPendingBytes(used: () => number): void {
    this.pendingBytes = used;
  }

  /** Registers how to count `door`'s open connections (read at each scrape). */
  trackConnections(door: Door, count: () => number): void {
    this.connectionSources.set(door, count);
  }

  /** Prometheus text exposition format (version 0.0.4). */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

type Snapshot = ReturnType<ClusterView['snapshot']>;

/** Gauges computed from a ClusterView snapshot at each scrape; members are those the view has heard from. */
function clusterGauges(registry: Registry, view: ClusterView): void {
  // Each gauge takes its own snapshot: a few members, cheap, and no state shared across collects.
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge, s: Snapshot) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        fill(this, view.snapshot());
      },
    });
  gauge('cairn_leader_known', '1 when the gateway knows a leader whose status heartbeat is fresh, else 0.', [], (g, s) => g.set(liveLeaderId(s) ? 1 : 0));
  gauge('cairn_raft_term', 'Highest Raft term the gateway has seen (the known leader term).', [], (g, s) => g.set(s.term));
  /** One gauge per row, labelled `label` = each member's id. */
  const perMember = <M extends { id: string }>(label: string, members: (s: Snapshot) => M[], rows: [string, string, (m: M) => number][]) => {
    for (const [name, help, field] of rows)
      gauge(name, help, [label], (g, s) => {
        for (const m of members(s)) g.set({ [label]: m.id }, field(m));
      });
  };
  perMember('replica', (s) => s.consensus, [
    ['cairn_raft_commit_index', 'Commit index reported by each consensus replica.', (c) => c.commitIndex],
    ['cairn_raft_last_index', 'Index of the last entry in each replica log.', (c) => c.lastIndex],
    ['cairn_raft_log_bytes', 'Bytes of each replica Raft log on disk.', (c) => c.logBytes],
  ]);
  perMember('node', (s) => s.storage, [
    ['cairn_storage_applied_index', 'Highest index each storage node applied durably.', (n) => n.appliedIndex],
    ['cairn_storage_keys', 'Live keys on each storage node.', (n) => n.keys],
    ['cairn_storage_data_bytes', 'Bytes of each storage node data files.', (n) => n.dataBytes],
  ]);
}
