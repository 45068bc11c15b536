import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseClusterConfig } from '@cairn/config';
import { CommandOp, Status, decodeProposeReply, encodeProposeRequest } from '@cairn/protocol';
import { Subjects, connectNats, natsTransport } from '@cairn/messaging';
import { createLogger } from '@cairn/logging';
import { startNatsServer, type NatsServerHandle } from '@cairn/messaging/testing';
import { MetricsServer, httpGet as get, parsePrometheusText, scrapeMetrics } from '@cairn/nest-runtime';
import { realWorld } from '@cairn/world';
import type { NatsConnection } from 'nats';
import { Replica } from '../replica/replica';
import { ReplicaMetrics } from './replica-metrics';


describe('ReplicaMetrics over HTTP (a real single-voter replica on a real nats-server)', () => {
  let dir: string;
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let replica: Replica;
  let server: MetricsServer;
  let port: number;
  let leader: Promise<void>;

  beforeAll(async () => {
    dir = mkdtempSync(tmpdir() + '/cairn-');
    nats = await startNatsServer({ dir: `${dir}/nats` });
    nc = await connectNats({ servers: [nats.url] } as never);
    const config = parseClusterConfig({
      clusterName: 'm',
      dataDir: dir,
      nats: { servers: [nats.url] },
      consensus: { replicas: [{ id: 'r1' }] },
      storage: { nodes: [{ id: 's1' }] },
      gateway: { gateways: [{ id: 'g1', port: 1 }] },
    });
    let metrics: ReplicaMetrics | null = null;
    let becameLeader!: () => void;
    leader = new Promise((resolve) => (becameLeader = resolve));
    replica = new Replica({
      id: 'r1',
      voters: ['r1'],
      storage: ['s1'],
      config: config.consensus,
      dataDir: `${dir}/r1`,
      bus: natsTransport(nc),
      world: realWorld,
      subjects: new Subjects('m'),
      log: createLogger('test', 'silent'),
      onFatal: (e) => {
        throw e;
      },
      onSoftState: (ss) => {
        metrics?.onSoftState(ss);
        if (ss.role === 'leader') becameLeader();
      },
      onPersisted: (ms, entries) => metrics?.onPersisted(ms, entries),
    });
    metrics = new ReplicaMetrics(replica);
    const m = metrics;
    server = new MetricsServer({ registry: m.registry, ready: () => m.notReadyReason(), host: '127.0.0.1', port: 0 });
    await replica.start();
    port = await server.listen();
  });

  afterAll(async () => {
    await server?.close();
    await replica?.stop();
    await nc?.close();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves /metrics in Prometheus text format with the Raft, process and Node.js families', async () => {
    await leader;
    const res = await get(port, '/metrics');
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const s = parsePrometheusText(res.body);
    expect(s.get('cairn_consensus_role{role="leader"}')).toBe(1);
    expect(s.get('cairn_consensus_role{role="follower"}')).toBe(0);
    expect(s.get('cairn_consensus_term{}')).toBeGreaterThanOrEqual(1);
    expect(s.get('cairn_consensus_elections_total{}')).toBeGreaterThanOrEqual(1);
    expect(s.get('cairn_consensus_leader_changes_total{}')).toBeGreaterThanOrEqual(1);
    expect(s.get('cairn_consensus_leader_known{}')).toBe(1);
    // A new leader appends an empty entry of its term (Raft §8): the log is not empty.
    expect(s.get('cairn_consensus_last_index{}')).toBeGreaterThanOrEqual(1);
    expect(s.get('cairn_consensus_log_bytes{}')).toBeGreaterThan(0);
    expect(s.get('cairn_consensus_members{kind="voter"}')).toBe(1);
    expect(s.get('cairn_consensus_compactions_total{}')).toBe(0);
    expect(s.get('cairn_consensus_snapshots_sent_total{}')).toBe(0);
    expect(s.has('cairn_consensus_commit_index{}')).toBe(true);
    expect(s.has('cairn_consensus_applied_index{}')).toBe(true);
    // The leader's empty entry was appended and fsynced: one observation at least.
    expect(s.get('cairn_consensus_log_persist_duration_seconds_count{}')).toBeGreaterThanOrEqual(1);
    expect(s.get('cairn_consensus_log_persist_duration_seconds_bucket{le="+Inf"}')).toBe(s.get('cairn_consensus_log_persist_duration_seconds_count{}'));
    expect(s.get('process_resident_memory_bytes{}')).toBeGreaterThan(0);
    expect(s.has('nodejs_heap_size_used_bytes{}')).toBe(true);
    expect(s.has('nodejs_eventloop_lag_seconds{}')).toBe(true);
  });

  it('counts entries proposed as leader; a leader without followers has no match lag samples', async () => {
    await leader;
    const before = (await scrapeMetrics(port)).get('cairn_consensus_proposals_total{}');
    expect(before).toBe(0);
    const commands = ['a', 'b'].map((k) => ({ op: CommandOp.Set, key: Buffer.from(k), value: Buffer.from('v') }));
    const reply = decodeProposeReply((await nc.request(new Subjects('m').propose('r1'), encodeProposeRequest({ commands }), { timeout: 5000 })).data);
    expect(reply.status).toBe(Status.Ok);
    const s = await scrapeMetrics(port);
    expect(s.get('cairn_consensus_proposals_total{}')).toBe(2);
    expect(replica.followerMatchLag()).toEqual({});
    expect([...s.keys()].some((k) => k.startsWith('cairn_consensus_follower_match_lag_entries'))).toBe(false);
  });

  it('answers /healthz, /readyz once caught up with a leader, 404 elsewhere', async () => {
    await leader;
    expect((await get(port, '/healthz')).status).toBe(200);
    // Ready needs applied >= commit: the leader's own entry commits in a Ready of its own.
    let ready = await get(port, '/readyz');
    while (ready.status !== 200) {
      expect(ready.body).toMatch(/^not ready: /);
      await new Promise((r) => replica.busy()?.then(r) ?? setImmediate(r));
      ready = await get(port, '/readyz');
    }
    expect(ready.body).toBe('ready\n');
    expect((await get(port, '/nope')).status).toBe(404);
  });
});

describe('ReplicaMetrics with a fake replica', () => {
  const base = { kind: 'consensus' as const, id: 'r1', role: 'follower' as const, term: 3, leaderId: null as string | null, commitIndex: 10, lastIndex: 12, appliedIndex: 9, logBytes: 100, firstIndex: 5, atMs: 0 };

  it('is not ready without a leader nor while behind the commit index, ready otherwise', () => {
    const status = { ...base };
    const m = new ReplicaMetrics({ status: () => status, counters: { compactions: 0, snapshotsSent: 0, snapshotsInstalled: 0, leaseStateSaves: 0, leaseStatesAdopted: 0 }, proposedEntries: () => 0, followerMatchLag: () => null });
    expect(m.notReadyReason()).toBe('no leader known in term 3');
    status.leaderId = 'r2';
    expect(m.notReadyReason()).toBe('applied index 9 behind commit index 10');
    status.appliedIndex = 10;
    expect(m.notReadyReason()).toBeNull();
  });

  it('mirrors the replica counters and keeps the last values while the log is swapped', async () => {
    const counters = { compactions: 2, snapshotsSent: 0, snapshotsInstalled: 1, leaseStateSaves: 3, leaseStatesAdopted: 1 };
    let swapping = false;
    const m = new ReplicaMetrics({
      status: () => {
        if (swapping) throw new Error('log closed');
        return base;
      },
      counters,
      proposedEntries: () => 0,
      followerMatchLag: () => null,
    });
    let s = parsePrometheusText(await m.registry.metrics());
    expect(s.get('cairn_consensus_compactions_total{}')).toBe(2);
    expect(s.get('cairn_consensus_log_entries{}')).toBe(8);
    counters.compactions = 5;
    swapping = true;
    s = parsePrometheusText(await m.registry.metrics());
    expect(s.get('cairn_consensus_compactions_total{}')).toBe(5);
    expect(s.get('cairn_consensus_snapshots_installed_total{}')).toBe(1);
    expect(s.get('cairn_consensus_lease_state_saves_total{}')).toBe(3);
    expect(s.get('cairn_consensus_lease_states_adopted_total{}')).toBe(1);
    expect(s.get('cairn_consensus_commit_index{}')).toBe(10);
    expect(m.notReadyReason()).toBe('installing a snapshot');
    m.onSoftState({ role: 'candidate', leaderId: null, term: 4 });
    m.onSoftState({ role: 'leader', leaderId: 'r1', term: 4 });
    s = parsePrometheusText(await m.registry.metrics());
    expect(s.get('cairn_consensus_elections_total{}')).toBe(1);
    expect(s.get('cairn_consensus_leader_changes_total{}')).toBe(1);
  });

  it('exports the leader view of each follower match lag, and none once it is not the leader', async () => {
    let lag: Record<string, number> | null = { r2: 0, r3: 40 };
    let proposed = 7;
    const m = new ReplicaMetrics({ status: () => base, counters: { compactions: 0, snapshotsSent: 0, snapshotsInstalled: 0, leaseStateSaves: 0, leaseStatesAdopted: 0 }, proposedEntries: () => proposed, followerMatchLag: () => lag });
    let s = parsePrometheusText(await m.registry.metrics());
    expect(s.get('cairn_consensus_follower_match_lag_entries{follower="r2"}')).toBe(0);
    expect(s.get('cairn_consensus_follower_match_lag_entries{follower="r3"}')).toBe(40);
    expect(s.get('cairn_consensus_proposals_total{}')).toBe(7);
    lag = null;
    proposed = 9;
    s = parsePrometheusText(await m.registry.metrics());
    expect([...s.keys()].some((k) => k.startsWith('cairn_consensus_follower_match_lag_entries'))).toBe(false);
    expect(s.get('cairn_consensus_proposals_total{}')).toBe(9);
  });
});
