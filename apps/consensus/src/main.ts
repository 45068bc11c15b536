import { Subjects } from '@cairn/messaging';
import { componentModule, processWorld, runProcess, withMetricsServer } from '@cairn/nest-runtime';
import { membershipController } from './control/membership.controller';
import { ReplicaMetrics } from './metrics/replica-metrics';
import { Replica } from './replica/replica';

// Membership requests are served on Nest's NATS transport (the control plane: docs/architecture.md
// "Control plane and hot paths"); Raft messages, proposals, ReadIndex and fetch stay on the raw bus.
void runProcess(
  'consensus',
  (args) =>
    componentModule(
      'consensus',
      args,
      (deps) => {
        const { config, id, log } = deps;
        let metrics: ReplicaMetrics | null = null;
        const replica = new Replica({
          id,
          voters: config.consensus.replicas.map((r) => r.id),
          storage: config.storage.nodes.map((n) => n.id),
          config: config.consensus,
          ...processWorld(deps),
          memberRequests: 'external',
          onSoftState: (ss) => metrics?.onSoftState(ss),
          onPersisted: (ms, entries) => metrics?.onPersisted(ms, entries),
        });
        metrics = new ReplicaMetrics(replica);
        const port = config.consensus.replicas.find((r) => r.id === id)?.metricsPort ?? config.consensus.metricsPort;
        // COMPONENT is what the membership controller calls (MemberAnswerer).
        const component = withMetricsServer(replica, port, metrics.registry, () => metrics.notReadyReason(), log);
        return { start: () => component.start(), stop: () => component.stop(), answerMember: (data: Uint8Array) => replica.answerMember(data) };
      },
      [membershipController(new Subjects(args.config.clusterName).member(args.id))],
    ),
  { controlPlane: true },
);
