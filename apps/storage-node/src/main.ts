import { componentModule, processWorld, runProcess, withMetricsServer } from '@cairn/nest-runtime';
import { NodeMetrics } from './metrics/node-metrics';
import { StorageNode } from './node/storage-node';

void runProcess('storage', (args) =>
  componentModule('storage', args, (deps) => {
    const { config, id, log } = deps;
    let metrics: NodeMetrics | null = null;
    const node = new StorageNode({ id, replicaIds: config.consensus.replicas.map((r) => r.id), config: config.storage, ...processWorld(deps), onReadWait: (ms) => metrics?.observeReadWait(ms) });
    const m = new NodeMetrics(node);
    metrics = m;
    const port = config.storage.nodes.find((n) => n.id === id)?.metricsPort ?? config.storage.metricsPort;
    return withMetricsServer(node, port, m.registry, () => m.notReadyReason(), log);
  }),
);
