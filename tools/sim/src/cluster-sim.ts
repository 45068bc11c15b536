import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { HistoryRecorder, checkHistory, type CheckResult } from '@cairn/checker';
import { parseClusterConfig, type ClusterConfig } from '@cairn/config';
import { Subjects, assertPayloadBounds, type Logger } from '@cairn/messaging';
import pino from 'pino';
import { Status, type WireEntry } from '@cairn/protocol';
import { SimDisk, SimNetwork, SimScheduler, seededRandom, sleep, type DiskFaults, type DiskStats, type Incarnation, type NetworkFaults, type Random, type World } from '@cairn/world';
// The simulator assembles the apps' own classes in one process (eslint.config.mjs: tools/sim may import apps).
import { Replica } from '../../../apps/consensus/src/replica/replica';
import { StorageNode } from '../../../apps/storage-node/src/node/storage-node';
import { ClusterView } from '../../../apps/gateway/src/cluster/cluster-view';
import { KvSession } from '../../../apps/gateway/src/paths/kv-session';
import { ReadIndexClient } from '../../../apps/gateway/src/paths/read-index';
import { ReadPath } from '../../../apps/gateway/src/paths/read-path';
import { WritePath } from '../../../apps/gateway/src/paths/write-path';

/** Switches that put an old bug back, to prove the simulator finds it (issue 9's two max_payload bugs). */
export interface BugSwitches {
  /** Replica.send coalesces each peer's messages into one publish, whatever its size. */
  coalesceRaftMessages?: boolean;
  /** Storage nodes answer every read of a request in one reply, whatever its size. */
  unboundedReadReplies?: boolean;
}

export interface SimOptions {
  seed: number;
  /** Virtual time with faults, ms (default 800). */
  faultyMs?: number;
  /** Virtual time after the faults end in which the clients keep going; every operation they start then must succeed, ms (default 500). */
  calmMs?: number;
  /** Virtual time after the calm phase (the large-value sweep included) by which every calm operation has succeeded and every process converged, ms (default 10 000: a storage node's lost fetch waits out its 2 s timeout). */
  convergeMs?: number;
  /** Virtual time between two faults, drawn uniformly from [faultGapMsMin, faultGapMsMax), ms (default 50–300). */
  faultGapMsMin?: number;
  faultGapMsMax?: number;
  /** Raft tick of the replicas, ms (default 25, or production's 10 on every 4th seed: fewer events per virtual ms; the election timeout and heartbeat stay 150 ms and 50 ms). */
  tickMs?: number;
  /** Concurrent clients, each one operation at a time (default 4). */
  clients?: number;
  /** Keys the clients share (default 6). */
  keys?: number;
  /** nats-server max_payload of the simulated bus, bytes (default 576 KiB: the least the start-up check accepts is ~518 KiB, for a 512 KiB snapshot chunk). */
  maxPayloadBytes?: number;
  bugs?: BugSwitches;
  /** Log level of every process (default warn; the simulator reads warnings, see onLog). */
  logLevel?: string;
  /** Echo every log line to stderr (replaying a seed). */
  logLevelEcho?: boolean;
}

/** What one seed did. `failure` is null when every invariant held. */
export interface SimResult {
  seed: number;
  failure: string | null;
  /** The one command that replays this seed. */
  replay: string;
  virtualMs: number;
  steps: number;
  operations: number;
  okOperations: number;
  faults: Record<string, number>;
  network: SimNetwork['stats'];
  /** Summed over every process's simulated disk. */
  disk: DiskStats;
  check: CheckResult | null;
}

/** A violated invariant: ends the seed at once. */
export class SimInvariantError extends Error {
  readonly code = 'SIM_INVARIANT';
  constructor(message: string) {
    super(message);
    this.name = 'SimInvariantError';
  }
}

const REPLICAS = ['c1', 'c2', 'c3'];
const NODES = ['s1', 's2'];
const GATEWAY = 'g1';
/** Largest client value, bytes: large enough that a few of them overflow one max_payload. */
const VALUE_BYTES_MAX = 160 * 1024;

/** Where the processes' files go on their simulated disks. */
const DATA_ROOT = '/sim';
/** Share of crashes that tear a file's unsynced writes (a prefix survives) instead of losing them all. */
const TORN_WRITE_RATE = 0.5;

function simConfig(maxPayloadBytes: number, tickMs: number): ClusterConfig {
  const config = parseClusterConfig({
    clusterName: 'sim',
    nats: { servers: ['nats://sim.invalid:4222'] },
    consensus: { replicas: REPLICAS.map((id) => ({ id })), tickMs, electionTimeoutMinMs: 150, heartbeatIntervalMs: 50, msgBytesMax: 64 * 1024, entriesPerMsgMax: 64, compactionIntervalMs: 1000 },
    storage: { nodes: NODES.map((id) => ({ id })), readWaitMs: 1000 },
    gateway: { gateways: [{ id: GATEWAY, host: '127.0.0.1', port: 7380 }], valueBytesMax: VALUE_BYTES_MAX, writeTimeoutMs: 4000, readTimeoutMs: 3000 },
  });
  assertPayloadBounds(config, maxPayloadBytes);
  return config;
}

interface Proc {
  id: string;
  inc: Incarnation;
  replica?: Replica;
  node?: StorageNode;
}

/**
 * One seed of the whole-cluster simulation: 3 consensus replicas (the real `Replica`), 2 storage
 * nodes (the real `StorageNode`), one gateway's read and write paths (`WritePath`, `ReadPath`,
 * `ReadIndexClient`, `KvSession`) and clients, in this process, on one SimScheduler and one
 * SimNetwork, each process on its own SimDisk (docs/reliability.md "Whole-cluster simulation").
 * Invariants checked while it runs: one leader per term (on role changes), the same entry at each
 * index on every storage node, nothing sent over max_payload; at the end: the clients' history is
 * linearizable (libs/checker) and, after the faults stop, every operation succeeds and every
 * process converges within `convergeMs`.
 */
export class ClusterSim {
  private readonly sched: SimScheduler;
  private readonly net: SimNetwork;
  private readonly rnd: Random;
  private readonly config: ClusterConfig;
  private readonly subjects = new Subjects('sim');
  /** One simulated disk per process, kept across its incarnations. */
  private readonly disks = new Map<string, SimDisk>();
  private readonly log: Logger;
  private readonly procs = new Map<string, Proc>();
  private readonly leaders = new Map<number, string>();
  /** Index → hash of (term, type, data) of the entry the first storage node applied there. */
  private readonly appliedAt = new Map<number, string>();
  private readonly history: HistoryRecorder;
  private failure: string | null = null;
  private readonly faults: Record<string, number> = {};
  private sessions: KvSession[] = [];
  private stopClients = false;
  private calm = false;
  /** Set when the faults end: from then on a process that takes its fatal path is restarted at once. */
  private faultsEnded = false;
  private calmFailures: string[] = [];
  /** Client operations started in the calm phase and not answered yet. */
  private calmPending = 0;
  private readonly o: Required<Omit<SimOptions, 'bugs' | 'logLevel' | 'logLevelEcho'>> & { bugs: BugSwitches; logLevelEcho?: boolean };

  constructor(opts: SimOptions) {
    this.o = { faultyMs: 800, calmMs: 500, convergeMs: 10_000, faultGapMsMin: 50, faultGapMsMax: 300, tickMs: opts.seed % 4 === 0 ? 10 : 25, clients: 4, keys: 8, maxPayloadBytes: 576 * 1024, bugs: {}, ...opts };
    this.sched = new SimScheduler(opts.seed);
    this.rnd = seededRandom((opts.seed * 2654435761) >>> 0);
    this.net = new SimNetwork(this.sched, { maxPayloadBytes: this.o.maxPayloadBytes, latencyMsMin: 1, latencyMsMax: 4 });
    this.config = simConfig(this.o.maxPayloadBytes, this.o.tickMs);
    // Warnings and worse are read by the simulator: a message over max_payload that a component
    // tried to send is a violated invariant (publishSafe / serveRequests drop it and log it).
    this.log = pino({ level: opts.logLevel ?? 'warn', base: null, timestamp: false }, { write: (line: string) => this.onLog(line) });
    this.history = new HistoryRecorder(() => this.sched.nowMs);
  }

  /** Runs the seed to the end and removes its files. Never throws: a failure is in the result. */
  async run(): Promise<SimResult> {
    try {
      await this.runPhases();
    } catch (e) {
      this.failure ??= e instanceof SimInvariantError ? e.message : `exception: ${(e as Error)?.stack ?? String(e)}`;
    } finally {
      this.stopClients = true;
      for (const p of this.procs.values()) this.crash(p);
    }
    const ops = this.history.operations();
    let check: CheckResult | null = null;
    if (!this.failure) {
      check = checkHistory(ops, { timeoutMs: 30_000 });
      if (!check.ok) this.failure = `history not linearizable: ${JSON.stringify(check.violations.slice(0, 2))}${check.unknown ? ' (checker budget exceeded)' : ''}`;
    }
    const bugs = Object.entries(this.o.bugs)
      .filter(([, v]) => v)
      .map(([k]) => `CAIRN_SIM_BUG=${k} `)
      .join('');
    return {
      seed: this.o.seed,
      failure: this.failure,
      replay: `${bugs}CAIRN_SIM_SEED=${this.o.seed} npx jest -c tools/sim/jest.config.js`,
      virtualMs: this.sched.nowMs - 1_000_000,
      steps: this.sched.steps,
      operations: ops.length,
      okOperations: ops.filter((o) => o.outcome === 'ok').length,
      faults: this.faults,
      network: { ...this.net.stats },
      disk: this.diskStats(),
      check,
    };
  }

  private async runPhases(): Promise<void> {
    for (const id of REPLICAS) await this.startReplica(id);
    for (const id of NODES) await this.startNode(id);
    await this.startGateway();
    for (let c = 0; c < this.o.clients; c++) void this.client(c);
    const faultyEnd = this.sched.nowMs + this.o.faultyMs;
    await this.runUntil(faultyEnd, true);
    await this.endFaults();
    this.calm = true;
    await this.runUntil(faultyEnd + this.o.calmMs, false);
    this.stopClients = true;
    const convergeEnd = faultyEnd + this.o.calmMs + this.o.convergeMs;
    await this.largeValueSweep(convergeEnd);
    await this.awaitConverged(convergeEnd);
    if (this.calmFailures.length) throw new SimInvariantError(`after the faults ended, ${this.calmFailures.length} operations failed; first: ${this.calmFailures[0]}`);
    if (this.calmPending) throw new SimInvariantError(`${this.calmPending} operations started after the faults ended were still unanswered ${this.o.calmMs + this.o.convergeMs} ms later`);
  }

  // ---- processes -----------------------------------------------------------------------------

  private world(inc: Incarnation): World {
    return { clock: inc.clock, random: seededRandom(Math.floor(this.rnd.float() * 2 ** 32)) };
  }

  /** What every simulated process gets: its files, its end of the bus, its world, a logger the simulator reads, a fatal path that fails the seed. */
  private processDeps(id: string, inc: Incarnation) {
    return {
      id,
      dataDir: join(DATA_ROOT, id),
      disk: this.diskOf(id).view(inc),
      bus: this.net.connect(inc),
      world: this.world(inc),
      subjects: this.subjects,
      log: this.log.child({ process: id }),
      onFatal: (e: unknown) => this.onFatal(id, inc, e),
    };
  }

  private async startReplica(id: string): Promise<void> {
    const inc = this.sched.incarnation(id);
    const replica = new Replica({
      ...this.processDeps(id, inc),
      voters: REPLICAS,
      storage: NODES,
      config: this.config.consensus,
      coalesceRaftMessages: this.o.bugs.coalesceRaftMessages,
      onSoftState: (ss) => this.checkLeader(id, inc, ss),
    });
    this.procs.set(id, { id, inc, replica });
    // A start that fails on an injected disk fault is a process that exits at start-up (onFatal).
    await replica.start().catch((e: unknown) => this.onFatal(id, inc, e));
  }

  private async startNode(id: string): Promise<void> {
    const inc = this.sched.incarnation(id);
    const node = new StorageNode({
      ...this.processDeps(id, inc),
      replicaIds: REPLICAS,
      config: this.config.storage,
      onApplied: (entries) => this.onApplied(id, entries),
      unboundedReadReplies: this.o.bugs.unboundedReadReplies,
    });
    this.procs.set(id, { id, inc, node });
    await node.start().catch((e: unknown) => this.onFatal(id, inc, e));
  }

  private async startGateway(): Promise<void> {
    const inc = this.sched.incarnation(GATEWAY);
    const world = this.world(inc);
    const bus = this.net.connect(inc);
    const g = this.config.gateway;
    const log = this.log.child({ process: GATEWAY });
    const view = new ClusterView(inc.clock);
    view.start(bus, this.subjects);
    const writes = new WritePath(bus, this.subjects, view, g, log, world);
    const reads = new ReadPath(bus, this.subjects, view, g, log, world);
    const readIndex = new ReadIndexClient({ nc: bus, subjects: this.subjects, view, log, world }, g);
    const paths = { reads, readIndex, writes, limits: { keyBytesMax: g.keyBytesMax, valueBytesMax: g.valueBytesMax } };
    this.sessions = Array.from({ length: this.o.clients }, () => new KvSession(paths));
    this.procs.set(GATEWAY, { id: GATEWAY, inc });
  }

  private diskOf(id: string): SimDisk {
    let d = this.disks.get(id);
    if (!d) {
      this.disks.set(id, (d = new SimDisk(this.sched, seededRandom(Math.floor(this.rnd.float() * 2 ** 32)))));
      d.faults.tornWriteRate = TORN_WRITE_RATE;
    }
    return d;
  }

  private diskStats(): DiskStats {
    const sum: DiskStats = { writes: 0, fsyncs: 0, fsyncErrors: 0, enospc: 0, crashes: 0, lostWrites: 0, tornWrites: 0 };
    for (const d of this.disks.values()) for (const k of Object.keys(sum) as (keyof DiskStats)[]) sum[k] += d.stats[k];
    return sum;
  }

  /**
   * A process took its fatal path. After an injected disk fault (fsync EIO, ENOSPC) that is what
   * production does (exit, supervisor restart): the simulator crashes it, and a later fault (or,
   * once the faults have ended, the supervisor at once) restarts it. Anything else fails the seed. A dead incarnation's late errors are ignored.
   */
  private onFatal(id: string, inc: Incarnation, e: unknown): void {
    if (!inc.alive) return;
    const message = (e as Error)?.message ?? String(e);
    const p = this.procs.get(id);
    if (/simulated disk/.test(message) && /EIO|ENOSPC/.test(message) && p?.inc === inc) {
      this.count('disk-fatal');
      this.crash(p);
      // A fault drawn before the faults ended (e.g. during a restart then under way) can land after;
      // once calm, the supervisor restarts the process at once.
      if (this.faultsEnded) void this.restart(id);
      return;
    }
    this.failure ??= `${id} stopped on a fatal error: ${message}`;
  }

  /** A crash: the incarnation dies (timers, subscriptions, pending disk completions with it) and its disk loses what was not fsynced. */
  private crash(p: Proc): void {
    if (!p.inc.alive) return;
    p.inc.kill();
    this.disks.get(p.id)?.crash();
    // Releases its handles; it never finishes (its disk completions died with it), which is fine.
    void p.replica?.abandon().catch(() => undefined);
    void p.node?.abandon().catch(() => undefined);
  }

  private async restart(id: string): Promise<void> {
    if (REPLICAS.includes(id)) await this.startReplica(id);
    else await this.startNode(id);
  }

  // ---- the event loop ------------------------------------------------------------------------

  /** Steps the scheduler to `untilMs`; after each event, lets the promise chains it resumed run (no real I/O is left to wait for). */
  private async runUntil(untilMs: number, faulty: boolean): Promise<void> {
    let nextFaultMs = faulty ? this.sched.nowMs + this.faultGapMs() : Infinity;
    while (!this.failure) {
      const next = this.sched.nextAtMs();
      if (nextFaultMs <= Math.min(next, untilMs)) {
        this.sched.nowMs = nextFaultMs;
        await this.injectFault();
        nextFaultMs = this.sched.nowMs + this.faultGapMs();
        continue;
      }
      if (next > untilMs) {
        this.sched.nowMs = untilMs;
        return;
      }
      this.sched.step();
      await this.settle();
    }
  }

  private settle(): Promise<void> {
    return new Promise<void>((r) => setImmediate(r));
  }

  // ---- faults --------------------------------------------------------------------------------

  private faultGapMs(): number {
    return this.o.faultGapMsMin + Math.floor(this.rnd.float() * (this.o.faultGapMsMax - this.o.faultGapMsMin));
  }

  private count(kind: string): void {
    this.faults[kind] = (this.faults[kind] ?? 0) + 1;
  }

  /** One fault, drawn from the mix documented in docs/reliability.md. */
  private async injectFault(): Promise<void> {
    const f = this.net.faults;
    const r = this.rnd.float();
    const all = [...REPLICAS, ...NODES];
    const pick = <T>(xs: T[]): T => xs[Math.floor(this.rnd.float() * xs.length)];
    if (r < 0.25) {
      // Network weather: loss, duplication, reordering, latency.
      const weather: Partial<NetworkFaults> = { dropRate: pick([0, 0, 0.02, 0.1]), duplicateRate: pick([0, 0.02, 0.05]), reorderRate: pick([0, 0.05, 0.2]), latencyMsMax: pick([4, 10, 40]) };
      Object.assign(f, weather);
      this.count('network-weather');
    } else if (r < 0.45) {
      const a = pick(all);
      const others = all.filter((x) => x !== a);
      // The gateway stays with the majority side, or alone on its side for a minority cut.
      this.net.partition([a], [...others, GATEWAY]);
      this.count('partition');
    } else if (r < 0.55) {
      this.net.heal();
      this.count('heal');
    } else if (r < 0.72) {
      const down = [...this.procs.values()].filter((p) => !p.inc.alive && p.id !== GATEWAY);
      if (down.length && this.rnd.float() < 0.6) {
        const p = pick(down);
        // Not awaited: with disk latency, start-up needs the scheduler to run.
        void this.restart(p.id);
        this.count('restart');
      } else {
        const up = [...this.procs.values()].filter((p) => p.inc.alive && p.id !== GATEWAY);
        // At most one replica and one storage node down at a time: the cluster can still make progress.
        const downReplicas = down.filter((p) => REPLICAS.includes(p.id)).length;
        const downNodes = down.filter((p) => NODES.includes(p.id)).length;
        const candidates = up.filter((p) => (REPLICAS.includes(p.id) ? downReplicas === 0 : downNodes === 0));
        if (candidates.length) {
          this.crash(pick(candidates));
          this.count('crash');
        }
      }
    } else if (r < 0.84) {
      this.diskWeather(pick(all));
    } else {
      // The next writes carry large values: Append batches, ship batches and read replies near max_payload.
      this.count('large-values-burst');
      this.burst = 8;
    }
  }

  /** Disk faults on one process's disk until the next disk fault or the end of the faults: fsync errors, ENOSPC, latency, or healthy again. */
  private diskWeather(id: string): void {
    const pick = <T>(xs: T[]): T => xs[Math.floor(this.rnd.float() * xs.length)];
    const weather: Partial<DiskFaults> = { fsyncErrorRate: pick([0, 0, 0.01, 0.05]), enospcRate: pick([0, 0, 0.01, 0.05]), latencyMsMax: pick([0, 0, 1, 5]) };
    Object.assign(this.diskOf(id).faults, weather);
    this.count('disk-weather');
  }

  private async endFaults(): Promise<void> {
    this.faultsEnded = true;
    for (const d of this.disks.values()) Object.assign(d.faults, { fsyncErrorRate: 0, enospcRate: 0, latencyMsMax: 0 });
    Object.assign(this.net.faults, { dropRate: 0, duplicateRate: 0, reorderRate: 0, latencyMsMax: 4, maxPayloadBytes: this.o.maxPayloadBytes });
    this.net.heal();
    for (const p of [...this.procs.values()]) if (!p.inc.alive) await this.restart(p.id);
  }

  // ---- clients -------------------------------------------------------------------------------

  /** Large writes to come (a burst after a large-values fault). */
  private burst = 0;

  private value(client: number, n: number): string {
    const tag = `c${client}-${n}-`;
    const large = this.burst > 0 || this.rnd.float() < 0.03;
    if (large && this.burst > 0) this.burst--;
    const bytes = large ? 32 * 1024 + Math.floor(this.rnd.float() * (VALUE_BYTES_MAX - 32 * 1024 - 64)) : 8;
    return tag + 'v'.repeat(bytes);
  }

  private async client(c: number): Promise<void> {
    const session = this.sessions[c];
    const gw = this.procs.get(GATEWAY)!.inc.clock;
    let n = 0;
    while (!this.stopClients && !this.failure) {
      await sleep(gw, 5 + Math.floor(this.rnd.float() * 40));
      if (this.stopClients) return;
      const key = `k${Math.floor(this.rnd.float() * this.o.keys)}`;
      const kb = Buffer.from(key);
      const r = this.rnd.float();
      const calm = this.calm;
      if (calm) this.calmPending++;
      if (r < 0.45) {
        const id = this.history.invoke(c, 'get', key);
        const res = await session.get(kb);
        if (!this.recordGet(id, res) && calm) this.calmFailures.push(`get ${key}: ${Status[res.status]} ${res.message}`);
      } else {
        const del = r > 0.9;
        const value = del ? undefined : this.value(c, n++);
        const id = this.history.invoke(c, del ? 'delete' : 'put', key, value);
        const res = del ? await session.del(kb) : await session.set(kb, Buffer.from(value!));
        if (res.status === Status.Ok) this.history.ok(id);
        else this.history.info(id); // UNAVAILABLE may hide an applied write
        if (calm && res.status !== Status.Ok) this.calmFailures.push(`${del ? 'del' : 'set'} ${key}: ${Status[res.status]} ${res.message}`);
      }
      if (calm) this.calmPending--;
    }
  }

  /** Records a get's completion; a failed read changed nothing (fail). @returns whether it succeeded. */
  private recordGet(id: number, res: { status: Status; value: Uint8Array }): boolean {
    if (res.status === Status.Ok) this.history.ok(id, Buffer.from(res.value).toString());
    else if (res.status === Status.NotFound) this.history.ok(id, null);
    else this.history.fail(id);
    return res.status === Status.Ok || res.status === Status.NotFound;
  }

  /**
   * After the calm phase: one writer puts a value near valueBytesMax on every key, then one reader
   * per key reads them all at once, so one storage node's read reply would be several times
   * max_payload if it were not bounded. Every operation must succeed by `deadlineMs`.
   */
  private async largeValueSweep(deadlineMs: number): Promise<void> {
    const sweep = async (): Promise<void> => {
      const writer = this.sessions[0];
      for (let k = 0; k < this.o.keys; k++) {
        const key = `k${k}`;
        const value = `sweep-${k}-` + 'w'.repeat(VALUE_BYTES_MAX - 1024);
        const id = this.history.invoke(1000, 'put', key, value);
        const res = await writer.set(Buffer.from(key), Buffer.from(value));
        if (res.status === Status.Ok) this.history.ok(id);
        else {
          this.history.info(id);
          this.calmFailures.push(`sweep set ${key}: ${Status[res.status]} ${res.message}`);
        }
      }
      await Promise.all(
        Array.from({ length: this.o.keys }, async (_, k) => {
          const key = `k${k}`;
          const id = this.history.invoke(1001 + k, 'get', key);
          const res = await this.sessions[k % this.sessions.length].get(Buffer.from(key));
          if (!this.recordGet(id, res)) this.calmFailures.push(`sweep get ${key}: ${Status[res.status]} ${res.message}`);
        }),
      );
    };
    let done = false;
    void sweep().then(
      () => (done = true),
      (e: unknown) => (this.failure ??= `sweep: ${String(e)}`),
    );
    while (!done && !this.failure && this.sched.nowMs < deadlineMs) {
      if (!this.sched.step()) break;
      await this.settle();
    }
    if (!done && !this.failure) throw new SimInvariantError(`the large-value sweep did not finish ${this.o.calmMs + this.o.convergeMs} ms after the faults ended`);
  }

  /** Every message fits max_payload: a log line about one that did not is a failure. */
  private onLog(line: string): void {
    if (this.o.logLevelEcho) process.stderr.write(line);
    let rec: { msg?: string; maxPayloadBytes?: number; subject?: string; bytes?: number; process?: string };
    try {
      rec = JSON.parse(line) as typeof rec;
    } catch {
      return;
    }
    if (rec.maxPayloadBytes !== undefined) {
      this.failure ??= `${rec.process ?? '?'} tried to send ${rec.bytes} bytes on ${rec.subject}, over max_payload ${rec.maxPayloadBytes}: ${rec.msg}`;
    }
  }

  // ---- invariants ----------------------------------------------------------------------------

  /**
   * Election safety (Raft §5.2): at most one leader per term, over the whole run. Checked on each
   * soft-state change a replica's Ready carries (a leader acts only through its Readies), not after
   * every event: role changes are rare, events are not.
   */
  private checkLeader(id: string, inc: Incarnation, ss: { role: string; term: number }): void {
    if (ss.role !== 'leader' || !inc.alive) return;
    const had = this.leaders.get(ss.term);
    if (had && had !== id) this.failure ??= `two leaders in term ${ss.term}: ${had} and ${id}`;
    this.leaders.set(ss.term, id);
  }

  /** Every storage node applies the same entry at each index (state machine safety, Raft §5.4.3). */
  private onApplied(id: string, entries: readonly WireEntry[]): void {
    for (const e of entries) {
      const h = createHash('sha1').update(`${e.term}:${e.type}:`).update(e.data).digest('hex');
      const had = this.appliedAt.get(e.index);
      if (had === undefined) this.appliedAt.set(e.index, h);
      else if (had !== h) this.failure ??= `storage node ${id} applied a different entry at index ${e.index} than another node`;
    }
  }

  /**
   * Steps the scheduler until every replica has the leader's commit index and every storage node
   * applied it, or `deadlineMs` passes (then throws what is still behind). Looks every 50 virtual ms.
   */
  private async awaitConverged(deadlineMs: number): Promise<void> {
    for (;;) {
      const behind = this.notConverged();
      if (!behind) return;
      if (this.failure) return;
      if (this.sched.nowMs >= deadlineMs) throw new SimInvariantError(`${behind}, ${this.o.calmMs + this.o.convergeMs} ms after the faults ended`);
      const lookMs = Math.min(deadlineMs, this.sched.nowMs + 50);
      while (!this.failure && this.sched.nextAtMs() <= lookMs) {
        this.sched.step();
        await this.settle();
      }
      this.sched.nowMs = Math.max(this.sched.nowMs, lookMs);
    }
  }

  /** @returns what is not converged yet (no leader, a replica or storage node behind its commit index), or null. */
  private notConverged(): string | null {
    if (this.calmPending) return `${this.calmPending} client operations unanswered`;
    let statuses;
    try {
      statuses = REPLICAS.map((id) => this.procs.get(id)!.replica!.status());
    } catch (e) {
      // A replica installing a leader's snapshot has its log closed for a moment (RaftLogStore.reset).
      return `a replica has no status: ${(e as Error).message}`;
    }
    const leader = statuses.find((s) => s.role === 'leader');
    if (!leader) return `no leader: ${statuses.map((s) => `${s.id}:${s.role}@${s.term}`).join(' ')}`;
    for (const s of statuses) {
      if (s.commitIndex < leader.commitIndex) return `replica ${s.id} commit index ${s.commitIndex} behind the leader's ${leader.commitIndex}`;
    }
    for (const id of NODES) {
      const st = this.procs.get(id)!.node!.status();
      if (st.appliedIndex < leader.commitIndex - 1) return `storage node ${id} applied ${st.appliedIndex}, behind the commit index ${leader.commitIndex}`;
    }
    return null;
  }
}
