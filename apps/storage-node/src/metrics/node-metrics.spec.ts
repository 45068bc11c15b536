import type { EngineStats } from '@cairn/engine';
import { MetricsServer, httpGet as get, parsePrometheusText, scrapeMetrics } from '@cairn/nest-runtime';
import { NodeMetrics, READY_APPLY_LAG_ENTRIES_MAX } from './node-metrics';


describe('NodeMetrics served over HTTP', () => {
  const engine = { keys: 3, liveBytes: 300, dataBytes: 1000, deadBytes: 100, hintBytes: 50, files: 4, mergedFiles: 1, logHintFiles: 2, merging: false, merges: 2, snapshots: 1 } as EngineStats;
  const figures = { engine: engine as EngineStats | null, transfersServing: 1, snapshotsInstalled: 0 };
  const status = { kind: 'storage' as const, id: 's1', appliedIndex: 40, knownCommitIndex: 42, keys: 3, dataBytes: 1000, atMs: 0 };
  const metrics = new NodeMetrics({ status: () => status, metrics: () => figures });
  const server = new MetricsServer({ registry: metrics.registry, ready: () => metrics.notReadyReason(), host: '127.0.0.1', port: 0 });
  let port: number;
  beforeAll(async () => {
    port = await server.listen();
  });
  afterAll(() => server.close());

  it('scrapes the storage, process and Node.js families in Prometheus text format', async () => {
    const res = await get(port, '/metrics');
    expect(res.status).toBe(200);
    const s = parsePrometheusText(res.body);
    expect(s.get('cairn_storage_node_applied_index{}')).toBe(40);
    expect(s.get('cairn_storage_node_apply_lag_entries{}')).toBe(2);
    expect(s.get('cairn_storage_node_keys{}')).toBe(3);
    expect(s.get('cairn_storage_node_data_bytes{}')).toBe(1000);
    expect(s.get('cairn_storage_node_dead_bytes_ratio{}')).toBe(0.25);
    expect(s.get('cairn_storage_node_hint_files{}')).toBe(3);
    expect(s.get('cairn_storage_node_merges_total{}')).toBe(2);
    expect(s.get('cairn_storage_node_snapshot_transfers_serving{}')).toBe(1);
    expect(s.get('process_resident_memory_bytes{}')).toBeGreaterThan(0);
    expect(s.has('nodejs_heap_size_used_bytes{}')).toBe(true);
  });

  it('observes read waits in the read wait histogram, seconds', async () => {
    let s = await scrapeMetrics(port);
    expect(s.get('cairn_storage_node_read_wait_seconds_count{}')).toBe(0);
    metrics.observeReadWait(30);
    metrics.observeReadWait(2);
    s = await scrapeMetrics(port);
    expect(s.get('cairn_storage_node_read_wait_seconds_count{}')).toBe(2);
    expect(s.get('cairn_storage_node_read_wait_seconds_sum{}')).toBeCloseTo(0.032);
    expect(s.get('cairn_storage_node_read_wait_seconds_bucket{le="0.0025"}')).toBe(1);
    expect(s.get('cairn_storage_node_read_wait_seconds_bucket{le="0.05"}')).toBe(2);
  });

  it('counts merges across an engine reopen and installed snapshots; readiness follows apply lag and open stores', async () => {
    expect((await get(port, '/readyz')).status).toBe(200);
    status.knownCommitIndex = status.appliedIndex + READY_APPLY_LAG_ENTRIES_MAX + 1;
    const lagging = await get(port, '/readyz');
    expect(lagging.status).toBe(503);
    expect(lagging.body).toMatch(/behind the commit index heard/);
    figures.engine = null; // a snapshot install swaps the stores
    figures.snapshotsInstalled = 1;
    expect((await get(port, '/readyz')).body).toMatch(/stores closed/);
    expect((await get(port, '/healthz')).status).toBe(200);
    expect((await scrapeMetrics(port)).get('cairn_storage_node_merges_total{}')).toBe(2);
    figures.engine = { ...engine, merges: 1 }; // the reopened engine counts from 0 again
    const s = await scrapeMetrics(port);
    expect(s.get('cairn_storage_node_merges_total{}')).toBe(3);
    expect(s.get('cairn_storage_node_snapshots_installed_total{}')).toBe(1);
  });
});
