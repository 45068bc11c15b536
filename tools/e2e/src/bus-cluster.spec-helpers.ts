import { CairnPool } from '@cairn/client';
import type { LocalCluster } from '@cairn/cluster';
import { startBusCluster, startTwoGatewayCluster, type BusCluster, type TestConfigOverrides } from './fixtures';

/**
 * The suite's BusCluster (config `overrides` as writeTestConfig's): started in `beforeAll`, stopped in `afterAll` (call at the top of a
 * `describe`, before the suite's own hooks that use it). Its fields are read inside tests; before the start they throw.
 * `beforeStop`: the suite's own clean-up (clients to close), run in that `afterAll` before the cluster stops, also after a failed start.
 */
export function useBusCluster(name: string, overrides: TestConfigOverrides = {}, o: { beforeStop?: () => unknown } = {}): BusCluster {
  let started: BusCluster | undefined;
  beforeAll(async () => {
    started = await startBusCluster(name, overrides);
  });
  afterAll(async () => {
    await o.beforeStop?.();
    await started?.stop();
  });
  const get = (): BusCluster => {
    if (!started) throw new Error(`BusCluster ${name} is not started (read it inside a test)`);
    return started;
  };
  return {
    get cfg() {
      return get().cfg;
    },
    get cluster() {
      return get().cluster;
    },
    get nc() {
      return get().nc;
    },
    get subjects() {
      return get().subjects;
    },
    readAt: (node, key, minIndex) => get().readAt(node, key, minIndex),
    stop: () => get().stop(),
  };
}

/**
 * The suite's startTwoGatewayCluster (3 replicas, the storage nodes `storageIds`, gateways g1 and g2), started in
 * `beforeAll` and stopped in `afterAll`; `ports[i]` is g(i+1)'s TLV door. Read its fields inside tests.
 */
export function useTwoGatewayCluster(clusterName: string, storageIds: string[]): { readonly cluster: LocalCluster; readonly ports: number[] } {
  let started: { cluster: LocalCluster; ports: number[] } | undefined;
  beforeAll(async () => {
    started = await startTwoGatewayCluster(clusterName, storageIds);
  });
  afterAll(() => started?.cluster.stop());
  const get = () => {
    if (!started) throw new Error(`cluster ${clusterName} is not started (read it inside a test)`);
    return started;
  };
  return {
    get cluster() {
      return get().cluster;
    },
    get ports() {
      return get().ports;
    },
  };
}

/**
 * A CairnPool over the TLV doors `ports` (127.0.0.1) that keeps retrying an operation until it is
 * acknowledged through the faults of twoFaultSchedule: 60 s a request, 12 s an attempt, up to 1,000
 * attempts with backoff from 20 to 500 ms, and a retry budget that never runs out.
 */
export function faultRetryingPool(ports: number[]): Promise<CairnPool> {
  return CairnPool.connect({
    gateways: ports.map((port) => ({ host: '127.0.0.1', port })),
    requestTimeoutMs: 60_000,
    attemptTimeoutMs: 12_000,
    attemptsMax: 1000,
    retryBudgetTokensMax: 1_000_000,
    backoffBaseMs: 20,
    backoffMaxMs: 500,
  });
}
