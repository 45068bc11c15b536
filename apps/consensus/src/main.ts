import { join } from 'node:path';
import { assertPayloadBounds, natsTransport, serverMaxPayloadBytes } from '@cairn/messaging';
import { componentModule, runProcess, withMetricsServer } from '@cairn/nest-runtime';
import { exitProcessOnFatal, realWorld } from '@cairn/world';
import { ReplicaMetrics } from './metrics/replica-metrics';
import { Replica } from './replica/replica';

void runProcess('consensus', (args) =>
  componentModule('consensus', args, ({ config, id, nc, subjects, log }) => {
    assertPayloadBounds(config, serverMaxPayloadBytes(nc));
    let metrics: ReplicaMetrics | null = null;
    const replica = new Replica({
      id,
      voters: config.consensus.replicas.map((r) => r.id),
      storage: config.storage.nodes.map((n) => n.id),
      config: config.consensus,
      dataDir: join(config.dataDir, id),
      bus: natsTransport(nc),
      world: realWorld,
      subjects,
      log,
      onFatal: exitProcessOnFatal,
      onSoftState: (ss) => metrics?.onSoftState(ss),
      onPersisted: (ms, entries) => metrics?.onPersisted(ms, entries),
    });
    metrics = new ReplicaMetrics(replica);
    const port = config.consensus.replicas.find((r) => r.id === id)?.metricsPort ?? config.consensus.metricsPort;
    return withMetricsServer(replica, port, metrics.registry, () => metrics.notReadyReason(), log);
  }),
);
