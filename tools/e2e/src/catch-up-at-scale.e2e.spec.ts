import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CairnClient } from '@cairn/client';
import { LocalCluster, type ProcessExit } from '@cairn/cluster';
import { startNatsServer, type NatsServerHandle } from '@cairn/messaging/testing';
import { REPO_ROOT, writeTestConfig } from './fixtures';

/**
 * Issue 9, "every internal message fits what NATS accepts", on real processes: a replica far
 * behind is caught up (Raft pipelines inflightMsgsMax Appends of up to msgBytesMax each: far over
 * max_payload in one Ready) with no process exit; then the whole cluster is stopped and started
 * while one replica is far behind, and every row reads back.
 *
 * nats-server runs with max_payload 2 MiB (the defaults' 1 MiB values and Appends fit; one Ready
 * of 64 Appends does not). Short form: CAIRN_SCALE_WRITES writes per phase (default 3000, values
 * mixed up to 64 KiB, ~20 MB per phase); the long form (docs/reliability.md) sets it to 200000.
 */
const WRITES = Number(process.env.CAIRN_SCALE_WRITES ?? 3000);
const MAX_PAYLOAD = 2 * 1024 * 1024;
const WRITERS = 32;
/** Concurrent reads: the gateway batches them into one storage read, kept well under max_payload. */
const READERS = 8;
/** Per-phase budget: the short form needs well under a minute; the long form ~10 ms per write on 2 cores. */
const PHASE_TIMEOUT_MS = Math.max(300_000, WRITES * 10);

/** Value size of write `i`: 1 in 20 is 64 KiB, 1 in 5 is 16 KiB, the rest 200-2000 bytes. */
function sizeOf(i: number): number {
  if (i % 20 === 0) return 64 * 1024;
  if (i % 5 === 0) return 16 * 1024;
  return 200 + ((i * 7919) % 1800);
}

/** The value of write `i`: its number, then a fill byte that depends on it (a swapped value shows). */
function valueOf(i: number): Buffer {
  const v = Buffer.alloc(sizeOf(i), i % 251);
  v.write(`v${i}:`, 0, 'latin1');
  return v;
}

const keyOf = (i: number) => `scale-${i}`;

/** Runs `op(i)` for i in [from, to) with `concurrency` workers. */
async function forEach(from: number, to: number, concurrency: number, op: (i: number) => Promise<void>): Promise<void> {
  let next = from;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < to) await op(next++);
    }),
  );
}

/** Retries `op` while it fails with a retryable error (UNAVAILABLE, timeout): a write of the same value twice is harmless. */
async function retrying<T>(op: () => Promise<T>, attempts = 20): Promise<T> {
  for (let a = 1; ; a++) {
    try {
      return await op();
    } catch (e) {
      if (!(e as { retryable?: boolean }).retryable || a >= attempts) throw e;
      await new Promise((r) => setTimeout(r, 100)); // back off before re-sending to a recovering cluster
    }
  }
}

describe('catch-up at scale: a replica far behind, then a full restart', () => {
  let nats: NatsServerHandle;
  let cluster: LocalCluster;
  let client: CairnClient;
  let configPath: string;
  let dir: string;
  let gatewayPort: number;
  const exits: ProcessExit[] = [];

  beforeAll(async () => {
    const cfg = await writeTestConfig();
    ({ configPath, dir, gatewayPort } = cfg);
    const url = (JSON.parse(readFileSync(configPath, 'utf8')) as { nats: { servers: string[] } }).nats.servers[0];
    nats = await startNatsServer({ port: Number(new URL(url).port), dir: join(dir, 'nats'), maxPayloadBytes: MAX_PAYLOAD });
    cluster = await LocalCluster.start({ configPath, startNats: false, onUnexpectedExit: (e) => exits.push(e) });
    client = await CairnClient.connect({ host: '127.0.0.1', port: gatewayPort, requestTimeoutMs: 30_000 });
  });

  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
    await nats?.stop();
  });

  async function write(from: number, to: number): Promise<void> {
    await forEach(from, to, WRITERS, async (i) => {
      await retrying(() => client.set(keyOf(i), valueOf(i)));
    });
  }

  /** Waits (heartbeats, every 100 ms) until replica `id` has applied at least `index`. */
  async function caughtUp(id: string, index: number, timeoutMs = PHASE_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = cluster.statuses().consensus.find((c) => c.id === id && c.ageMs < 1000);
      if (s && s.appliedIndex >= index && s.lastIndex >= index) return;
      if (exits.length > 0) throw new Error(`a process exited while ${id} was catching up: ${JSON.stringify(exits)}`);
      if (Date.now() > deadline) throw new Error(`${id} did not apply ${index} within ${timeoutMs} ms: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 100)); // polling heartbeats of real processes
    }
  }

  const leaderCommit = async (): Promise<number> => {
    const leader = await cluster.leaderId();
    return cluster.statuses().consensus.find((s) => s.id === leader)!.commitIndex;
  };

  const expectAllAlive = () => {
    expect(exits).toEqual([]);
    for (const id of cluster.ids()) expect([id, cluster.isRunning(id)]).toEqual([id, true]);
  };

  it('refuses to start a process whose limits cannot fit the server\'s max_payload, naming the settings', async () => {
    const bad = JSON.parse(readFileSync(configPath, 'utf8')) as { gateway: Record<string, unknown> };
    bad.gateway.valueBytesMax = 4 * 1024 * 1024;
    const badPath = join(dir, 'too-large.json');
    writeFileSync(badPath, JSON.stringify(bad));
    const child = spawn(process.execPath, [join(REPO_ROOT, 'apps/consensus/dist/main.js'), '--config', badPath, '--id', 'c9', '--join'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(1);
    expect(stderr).toContain(`max_payload of ${MAX_PAYLOAD} bytes`);
    expect(stderr).toContain('gateway.valueBytesMax (4194304)');
  });

  it(`a replica down while ${WRITES} writes commit catches up with no process exit`, async () => {
    const leader = await cluster.leaderId();
    const lagging = cluster.ids('consensus').find((id) => id !== leader)!;
    await cluster.kill(lagging, 'SIGKILL');
    await write(0, WRITES);
    const target = await leaderCommit();
    await cluster.restart(lagging);
    await caughtUp(lagging, target);
    expectAllAlive();
  }, PHASE_TIMEOUT_MS);

  it('the whole cluster stopped and started while one replica is far behind: every row reads back', async () => {
    const leader = await cluster.leaderId();
    const lagging = cluster.ids('consensus').find((id) => id !== leader)!;
    await cluster.kill(lagging, 'SIGKILL');
    await write(WRITES, 2 * WRITES);
    const target = await leaderCommit();
    await client.close();
    await cluster.killAll('SIGTERM');
    await cluster.startAll(60_000);
    client = await CairnClient.connect({ host: '127.0.0.1', port: gatewayPort, requestTimeoutMs: 30_000 });
    for (const id of cluster.ids('consensus')) await caughtUp(id, target);
    const wrong: string[] = [];
    await forEach(0, 2 * WRITES, READERS, async (i) => {
      const got = await retrying(() => client.get(keyOf(i)));
      if (!got || !Buffer.from(got.value).equals(valueOf(i))) wrong.push(keyOf(i));
    });
    expect(wrong.slice(0, 10)).toEqual([]);
    expect(wrong.length).toBe(0);
    expectAllAlive();
  }, 2 * PHASE_TIMEOUT_MS);
});
