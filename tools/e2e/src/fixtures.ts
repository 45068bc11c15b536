import { spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { LocalCluster } from '@cairn/cluster';
import { Subjects, connectNats } from '@cairn/messaging';
import { freePort } from '@cairn/messaging/testing';
import { decodeReadReply, encodeReadRequest, type Status } from '@cairn/protocol';
import type { NatsConnection } from 'nats';

export const REPO_ROOT = resolve(__dirname, '../../..');
export const DATASET = resolve(REPO_ROOT, '../shared/data/npm-packages.tsv');
export const CLI = join(REPO_ROOT, 'apps/cli/dist/main.js');

/** writeTestConfig's overrides: replica and storage-node counts, settings of the consensus, storage and gateway sections. */
export interface TestConfigOverrides {
  replicas?: number;
  storageNodes?: number;
  consensus?: Record<string, unknown>;
  storage?: Record<string, unknown>;
  /** Gateway settings besides `gateways` (e.g. idleTimeoutMs). */
  gateway?: Record<string, unknown>;
}

/** Writes a cluster config with free ports and a fresh data dir; returns its path. */
export async function writeTestConfig(overrides: TestConfigOverrides = {}): Promise<{ dir: string; configPath: string; gatewayPort: number; httpPort: number; respPort: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-e2e-'));
  const natsPort = await freePort();
  const gatewayPort = await freePort();
  const httpPort = await freePort();
  const respPort = await freePort();
  const config = {
    clusterName: 'e2e',
    dataDir: join(dir, 'data'),
    nats: { servers: [`nats://127.0.0.1:${natsPort}`] },
    consensus: { replicas: Array.from({ length: overrides.replicas ?? 3 }, (_, i) => ({ id: `c${i + 1}` })), ...overrides.consensus },
    storage: { nodes: Array.from({ length: overrides.storageNodes ?? 2 }, (_, i) => ({ id: `s${i + 1}` })), ...overrides.storage },
    gateway: { gateways: [{ id: 'g1', host: '127.0.0.1', port: gatewayPort, httpPort, respPort }], ...overrides.gateway },
    logLevel: 'info',
  };
  const configPath = join(dir, 'cairn.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  return { dir, configPath, gatewayPort, httpPort, respPort };
}

/**
 * Starts a LocalCluster of 3 consensus replicas, the storage nodes `storageIds` and two gateways
 * (g1, g2) whose TLV doors listen on free ports; `ports[i]` is g(i+1)'s. Stop it with `cluster.stop()`.
 */
export async function startTwoGatewayCluster(clusterName: string, storageIds: string[]): Promise<{ cluster: LocalCluster; ports: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), `cairn-e2e-${clusterName}-`));
  const ports = [await freePort(), await freePort()];
  const config = {
    clusterName,
    dataDir: join(dir, 'data'),
    nats: { servers: [`nats://127.0.0.1:${await freePort()}`] },
    consensus: { replicas: [{ id: 'c1' }, { id: 'c2' }, { id: 'c3' }] },
    storage: { nodes: storageIds.map((id) => ({ id })) },
    gateway: { gateways: ports.map((port, i) => ({ id: `g${i + 1}`, host: '127.0.0.1', port })) },
  };
  const configPath = join(dir, 'cairn.json');
  writeFileSync(configPath, JSON.stringify(config));
  return { cluster: await LocalCluster.start({ configPath }), ports };
}

/**
 * The first `rows` data rows of the real npm data set as a TSV file (header kept), or — when the
 * shared data set is absent — the same number of synthetic rows, announced on stderr.
 */
export async function datasetSlice(dir: string, rows: number): Promise<string> {
  const out = join(dir, `rows-${rows}.tsv`);
  const lines: string[] = [];
  if (existsSync(DATASET)) {
    const rl = createInterface({ input: createReadStream(DATASET), crlfDelay: Infinity });
    for await (const line of rl) {
      lines.push(line);
      if (lines.length > rows) break;
    }
    rl.close();
  } else {
    process.stderr.write(`e2e: ${DATASET} is absent; using ${rows} synthetic rows instead\n`);
    lines.push('name\tversion\tdownloads_a_month\tsummary');
    for (let i = 0; i < rows; i++) lines.push(`pkg-${i}\t1.0.${i}\t${i * 7}\tsynthetic row ${i} with a tab\tinside`);
  }
  writeFileSync(out, lines.join('\n') + '\n');
  return out;
}

/**
 * Writes `rows` rows of the data set into `dir` and imports them through `cairn import` on
 * `gateway` (host:port), one SET per row (`--rows-per-txn 1`): the suites that use it count log
 * entries (compaction, snapshots), one per row. The TSV's path and the CLI's stderr.
 * @throws when the import exits non-zero
 */
export async function importRows(dir: string, gateway: string, rows: number): Promise<{ tsv: string; stderr: string }> {
  const tsv = await datasetSlice(dir, rows);
  const imported = await runCli(['--gateway', gateway, 'import', tsv, '--rows-per-txn', '1']);
  if (imported.code !== 0) throw new Error(`cairn import exited ${imported.code}: ${imported.stderr}`);
  return { tsv, stderr: imported.stderr };
}

/**
 * Polls real processes (their heartbeats, files, HTTP endpoints) every `everyMs` (default 100)
 * until `check` returns a value other than null; rejects after `timeoutMs` (default 30,000) with
 * `never <what>` and `last()`, or with what `check` threw. Waiting on what processes show, not
 * a timed assertion.
 */
export async function pollUntil<T>(what: string, check: () => T | null | Promise<T | null>, o: { timeoutMs?: number; everyMs?: number; last?: () => string } = {}): Promise<T> {
  const timeoutMs = o.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`never ${what} within ${timeoutMs} ms${o.last ? `; last: ${o.last()}` : ''}`);
    await new Promise((r) => setTimeout(r, o.everyMs ?? 100));
  }
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the `cairn` CLI as a child process (`env` is added to this process's environment; `input`: its standard input, else an empty one). */
export function runCli(args: string[], opts: { onStart?: (pid: number) => void; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    // A CLI that exits without reading its input must not fail the test with EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => resolvePromise({ code, stdout, stderr }));
    if (child.pid) opts.onStart?.(child.pid);
  });
}

/** A local cluster of real processes on a fresh test config, and a connection to its nats-server for tests that speak the internal messages. */
export interface BusCluster {
  cfg: Awaited<ReturnType<typeof writeTestConfig>>;
  cluster: LocalCluster;
  nc: NatsConnection;
  subjects: Subjects;
  /** What storage node `node` holds for `key` once it has applied `minIndex` (a ReadRequest on `read.<node>`; value as UTF-8). */
  readAt(node: string, key: string, minIndex: number): Promise<{ status: Status; revision: number; value: string }>;
  /** Closes the connection, then stops the cluster. */
  stop(): Promise<void>;
}

/** Starts a BusCluster on writeTestConfig(`overrides`); `name` names the NATS connection. */
export async function startBusCluster(name: string, overrides: TestConfigOverrides = {}): Promise<BusCluster> {
  const cfg = await writeTestConfig(overrides);
  const cluster = await LocalCluster.start({ configPath: cfg.configPath });
  const nc = await connectNats({ servers: cluster.config.nats.servers, name });
  const subjects = new Subjects(cluster.config.clusterName);
  return {
    cfg,
    cluster,
    nc,
    subjects,
    readAt: async (node, key, minIndex) => {
      const res = await nc.request(subjects.read(node), encodeReadRequest({ reads: [{ key: Buffer.from(key), minIndex }] }), { timeout: 10_000 });
      const r = decodeReadReply(res.data).results[0];
      return { status: r.status, revision: r.revision, value: Buffer.from(r.value).toString() };
    },
    stop: async () => {
      await nc.close();
      await cluster.stop();
    },
  };
}

/** What `twoFaultSchedule` did: the faults in order (the leader's id, then `g1` / `g2`) and how many requests the killed gateway held. */
export interface TwoFaultRun {
  faults: string[];
  victimHeld: number;
  /** Call after each acknowledged operation with how many are done; starts each fault at its point. */
  progress(done: number): void;
  /** Resolves once every fault started has finished. */
  finished(): Promise<void>;
}

/**
 * The fault schedule of the exactly-once e2e suites (incr-faults, txn-faults) on a
 * startTwoGatewayCluster: at a third of `total` acknowledged operations the Raft leader is
 * SIGKILLed; at two thirds the storage nodes are frozen (SIGSTOP), so every client's next
 * operation commits but cannot be answered, and once `inflightWanted()` operations are in flight
 * and an entry committed past the storage nodes, the gateway holding most of them is SIGKILLed
 * (it dies with committed, unanswered operations) and the storage nodes resume. `beforeGatewayKill`
 * runs just before that kill.
 */
export function twoFaultSchedule(o: { cluster: LocalCluster; pools: { stats(): { gateways: { inflight: number }[] } }[]; gateways: number; storage: string[]; total: number; inflightWanted: () => number; beforeGatewayKill?: () => void }): TwoFaultRun {
  const run: TwoFaultRun = { faults: [], victimHeld: 0, progress, finished: () => faulting };
  let faulting: Promise<void> = Promise.resolve();
  const { cluster, storage } = o;
  function progress(done: number): void {
    if (done === Math.floor(o.total / 3)) {
      faulting = faulting.then(async () => {
        const leader = await cluster.leaderId();
        run.faults.push(leader);
        await cluster.kill(leader, 'SIGKILL');
      });
    } else if (done === Math.floor((2 * o.total) / 3)) {
      faulting = faulting.then(async () => {
        const applied = Math.max(...cluster.statuses().storage.map((s) => s.appliedIndex));
        for (const id of storage) process.kill(cluster.pid(id)!, 'SIGSTOP');
        const inflight = () => Array.from({ length: o.gateways }, (_, i) => o.pools.reduce((n, p) => n + p.stats().gateways[i].inflight, 0));
        await pollUntil('every running client with a request in flight', () => (inflight().reduce((a, b) => a + b) === o.inflightWanted() ? true : null), { everyMs: 20, last: () => `${inflight().join('/')} of ${o.inflightWanted()}` });
        await pollUntil('an entry committed past the storage nodes', () => (cluster.statuses().consensus.some((c) => c.role === 'leader' && c.commitIndex > applied) ? true : null), { everyMs: 20 });
        await new Promise((r) => setTimeout(r, 300)); // fault pacing (the rest of the in-flight requests commit), not synchronisation
        const held = inflight();
        const victim = held.indexOf(Math.max(...held));
        run.faults.push(`g${victim + 1}`);
        run.victimHeld = held[victim];
        o.beforeGatewayKill?.();
        await cluster.kill(`g${victim + 1}`, 'SIGKILL');
        for (const id of storage) process.kill(cluster.pid(id)!, 'SIGCONT');
      });
    }
  }
  return run;
}
