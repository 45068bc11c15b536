import { join } from 'node:path';
import { assertPayloadBounds, natsTransport, serverMaxPayloadBytes } from '@cairn/messaging';
import { componentModule, runProcess, withMetricsServer } from '@cairn/nest-runtime';
import { exitProcessOnFatal, realWorld } from '@cairn/world';
import { NodeMetrics } from './metrics/node-metrics';
import { StorageNode } from './node/storage-node';

void runProcess('storage', (args) =>
  componentModule('storage', args, ({ config, id, nc, subjects, log }) => {
    assertPayloadBounds(config, serverMaxPayloadBytes(nc));
    const node = new StorageNode({
      id,
      replicaIds: config.consensus.replicas.map((r) => r.id),
      config: config.storage,
      dataDir: join(config.dataDir, id),
      bus: natsTransport(nc),
      world: realWorld,
      subjects,
      log,
      onFatal: exitProcessOnFatal,
    });
    const metrics = new NodeMetrics(node);
    const port = config.storage.nodes.find((n) => n.id === id)?.metricsPort ?? config.storage.metricsPort;
    return withMetricsServer(node, port, metrics.registry, () => metrics.notReadyReason(), log);
  }),
);
