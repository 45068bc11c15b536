#!/usr/bin/env node
import { REPO_ROOT } from '@cairn/cluster';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKeys, measure } from './harness';
import { PEER_PACKAGES, binaryVersion, ensurePeer, systemInstallEnv } from './install';
import { PeersUsageError, parsePeersArgs, type PeersOptions, type StoreName } from './options';
import { ServerGroup } from './procs';
import { fsyncLimit, pingPongLimit } from './limits';
import { DOOR_LABEL, DOOR_WORKLOADS, WORKLOAD_LABEL, doorsOf, formatLimits, formatTables, pointOf, type Limits, type PointResult, type RoundResult } from './report';
import { startCairn, startEtcd, startNats, startRedis, type Conn, type Door, type RunningStore } from './stores';
import { CodedError } from '@cairn/protocol';

const say = (line: string) => process.stderr.write(`${line}\n`);

/** Connections the key space is loaded through. */
const LOAD_CONNECTIONS = 16;

/** What became of each store: started (its description and version) or skipped / failed with the reason. */
type StoreOutcome = { description: string; version: string } | { skipped: string } | { failed: string };

/** Stops registered by the stores being started or run; run on completion, failure, Ctrl-C. */
const stops = new Set<() => Promise<void>>();
/** Every stop begun so far: a caller of stopEverything waits for those another caller began too. */
let stopping: Promise<unknown> = Promise.resolve();
/** Aborted on SIGINT / SIGTERM: no store is started after it, a running point ends early. */
const abort = new AbortController();

async function stopEverything(): Promise<void> {
  const all = [...stops];
  stops.clear();
  stopping = Promise.all([stopping, ...all.map((s) => s().catch(() => undefined))]);
  await stopping;
}

/** Thrown where the run notices Ctrl-C. */
class AbortedError extends CodedError {
  readonly code = 'ABORTED';
  constructor() {
    super('stopped by a signal');
  }
}

function checkAborted(): void {
  if (abort.signal.aborted) throw new AbortedError();
}

/** Starts one store in its own directory under `dir`; `binary` is the peer's server (unused for Cairn). */
async function startStore(name: StoreName, binary: string, dir: string, o: PeersOptions): Promise<Omit<RunningStore, 'description'>> {
  mkdirSync(dir, { recursive: true });
  if (name === 'cairn') return startCairn(dir, { replicas: o.cairnReplicas, storageNodes: o.cairnStorageNodes }, (stop) => stops.add(stop));
  const group = new ServerGroup();
  const stop = () => group.stopAll();
  stops.add(stop);
  const start = name === 'etcd' ? startEtcd : name === 'nats' ? startNats : startRedis;
  return start(binary, dir, group);
}

async function openConns(door: Door, n: number): Promise<Conn[]> {
  const settled = await Promise.allSettled(Array.from({ length: n }, () => door.connect()));
  const conns = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await closeConns(conns);
    throw failed.reason;
  }
  return conns;
}

async function closeConns(conns: Conn[]): Promise<void> {
  await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
}

interface Acc {
  rounds: RoundResult[];
  firstError?: string;
}

/** Loads the key space through the store's first door, then measures every point of every door, round after round. */
async function benchStore(name: StoreName, store: Omit<RunningStore, 'description'>, o: PeersOptions): Promise<PointResult[]> {
  const value = Buffer.alloc(o.valueBytes, 'v');
  const loaders = await openConns(store.doors[0], LOAD_CONNECTIONS);
  const t0 = Date.now();
  say(`peers: ${name}: loading ${o.keys.toLocaleString('en-US')} keys of ${o.valueBytes} bytes`);
  try {
    await loadKeys(loaders, o.keys, value, abort.signal);
  } finally {
    await closeConns(loaders);
  }
  say(`peers: ${name}: loaded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const acc = new Map<string, Acc>();
  for (let round = 1; round <= o.rounds; round++) {
    for (const clients of o.clients) {
      for (const door of store.doors) {
        checkAborted();
        const conns = await openConns(door, clients);
        try {
          for (const w of DOOR_WORKLOADS[door.id]) {
            const m = await measure(conns, w, o.keys, value, o.durationMs, abort.signal);
            checkAborted();
            const key = `${door.id}/${w}/${clients}`;
            const a = acc.get(key) ?? { rounds: [] };
            a.rounds.push(m.result);
            a.firstError ??= m.firstError;
            acc.set(key, a);
            const r = m.result;
            say(`peers: round ${round}/${o.rounds} ${DOOR_LABEL[door.id]}, ${WORKLOAD_LABEL[w]}, ${clients} client${clients === 1 ? '' : 's'}: ${Math.round(r.opsPerSec)} ops/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms${r.errors ? `, ${r.errors} errors (${m.firstError})` : ''}`);
          }
        } finally {
          await closeConns(conns);
        }
      }
    }
  }
  return [...acc.entries()].map(([key, a]) => {
    const [door, w, clients] = key.split('/');
    return pointOf(door as PointResult['door'], w as PointResult['workload'], Number(clients), a.rounds, a.firstError);
  });
}

/** The peers' binaries: found, installed with apt-get, or skipped with the reason. */
function resolveBinaries(o: PeersOptions, outcomes: Map<StoreName, StoreOutcome>): Map<StoreName, string> {
  const binaries = new Map<StoreName, string>();
  const env = systemInstallEnv(say);
  for (const name of o.only) {
    if (name === 'cairn') continue;
    const r = ensurePeer(PEER_PACKAGES[name], o.install, env);
    if ('skipped' in r) {
      say(`peers: skipping ${name}: ${r.skipped}`);
      outcomes.set(name, r);
    } else binaries.set(name, r.path);
  }
  return binaries;
}

const description = (name: StoreName, o: PeersOptions): string =>
  name === 'cairn' ? `local launcher: ${o.cairnReplicas} consensus replicas, ${o.cairnStorageNodes} storage nodes, 1 gateway (TLV door via @cairn/client, RESP door via ioredis), logLevel warn, defaults otherwise` : DESCRIPTION[name];

const DESCRIPTION: Record<Exclude<StoreName, 'cairn'>, string> = {
  etcd: '3 members on loopback, default settings (etcd3 client, all three endpoints)',
  nats: '3 nats-servers with JetStream in one cluster, KV bucket with 3 replicas, default settings (nats.js client)',
  redis: 'one node, appendonly yes, appendfsync always, no RDB saves (ioredis client)',
};

function gitCommit(): string {
  const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

async function runStores(o: PeersOptions, dir: string, outcomes: Map<StoreName, StoreOutcome>): Promise<PointResult[]> {
  const binaries = resolveBinaries(o, outcomes);
  const results: PointResult[] = [];
  for (const name of o.only) {
    if (outcomes.has(name) || abort.signal.aborted) continue;
    const binary = binaries.get(name) ?? '';
    const version = name === 'cairn' ? `commit ${gitCommit()}` : binaryVersion(binary);
    say(`peers: starting ${name} (${version})`);
    try {
      const store = await startStore(name, binary, join(dir, name), o);
      outcomes.set(name, { description: description(name, o), version });
      results.push(...(await benchStore(name, store, o)));
    } catch (e) {
      if (abort.signal.aborted) break;
      const msg = e instanceof Error ? e.message : String(e);
      say(`peers: ${name} failed: ${msg}`);
      outcomes.set(name, { failed: msg });
    } finally {
      const t0 = Date.now();
      await stopEverything();
      say(`peers: ${name} stopped in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
  return results;
}

/** The machine's limits, each for the point duration; a failure is reported and the run goes on. */
async function measureLimits(o: PeersOptions, dir: string): Promise<Limits> {
  const limits: Limits = {};
  if (!o.limits) return limits;
  say('peers: measuring the limits (4 KiB append + fdatasync, TCP ping-pong)');
  try {
    limits.fsync = await fsyncLimit(dir, o.durationMs);
    limits.pingPong = await pingPongLimit(o.durationMs, (stop) => stops.add(stop));
  } catch (e) {
    say(`peers: limits: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    await stopEverything();
  }
  return limits;
}

async function main(argv: string[]): Promise<number> {
  let o: PeersOptions;
  try {
    o = parsePeersArgs(argv);
  } catch (e) {
    if (!(e instanceof PeersUsageError)) throw e;
    (e.help ? process.stdout : process.stderr).write(`${e.message}\n`);
    return e.help ? 0 : 2;
  }
  const dir = mkdtempSync(join(tmpdir(), 'cairn-peers-'));
  // The first signal stops the current store and ends the run (no store is started after it); a
  // second one exits as soon as every stop begun has finished.
  const onSignal = (sig: NodeJS.Signals) => {
    if (!abort.signal.aborted) {
      say(`peers: ${sig}: stopping every process this run started`);
      abort.abort();
      // Also stops a store still starting (its start then fails and the run ends).
      void stopEverything();
      return;
    }
    void stopEverything().finally(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const startedAt = new Date().toISOString();
  const outcomes = new Map<StoreName, StoreOutcome>();
  const loadBefore = loadavg();
  try {
    const limits = await measureLimits(o, dir);
    const results = await runStores(o, dir, outcomes);
    if (abort.signal.aborted) return 130;
    const doors = doorsOf(o.only.filter((s) => { const x = outcomes.get(s); return x !== undefined && 'version' in x; }));
    process.stdout.write(`\nbench:peers ${startedAt}, commit ${gitCommit()}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load ${loadBefore.map((x) => x.toFixed(1)).join(' ')}\n`);
    process.stdout.write(`${o.clients.join('/')} client(s), ${o.durationMs / 1000} s per point, ${o.rounds} round(s) (medians), ${o.keys.toLocaleString('en-US')} keys, ${o.valueBytes}-byte values\n\n`);
    process.stdout.write(formatTables(results, doors, o.clients));
    process.stdout.write(`\n${formatLimits(limits)}`);
    for (const [name, x] of outcomes) process.stdout.write(`${name}: ${'version' in x ? `${x.version}; ${x.description}` : 'skipped' in x ? `skipped: ${x.skipped}` : `failed: ${x.failed}`}\n`);
    if (o.out !== null) {
      const report = { startedAt, commit: gitCommit(), machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadavgBefore: loadBefore, loadavgAfter: loadavg() }, options: o, limits, stores: Object.fromEntries(outcomes), results };
      writeFileSync(o.out, JSON.stringify(report, null, 2) + '\n');
      say(`peers: wrote ${o.out}`);
    }
    return [...outcomes.values()].some((x) => 'failed' in x) ? 1 : 0;
  } finally {
    await stopEverything();
    rmSync(dir, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    say(`peers: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    void stopEverything().finally(() => process.exit(1));
  },
);
