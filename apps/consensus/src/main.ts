import type { ConsensusConfig } from '@cairn/config';
import type { Logger } from '@cairn/logging';
import { Subjects } from '@cairn/messaging';
import { BufferReclaimer, componentModule, exposedCompactingGc, exposedGc, processWorld, runProcess, withMetricsServer } from '@cairn/nest-runtime';
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
        const reclaimer = bufferReclaimer(replica, config.consensus, log);
        return {
          start: async () => {
            await component.start();
            reclaimer?.start();
          },
          stop: () => {
            reclaimer?.stop();
            return component.stop();
          },
          answerMember: (data: Uint8Array) => replica.answerMember(data),
        };
      },
      [membershipController(new Subjects(args.config.clusterName).member(args.id))],
    ),
  { controlPlane: true },
);

/**
 * Forced collections after a burst of writes (consensus.bufferGarbageBytesMax): V8 keeps the heap
 * and the dead Buffers a burst left (docs/benchmarks.md "Memory after 1,000,000 writes"). Quiet =
 * at most 1 MiB of entries persisted since the previous check. Null when off or without gc().
 */
function bufferReclaimer(replica: Replica, c: ConsensusConfig, log: Logger): BufferReclaimer | null {
  if (c.bufferGarbageBytesMax === 0) return null;
  const gc = exposedGc();
  if (!gc) {
    log.warn('this Node.js runtime gives no gc(): consensus.bufferGarbageBytesMax has no effect');
    return null;
  }
  let seen = 0;
  const persistedSinceLastCheck = (): number => {
    const now = replica.counters.entryBytesPersisted;
    const d = now - seen;
    seen = now;
    return d;
  };
  // Compacts once a quarter of the bound is committed but free: a replica's heap after a burst is small, so the whole bound would rarely be reached.
  return new BufferReclaimer(c.bufferGarbageBytesMax, c.bufferCheckIntervalMs, gc, exposedCompactingGc(), persistedSinceLastCheck, c.bufferGarbageBytesMax / 4);
}
