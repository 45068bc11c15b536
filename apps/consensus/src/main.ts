import { componentModule, processWorld, runProcess, withMetricsServer } from '@cairn/nest-runtime';
import { ReplicaMetrics } from './metrics/replica-metrics';
import { Replica } from './replica/replica';

void runProcess('consensus', (args) =>
  componentModule('consensus', args, (deps) => {
    const { config, id, log } = deps;
    let metrics: ReplicaMetrics | null = null;
    const replica = new Replica({
      id,
      voters: config.consensus.replicas.map((r) => r.id),
      storage: config.storage.nodes.map((n) => n.id),
      config: config.consensus,
      ...processWorld(deps),
      onSoftState: (ss) => metrics?.onSoftState(ss),
      onPersisted: (ms, entries) => metrics?.onPersisted(ms, entries),
    });
    metrics = new ReplicaMetrics(replica);
    const port = config.consensus.replicas.find((r) => r.id === id)?.metricsPort ?? config.consensus.metricsPort;
    return withMetricsServer(replica, port, metrics.registry, () => metrics.notReadyReason(), log);
  }),
);
