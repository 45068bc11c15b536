import { CairnPool } from '@cairn/client';
import type { LocalCluster } from '@cairn/cluster';
import { importRows, startBusCluster, startTwoGatewayCluster, type BusCluster, type TestConfigOverrides } from './fixtures';

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

/** A line `cairn import` prints on a non-TTY stderr every 5 s (apps/cli progress.ts progressLine): not a warning. */
const IMPORT_PROGRESS_LINE = /^import: \d+ rows, [\d.]+%, \d+ rows\/s, ETA \d+s$/;

/** A BusCluster with rows of the data set imported, and the doors the CLI is pointed at. */
export interface ImportedCluster extends BusCluster {
  /** The imported TSV file (header kept), for `cairn verify`. */
  tsv: string;
  /** g1's TLV door and HTTP door, `127.0.0.1:port` (`--gateway`, `--http`). */
  gateway: string;
  http: string;
  /** What the import wrote to stderr besides its progress lines (retries): a suite that needs a quiet import checks it is empty. */
  importWarnings: string[];
}

/**
 * useBusCluster (config `overrides`), and `rows` rows of the data set imported through `cairn import` on g1 once it is
 * up (still in its `beforeAll`; a failed import stops the cluster and fails the suite).
 */
export function useImportedCluster(name: string, rows: number, overrides: TestConfigOverrides = {}): ImportedCluster {
  const start = async (): Promise<ImportedCluster> => {
    const b = await startBusCluster(name, overrides);
    try {
      const gateway = `127.0.0.1:${b.cfg.gatewayPort}`;
      const imported = await importRows(b.cfg.dir, gateway, rows);
      const importWarnings = imported.stderr.split('\n').filter((line) => line !== '' && !IMPORT_PROGRESS_LINE.test(line));
      return { ...b, tsv: imported.tsv, gateway, http: `127.0.0.1:${b.cfg.httpPort}`, importWarnings };
    } catch (e) {
      await b.stop();
      throw e;
    }
  };
  return useStarted(`ImportedCluster ${name}`, start, (b) => b.stop(), ['cfg', 'cluster', 'nc', 'subjects', 'readAt', 'stop', 'tsv', 'gateway', 'http', 'importWarnings']);
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
