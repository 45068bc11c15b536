/**
 * LocalCluster against a real nats-server with stand-in processes (a tiny script per role that
 * publishes status heartbeats / listens on the gateway port), so the launcher is tested without
 * the real apps. Skipped when nats-server is not installed.
 */
import { findNatsServer, freePort } from '@cairn/messaging/testing';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster, ProcessExitedError, REPO_ROOT, type RestartInfo } from './cluster';

let natsInstalled = true;
try {
  findNatsServer();
} catch {
  natsInstalled = false;
}
const itNats = natsInstalled ? it : it.skip;

/** Stand-in app: consensus c1 claims leadership (term 1), others follow; gateways listen on their port. */
const STAND_IN = `
const { connect } = require(${JSON.stringify(join(REPO_ROOT, 'node_modules', 'nats'))});
const net = require('node:net');
const fs = require('node:fs');
const argv = process.argv;
const cfg = JSON.parse(fs.readFileSync(argv[argv.indexOf('--config') + 1], 'utf8'));
const id = argv[argv.indexOf('--id') + 1];
if (process.env.STAND_IN_CRASH === id) { console.error('stand-in ' + id + ': boom'); process.exit(3); }
const role = cfg.consensus.replicas.some((m) => m.id === id) ? 'consensus' : cfg.storage.nodes.some((m) => m.id === id) ? 'storage' : 'gateway';
console.log(JSON.stringify({ msg: 'started', id, role }));
(async () => {
  if (role === 'gateway') {
    const g = cfg.gateway.gateways.find((m) => m.id === id);
    const srv = net.createServer((s) => s.end()).listen(g.port, g.host);
    process.on('SIGTERM', () => srv.close(() => process.exit(0)));
    return;
  }
  const nc = await connect({ servers: cfg.nats.servers });
  const subject = 'cairn.' + cfg.clusterName + '.status.' + role;
  const leader = process.env.STAND_IN_LEADER || 'c1';
  const beat = () => nc.publish(subject, JSON.stringify(role === 'consensus'
    ? { kind: 'consensus', id, role: id === leader ? 'leader' : 'follower', term: 1, leaderId: leader, commitIndex: 0, lastIndex: 0, appliedIndex: 0, logBytes: 0, atMs: Date.now() }
    : { kind: 'storage', id, appliedIndex: 0, knownCommitIndex: 0, keys: 0, dataBytes: 0, atMs: Date.now() }));
  beat();
  const t = setInterval(beat, 100);
  process.on('SIGTERM', () => { clearInterval(t); nc.close().then(() => process.exit(0)); });
})();
`;

/** Restart events of a supervised cluster, awaitable per process. */
function restartLog() {
  const seen: RestartInfo[] = [];
  const waiters = new Map<string, (r: RestartInfo) => void>();
  return {
    seen,
    on: (r: RestartInfo) => {
      seen.push(r);
      waiters.get(r.id)?.(r);
      waiters.delete(r.id);
    },
    next: (id: string) => new Promise<RestartInfo>((resolve) => waiters.set(id, resolve)),
  };
}

/** Waits until the cluster is ready again (through `id`'s restart) and checks `id` runs as a new process. */
async function restartedReady(cluster: LocalCluster, id: string, oldPid: number): Promise<void> {
  await cluster.waitReady();
  expect(cluster.pid(id)).toEqual(expect.any(Number));
  expect(cluster.pid(id)).not.toBe(oldPid);
}

async function setup(env: NodeJS.ProcessEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-'));
  const script = join(dir, 'stand-in.js');
  writeFileSync(script, STAND_IN);
  const configPath = join(dir, 'cairn.config.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      clusterName: 'launcher-test',
      dataDir: './data',
      nats: { servers: [`nats://127.0.0.1:${await freePort()}`] },
      consensus: { replicas: [{ id: 'c1' }, { id: 'c2' }, { id: 'c3' }] },
      storage: { nodes: [{ id: 's1' }, { id: 's2' }] },
      gateway: { gateways: [{ id: 'g1', host: '127.0.0.1', port: await freePort() }] },
    }),
  );
  return { dir, opts: { configPath, env, appMain: { consensus: script, storage: script, gateway: script } } };
}

describe('LocalCluster (stand-in processes, real nats-server)', () => {
  jest.setTimeout(60_000);

  itNats('starts, reports the leader, kills and restarts processes, stops everything', async () => {
    const { dir, opts } = await setup();
    const cluster = await LocalCluster.start(opts);
    try {
      expect(await cluster.leaderId()).toBe('c1');
      for (const id of cluster.ids()) expect(cluster.pid(id)).toEqual(expect.any(Number));
      expect(readFileSync(join(dir, 'data', 'logs', 's2.log'), 'utf8')).toContain('"msg":"started"');

      await cluster.kill('s2');
      expect(cluster.pid('s2')).toBeNull();
      await cluster.waitReady(); // a killed process is not waited for
      await cluster.restart('s2');
      expect(cluster.pid('s2')).toEqual(expect.any(Number));

      await cluster.killAll('SIGKILL');
      expect(cluster.ids().map((id) => cluster.pid(id))).toEqual([null, null, null, null, null, null]);
      await cluster.startAll();
      expect(await cluster.leaderId()).toBe('c1');
    } finally {
      await cluster.stop();
    }
    expect(cluster.ids().every((id) => cluster.pid(id) === null)).toBe(true);
  });

  itNats('stops and restarts nats-server on the same port; the processes reconnect and the cluster is ready again', async () => {
    const { opts } = await setup();
    const cluster = await LocalCluster.start(opts);
    try {
      await cluster.stopNats();
      await cluster.startNats();
      // A heartbeat from a process spawned after the restart proves the status subscription reconnected.
      await cluster.restart('s2');
      await cluster.waitReady();
      expect(await cluster.leaderId()).toBe('c1');
    } finally {
      await cluster.stop();
    }
  });

  itNats('fails the start with the log tail of a process that dies, and cleans up', async () => {
    const { opts } = await setup({ STAND_IN_CRASH: 's2' });
    const err = await LocalCluster.start(opts).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProcessExitedError);
    expect((err as ProcessExitedError).message).toContain('stand-in s2: boom');
    expect((err as ProcessExitedError).exit).toMatchObject({ id: 's2', role: 'storage', code: 3 });
  });

  itNats('times out naming what is missing when no replica is leader', async () => {
    const { opts } = await setup({ STAND_IN_LEADER: 'nobody' });
    await expect(LocalCluster.start(opts, 1_000)).rejects.toThrow(/not ready after 1000 ms: .*no leader/);
  });

  itNats('supervision restarts a process that exits on its own, with doubling backoff, and counts its restarts', async () => {
    const { opts } = await setup();
    const restarts = restartLog();
    const exits: string[] = [];
    const cluster = await LocalCluster.start({
      ...opts,
      supervise: { backoffInitialMs: 50, backoffMaxMs: 100, stableAfterMs: 60_000 },
      onUnexpectedExit: (x) => exits.push(`${x.id}:${x.signal}`),
      onRestartScheduled: restarts.on,
    });
    try {
      for (const expectedDelayMs of [50, 100, 100]) {
        const pid = cluster.pid('c2')!;
        const next = restarts.next('c2');
        process.kill(pid, 'SIGKILL'); // not through the cluster: an unexpected exit
        const r = await next;
        expect(r).toMatchObject({ id: 'c2', role: 'consensus', delayMs: expectedDelayMs, exit: { signal: 'SIGKILL' } });
        // A process waiting for its restart is not ready; waitReady waits through the restart.
        await restartedReady(cluster, 'c2', pid);
      }
      expect(cluster.restarts('c2')).toBe(3);
      expect(restarts.seen.map((r) => r.restarts)).toEqual([1, 2, 3]);
      expect(exits).toEqual(['c2:SIGKILL', 'c2:SIGKILL', 'c2:SIGKILL']);
      expect(cluster.restarts('c1')).toBe(0);
    } finally {
      await cluster.stop();
    }
  });

  itNats('supervision never revives a process killed on purpose, nor one killed while it waits for its restart', async () => {
    const { opts } = await setup();
    const restarts = restartLog();
    const cluster = await LocalCluster.start({ ...opts, supervise: { backoffInitialMs: 50, backoffMaxMs: 50 }, onRestartScheduled: restarts.on });
    try {
      // Killed through the cluster (what the chaos tool and the e2e tests do): stays down.
      await cluster.kill('s2');
      // Crashed, then killed on purpose before its backoff ran out: the pending restart is cancelled.
      const crashed = restarts.next('c3');
      process.kill(cluster.pid('c3')!, 'SIGKILL');
      await crashed;
      await cluster.kill('c3');
      // s1 crashes after both: its restart (same backoff, scheduled later) fires after theirs would have.
      const s1Pid = cluster.pid('s1')!;
      const s1Restart = restarts.next('s1');
      process.kill(s1Pid, 'SIGKILL');
      await s1Restart;
      await restartedReady(cluster, 's1', s1Pid);
      expect(cluster.isRunning('s2')).toBe(false);
      expect(cluster.isRunning('c3')).toBe(false);
      expect(restarts.seen.map((r) => r.id)).toEqual(['c3', 's1']);
      // restart() of a stopped process still works as before.
      await cluster.restart('s2');
      await cluster.restart('c3');
      await cluster.waitReady();
    } finally {
      await cluster.stop();
    }
  });

  itNats('stop() cancels a pending restart', async () => {
    const { opts } = await setup();
    const restarts = restartLog();
    const cluster = await LocalCluster.start({ ...opts, supervise: { backoffInitialMs: 60_000, backoffMaxMs: 60_000 }, onRestartScheduled: restarts.on });
    let delayMs = 0;
    try {
      const scheduled = restarts.next('g1');
      process.kill(cluster.pid('g1')!, 'SIGKILL');
      delayMs = (await scheduled).delayMs;
    } finally {
      await cluster.stop(); // would leave a 60 s timer (jest reports open handles) if not cancelled
    }
    expect(delayMs).toBe(60_000);
    expect(cluster.isRunning('g1')).toBe(false);
  });
});
