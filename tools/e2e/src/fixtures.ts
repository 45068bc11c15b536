import { spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { LocalCluster } from '@cairn/cluster';
import { Subjects, connectNats } from '@cairn/messaging';
import { freePort } from '@cairn/messaging/testing';
import type { NatsConnection } from 'nats';

export const REPO_ROOT = resolve(__dirname, '../../..');
export const DATASET = resolve(REPO_ROOT, '../shared/data/npm-packages.tsv');
export const CLI = join(REPO_ROOT, 'apps/cli/dist/main.js');

/** Writes a cluster config with free ports and a fresh data dir; returns its path. */
export async function writeTestConfig(overrides: { replicas?: number; storageNodes?: number; consensus?: Record<string, unknown>; storage?: Record<string, unknown> } = {}): Promise<{ dir: string; configPath: string; gatewayPort: number; httpPort: number; respPort: number }> {
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
    gateway: { gateways: [{ id: 'g1', host: '127.0.0.1', port: gatewayPort, httpPort, respPort }] },
    logLevel: 'info',
  };
  const configPath = join(dir, 'cairn.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  return { dir, configPath, gatewayPort, httpPort, respPort };
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

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the `cairn` CLI as a child process (`env` is added to this process's environment). */
export function runCli(args: string[], opts: { onStart?: (pid: number) => void; env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
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
  /** Closes the connection, then stops the cluster. */
  stop(): Promise<void>;
}

/** Starts a BusCluster; `name` names the NATS connection. */
export async function startBusCluster(name: string): Promise<BusCluster> {
  const cfg = await writeTestConfig();
  const cluster = await LocalCluster.start({ configPath: cfg.configPath });
  const nc = await connectNats({ servers: cluster.config.nats.servers, name });
  return {
    cfg,
    cluster,
    nc,
    subjects: new Subjects(cluster.config.clusterName),
    stop: async () => {
      await nc.close();
      await cluster.stop();
    },
  };
}
