/**
 * Watch fan-out benchmark (issue 12; docs/benchmarks.md "Watch fan-out"): a local cluster (3
 * consensus replicas, 2 storage nodes, 1 gateway, nats-server), `--watchers` watches on one prefix
 * spread over `--connections` TLV connections (many watches share one connection, docs/watch.md),
 * and writers committing puts on that prefix at `--rate` puts/s (open loop: a tick every 5 ms
 * sends what the rate allows, at most `--inflight` puts unanswered). After `--warmup`, for
 * `--duration` it measures:
 * - puts acknowledged per second (the commit rate reached) and events delivered per second over
 *   all watchers (ideally acknowledged × watchers);
 * - the delay from a put's send (its value carries the send time) to each delivery, and from its
 *   acknowledgement to each delivery (an event delivered before the writer saw the acknowledgement
 *   counts as 0 and is counted apart), p50 / p99 / max, ms; and a put's own send → acknowledgement;
 * - watches cancelled SLOW (WatchSlowError) and CPU of the gateway and of this process (both on
 *   the same cores as the cluster: on a 2-core box this process competes with the gateway), also
 *   per delivered event (µs), and the box's 1-minute load average at the end.
 * The watches read with `watchBatches()` (one item per frame) and take SHARED_EVENTS frames (one
 * frame per connection and message for every watch sharing its events, docs/protocol.md "WATCH");
 * `--per-event` reads with `watch()` instead, `--no-shared` opens them without SHARED_FRAMES.
 * Prints a text report, or one JSON object with `--json`.
 *
 * Run (after `npx nx run-many -t build`):
 *   node tools/bench/dist/watch-bench.js [--watchers 1000] [--connections 10] [--rate 5000]
 *     [--writers 32] [--inflight 2048] [--duration 20s] [--warmup 3s] [--value-size 64] [--json]
 *     [--per-event] [--no-shared]
 *     [--cpu-prof DIR]   (every cluster process under node --cpu-prof; profile this process with
 *                         `node --cpu-prof --cpu-prof-dir DIR tools/bench/dist/watch-bench.js …`;
 *                         summary: `node tools/bench/dist/cpu-profile-summary.js DIR`)
 */
import { CairnClient, WatchSlowError, type ClientWatchOptions, type WatchEventItem } from '@cairn/client';
import { LocalCluster } from '@cairn/cluster';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuSeconds, durationMs, formatReport, readFlags, writeBenchConfig } from './bench-cluster';

interface Args {
  watchers: number;
  connections: number;
  rate: number;
  writers: number;
  inflight: number;
  durationMs: number;
  warmupMs: number;
  valueSize: number;
  json: boolean;
  /** `--per-event`: watches read with `watch()` (one promise per event), not `watchBatches()`. */
  perEvent: boolean;
  /** False with `--no-shared`: watches opened without option SHARED_FRAMES (one EVENTS frame per watch). */
  shared: boolean;
  /** `--cpu-prof DIR`: every Cairn process of the cluster runs under `node --cpu-prof`, its profile written into DIR when it stops. */
  cpuProfDir?: string;
}

const PREFIX = 'w/';
const KEYS = 1000;
const TICK_MS = 5;
/** Delay histogram: 0.1 ms buckets up to 60 s. */
const BUCKET_MS = 0.1;
const BUCKETS = 600_000;

function parseArgs(argv: string[]): Args {
  const a: Args = { watchers: 1000, connections: 10, rate: 5000, writers: 32, inflight: 2048, durationMs: 20_000, warmupMs: 3000, valueSize: 64, json: false, perEvent: false, shared: true };
  readFlags(
    argv,
    {
      '--watchers': (v) => (a.watchers = Number(v)),
      '--connections': (v) => (a.connections = Number(v)),
      '--rate': (v) => (a.rate = Number(v)),
      '--writers': (v) => (a.writers = Number(v)),
      '--inflight': (v) => (a.inflight = Number(v)),
      '--duration': (v) => (a.durationMs = durationMs(v)),
      '--warmup': (v) => (a.warmupMs = durationMs(v)),
      '--value-size': (v) => (a.valueSize = Number(v)),
      '--cpu-prof': (v) => (a.cpuProfDir = v),
    },
    { '--json': () => (a.json = true), '--per-event': () => (a.perEvent = true), '--no-shared': () => (a.shared = false) },
  );
  for (const k of ['watchers', 'connections', 'rate', 'writers', 'inflight', 'valueSize'] as const) if (!Number.isSafeInteger(a[k]) || a[k] < 1) throw new Error(`--${k} must be a positive integer`);
  if (a.valueSize < 20) throw new Error('--value-size must be at least 20 (the send time)');
  return a;
}

class Histogram {
  private readonly counts = new Uint32Array(BUCKETS);
  n = 0;
  max = 0;
  add(ms: number): void {
    const b = Math.min(BUCKETS - 1, Math.max(0, Math.floor(ms / BUCKET_MS)));
    this.counts[b]!++;
    this.n++;
    if (ms > this.max) this.max = ms;
  }
  percentile(p: number): number {
    const want = Math.ceil((p / 100) * this.n);
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b]!;
      if (seen >= want && want > 0) return (b + 1) * BUCKET_MS;
    }
    return NaN;
  }
}

/** What the run measured; reset at the end of the warm-up. */
class Meter {
  fromSend = new Histogram();
  fromAck = new Histogram();
  /** A put's send to its acknowledgement: the commit path's own delay, which every delivery delay includes. */
  putLatency = new Histogram();
  beforeAck = 0;
  events = 0;
  acks = 0;
  slow = 0;
  watchErrors = 0;
  behind = 0;
  writeErrors = 0;
  firstWriteError = '';
  firstWatchError = '';
  reset(): void {
    Object.assign(this, new Meter());
  }
}

/** A put's send time (performance.now(), ms), read from the first 20 bytes of its value once per revision, not once per watch. */
const sentAt = new Map<number, number>();
function sendTimeOf(ev: WatchEventItem): number {
  let t = sentAt.get(ev.modRevision);
  if (t === undefined) {
    t = Number(ev.value.toString('latin1', 0, 20));
    sentAt.set(ev.modRevision, t);
  }
  return t;
}

function measure(meter: Meter, ackAt: Map<number, number>, ev: WatchEventItem, now: number): void {
  if (ev.type !== 'put') return;
  meter.events++;
  meter.fromSend.add(now - sendTimeOf(ev));
  const acked = ackAt.get(ev.modRevision);
  if (acked === undefined) {
    meter.beforeAck++;
    meter.fromAck.add(0);
  } else meter.fromAck.add(now - acked);
}

async function watcher(client: CairnClient, a: Args, meter: Meter, ackAt: Map<number, number>, signal: AbortSignal): Promise<void> {
  const o: ClientWatchOptions = { prefix: PREFIX, signal, bufferEventsMax: 1_000_000, bufferBytesMax: 256 * 1024 * 1024, sharedFrames: a.shared };
  try {
    if (a.perEvent) for await (const ev of client.watch(o)) measure(meter, ackAt, ev as WatchEventItem, performance.now());
    else
      for await (const b of client.watchBatches(o)) {
        const now = performance.now();
        for (const ev of b.events) measure(meter, ackAt, ev, now);
      }
  } catch (e) {
    if (signal.aborted) return;
    if (e instanceof WatchSlowError) meter.slow++;
    else if (meter.watchErrors++ === 0) meter.firstWatchError = (e as Error).message;
  }
}

/** Open-loop writers: every TICK_MS, the puts the rate allows since the start, round-robin over the connections. */
async function writeLoad(writers: CairnClient[], a: Args, meter: Meter, ackAt: Map<number, number>, signal: AbortSignal): Promise<void> {
  const t0 = performance.now();
  let sent = 0;
  let inflight = 0;
  const pad = 'x'.repeat(a.valueSize - 20);
  while (!signal.aborted) {
    const due = Math.floor(((performance.now() - t0) * a.rate) / 1000);
    for (; sent < due; sent++) {
      if (inflight >= a.inflight) {
        meter.behind += due - sent; // the cluster did not keep up: these puts are skipped, not queued
        sent = due;
        break;
      }
      const now = performance.now();
      inflight++;
      writers[sent % writers.length]!.set(`${PREFIX}${sent % KEYS}`, now.toFixed(3).padStart(20, '0') + pad).then(
        (r) => {
          inflight--;
          meter.acks++;
          const acked = performance.now();
          ackAt.set(r.revision, acked);
          meter.putLatency.add(acked - now);
        },
        (e: unknown) => {
          inflight--;
          if (meter.writeErrors++ === 0) meter.firstWriteError = (e as Error).message;
        },
      );
    }
    await sleep(TICK_MS);
  }
  while (inflight > 0) await sleep(TICK_MS);
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'cairn-watch-bench-'));
  const { configPath, port } = await writeBenchConfig(dir, 'watch-bench');
  const cluster = LocalCluster.create({ configPath, ...(a.cpuProfDir ? { cpuProfDir: a.cpuProfDir } : {}) });
  const stop = new AbortController();
  setMaxListeners(a.watchers + 10, stop.signal); // one abort listener per watch
  const clients: CairnClient[] = [];
  try {
    await cluster.launch(60_000);
    const connect = () => CairnClient.connect({ host: '127.0.0.1', port, connectTimeoutMs: 5000, requestTimeoutMs: 10_000 });
    for (let i = 0; i < a.connections + a.writers; i++) clients.push(await connect());
    const meter = new Meter();
    const ackAt = new Map<number, number>();
    const watching = Array.from({ length: a.watchers }, (_, i) => watcher(clients[i % a.connections]!, a, meter, ackAt, stop.signal));
    await sleep(500); // every watch open before the first put
    const writing = writeLoad(clients.slice(a.connections), a, meter, ackAt, stop.signal);
    await sleep(a.warmupMs);
    meter.reset();
    const gw = cluster.pid('g1');
    const cpu0 = { gw: cpuSeconds(gw), self: process.cpuUsage() };
    const t0 = performance.now();
    await sleep(a.durationMs);
    const seconds = (performance.now() - t0) / 1000;
    const m = { ...meter, fromSend: meter.fromSend, fromAck: meter.fromAck };
    const selfCpu = process.cpuUsage(cpu0.self);
    const gwCpu = cpuSeconds(gw);
    const benchCpu = (selfCpu.user + selfCpu.system) / 1e6;
    const report = {
      watchers: a.watchers,
      connections: a.connections,
      read: a.perEvent ? 'watch() per event' : 'watchBatches()',
      sharedFrames: a.shared,
      targetPutsPerSec: a.rate,
      seconds: Number(seconds.toFixed(2)),
      putsAckedPerSec: Math.round(m.acks / seconds),
      eventsDeliveredPerSec: Math.round(m.events / seconds),
      deliveredShare: m.acks > 0 ? Number((m.events / (m.acks * a.watchers)).toFixed(3)) : 0,
      sendToDeliveryMs: { p50: m.fromSend.percentile(50), p99: m.fromSend.percentile(99), max: Number(m.fromSend.max.toFixed(1)) },
      ackToDeliveryMs: { p50: m.fromAck.percentile(50), p99: m.fromAck.percentile(99), max: Number(m.fromAck.max.toFixed(1)), deliveredBeforeAck: m.beforeAck },
      putSendToAckMs: { p50: m.putLatency.percentile(50), p99: m.putLatency.percentile(99), max: Number(m.putLatency.max.toFixed(1)) },
      slowCancelled: m.slow,
      watchErrors: m.watchErrors,
      putsSkippedBehind: m.behind,
      writeErrors: m.writeErrors,
      firstWriteError: m.firstWriteError || undefined,
      firstWatchError: m.firstWatchError || undefined,
      gatewayCpuPercent: Math.round(((gwCpu - cpu0.gw) / seconds) * 100),
      benchCpuPercent: Math.round((benchCpu / seconds) * 100),
      // CPU per delivered event: what the box's load does not change much (a starved gateway delivers fewer events with the same cost each).
      gatewayCpuUsPerEvent: m.events > 0 ? Number((((gwCpu - cpu0.gw) * 1e6) / m.events).toFixed(2)) : null,
      benchCpuUsPerEvent: m.events > 0 ? Number(((benchCpu * 1e6) / m.events).toFixed(2)) : null,
      loadAverage1m: Number(loadavg()[0].toFixed(1)),
    };
    stop.abort();
    await writing;
    await Promise.all(watching);
    process.stdout.write(a.json ? JSON.stringify(report) + '\n' : formatReport(report));
  } finally {
    stop.abort();
    await Promise.all(clients.map((c) => c.close().catch(() => c.destroy())));
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}


main().catch((e: unknown) => {
  process.stderr.write(`watch-bench: ${(e as Error).stack}\n`);
  process.exit(1);
});
