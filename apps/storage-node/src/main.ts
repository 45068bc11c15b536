import { componentModule, processWorld, runProcess, withMetricsServer } from '@cairn/nest-runtime';
import { NodeMetrics } from './metrics/node-metrics';
import { StorageNode } from './node/storage-node';

void runProcess('storage', (args) =>
  componentModule('storage', args, (deps) => {
    const { config, id, log } = deps;
    const node = new StorageNode({ id, replicaIds: config.consensus.replicas.map((r) => r.id), config: config.storage, ...processWorld(deps) });
    const metrics = new NodeMetrics(node);
    const port = config.storage.nodes.find((n) => n.id === id)?.metricsPort ?? config.storage.metricsPort;
    return withMetricsServer(node, port, metrics.registry, () => metrics.notReadyReason(), log);
  }),
);
