/**
 * Lease keep-alive benchmark (issue 12; docs/benchmarks.md "Lease keep-alives"): a local cluster (3
 * consensus replicas, 2 storage nodes, 1 gateway, nats-server), `--leases` leases granted with
 * `--ttl`, each kept alive from its grant on by @cairn/client's `keepAlive` (a renewal every
 * TTL / 3, as etcd's client) over `--connections` pipelined TLV connections. First it measures each process's idle CPU for `--idle` before any lease exists
 * (heartbeats, timers, status); then, after the grants and `--warmup`, for `--duration`, keep-alives
 * acknowledged per second, leases lost (LeaseLostError) and the CPU (user + system, /proc) of the
 * consensus leader, the gateway, the followers and this process, as % of one core and — above
 * idle — as µs per lease per second (the figure: CPU time per second divided by the live
 * leases) and per keep-alive.
 * Prints a text report, or one JSON object with `--json`.
 *
 * Run (after `npx nx run-many -t build`):
 *   node tools/bench/dist/lease-bench.js [--leases 10000] [--ttl 30s] [--connections 4]
 *     [--duration 30s] [--warmup 5s] [--idle 10s] [--json]
 */
import { CairnPool, type LeaseKeeper } from '@cairn/client';
import { LocalCluster } from '@cairn/cluster';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuSeconds, durationMs, formatReport, readFlags, writeBenchConfig } from './bench-cluster';

interface Args {
  leases: number;
  ttlMs: number;
  connections: number;
  durationMs: number;
  warmupMs: number;
  idleMs: number;
  json: boolean;
}

/** Grants in flight at once while setting up. */
const GRANTS_INFLIGHT_MAX = 256;

function parseArgs(argv: string[]): Args {
  const a: Args = { leases: 10_000, ttlMs: 30_000, connections: 4, durationMs: 30_000, warmupMs: 5_000, idleMs: 10_000, json: false };
  readFlags(
    argv,
    {
      '--leases': (v) => (a.leases = Number(v)),
      '--ttl': (v) => (a.ttlMs = durationMs(v)),
      '--connections': (v) => (a.connections = Number(v)),
      '--duration': (v) => (a.durationMs = durationMs(v)),
      '--warmup': (v) => (a.warmupMs = durationMs(v)),
      '--idle': (v) => (a.idleMs = durationMs(v)),
    },
    { '--json': () => (a.json = true) },
  );
  for (const k of ['leases', 'connections', 'ttlMs'] as const) if (!Number.isSafeInteger(a[k]) || a[k] < 1) throw new Error(`--${k} must be a positive integer`);
  return a;
}

/**
 * Grants `n` leases of `ttlMs`, at most GRANTS_INFLIGHT_MAX at once, and starts a keeper for each
 * as soon as it is granted (so renewals are spread as the grants were); `count` = leases lost so far.
 */
async function grantAndKeep(pool: CairnPool, n: number, ttlMs: number, keepers: LeaseKeeper[]): Promise<{ count: number; grantFailures: number }> {
  const lost = { count: 0, grantFailures: 0 };
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      // A grant whose outcome is unknown (a slow leader on a loaded box) is not retried: one lease fewer, counted.
      const granted = await pool.leaseGrant(ttlMs).catch(() => null);
      if (!granted) {
        lost.grantFailures++;
        continue;
      }
      const k = pool.keepAlive(granted.leaseId);
      k.closed.catch(() => lost.count++);
      keepers.push(k);
    }
  };
  await Promise.all(Array.from({ length: Math.min(GRANTS_INFLIGHT_MAX, n) }, worker));
  return lost;
}

/** CPU seconds of every running Cairn process of `cluster`, by id. */
function cpuByProcess(cluster: LocalCluster): Record<string, number> {
  return Object.fromEntries(cluster.ids().map((id) => [id, cpuSeconds(cluster.pid(id))]));
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'cairn-lease-bench-'));
  const { configPath, port } = await writeBenchConfig(dir, 'lease-bench', { leasesMax: Math.max(100_000, a.leases) });
  const cluster = LocalCluster.create({ configPath });
  const keepers: LeaseKeeper[] = [];
  let pool: CairnPool | null = null;
  try {
    await cluster.launch(60_000);
    pool = await CairnPool.connect({ gateways: [{ host: '127.0.0.1', port }], connectionsPerGateway: a.connections, requestTimeoutMs: 30_000 });
    // Idle: the cluster without a lease (so the leader's expiry checks over the table count as lease cost).
    const idle0 = cpuByProcess(cluster);
    const idleStart = performance.now();
    await sleep(a.idleMs);
    const idle1 = cpuByProcess(cluster);
    const idleRate = (id: string) => (idle1[id]! - idle0[id]!) / ((performance.now() - idleStart) / 1000);
    const grantStart = performance.now();
    const lost = await grantAndKeep(pool, a.leases, a.ttlMs, keepers);
    const grantSeconds = (performance.now() - grantStart) / 1000;
    await sleep(a.warmupMs);
    const leader = await cluster.leaderId();
    const renewals0 = keepers.reduce((n, k) => n + k.renewals, 0);
    const lost0 = lost.count;
    const cpu0 = cpuByProcess(cluster);
    const self0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(a.durationMs);
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = cpuByProcess(cluster);
    const self = process.cpuUsage(self0);
    const renewals = keepers.reduce((n, k) => n + k.renewals, 0) - renewals0;
    const cpuOf = (ids: string[]) => ids.reduce((s, id) => s + (cpu1[id]! - cpu0[id]!), 0);
    const idleOf = (ids: string[]) => ids.reduce((s, id) => s + idleRate(id) * seconds, 0);
    const followers = cluster.ids('consensus').filter((id) => id !== leader);
    /** CPU of `ids` over the window (per process when `n` > 1): % of a core, its idle %, and above idle per lease per second and per keep-alive. */
    const per = (ids: string[], n = 1) => {
      const cpuS = cpuOf(ids) / n;
      const aboveS = cpuS - idleOf(ids) / n;
      return {
        corePercent: Number(((cpuS / seconds) * 100).toFixed(1)),
        idleCorePercent: Number(((idleOf(ids) / n / seconds) * 100).toFixed(1)),
        usPerLeasePerSec: Number(((aboveS / seconds / keepers.length) * 1e6).toFixed(2)),
        usPerKeepAlive: renewals > 0 ? Number(((aboveS / renewals) * 1e6).toFixed(1)) : NaN,
      };
    };
    const selfS = (self.user + self.system) / 1e6;
    const report = {
      leases: keepers.length,
      grantFailures: lost.grantFailures,
      ttlMs: a.ttlMs,
      connections: a.connections,
      grantsPerSec: Math.round(keepers.length / grantSeconds),
      seconds: Number(seconds.toFixed(2)),
      keepAlivesPerSec: Math.round(renewals / seconds),
      leasesLost: lost.count - lost0,
      leasesLostTotal: lost.count,
      leader: { id: leader, ...per([leader]) },
      gateway: per(['g1']),
      leaderPlusGateway: per([leader, 'g1']),
      followersEach: per(followers, followers.length),
      storageNodesEach: per(cluster.ids('storage'), cluster.ids('storage').length),
      benchProcessCorePercent: Number(((selfS / seconds) * 100).toFixed(1)),
    };
    process.stdout.write(a.json ? JSON.stringify(report) + '\n' : formatReport(report));
  } finally {
    for (const k of keepers) k.stop();
    await pool?.close().catch(() => undefined);
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`lease-bench: ${(e as Error).stack}\n`);
  process.exit(1);
});
