import { CairnPool } from '@cairn/client';
import type { LocalCluster } from '@cairn/cluster';
import { startBusCluster, startTwoGatewayCluster, type BusCluster, type TestConfigOverrides } from './fixtures';

/**
 * What `start` returns, started in `beforeAll` and stopped in `afterAll` (call at the top of a `describe`, before the
 * suite's own hooks that use it): an object whose `fields` read the started one's, so they are read inside tests;
 * before the start they throw. `beforeStop`: the suite's own clean-up, run in that `afterAll` first.
 */
function useStarted<T extends object, K extends keyof T>(what: string, start: () => Promise<T>, stop: (t: T) => unknown, fields: readonly K[], beforeStop?: () => unknown): Pick<T, K> {
  let started: T | undefined;
  beforeAll(async () => {
    started = await start();
  });
  afterAll(async () => {
    await beforeStop?.();
    if (started) await stop(started);
  });
  const view = {} as Pick<T, K>;
  for (const k of fields) {
    Object.defineProperty(view, k, {
      enumerable: true,
      get: () => {
        if (!started) throw new Error(`${what} is not started (read it inside a test)`);
        return started[k];
      },
    });
  }
  return view;
}

/**
 * The suite's BusCluster (config `overrides` as writeTestConfig's), as useStarted says. `beforeStop`: the suite's own
 * clean-up (clients to close), run before the cluster stops, also after a failed start.
 */
export function useBusCluster(name: string, overrides: TestConfigOverrides = {}, o: { beforeStop?: () => unknown } = {}): BusCluster {
  return useStarted(`BusCluster ${name}`, () => startBusCluster(name, overrides), (b) => b.stop(), ['cfg', 'cluster', 'nc', 'subjects', 'readAt', 'stop'], o.beforeStop);
}

/**
 * The suite's startTwoGatewayCluster (3 replicas, the storage nodes `storageIds`, gateways g1 and g2), as useStarted
 * says; `ports[i]` is g(i+1)'s TLV door.
 */
export function useTwoGatewayCluster(clusterName: string, storageIds: string[]): { readonly cluster: LocalCluster; readonly ports: number[] } {
  return useStarted(`cluster ${clusterName}`, () => startTwoGatewayCluster(clusterName, storageIds), (t) => t.cluster.stop(), ['cluster', 'ports']);
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
