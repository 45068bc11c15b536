import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { HistoryRecorder, checkHistory, checkLeases, type CheckResult, type LeaseCheckResult, type TtlRead, type TtlWrite } from '@cairn/checker';
import { parseClusterConfig, type ClusterConfig } from '@cairn/config';
import { Subjects, assertPayloadBounds } from '@cairn/messaging';
import type { Logger } from '@cairn/logging';
import pino from 'pino';
import { Opcode, REQUEST_HEADER_BYTES, RESPONSE_HEADER_BYTES, Status, decodeReadReply, encodeReadRequest, encodeRequest, type WireEntry, decodeMemberReply, encodeMemberRequest, type MemberRequest } from '@cairn/protocol';
import { SimDisk, SimNetwork, SimScheduler, seededRandom, sleep, type DiskFaults, type DiskStats, type Incarnation, type NetworkFaults, type Random, type World, type Clock, type Transport } from '@cairn/world';
// The simulator assembles the apps' own classes in one process (eslint.config.mjs: tools/sim may import apps).
import { Replica } from '../../../apps/consensus/src/replica/replica';
import { StorageNode } from '../../../apps/storage-node/src/node/storage-node';
import { ClusterView } from '../../../apps/gateway/src/cluster/cluster-view';
import { KvSession } from '../../../apps/gateway/src/paths/kv-session';
import { ReadIndexClient } from '../../../apps/gateway/src/paths/read-index';
import { ReadPath } from '../../../apps/gateway/src/paths/read-path';
import { WritePath } from '../../../apps/gateway/src/paths/write-path';
import { ClientConnection } from '../../../apps/gateway/src/server/client-connection';
import { ByteBudget, flowLimits } from '../../../apps/gateway/src/server/flow';
import { RespCommands } from '../../../apps/gateway/src/resp/commands';
import { RespConnection } from '../../../apps/gateway/src/resp/resp-connection';
import { respParserLimits } from '../../../apps/gateway/src/resp/resp-server';
import { SimSocket } from './sim-socket';

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
  /** Compact the Raft log every 100 ms down to 8 entries below the storage nodes (default: every 3rd seed; otherwise production-like, rarely within a seed). */
  compacting?: boolean;
  /** The replicas' consensus.asyncStorageWrites (default: on for even seeds, off — the production default — for odd ones, so both Ready loops are simulated). */
  asyncStorageWrites?: boolean;
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
  /** The TTL keys' check (libs/checker checkLeases), with how many were written; null when the seed failed before it. */
  ttl: (LeaseCheckResult & { writes: number }) | null;
  /** How often this seed reached the paths that only compaction opens (summed over every process incarnation). */
  reached: Reached;
  /** The most bytes the gateway held for its TLV clients at once (pendingBytesMax is GATEWAY_FLOW's). */
  pendingBytesPeak: number;
}

/** Counts of the compaction paths a seed went through. */
export interface Reached {
  /** A replica dropped a log prefix from disk (segments below its snapshot; Replica.counters.compactions). */
  compactions: number;
  /** A replica installed the leader's snapshot in place of its log (InstallSnapshot, Raft §7). */
  replicaSnapshots: number;
  /** A storage node installed a peer storage node's snapshot (bootstrap past a compacted log). */
  storageSnapshots: number;
}

/** A violated invariant: ends the seed at once. */
export class SimInvariantError extends Error {
  readonly code = 'SIM_INVARIANT';
  constructor(message: string) {
    super(message);
    this.name = 'SimInvariantError';
  }
}

/** The initial voters (config file). */
const REPLICAS = ['c1', 'c2', 'c3'];
/** Every replica id a seed may run: the initial voters and one spare that membership changes add. */
const ALL_REPLICAS = [...REPLICAS, 'c4'];
const NODES = ['s1', 's2'];
const GATEWAY = 'g1';
/** The operator's host: it sends membership requests (as `cairn member` does through a gateway). */
const OPERATOR = 'op';
/** The clients' host: never crashes; its clock bounds each client operation (a gateway that died never answers). */
const CLIENTS = 'clients';
/** Every host on the bus, for partitions. */
const HOSTS = [...ALL_REPLICAS, ...NODES, GATEWAY, OPERATOR];
/** A client gives up on an operation after this long without an answer (the gateway's own deadlines are 3–4 s), ms. */
const CLIENT_OP_TIMEOUT_MS = 6000;
/** Bound on one membership request (the catch-up wait is memberCatchUpTimeoutMs = 2 s), ms. */
const MEMBER_REQUEST_TIMEOUT_MS = 3000;
/** Largest client value, bytes: large enough that a few of them overflow one max_payload. */
const VALUE_BYTES_MAX = 160 * 1024;
/**
 * Share of the clients' operations that are on TTL keys instead (issue 12): a write of a fresh key
 * `ttl<n>` with a TTL of TTL_MS_MIN + [0, TTL_MS_SPREAD) ms, or a read of one whose expiry bound
 * (ack + TTL) has passed. They replace operations rather than add any, so a seed costs no more events.
 */
const TTL_OP_SHARE = 0.1;
const TTL_MS_MIN = 30;
const TTL_MS_SPREAD = 170;

/**
 * Keys the large-value sweep writes and then reads at once: 5 values of ~159 KiB are ~1.4 times
 * the 576 KiB max_payload in one read batch (enough to need the reply bound, and to find
 * unboundedReadReplies), at 5/8 of the cost of sweeping all 8 keys (the sweep was ~30 % of a seed).
 */
const SWEEP_KEYS = 5;
/**
 * The gateway's byte bounds and connection deadlines in the simulation: small enough that one
 * client that stops reading crosses them within a seed (pendingBytesMax at the schema's least,
 * 1 MiB; a few large values), and that the frame deadline, the close timeout and the idle timeout
 * (the schema's least, 1 s) fire within a seed.
 */
const GATEWAY_FLOW = { pendingBytesMax: 1024 * 1024, connectionReplyBytesMax: 128 * 1024, connectionRequestBytesMax: 512 * 1024, frameDeadlineMs: 200, closeTimeoutMs: 100, idleTimeoutMs: 1000 };
/** GETs a client that stops reading pipelines in one write (every key, 8 times over). */
const STALLED_GETS = 64;
/** MGETs of RESP_MGET_KEYS keys a RESP client that stops reading pipelines in one write. */
const STALLED_MGETS = 16;
const RESP_MGET_KEYS = 4;
/** Bytes a client that the gateway's deadlines close may hold unread (one error reply). */
const DEADLINE_CLIENT_BYTES_MAX = 1024;

/** The gateway-wide ByteBudget, recording the most bytes it ever held and how long it was over its bound (virtual ms). */
class WatchedBudget extends ByteBudget {
  maxUsed = 0;
  private overSinceMs: number | null = null;
  private overMsDone = 0;
  constructor(
    bytesMax: number,
    private readonly nowMs: () => number,
  ) {
    super(bytesMax);
  }
  override take(bytes: number): void {
    super.take(bytes);
    this.maxUsed = Math.max(this.maxUsed, this.used());
    if (this.over() && this.overSinceMs === null) this.overSinceMs = this.nowMs();
  }
  override give(bytes: number): void {
    super.give(bytes);
    if (!this.over() && this.overSinceMs !== null) {
      this.overMsDone += this.nowMs() - this.overSinceMs;
      this.overSinceMs = null;
    }
  }
  /** Virtual ms spent over bytesMax so far: every connection stopped reading then, so its frame deadline did not run. */
  overMs(): number {
    return this.overMsDone + (this.overSinceMs === null ? 0 : this.nowMs() - this.overSinceMs);
  }
}

/** How a client of the gateway's doors misbehaves (a share of the door-client faults). */
type DoorClientKind = 'client-stops-reading' | 'resp-stops-reading' | 'slow-sender' | 'idle-client' | 'protocol-error-unread';
const DOOR_CLIENT_KINDS: readonly DoorClientKind[] = ['client-stops-reading', 'resp-stops-reading', 'slow-sender', 'idle-client', 'protocol-error-unread'];

/** A door client that the gateway must close by one of its deadlines, within [deadlineMs, deadlineMs + the time reading was stopped] of `fromMs`. */
interface DeadlineClient {
  kind: DoorClientKind;
  sock: SimSocket;
  fromMs: number;
  deadlineMs: number;
  overMsAtStart: number;
  overMsAtClose: number | null;
}

/** One RESP command as a client sends it (an array of bulk strings). */
function respCommand(args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** Virtual time the final storage comparison may take after convergence, ms. */
const STORAGE_CHECK_MS = 2000;

/** Where the processes' files go on their simulated disks. */
const DATA_ROOT = '/sim';
/** ClusterSim runs started in this worker process (dataDirFor). */
let simRuns = 0;
/** Share of crashes that tear a file's unsynced writes (a prefix survives) instead of losing them all. */
const TORN_WRITE_RATE = 0.5;

/**
 * Compaction on a seed that compacts: every 100 ms, keeping 8 entries below what every storage
 * node durably applied, in 64 KiB log segments (the least the schema accepts: the log drops whole
 * segments only, so with production's 64 MiB the entries stay on disk and a fetch still finds them),
 * so a wiped storage node finds its entries gone (Raft §7) and bootstraps from its peer's snapshot,
 * and a lagging replica gets the leader's snapshot. Also the smallest log cache (64 KiB, a few big
 * values), so Appends to a lagging replica and compaction read entries back from the segment files.
 */
const COMPACTION = { compactionIntervalMs: 100, logRetainedEntries: 8, segmentBytesMax: 64 * 1024, logCacheBytesMax: 64 * 1024 };

function simConfig(maxPayloadBytes: number, tickMs: number, compacting: boolean, asyncStorageWrites: boolean): ClusterConfig {
  const config = parseClusterConfig({
    clusterName: 'sim',
    nats: { servers: ['nats://sim.invalid:4222'] },
    consensus: {
      replicas: REPLICAS.map((id) => ({ id })),
      tickMs,
      electionTimeoutMinMs: 150,
      heartbeatIntervalMs: 50,
      msgBytesMax: 64 * 1024,
      entriesPerMsgMax: 64,
      memberCatchUpTimeoutMs: 2000,
      asyncStorageWrites,
      ...(compacting ? COMPACTION : { compactionIntervalMs: 1000 }),
    },
    storage: { nodes: NODES.map((id) => ({ id })), readWaitMs: 1000 },
    gateway: { gateways: [{ id: GATEWAY, host: '127.0.0.1', port: 7380 }], valueBytesMax: VALUE_BYTES_MAX, txnResultBytesMax: 256 * 1024, writeTimeoutMs: 4000, readTimeoutMs: 3000, ...GATEWAY_FLOW },
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
 * `ReadIndexClient`, `KvSession`; its TLV and RESP doors' `ClientConnection` / `RespConnection`
 * for clients that stop reading or that the gateway's deadlines must close) and clients, in this process, on one SimScheduler and one
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
  /** The operator's end of the bus (membership requests). */
  private readonly operator: Transport;
  /** The clients' clock: bounds each operation, whatever happens to the gateway. */
  private readonly clientClock: Clock;
  /** Set while a membership request is in flight: one at a time, as an operator would. */
  private memberBusy = false;
  /** Disk stats of disks that were wiped (data dir lost), kept for the totals. */
  private readonly wipedStats: DiskStats[] = [];
  /** One simulated disk per process, kept across its incarnations. */
  private readonly disks = new Map<string, SimDisk>();
  /** The data dir on its disk of each process's latest incarnation (dataDirFor). */
  private readonly dataDirs = new Map<string, string>();
  /** Incarnations started so far (names the data dirs). */
  private incarnations = 0;
  /** This run's number in the worker process (names the data dirs). */
  private readonly runId = ++simRuns;
  private readonly log: Logger;
  private readonly procs = new Map<string, Proc>();
  /** Counters of incarnations that ended (added at crash time; every process is crashed at the end of a seed). */
  private readonly reached: Reached = { compactions: 0, replicaSnapshots: 0, storageSnapshots: 0 };
  private readonly leaders = new Map<number, string>();
  /** Index → hash of (term, type, data) of the entry the first storage node applied there. */
  private readonly appliedAt = new Map<number, string>();
  private readonly history: HistoryRecorder;
  /** TTL keys written (acknowledged) and read, for checkLeases; their own Random, so the choices replay. */
  private readonly ttlWrites: TtlWrite[] = [];
  private readonly ttlReads: TtlRead[] = [];
  private ttlKeys = 0;
  private readonly ttlRnd: Random;
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
    this.o = { faultyMs: 800, calmMs: 500, convergeMs: 10_000, faultGapMsMin: 50, faultGapMsMax: 300, tickMs: opts.seed % 4 === 0 ? 10 : 25, compacting: opts.seed % 3 !== 1, asyncStorageWrites: opts.seed % 2 === 0, clients: 4, keys: 8, maxPayloadBytes: 576 * 1024, bugs: {}, ...opts };
    this.sched = new SimScheduler(opts.seed);
    this.rnd = seededRandom((opts.seed * 2654435761) >>> 0);
    this.ttlRnd = seededRandom((opts.seed * 2246822519) >>> 0);
    this.net = new SimNetwork(this.sched, { maxPayloadBytes: this.o.maxPayloadBytes, latencyMsMin: 1, latencyMsMax: 4 });
    this.config = simConfig(this.o.maxPayloadBytes, this.o.tickMs, this.o.compacting, this.o.asyncStorageWrites);
    this.operator = this.net.connect(this.sched.incarnation(OPERATOR));
    this.clientClock = this.sched.incarnation(CLIENTS).clock;
    // Warnings and worse are read by the simulator (snapshot bootstraps are counted from them).
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
    let ttl: SimResult['ttl'] = null;
    if (!this.failure) {
      check = checkHistory(ops, { timeoutMs: 30_000 });
      if (!check.ok) this.failure = `history not linearizable: ${JSON.stringify(check.violations.slice(0, 2))}${check.unknown ? ' (checker budget exceeded)' : ''}`;
      // One virtual clock for the clients, the gateway and the storage nodes: no drift bound needed.
      ttl = { ...checkLeases({ writes: this.ttlWrites, reads: this.ttlReads }), writes: this.ttlWrites.length };
      if (!this.failure && !ttl.ok) this.failure = `TTL keys: ${ttl.violations.length} expired keys returned; first: ${ttl.violations[0].message}`;
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
      ttl,
      reached: { ...this.reached },
      pendingBytesPeak: Math.max(this.pendingBytesPeak, this.door?.budget.maxUsed ?? 0),
    };
  }

  private async runPhases(): Promise<void> {
    for (const id of REPLICAS) await this.startReplica(id);
    for (const id of NODES) await this.startNode(id);
    await this.startGateway();
    // A compacting seed starts with large writes: they fill the first log segments, so compaction
    // can drop them (whole segments only) early enough for a wiped storage node or a crashed
    // replica to find its entries gone.
    if (this.o.compacting) this.burst = 8;
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
    await this.checkStorageAgrees(convergeEnd + STORAGE_CHECK_MS);
    await this.checkDoorDeadlines();
    await this.checkPendingBytes();
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
      dataDir: this.dataDirFor(id),
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
      // A replica that joins (the spare, or a removed one back with an empty disk) is not in its own
      // initial configuration: it never campaigns and learns the real one from the leader's log.
      voters: this.joiners.has(id) ? REPLICAS.filter((r) => r !== id) : REPLICAS,
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
      replicaIds: ALL_REPLICAS,
      config: this.config.storage,
      onApplied: (entries) => this.onApplied(id, entries),
      unboundedReadReplies: this.o.bugs.unboundedReadReplies,
    });
    this.procs.set(id, { id, inc, node });
    await node.start().catch((e: unknown) => this.onFatal(id, inc, e));
  }

  /** Replicas that start with an empty disk and join through a membership change. */
  private readonly joiners = new Set<string>(ALL_REPLICAS.filter((r) => !REPLICAS.includes(r)));

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
    this.closeStalled();
    // Clients of a lost gateway: its deadlines died with it, nothing is left to check on them.
    for (const c of this.deadlined) if (c.sock.closedAtMs === null) c.sock.destroy();
    this.deadlined = [];
    this.pendingBytesPeak = Math.max(this.pendingBytesPeak, this.door?.budget.maxUsed ?? 0);
    const resp = new RespCommands({ gatewayId: GATEWAY, version: 'sim', startedAtMs: inc.clock.nowMs(), respPort: 0, view, connections: () => 0, now: () => inc.clock.nowMs() }, g.keysPerCommandMax);
    this.door = { budget: new WatchedBudget(g.pendingBytesMax, () => this.sched.nowMs), paths, resp, clock: inc.clock };
  }

  /** The current gateway's TLV and RESP doors: its byte budget, paths and clock (ClientConnection and RespConnection over SimSockets). */
  private door: { budget: WatchedBudget; paths: { reads: ReadPath; readIndex: ReadIndexClient; writes: WritePath; limits: { keyBytesMax: number; valueBytesMax: number } }; resp: RespCommands; clock: Clock } | null = null;
  /** Clients that stopped reading, on the current gateway, with the bytes the budget invariant allows each. */
  private stalled: { sock: SimSocket; allowanceBytes: number }[] = [];
  /** Clients the current gateway must close by a deadline (frame, idle, close timeout). */
  private deadlined: DeadlineClient[] = [];
  /** The most bytes a gateway incarnation's budget held (the current one's is added at the end). */
  private pendingBytesPeak = 0;
  /** The largest sum of the allowances of door clients open at once. */
  private stalledAllowancePeak = 0;
  /** The most clients that stopped reading at once. */
  private stalledPeak = 0;

  /**
   * The gateway's byte bound with clients that stop reading (docs/protocol.md, "Connection limits
   * and backpressure"): it stops reading every connection once over pendingBytesMax, so the
   * request that crosses it is the last one taken; a reply still arriving for a connection that
   * does not read is queued only while that connection holds at most connectionReplyBytesMax
   * (then it is replaced by a small error). @throws SimInvariantError when the peak is above that,
   * or when bytes are still held after every such client closed and the gateway's own deadlines
   * (readTimeoutMs, writeTimeoutMs) for its requests passed.
   */
  private async checkPendingBytes(): Promise<void> {
    const g = this.config.gateway;
    const peak = Math.max(this.pendingBytesPeak, this.door?.budget.maxUsed ?? 0);
    // The request that crosses pendingBytesMax: a TLV GET's frame, or a RESP MGET's keys and the values it reserves.
    const crossing = Math.max(REQUEST_HEADER_BYTES + g.keyBytesMax + g.valueBytesMax, 5 + RESP_MGET_KEYS * (g.keyBytesMax + g.valueBytesMax));
    const bound = g.pendingBytesMax + crossing + this.stalledAllowancePeak;
    if (peak > bound) throw new SimInvariantError(`the gateway held ${peak} bytes for its clients, above pendingBytesMax ${g.pendingBytesMax} and its allowance (bound ${bound}, ${this.stalledPeak} clients not reading at once)`);
    const budget = this.door?.budget;
    const deadlineMs = this.sched.nowMs + Math.max(g.readTimeoutMs, g.writeTimeoutMs) + 1000;
    while (budget && budget.used() > 0 && !this.failure && this.sched.nowMs < deadlineMs) {
      if (!this.sched.step()) break;
      await this.settle();
    }
    const held = budget?.used() ?? 0;
    if (held !== 0) throw new SimInvariantError(`the gateway still holds ${held} bytes for clients after every connection closed`);
  }

  /**
   * A client of the gateway's doors that misbehaves (the real ClientConnection / RespConnection and
   * ConnectionFlow on a SimSocket, on the gateway incarnation's clock), one kind drawn:
   * - client-stops-reading: TLV, pipelines STALLED_GETS GETs in one write and never reads;
   * - resp-stops-reading: RESP, pipelines STALLED_MGETS MGETs of RESP_MGET_KEYS keys and never reads;
   * - slow-sender: TLV, sends half a GET frame and nothing more (frameDeadlineMs must close it);
   * - idle-client: TLV, one PING, reads its reply, then silence (idleTimeoutMs must close it);
   * - protocol-error-unread: TLV, stops reading and sends a frame with a bad magic byte (its error
   *   reply is never read: closeTimeoutMs must close it).
   * The gateway must hold at most pendingBytesMax plus the crossing request plus, per client not
   * reading, connectionReplyBytesMax and one reply (checkPendingBytes); the last three must be
   * closed by their deadline (checkDoorDeadlines). Clients that stop reading close when the faults
   * end, the gateway's idle timeout closes them, or they go with the gateway.
   */
  private async doorClient(): Promise<void> {
    const d = this.door;
    if (!d || !this.procs.get(GATEWAY)!.inc.alive) return;
    const kind = this.pick(DOOR_CLIENT_KINDS);
    const g = this.config.gateway;
    const sock = new SimSocket(d.clock);
    if (kind === 'resp-stops-reading') {
      sock.setClientReading(false);
      new RespConnection(sock, 0, { paths: d.paths, parserLimits: respParserLimits(g), commands: d.resp, inflightMax: g.inflightPerConnectionMax, flow: flowLimits(g), budget: d.budget, onClose: () => undefined, clock: d.clock });
      const mgets = Array.from({ length: STALLED_MGETS }, (_, i) => respCommand(['MGET', ...Array.from({ length: RESP_MGET_KEYS }, (_, k) => `k${(i + k) % this.o.keys}`)]));
      sock.send(Buffer.from(mgets.join('') + respCommand(['PING'])));
      this.addStalled(sock, g.connectionReplyBytesMax + 5 + RESP_MGET_KEYS * (g.valueBytesMax + 16));
    } else {
      new ClientConnection(sock, { limits: d.paths.limits, inflightMax: g.inflightPerConnectionMax, flow: flowLimits(g), budget: d.budget, reads: d.paths.reads, readIndex: d.paths.readIndex, writes: d.paths.writes, status: () => ({}), onClose: () => undefined, clock: d.clock });
      if (kind === 'client-stops-reading') {
        sock.setClientReading(false);
        const frames = Array.from({ length: STALLED_GETS }, (_, i) => encodeRequest({ opcode: Opcode.Get, requestId: i + 1, key: Buffer.from(`k${i % this.o.keys}`), value: Buffer.alloc(0) }));
        sock.send(Buffer.concat(frames));
        this.addStalled(sock, g.connectionReplyBytesMax + RESPONSE_HEADER_BYTES + g.valueBytesMax);
      } else await this.deadlineClient(kind, sock);
    }
    this.count(kind);
  }

  private addStalled(sock: SimSocket, allowanceBytes: number): void {
    this.stalled.push({ sock, allowanceBytes });
    this.noteAllowance();
  }

  /** Records the sum of the allowances of the door clients open now (the budget invariant's per-client part). */
  private noteAllowance(): void {
    const open = this.stalled.filter((s) => s.sock.closedAtMs === null);
    const deadlined = this.deadlined.filter((c) => c.sock.closedAtMs === null).length;
    this.stalledPeak = Math.max(this.stalledPeak, open.length);
    this.stalledAllowancePeak = Math.max(this.stalledAllowancePeak, open.reduce((n, s) => n + s.allowanceBytes, 0) + deadlined * DEADLINE_CLIENT_BYTES_MAX);
  }

  /** A client that a gateway deadline must close (slow-sender, idle-client, protocol-error-unread); see doorClient. */
  private async deadlineClient(kind: DoorClientKind, sock: SimSocket): Promise<void> {
    const g = this.config.gateway;
    const budget = this.door!.budget;
    const get = encodeRequest({ opcode: Opcode.Get, requestId: 1, key: Buffer.from('k0'), value: Buffer.alloc(0) });
    if (kind === 'slow-sender') sock.send(get.subarray(0, REQUEST_HEADER_BYTES - 2));
    else if (kind === 'idle-client') sock.send(encodeRequest({ opcode: Opcode.Ping, requestId: 1, key: Buffer.alloc(0), value: Buffer.alloc(0) }));
    else {
      sock.setClientReading(false);
      get[0] ^= 0xff;
      sock.send(get);
    }
    // The gateway takes the bytes in Node's tick queue: let it, so the deadline starts now.
    await new Promise<void>((r) => setImmediate(r));
    const deadlineMs = kind === 'slow-sender' ? g.frameDeadlineMs : kind === 'idle-client' ? g.idleTimeoutMs : g.closeTimeoutMs;
    const c: DeadlineClient = { kind, sock, fromMs: this.sched.nowMs, deadlineMs, overMsAtStart: budget.overMs(), overMsAtClose: null };
    sock.once('close', () => (c.overMsAtClose = budget.overMs()));
    this.deadlined.push(c);
    this.noteAllowance();
  }

  /**
   * The gateway's connection deadlines (docs/protocol.md, "Connection limits and backpressure"):
   * every deadline client of the current gateway is closed, not before its deadline and at the
   * latest its deadline plus the virtual time the gateway-wide budget was over (every connection
   * stops reading then, and the frame deadline counts reading time only).
   * @throws SimInvariantError when one closed early, late, or not at all.
   */
  private async checkDoorDeadlines(): Promise<void> {
    const g = this.config.gateway;
    const untilMs = this.sched.nowMs + g.idleTimeoutMs + g.frameDeadlineMs + g.closeTimeoutMs;
    while (this.deadlined.some((c) => c.sock.closedAtMs === null) && !this.failure && this.sched.nowMs < untilMs) {
      if (!this.sched.step()) break;
      await this.settle();
    }
    for (const c of this.deadlined) {
      const took = c.sock.closedAtMs === null ? null : c.sock.closedAtMs - c.fromMs;
      const stoppedMs = (c.overMsAtClose ?? c.overMsAtStart) - c.overMsAtStart;
      if (took === null || took < c.deadlineMs || took > c.deadlineMs + stoppedMs) {
        throw new SimInvariantError(`a ${c.kind} client of the gateway was closed ${took === null ? 'never' : `after ${took} ms`}, expected after ${c.deadlineMs} ms (plus up to ${stoppedMs} ms the gateway was not reading)`);
      }
    }
  }

  /** The clients that stopped reading close their connections. */
  private closeStalled(): void {
    for (const s of this.stalled) s.sock.destroy();
    this.stalled = [];
  }

  /** The process's data dir is lost (a new empty disk): it starts over as a new member would. */
  private wipe(id: string): void {
    const d = this.disks.get(id);
    if (d) this.wipedStats.push(d.stats);
    this.disks.delete(id);
    this.dataDirs.delete(id);
  }

  /**
   * The data dir of a new incarnation of `id`: the previous incarnation's, renamed on the same disk
   * (same files). Why a new name: libs/engine keeps a process-wide registry of open engine dirs (a
   * snapshot install refuses a dir an engine still has open); a crashed incarnation's engine never
   * closes (its disk completions died with it), and in one process its registration would stay on
   * the live dir, where production's process exit clears it. Unique per simulation run too (a seed
   * may run twice in one worker: the bug-switch tests), so one run's leftovers never meet the next
   * run's processes. Paths do not change what a seed does.
   */
  private dataDirFor(id: string): string {
    const dir = join(DATA_ROOT, `run-${this.runId}`, id, `inc-${++this.incarnations}`);
    const disk = this.diskOf(id);
    disk.mkdir(join(dir, '..'), true);
    const prev = this.dataDirs.get(id);
    try {
      if (prev) disk.rename(prev, dir);
    } catch (e) {
      // The previous incarnation died before it created its dir: nothing to carry over.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    this.dataDirs.set(id, dir);
    return dir;
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
    for (const st of [...[...this.disks.values()].map((d) => d.stats), ...this.wipedStats]) for (const k of Object.keys(sum) as (keyof DiskStats)[]) sum[k] += st[k];
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
    if (p.replica) {
      this.reached.compactions += p.replica.counters.compactions;
      this.reached.replicaSnapshots += p.replica.counters.snapshotsInstalled;
    }
    if (p.node) this.reached.storageSnapshots += p.node.metrics().snapshotsInstalled;
    // Releases its handles; it never finishes (its disk completions died with it), which is fine.
    void p.replica?.abandon().catch(() => undefined);
    void p.node?.abandon().catch(() => undefined);
  }

  private async restart(id: string): Promise<void> {
    if (id === GATEWAY) await this.startGateway();
    else if (ALL_REPLICAS.includes(id)) await this.startReplica(id);
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

  /** Lets the real code's promise continuations run after a scheduler step, then checks the bus: nothing may be refused for max_payload. */
  private async settle(): Promise<void> {
    await new Promise<void>((r) => setImmediate(r));
    const refused = this.net.firstPayloadRefused;
    if (refused) this.failure ??= `${refused.host} tried to send ${refused.bytes} bytes on ${refused.subject}, over max_payload ${this.net.faults.maxPayloadBytes}`;
  }

  // ---- faults --------------------------------------------------------------------------------

  private faultGapMs(): number {
    return this.o.faultGapMsMin + Math.floor(this.rnd.float() * (this.o.faultGapMsMax - this.o.faultGapMsMin));
  }

  private count(kind: string): void {
    this.faults[kind] = (this.faults[kind] ?? 0) + 1;
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rnd.float() * xs.length)];
  }

  /** Ids of the running-or-crashed consensus replicas and storage nodes (not the gateway). */
  private serverIds(): string[] {
    return [...this.procs.keys()].filter((id) => id !== GATEWAY);
  }

  /** One fault, drawn from the mix documented in docs/reliability.md. */
  private async injectFault(): Promise<void> {
    if (this.wipeDeferred && this.logCompacted()) {
      this.wipeDeferred = false;
      this.wipeStorageNode();
    }
    const r = this.rnd.float();
    if (r < 0.12) this.networkWeather();
    else if (r < 0.2) await this.doorClient();
    else if (r < 0.36) {
      const a = this.pick(this.serverIds());
      // The gateway stays with the majority side, or alone on its side for a minority cut.
      this.net.partition([a], HOSTS.filter((h) => h !== a));
      this.count('partition');
    } else if (r < 0.44) {
      this.net.heal();
      this.count('heal');
    } else if (r < 0.59) this.crashOrRestart();
    else if (r < 0.7) this.diskWeather(this.pick(this.serverIds()));
    else if (r < 0.82) {
      // The next writes carry large values: Append batches, ship batches and read replies near max_payload.
      this.count('large-values-burst');
      this.burst = 8;
    } else if (r < 0.88) this.memberChange();
    else if (r < 0.96) {
      // On a compacting seed, a storage node that loses its data before the log first compacted
      // only replays it: the wipe waits for a compaction (the next fault after it), so that the
      // node must bootstrap from its peer's snapshot.
      if (this.o.compacting && !this.logCompacted()) this.wipeDeferred = true;
      else this.wipeStorageNode();
    }
    else this.crashGateway();
  }

  /** Network weather: loss, duplication, reordering, latency. */
  private networkWeather(): void {
    const weather: Partial<NetworkFaults> = { dropRate: this.pick([0, 0, 0.02, 0.1]), duplicateRate: this.pick([0, 0.02, 0.05]), reorderRate: this.pick([0, 0.05, 0.2]), latencyMsMax: this.pick([4, 10, 40]) };
    Object.assign(this.net.faults, weather);
    this.count('network-weather');
  }

  /** How many replicas and storage nodes are down now. */
  private downCounts(): { replicas: number; nodes: number } {
    const down = [...this.procs.values()].filter((p) => !p.inc.alive);
    return { replicas: down.filter((p) => ALL_REPLICAS.includes(p.id)).length, nodes: down.filter((p) => NODES.includes(p.id)).length };
  }

  private crashOrRestart(): void {
    const down = [...this.procs.values()].filter((p) => !p.inc.alive);
    if (down.length && this.rnd.float() < 0.6) {
      // Not awaited: with disk latency, start-up needs the scheduler to run.
      void this.restart(this.pick(down).id);
      this.count('restart');
      return;
    }
    // At most one replica and one storage node down at a time: the cluster can still make progress.
    const d = this.downCounts();
    const candidates = [...this.procs.values()].filter((p) => p.inc.alive && p.id !== GATEWAY && (NODES.includes(p.id) ? d.nodes === 0 : d.replicas === 0));
    if (candidates.length) {
      this.crash(this.pick(candidates));
      this.count('crash');
    }
  }

  /** A storage-node wipe drawn before the log first compacted (compacting seeds), done at the first fault after it did. */
  private wipeDeferred = false;

  /** Some running replica dropped a log prefix from its disk. */
  private logCompacted(): boolean {
    return [...this.procs.values()].some((p) => p.inc.alive && p.replica && p.replica.counters.compactions > 0);
  }

  /**
   * A storage node loses its data dir (crash, then an empty disk): when it restarts (a later fault,
   * or the end of the faults), it replays the Raft log from index 1 or, on a compacting seed whose
   * log no longer holds it, bootstraps from its peer's snapshot over the bus (counted from its
   * warning as `snapshot-bootstrap`).
   */
  private wipeStorageNode(): void {
    const d = this.downCounts();
    const candidates = NODES.filter((id) => d.nodes === 0 || !this.procs.get(id)!.inc.alive);
    const id = this.pick(candidates);
    this.crash(this.procs.get(id)!);
    this.wipe(id);
    this.count('wipe-storage-node');
  }

  /** The gateway process dies: its paths, its view of the cluster, its requests in flight. A later fault (or the end of the faults) starts a new one; the clients move to it. */
  private crashGateway(): void {
    const p = this.procs.get(GATEWAY)!;
    if (!p.inc.alive) return;
    this.crash(p);
    this.count('gateway-crash');
  }

  /** The replica that leads in the highest term, among the live ones, or null. */
  private leaderStatus(): ReturnType<Replica['status']> | null {
    let best: ReturnType<Replica['status']> | null = null;
    for (const p of this.procs.values()) {
      if (!p.replica || !p.inc.alive) continue;
      let st;
      try {
        st = p.replica.status();
      } catch {
        continue; // installing a snapshot: its log is closed for a moment
      }
      if (st.role === 'leader' && (!best || st.term > best.term)) best = st;
    }
    return best;
  }

  /**
   * One membership step through the leader's member request path (thesis §4), one at a time:
   * 3 voters → add the spare (learner, caught up, voter); 4 voters → remove one, half the time
   * the leader itself (§4.2.2); a learner left by a failed add → add it again.
   */
  private memberChange(): void {
    const leader = this.memberBusy ? null : this.leaderStatus();
    if (!leader?.conf) return;
    const { voters, learners } = leader.conf;
    let req: MemberRequest | null = null;
    if (learners.length) req = { op: 'add', kind: 'replica', id: learners[0] };
    else if (voters.length > REPLICAS.length) req = { op: 'remove', kind: 'replica', id: this.rnd.float() < 0.5 ? leader.id : this.pick(voters) };
    else {
      const spare = ALL_REPLICAS.find((id) => !voters.includes(id));
      if (spare) req = { op: 'add', kind: 'replica', id: spare };
    }
    if (!req) return;
    this.count(`member-${req.op}`);
    if (req.op === 'remove' && req.id === leader.id) this.count('member-remove-leader');
    void this.memberRequest(req, leader.id, learners.includes(req.id));
  }

  /** Sends `req` to `leaderId` as the operator; a removed replica stops and loses its disk (it may come back later as a new member). */
  private async memberRequest(req: MemberRequest, leaderId: string, isLearner: boolean): Promise<void> {
    this.memberBusy = true;
    let added = false;
    try {
      if (req.op === 'add') this.prepareJoiner(req.id, isLearner);
      const msg = await this.operator.request(this.subjects.member(leaderId), encodeMemberRequest(req), { timeoutMs: MEMBER_REQUEST_TIMEOUT_MS });
      const reply = decodeMemberReply(msg.data);
      if (reply.status === 'ok') this.count(`member-${req.op}-ok`);
      added = reply.status === 'ok' && req.op === 'add';
      const p = this.procs.get(req.id);
      if (reply.status === 'ok' && req.op === 'remove' && p && !this.faultsEnded) {
        this.crash(p);
        this.procs.delete(req.id);
        this.wipe(req.id);
        this.joiners.add(req.id);
      }
    } catch {
      // Timeout or no responders: the outcome is unknown; the next change starts from the configuration then.
    } finally {
      this.memberBusy = false;
    }
    // Most of the time a removal follows an addition at once (4 → 3 voters), so that seeds see both.
    if (added && !this.faultsEnded && this.rnd.float() < 0.7) this.memberChange();
  }

  /** Makes sure the replica about to be added runs: a learner is restarted if down; a new member starts on an empty disk. */
  private prepareJoiner(id: string, isLearner: boolean): void {
    const p = this.procs.get(id);
    if (isLearner) {
      if (!p?.inc.alive) void this.startReplica(id);
      return;
    }
    // Removed without the operator hearing it (or never started): it starts over as a new member.
    if (p) this.crash(p);
    this.wipe(id);
    this.joiners.add(id);
    void this.startReplica(id);
  }

  /** Disk faults on one process's disk until the next disk fault or the end of the faults: fsync errors, ENOSPC, latency, or healthy again. */
  private diskWeather(id: string): void {
    const weather: Partial<DiskFaults> = { fsyncErrorRate: this.pick([0, 0, 0.01, 0.05]), enospcRate: this.pick([0, 0, 0.01, 0.05]), latencyMsMax: this.pick([0, 0, 1, 5]) };
    Object.assign(this.diskOf(id).faults, weather);
    this.count('disk-weather');
  }

  private async endFaults(): Promise<void> {
    this.faultsEnded = true;
    for (const d of this.disks.values()) Object.assign(d.faults, { fsyncErrorRate: 0, enospcRate: 0, latencyMsMax: 0 });
    Object.assign(this.net.faults, { dropRate: 0, duplicateRate: 0, reorderRate: 0, latencyMsMax: 4, maxPayloadBytes: this.o.maxPayloadBytes });
    this.net.heal();
    this.closeStalled();
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

  /**
   * `op` on the current gateway, bounded by CLIENT_OP_TIMEOUT_MS on the clients' clock: a gateway
   * that crashed never answers, and the client then moves on to the next gateway incarnation.
   */
  private bounded<T extends { status: Status; message: string }>(op: Promise<T>, timedOut: T): Promise<T> {
    return new Promise<T>((resolve) => {
      const timer = this.clientClock.setTimeout(() => resolve(timedOut), CLIENT_OP_TIMEOUT_MS);
      void op.then((r) => {
        this.clientClock.clearTimer(timer);
        resolve(r);
      });
    });
  }

  private async client(c: number): Promise<void> {
    let n = 0;
    while (!this.stopClients && !this.failure) {
      await sleep(this.clientClock, 5 + Math.floor(this.rnd.float() * 40));
      if (this.stopClients) return;
      // No gateway running (it crashed and was not restarted yet): nothing to connect to.
      if (!this.procs.get(GATEWAY)!.inc.alive) continue;
      const session = this.sessions[c];
      const lost = { status: Status.Unavailable, revision: 0, value: new Uint8Array(0), message: 'no answer: the gateway was lost' };
      const key = `k${Math.floor(this.rnd.float() * this.o.keys)}`;
      const kb = Buffer.from(key);
      const r = this.rnd.float();
      const calm = this.calm;
      if (calm) this.calmPending++;
      if (this.ttlRnd.float() < TTL_OP_SHARE) {
        const failed = await this.ttlOp(session, lost);
        if (failed && calm) this.calmFailures.push(failed);
      } else if (r < 0.45) {
        const id = this.history.invoke(c, 'get', key);
        const res = await this.bounded(session.get(kb), lost);
        if (!this.recordGet(id, res) && calm) this.calmFailures.push(`get ${key}: ${Status[res.status]} ${res.message}`);
      } else {
        const del = r > 0.9;
        const value = del ? undefined : this.value(c, n++);
        const id = this.history.invoke(c, del ? 'delete' : 'put', key, value);
        const res = await this.bounded(del ? session.del(kb) : session.set(kb, Buffer.from(value!)), lost);
        if (res.status === Status.Ok) this.history.ok(id);
        else this.history.info(id); // UNAVAILABLE may hide an applied write
        if (calm && res.status !== Status.Ok) this.calmFailures.push(`${del ? 'del' : 'set'} ${key}: ${Status[res.status]} ${res.message}`);
      }
      if (calm) this.calmPending--;
    }
  }

  /**
   * One TTL-key operation (TTL_OP_SHARE): half the time, when a written key's expiry bound has
   * passed, a read of one (the most recently expired half of those times: its ExpireKey may be in
   * flight), recorded for checkLeases; otherwise a write of a fresh key with a TTL, recorded once
   * acknowledged. @returns why it failed, or null.
   */
  private async ttlOp(session: KvSession, lost: { status: Status; revision: number; value: Uint8Array; message: string }): Promise<string | null> {
    const clock = this.clientClock;
    const due = this.ttlWrites.filter((w) => w.ackMs + w.ttlMs <= clock.nowMs());
    if (due.length > 0 && this.ttlRnd.float() < 0.5) {
      const w = this.ttlRnd.float() < 0.5 ? due.reduce((a, b) => (a.ackMs + a.ttlMs >= b.ackMs + b.ttlMs ? a : b)) : due[Math.floor(this.ttlRnd.float() * due.length)];
      const startMs = clock.nowMs();
      const res = await this.bounded(session.get(Buffer.from(w.key)), lost);
      if (res.status !== Status.Ok && res.status !== Status.NotFound) return `get ${w.key}: ${Status[res.status]} ${res.message}`;
      this.ttlReads.push({ key: w.key, startMs, endMs: clock.nowMs(), value: res.status === Status.Ok ? Buffer.from(res.value).toString() : null });
      return null;
    }
    const key = `ttl${this.ttlKeys++}`;
    const value = `${key}-v`;
    const ttlMs = TTL_MS_MIN + Math.floor(this.ttlRnd.float() * TTL_MS_SPREAD);
    const invokeMs = clock.nowMs();
    // The gateway's TLV door stamps a SET's TTL with its clock when it decodes the request (ClientConnection): now, on the one virtual clock.
    const res = await this.bounded(session.set(Buffer.from(key), Buffer.from(value), { meta: { leaseId: 0, expiresAtMs: invokeMs + ttlMs, keepTtl: false } }), lost);
    if (res.status !== Status.Ok) return `set ${key} with a TTL: ${Status[res.status]} ${res.message}`;
    this.ttlWrites.push({ key, value, invokeMs, ackMs: clock.nowMs(), ttlMs });
    return null;
  }

  /** Records a get's completion; a failed read changed nothing (fail). @returns whether it succeeded. */
  private recordGet(id: number, res: { status: Status; value: Uint8Array }): boolean {
    if (res.status === Status.Ok) this.history.ok(id, Buffer.from(res.value).toString());
    else if (res.status === Status.NotFound) this.history.ok(id, null);
    else this.history.fail(id);
    return res.status === Status.Ok || res.status === Status.NotFound;
  }

  /**
   * After the calm phase: one writer puts a value near valueBytesMax on SWEEP_KEYS keys, then one
   * reader per key reads them all at once, so one storage node's read reply would be ~1.4 times
   * max_payload if it were not bounded. Every operation must succeed by `deadlineMs`.
   */
  private async largeValueSweep(deadlineMs: number): Promise<void> {
    const keys = Math.min(SWEEP_KEYS, this.o.keys);
    const sweep = async (): Promise<void> => {
      const writer = this.sessions[0];
      for (let k = 0; k < keys; k++) {
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
        Array.from({ length: keys }, async (_, k) => {
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

  /** Counts snapshot bootstraps from the storage node's log line (max_payload is checked on the bus itself, in settle). */
  private onLog(line: string): void {
    if (this.o.logLevelEcho) process.stderr.write(line);
    let rec: { msg?: string };
    try {
      rec = JSON.parse(line) as typeof rec;
    } catch {
      return;
    }
    if (rec.msg?.startsWith('bootstrap: the Raft log is compacted past this node')) this.count('snapshot-bootstrap');
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

  /**
   * After convergence (nothing is written any more): every key reads alike on every storage node
   * (status, revision, value) when both answer at the same applied index, through their real read
   * path. A node that installed its peer's snapshot must hold what replaying the log would have
   * given it. @throws SimInvariantError on a difference, or when the reads do not finish by `deadlineMs`.
   */
  private async checkStorageAgrees(deadlineMs: number): Promise<void> {
    if (this.failure) return;
    const readAll = async (key: Buffer) =>
      Promise.all(NODES.map(async (id) => decodeReadReply((await this.operator.request(this.subjects.read(id), encodeReadRequest({ reads: [{ key, minIndex: 0 }] }), { timeoutMs: STORAGE_CHECK_MS / 2 })).data)));
    let outcome: string | null | undefined;
    void (async () => {
      for (let k = 0; k < this.o.keys; k++) {
        const [a, b] = await readAll(Buffer.from(`k${k}`));
        if (a.appliedIndex !== b.appliedIndex) continue;
        const [ra, rb] = [a.results[0], b.results[0]];
        if (ra.status !== rb.status || ra.revision !== rb.revision || !Buffer.from(ra.value).equals(Buffer.from(rb.value))) {
          return `storage nodes disagree on k${k} at applied index ${a.appliedIndex}: ${NODES[0]} ${Status[ra.status]} rev ${ra.revision} (${ra.value.length} bytes), ${NODES[1]} ${Status[rb.status]} rev ${rb.revision} (${rb.value.length} bytes)`;
        }
      }
      return null;
    })().then(
      (r) => (outcome = r),
      (e: unknown) => (outcome = `storage comparison read failed: ${String(e)}`),
    );
    while (outcome === undefined && this.sched.nowMs < deadlineMs) {
      if (!this.sched.step()) break;
      await this.settle();
    }
    if (outcome === undefined) throw new SimInvariantError('the storage comparison reads did not finish');
    if (outcome) throw new SimInvariantError(outcome);
  }

  /** @returns what is not converged yet (no leader, a member replica or storage node behind its commit index), or null. */
  private notConverged(): string | null {
    if (this.calmPending) return `${this.calmPending} client operations unanswered`;
    const replicas = [...this.procs.values()].filter((p) => p.replica);
    const statuses = [];
    for (const p of replicas) {
      try {
        statuses.push(p.replica!.status());
      } catch (e) {
        // A replica installing a leader's snapshot has its log closed for a moment (RaftLogStore.reset).
        return `replica ${p.id} has no status: ${(e as Error).message}`;
      }
    }
    const leader = this.leaderStatus();
    if (!leader) return `no leader: ${statuses.map((s) => `${s.id}:${s.role}@${s.term}`).join(' ')}`;
    const members = leader.conf ? [...leader.conf.voters, ...leader.conf.learners] : REPLICAS;
    for (const id of members) {
      const s = statuses.find((x) => x.id === id);
      if (!s) return `member replica ${id} is not running`;
      if (s.commitIndex < leader.commitIndex) return `replica ${s.id} commit index ${s.commitIndex} behind the leader's ${leader.commitIndex}`;
    }
    for (const id of NODES) {
      const st = this.procs.get(id)!.node!.status();
      if (st.appliedIndex < leader.commitIndex - 1) return `storage node ${id} applied ${st.appliedIndex}, behind the commit index ${leader.commitIndex}`;
    }
    return null;
  }
}
