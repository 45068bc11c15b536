import { startBusCluster, type BusCluster, type TestConfigOverrides } from './fixtures';

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
