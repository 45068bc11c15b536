import { CHECK_DEFAULTS, HistoryRecorder, checkHistory, formatCheckResult, formatWatchCheckResult, type CheckResult, type Operation, type OperationKind, type WatchCheckResult, type WriteOutcome } from '@cairn/checker';
import { BadRequestError, CairnClient, TooLargeError, provablyNotSent } from '@cairn/client';
import { LocalCluster } from '@cairn/cluster';
import { SEGMENT_HEADER_BYTES, encodeFrame, parseSegmentFileName } from '@cairn/log';
import { freePort } from '@cairn/messaging/testing';
import { mulberry32 } from '@cairn/raft';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataModelClient, accountKeys, counterKeys } from './data-model';
import { bigKeys, formatBigValuesStats, newBigValuesStats, runBigValues, valueIdentity, type BigValuesOptions, type BigValuesStats } from './big-values';
import { TcpProxy } from './nats-proxy';
import { ChaosWatchers, WATCHED_PREFIX, checkWatchers, readReferenceHistory } from './watchers';
import { ChaosLeases, type ChaosLeasesResult } from './leases';
import { describeTarget, planFaults, type FaultKind, type FaultPlanOptions, type PlannedFault, FAULT_KINDS, PARTITION_KINDS } from './schedule';

export interface ChaosOptions {
  seed: number;
  /** Client load and fault injection last this long, ms; healing, final reads and the check follow. */
  durationMs: number;
  /** Concurrent clients, each with its own connection to the gateway (default 8). */
  clients?: number;
  /** Keys `k0..k{keys-1}` (default 20): few keys, so operations on one key overlap. */
  keys?: number;
  /** Directory for the cluster config, data and logs (kept). Default: a fresh temp dir, deleted after a passing run. */
  configOut?: string;
  /** Where to save the history (JSON lines). Always written when given; on failure written to `<dir>/history.jsonl` otherwise. */
  historyPath?: string;
  /** Client request timeout, ms (default 5000): a write that times out is indeterminate (info). */
  requestTimeoutMs?: number;
  /** Pause between one client's operations, ms (default 0). */
  thinkMs?: number;
  /** Checker wall-clock budget, ms (default the checker's 60 000). */
  checkTimeoutMs?: number;
  /** Fault schedule tuning (the seed, duration and cluster size come from the run). */
  faults?: Omit<FaultPlanOptions, 'seed' | 'durationMs' | 'counts'>;
  /**
   * Also change membership during the load (Raft thesis §4), through the gateway HTTP API: start
   * c4 and c5 with `--join` and add each (learner → caught up → voter), then remove the leader,
   * then another of the first three replicas: the consensus group goes 3 → 5 → 3. `faults.kinds`
   * = [] runs membership changes alone. Fault injection and membership steps never overlap.
   */
  membership?: boolean;
  /**
   * Also run the big-values workload (big-values.ts) next to the small-value clients: values of 1
   * byte to 1 MiB on keys big0.., pipelined TLV reads and RESP MGETs of many large values, all in
   * the history. `true` = its defaults.
   */
  bigValues?: boolean | BigValuesOptions;
  /**
   * Compare-and-swap in the small-value workload (issue 11): 3 operations in 10 are a GET (recorded)
   * then `set(k, v, { ifRevision })` on the revision it returned (0 when not found), recorded as a
   * checker `cas` whose expected value is the value read: with every written value unique, the
   * key's mod revision is r exactly when it holds the value written at r (docs/checker.md).
   */
  cas?: boolean;
  /**
   * Watchers on ranges of the small-value keys during the load (watchers.ts; docs/reliability.md
   * "Watches under faults"), started over the first half of the run; after healing an end marker is
   * written, every watcher must see through it, and their streams are checked against a reference
   * watch from revision 1 (checkWatchStreams) and the writers' acknowledged revisions. Default 0.
   */
  watchers?: number;
  /**
   * Leases and key TTLs during the load (leases.ts; docs/reliability.md "Leases and TTLs under
   * faults"): keys with short TTLs must miss every read started after their expiry, and the keys of
   * a lease kept alive must never vanish while an acknowledged renewal covers them. Default false.
   */
  leases?: boolean;
  /**
   * The data-model workload (data-model.ts, issue 11): half of each client's operations are the
   * `cas` mix above on `k*`, the other half INCRBY on counters `n*` through a retrying CairnPool
   * (at most once per increment), reads of the counters, bank transfers between accounts `a*`
   * (a range read, then one Txn guarded by both mod revisions) and range reads of every account,
   * all checked by libs/checker's map model. Implies `cas`.
   */
  txn?: boolean;
  /**
   * Put every process behind its own TCP proxy to nats-server (TcpProxy) even when no partition
   * fault is planned (default: only then).
   */
  proxies?: boolean;
  /** Aborting ends the load and faults early; the run still heals, reads and checks. */
  signal?: AbortSignal;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** A fault as it was injected: `target` is the process id (or nats-server), times are offsets from the run start, ms. */
export interface InjectedFault {
  kind: FaultKind;
  target: string;
  plannedAtMs: number;
  startedAtMs: number;
  healedAtMs: number;
  holdMs: number;
  detail?: string;
}

/** A membership step as it was done: `ms` is how long the gateway took to answer. */
export interface MembershipStep {
  action: string;
  atMs: number;
  ms: number;
  /** The voters after the step. */
  voters: string[];
}

export interface OutcomeCounts {
  ok: number;
  fail: number;
  info: number;
}

export interface ChaosResult {
  /** True when the history is linearizable (final reads included) and nothing else went wrong. */
  passed: boolean;
  seed: number;
  durationMs: number;
  clients: number;
  keys: number;
  /** Wall-clock time of the whole run (start-up to check), ms. */
  elapsedMs: number;
  operations: OutcomeCounts & { total: number; byKind: Record<OperationKind, OutcomeCounts> };
  /** Faults injected, by kind. */
  faults: Record<FaultKind, number>;
  faultLog: InjectedFault[];
  /** Membership steps done (empty unless `membership`). */
  membershipLog: MembershipStep[];
  check: CheckResult;
  /** What failed besides linearizability: a process that exited on its own, a recovery or a final read that failed. */
  problems: string[];
  /** Cairn processes that exited without the run killing them (each is also a problem). */
  unexpectedExits: number;
  /** Acknowledged writes the final reads prove lost (lostAcknowledgedWrites); each also fails the check. */
  lostWrites: number;
  /** What the big-values workload did (null when it did not run). */
  bigValues: BigValuesStats | null;
  /** The watchers' check (null without watchers). */
  watch: WatchCheckResult | null;
  /** What the lease workload did and its violations (null without `leases`); each violation is also a problem. */
  leases: ChaosLeasesResult | null;
  historyPath: string | null;
  /** Config, data and process logs of the run (deleted after a passing run in a temp dir). */
  dir: string;
  dirKept: boolean;
  /** The command that replays the same fault schedule and operation choices (timing differs). */
  replay: string;
}

/** Consensus replicas, storage nodes and gateways of a chaos cluster. */
export const CHAOS_CLUSTER = { consensus: 3, storage: 2, gateway: 1 } as const;
/** How long healing, a restart or the final readiness may take, ms. */
const READY_TIMEOUT_MS = 60_000;
/** A replica must have caught up with the leader's commit index this fast after a fault heals, ms. */
const CATCH_UP_TIMEOUT_MS = 30_000;
/** Attempts of each final read (one every FINAL_READ_BACKOFF_MS). */
const FINAL_READ_ATTEMPTS_MAX = 30;
const FINAL_READ_BACKOFF_MS = 500;
/** A client waits this long after a failed operation before the next (no hot loop during an outage), ms. */
const ERROR_BACKOFF_MS = 100;
/** Bound on one membership call, retries of 503 included, ms. */
const MEMBERSHIP_TIMEOUT_MS = 90_000;
/** Every watcher must have seen through the end marker this long after it was written, ms. */
const WATCHERS_END_TIMEOUT_MS = 20_000;
/** Hard bound on one client's operations (the duration normally ends the loop first). */
const OPS_PER_CLIENT_MAX = 50_000_000;

/**
 * Writes a chaos cluster config into `dir` (3 consensus replicas, 2 storage nodes, 1 gateway, free
 * ports, data under `dir/data`) and returns its path and the gateway's address.
 */
export async function writeChaosConfig(dir: string): Promise<{ configPath: string; host: string; port: number; httpPort: number; respPort: number; dataDir: string }> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const httpPort = await freePort();
  const respPort = await freePort();
  const dataDir = join(dir, 'data');
  const config = {
    clusterName: 'chaos',
    dataDir,
    nats: { servers: [`nats://127.0.0.1:${await freePort()}`] },
    // Compaction on a short leash, so compaction, InstallSnapshot and storage snapshots run under the faults too.
    consensus: { replicas: Array.from({ length: CHAOS_CLUSTER.consensus }, (_, i) => ({ id: `c${i + 1}` })), logRetainedEntries: 2000, compactionIntervalMs: 500 },
    storage: { nodes: Array.from({ length: CHAOS_CLUSTER.storage }, (_, i) => ({ id: `s${i + 1}` })) },
    // Progress every second: a watcher whose range the end marker misses learns it saw through it.
    gateway: { gateways: [{ id: 'g1', host: '127.0.0.1', port, httpPort, respPort }], watchProgressIntervalMs: 1000 },
    logLevel: 'info',
  };
  const configPath = join(dir, 'cairn.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  return { configPath, host: '127.0.0.1', port, httpPort, respPort, dataDir };
}

/** Process ids a chaos cluster may run: its config's, plus c4 and c5 (membership runs join them). */
const CHAOS_PROCESS_IDS = [
  ...Array.from({ length: CHAOS_CLUSTER.consensus + 2 }, (_, i) => `c${i + 1}`),
  ...Array.from({ length: CHAOS_CLUSTER.storage }, (_, i) => `s${i + 1}`),
  'g1',
];

/**
 * One TcpProxy per process id in front of the config's nats-server, and per process a copy of the
 * config (`cairn.<id>.json`, next to it) naming its proxy as the only NATS server.
 * @returns the proxies and the config path of each id (for LocalCluster's configPathFor).
 */
export async function startNatsProxies(configPath: string, ids: readonly string[]): Promise<{ proxies: Map<string, TcpProxy>; configs: Map<string, string> }> {
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as { nats: { servers: string[] } };
  const upstream = new URL(config.nats.servers[0]!);
  const proxies = new Map<string, TcpProxy>();
  const configs = new Map<string, string>();
  try {
    for (const id of ids) {
      const proxy = await TcpProxy.start({ upstreamHost: upstream.hostname, upstreamPort: Number(upstream.port) });
      proxies.set(id, proxy);
      const path = join(configPath, '..', `cairn.${id}.json`);
      writeFileSync(path, JSON.stringify({ ...config, nats: { ...config.nats, servers: [proxy.url] } }, null, 2));
      configs.set(id, path);
    }
  } catch (e) {
    await Promise.all([...proxies.values()].map((p) => p.close()));
    throw e;
  }
  return { proxies, configs };
}

/** The last Raft log segment of a replica's data dir, or null when it has none. */
function lastSegment(replicaDataDir: string): string | null {
  const dir = join(replicaDataDir, 'raft-log');
  if (!existsSync(dir)) return null;
  const segments = readdirSync(dir)
    .filter((f) => parseSegmentFileName(f) !== null)
    .sort();
  const last = segments[segments.length - 1];
  return last ? join(dir, last) : null;
}

/**
 * Cuts up to `bytes` off the end of the last Raft log segment of a (stopped) replica, never into
 * the segment header. The records cut were fsynced (a replica acknowledges only after that), so
 * this loses possibly acknowledged entries on that replica: never do it to more than one.
 * @returns what was cut, or null when the last segment holds no record.
 */
export function tearRaftLogTail(replicaDataDir: string, bytes: number): { file: string; cutBytes: number; sizeBytes: number } | null {
  const file = lastSegment(replicaDataDir);
  if (!file) return null;
  const sizeBytes = statSync(file).size;
  const cutBytes = Math.min(bytes, sizeBytes - SEGMENT_HEADER_BYTES);
  if (cutBytes <= 0) return null;
  truncateSync(file, sizeBytes - cutBytes);
  return { file, cutBytes, sizeBytes };
}

/**
 * Appends the first `bytes` (1..frame length - 1) of a well-formed record frame to the last Raft
 * log segment of a (stopped) replica: what a crash in the middle of an append leaves behind, a
 * record that was never fsynced and so never acknowledged (docs/log.md, torn tail).
 * @returns the segment and the bytes appended, or null when the replica has no segment.
 */
export function appendTornRecord(replicaDataDir: string, bytes: number): { file: string; appendedBytes: number } | null {
  const file = lastSegment(replicaDataDir);
  if (!file) return null;
  const frame = encodeFrame(Buffer.alloc(64, 0x5a));
  const appendedBytes = Math.max(1, Math.min(bytes, frame.length - 1));
  appendFileSync(file, frame.subarray(0, appendedBytes));
  return { file, appendedBytes };
}

/**
 * Acknowledged writes that the final reads prove lost (independently of the checker, which also
 * fails such a history): per key, take the last ok read of `finalClientId` and the writes of the
 * value it returned (null: the deletes, and the initial state). When all of those are ok (an info
 * write may take effect at any time, so it proves nothing), every ok write of the key invoked
 * after the latest of them completed was acknowledged, yet did not survive: one lost write each.
 * A value no write wrote is not counted here (it is a violation of its own).
 */
export function lostAcknowledgedWrites(ops: readonly Operation[], finalClientId: number): number {
  const finalRead = new Map<string, Operation>();
  for (const op of ops) if (op.clientId === finalClientId && op.kind === 'get' && op.outcome === 'ok') finalRead.set(op.key, op);
  let lost = 0;
  for (const [key, read] of finalRead) {
    const v = read.value ?? null;
    const writers = ops.filter((op) => op.key === key && isRegisterWrite(op) && (v === null ? op.kind === 'delete' : (op.kind === 'put' || (op.kind === 'cas' && op.applied !== false)) && op.value === v) && op.outcome !== 'fail');
    if (writers.some((w) => w.outcome === 'info')) continue;
    if (v !== null && writers.length === 0) continue;
    const writtenAtMs = Math.max(-Infinity, ...writers.map((w) => w.completeMs ?? Infinity));
    lost += ops.filter((op) => op.key === key && isRegisterWrite(op) && !(op.kind === 'cas' && !op.applied) && op.outcome === 'ok' && op.invokeMs > writtenAtMs && op !== read).length;
  }
  return lost;
}

/** put, delete, cas: the writes of one register key (incr and txn writes are the map model's: the checker alone judges them). */
const isRegisterWrite = (op: Operation): boolean => op.kind === 'put' || op.kind === 'delete' || op.kind === 'cas';

/** Counts by outcome, overall and per kind. */
export function countOutcomes(ops: readonly Operation[]): ChaosResult['operations'] {
  const zero = (): OutcomeCounts => ({ ok: 0, fail: 0, info: 0 });
  const out = { total: ops.length, ...zero(), byKind: { put: zero(), get: zero(), delete: zero(), cas: zero(), incr: zero(), txn: zero(), range: zero() } };
  for (const op of ops) {
    out[op.outcome]++;
    out.byKind[op.kind][op.outcome]++;
  }
  return out;
}

/**
 * How a failed write is recorded: `fail` only when the error proves the gateway never received
 * it (nothing sent, NOT_LEADER) or refused it before proposing (BAD_REQUEST, TOO_LARGE); anything
 * else (UNAVAILABLE, a timeout or lost connection after sending) may hide an applied write: `info`.
 */
export function writeOutcome(err: unknown): 'fail' | 'info' {
  if (provablyNotSent(err) || err instanceof BadRequestError || err instanceof TooLargeError) return 'fail';
  return 'info';
}

/**
 * One chaos run: a real cluster (nats-server, 3 consensus, 2 storage, 1 gateway), `clients`
 * concurrent clients doing random put/get/delete on `keys` keys, the faults of `planFaults(seed)`
 * one at a time; then every fault healed, a final linearizable GET of every key, and the whole
 * history checked for linearizability (an acknowledged write missing at the end makes a final read
 * non-linearizable). Never throws for what it finds: failures are in the result.
 * @throws AppNotBuiltError, NatsServerMissingError, ProcessExitedError / ReadyTimeoutError when the
 *   cluster cannot start at all.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const startedMs = Date.now();
  const dirGiven = options.configOut !== undefined;
  const dir = dirGiven ? resolve(options.configOut!) : mkdtempSync(join(tmpdir(), 'cairn-chaos-'));
  const files = await writeChaosConfig(dir);
  const noFaults = options.faults?.kinds !== undefined && options.faults.kinds.length === 0;
  const plan = noFaults ? [] : planFaults({ ...options.faults, seed: options.seed, durationMs: options.durationMs, counts: CHAOS_CLUSTER });
  const useProxies = options.proxies === true || plan.some((f) => PARTITION_KINDS.includes(f.kind));
  const { proxies, configs } = useProxies ? await startNatsProxies(files.configPath, CHAOS_PROCESS_IDS) : { proxies: new Map<string, TcpProxy>(), configs: new Map<string, string>() };
  return new ChaosRun(options, { startedMs, dir, dirGiven, ...files, plan, useProxies, proxies, configs }).execute();
}

/** What `runChaos` prepares before the cluster starts. */
interface ChaosSetup {
  startedMs: number;
  dir: string;
  dirGiven: boolean;
  configPath: string;
  host: string;
  port: number;
  httpPort: number;
  respPort: number;
  dataDir: string;
  plan: PlannedFault[];
  useProxies: boolean;
  proxies: Map<string, TcpProxy>;
  configs: Map<string, string>;
}

/** One chaos run: the cluster, the load, the faults and membership steps, and what was recorded. */
class ChaosRun {
  private readonly say: (line: string) => void;
  private readonly clients: number;
  private readonly keys: number;
  private readonly requestTimeoutMs: number;
  private readonly problems: string[] = [];
  private readonly faultLog: InjectedFault[] = [];
  private readonly membershipLog: MembershipStep[] = [];
  private readonly recorder = new HistoryRecorder();
  /** Faults and membership steps take turns (a kill in the middle of a removal could cost the quorum). */
  private turn: Promise<unknown> = Promise.resolve();
  private readonly paused = new Set<string>();
  private natsDown = false;
  private passed = false;
  private unexpectedExits = 0;
  private readonly bigValues: BigValuesOptions | null;
  private readonly bigStats: BigValuesStats | null;
  private readonly cluster: LocalCluster;
  private readonly members: MembersApi;
  private t0 = 0;
  private loadOver = false;
  private readonly watchers: ChaosWatchers | null;
  /** The small-value clients' writes with their outcome and acknowledged revision (for the watch check). */
  private readonly writes: WriteOutcome[] = [];
  private lastAckRevision = 0;
  private watchResult: WatchCheckResult | null = null;
  private leasesResult: ChaosLeasesResult | null = null;

  constructor(
    private readonly options: ChaosOptions,
    private readonly setup: ChaosSetup,
  ) {
    this.say = options.log ?? (() => undefined);
    this.clients = options.clients ?? 8;
    this.keys = options.keys ?? 20;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.bigValues = options.bigValues ? (options.bigValues === true ? {} : options.bigValues) : null;
    this.bigStats = this.bigValues ? newBigValuesStats() : null;
    this.cluster = LocalCluster.create({
      configPath: setup.configPath,
      configPathFor: (id) => setup.configs.get(id),
      onUnexpectedExit: (x) => {
        this.unexpectedExits++;
        this.problems.push(`${x.role} ${x.id} exited on its own (code ${x.code}, signal ${x.signal}); log tail:\n${x.logTail}`);
      },
    });
    this.members = new MembersApi(setup.host, setup.httpPort);
    const count = options.watchers ?? 0;
    this.watchers = count > 0 ? new ChaosWatchers({ count, seed: options.seed, host: setup.host, port: setup.port, lastAckRevision: () => this.lastAckRevision, log: this.say }) : null;
  }

  async execute(): Promise<ChaosResult> {
    const { options, setup, clients, keys, bigValues } = this;
    this.say(
      `chaos: seed ${options.seed}, ${options.durationMs} ms, ${clients} clients, ${keys} keys${bigValues ? ', big values' : ''}${setup.useProxies ? ', NATS proxies' : ''}, ${setup.plan.length} faults planned; dir ${setup.dir}`,
    );
    try {
      await this.cluster.launch(READY_TIMEOUT_MS);
      this.t0 = Date.now();
      await this.runLoad();
      await this.heal();
      return await this.finish();
    } finally {
      await this.cleanup();
    }
  }

  private readonly elapsed = (): number => Date.now() - this.t0;
  private readonly over = (): boolean => this.loadOver || this.elapsed() >= this.options.durationMs || this.options.signal?.aborted === true;

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn, fn);
    this.turn = run.catch(() => undefined);
    return run;
  }

  /** Clients (and big values) for durationMs, with the faults and membership steps alongside. */
  private async runLoad(): Promise<void> {
    const { options, setup, bigValues, clients } = this;
    const load: Promise<unknown>[] = Array.from({ length: clients }, (_, i) => this.clientLoop(i));
    if (bigValues) {
      // Client ids after the small clients and the final reader (id = clients).
      const { recorder, requestTimeoutMs, over } = this;
      load.push(
        runBigValues(bigValues, { recorder, seed: options.seed, host: setup.host, port: setup.port, respPort: setup.respPort, requestTimeoutMs, firstClientId: clients + 1, over, writeOutcome, errorBackoffMs: ERROR_BACKOFF_MS }, this.bigStats!),
      );
    }
    if (options.leases) {
      const leases = new ChaosLeases({ seed: options.seed, host: setup.host, port: setup.port, requestTimeoutMs: this.requestTimeoutMs, log: this.say });
      load.push(leases.run(this.over).then((r) => {
        this.leasesResult = r;
        this.problems.push(...r.violations);
        this.say(`chaos: leases: ${r.ttlWrites} TTL writes, ${r.ttlReadsAfterExpiry} reads after expiry, ${r.keptReads} reads of kept keys (${r.keptReadsCovered} covered by a renewal), ${r.renewals} renewals, ${r.leasesLost} leases lost, ${r.violations.length} violations`);
      }));
    }
    await Promise.all([this.faultLoop(), this.membershipLoop(), this.startWatchers()]);
    const restMs = options.durationMs - this.elapsed();
    if (restMs > 0) await sleep(restMs, undefined, { signal: options.signal }).catch(() => undefined);
    this.loadOver = true;
    await Promise.all(load);
    this.say(`chaos: load over after ${this.elapsed()} ms; healing`);
  }

  /** Watcher i starts at i / count of the first half of the run. */
  private async startWatchers(): Promise<void> {
    const count = this.options.watchers ?? 0;
    for (let i = 0; i < count && this.watchers && !this.over(); i++) {
      const waitMs = (i / count) * (this.options.durationMs / 2) - this.elapsed();
      if (waitMs > 0) await sleep(waitMs, undefined, { signal: this.options.signal }).catch(() => undefined);
      this.watchers.start(i);
    }
  }

  /** Records a small-value write for the watch check (only with watchers). */
  private noteWrite(w: WriteOutcome): void {
    if (!this.watchers) return;
    this.writes.push(w);
    if (w.outcome === 'ok' && w.revision !== undefined) this.lastAckRevision = Math.max(this.lastAckRevision, w.revision);
  }

  // --- clients ----------------------------------------------------------------------------

  private async clientLoop(clientId: number): Promise<void> {
    const { options, recorder, keys } = this;
    const rng = mulberry32((options.seed ^ Math.imul(clientId + 1, 0x9e3779b1)) >>> 0);
    let conn: CairnClient | null = null;
    let writes = 0;
    const { host, port } = this.setup;
    const dataModel = options.txn ? new DataModelClient({ recorder, clientId, random: rng, host, port, requestTimeoutMs: this.requestTimeoutMs, writeOutcome }) : null;
    for (let n = 0; n < OPS_PER_CLIENT_MAX && !this.over(); n++) {
      let r = rng();
      if (dataModel && r >= 0.5) {
        conn = await this.dataModelOp(dataModel, conn, (r - 0.5) * 2);
        continue;
      }
      if (dataModel) r *= 2;
      const key = `k${Math.floor(rng() * keys)}`;
      const kind: OperationKind = options.cas || options.txn ? (r < 0.3 ? 'get' : r < 0.6 ? 'put' : r < 0.7 ? 'delete' : 'cas') : r < 0.4 ? 'get' : r < 0.85 ? 'put' : 'delete';
      const value = kind === 'put' || kind === 'cas' ? `c${clientId}-w${++writes}` : undefined;
      // A cas is invoked by clientOp after its read; the read is the operation recorded here.
      const id = recorder.invoke(clientId, kind === 'cas' ? 'get' : kind, key, kind === 'cas' ? undefined : value);
      if (!conn) {
        try {
          conn = await CairnClient.connect({ host: this.setup.host, port: this.setup.port, connectTimeoutMs: 2000, requestTimeoutMs: this.requestTimeoutMs });
        } catch {
          recorder.fail(id); // no connection: nothing was sent
          await sleep(ERROR_BACKOFF_MS);
          continue;
        }
      }
      const done = kind === 'cas' ? await this.casOp(conn, clientId, id, key, value!) : await this.clientOp(conn, id, kind, key, value);
      if (!done) {
        if (conn.stats().closed) conn = null;
        await sleep(ERROR_BACKOFF_MS);
      }
    }
    if (conn) await conn.close().catch(() => conn?.destroy());
    await dataModel?.close();
  }

  /** One data-model operation (data-model.ts) on `conn` (connected first); the connection to use next (null: reconnect). */
  private async dataModelOp(dataModel: DataModelClient, conn: CairnClient | null, roll: number): Promise<CairnClient | null> {
    try {
      conn ??= await CairnClient.connect({ host: this.setup.host, port: this.setup.port, connectTimeoutMs: 2000, requestTimeoutMs: this.requestTimeoutMs });
    } catch {
      await sleep(ERROR_BACKOFF_MS);
      return null;
    }
    if (await dataModel.run(conn, roll)) {
      if (this.options.thinkMs) await sleep(this.options.thinkMs);
      return conn;
    }
    await sleep(ERROR_BACKOFF_MS);
    return conn.stats().closed ? null : conn;
  }

  /** Runs one operation and records its outcome; false when it failed (the caller backs off). */
  private async clientOp(conn: CairnClient, id: number, kind: OperationKind, key: string, value: string | undefined): Promise<boolean> {
    const { recorder } = this;
    try {
      if (kind === 'get') {
        const got = await conn.get(key);
        recorder.ok(id, got ? got.value.toString('utf8') : null);
      } else {
        const { revision } = kind === 'put' ? await conn.set(key, value!) : await conn.del(key);
        recorder.ok(id);
        this.noteWrite({ type: kind === 'put' ? 'put' : 'delete', key, value, outcome: 'ok', revision });
      }
      if (this.options.thinkMs) await sleep(this.options.thinkMs);
      return true;
    } catch (e) {
      // A read has no effect: a failed or indeterminate GET is a fail.
      if (kind === 'get') recorder.fail(id);
      else if (writeOutcome(e) === 'fail') recorder.fail(id);
      else recorder.info(id);
      if (kind !== 'get') this.noteWrite({ type: kind === 'put' ? 'put' : 'delete', key, value, outcome: writeOutcome(e) });
      return false;
    }
  }

  /** A GET (recorded as `readId`), then a write-if-revision on what it returned, recorded as a cas on the value read; false when either failed. */
  private async casOp(conn: CairnClient, clientId: number, readId: number, key: string, value: string): Promise<boolean> {
    const { recorder } = this;
    let read: Awaited<ReturnType<CairnClient['get']>>;
    try {
      read = await conn.get(key);
      recorder.ok(readId, read ? read.value.toString('utf8') : null);
    } catch {
      recorder.fail(readId);
      return false;
    }
    const id = recorder.invokeCas(clientId, key, read ? read.value.toString('utf8') : null, value);
    try {
      const r = await conn.set(key, value, { ifRevision: read ? read.revision : 0 });
      recorder.okCas(id, r.applied);
      if (r.applied) this.noteWrite({ type: 'put', key, value, outcome: 'ok', revision: r.revision });
      if (this.options.thinkMs) await sleep(this.options.thinkMs);
      return true;
    } catch (e) {
      if (writeOutcome(e) === 'fail') recorder.fail(id);
      else recorder.info(id);
      this.noteWrite({ type: 'put', key, value, outcome: writeOutcome(e) });
      return false;
    }
  }

  // --- faults -----------------------------------------------------------------------------

  private async faultLoop(): Promise<void> {
    const { options } = this;
    for (const f of this.setup.plan) {
      const waitMs = f.atMs - this.elapsed();
      if (waitMs > 0) await sleep(waitMs, undefined, { signal: options.signal }).catch(() => undefined);
      if (this.over() || this.elapsed() + f.holdMs > options.durationMs) break;
      const injected: InjectedFault[] = [];
      try {
        this.faultLog.push(await this.exclusive(() => this.inject(f, injected)));
      } catch (e) {
        this.faultLog.push(...injected);
        this.problems.push(`${f.kind} at +${this.elapsed()} ms: recovery failed: ${(e as Error).message}`);
        break;
      }
    }
  }

  private async resolveTarget(f: PlannedFault): Promise<string> {
    if (f.target.kind === 'leader') return this.cluster.leaderId(READY_TIMEOUT_MS);
    if (f.target.kind === 'nats') return 'nats-server';
    const ids = this.cluster.ids(f.target.role);
    return ids[f.target.index % ids.length]!;
  }

  /** Injects `f`, heals it and waits until replicas caught up; `started` gets the fault as soon as it is injected. */
  private async inject(f: PlannedFault, started: InjectedFault[]): Promise<InjectedFault> {
    const { cluster } = this;
    const target = await this.resolveTarget(f);
    const done: InjectedFault = { kind: f.kind, target, plannedAtMs: f.atMs, startedAtMs: this.elapsed(), healedAtMs: 0, holdMs: f.holdMs };
    started.push(done);
    this.say(`chaos: +${(done.startedAtMs / 1000).toFixed(1)}s ${f.kind} ${target} (${describeTarget(f.target)}) for ${f.holdMs} ms`);
    switch (f.kind) {
      case 'kill':
      case 'kill-leader':
        await cluster.kill(target, 'SIGKILL');
        await sleep(f.holdMs);
        await cluster.restart(target, READY_TIMEOUT_MS);
        break;
      case 'pause':
      case 'pause-leader':
        await this.pause(target, f.holdMs);
        break;
      case 'partition':
      case 'partition-leader':
        await this.partition(target, f.holdMs, done);
        break;
      case 'nats-restart':
        this.natsDown = true;
        await cluster.stopNats();
        await sleep(f.holdMs);
        await cluster.startNats();
        this.natsDown = false;
        break;
      case 'wipe':
        await this.wipe(target, f.holdMs, done);
        break;
      case 'torn-write':
      case 'torn-tail':
        await this.tear(f, target, done);
        break;
    }
    await cluster.waitReady(READY_TIMEOUT_MS);
    const lag = await waitCaughtUp(cluster, CATCH_UP_TIMEOUT_MS);
    done.healedAtMs = this.elapsed();
    // A replica that did not catch up may miss acknowledged entries: another fault now could
    // lose them for real, so the run injects nothing more (the load and the check go on).
    if (lag) throw new Error(`${lag} (no further faults injected)`);
    return done;
  }

  private async pause(target: string, holdMs: number): Promise<void> {
    const pid = this.cluster.pid(target);
    if (pid === null) throw new Error(`${target} is not running: cannot pause it`);
    process.kill(pid, 'SIGSTOP');
    this.paused.add(target);
    await sleep(holdMs);
    process.kill(pid, 'SIGCONT');
    this.paused.delete(target);
  }

  private async partition(target: string, holdMs: number, done: InjectedFault): Promise<void> {
    const proxy = this.setup.proxies.get(target);
    if (!proxy) throw new Error(`${target} has no NATS proxy: cannot partition it`);
    const severed = proxy.cut();
    const refusedBefore = proxy.stats().refused;
    await sleep(holdMs);
    proxy.heal();
    done.detail = `${severed} NATS connection(s) reset, ${proxy.stats().refused - refusedBefore} reconnect(s) refused`;
  }

  private async wipe(target: string, holdMs: number, done: InjectedFault): Promise<void> {
    const { cluster } = this;
    await cluster.kill(target, 'SIGKILL');
    rmSync(join(this.setup.dataDir, target), { recursive: true, force: true });
    await sleep(holdMs);
    await cluster.restart(target, READY_TIMEOUT_MS);
    // It rebuilds (snapshot from its peer, or the log): until then only the peer serves reads,
    // so the next fault waits for it.
    const lag = await waitStorageCaughtUp(cluster, target, CATCH_UP_TIMEOUT_MS);
    const log = readFileSync(cluster.logPath(target), 'utf8');
    done.detail = `data dir deleted; rebuilt ${log.includes('bootstrap: snapshot installed') ? 'from a peer snapshot' : 'from the Raft log'}${lag ? `; ${lag}` : ''}`;
    if (lag) throw new Error(lag);
  }

  /** torn-tail cuts the last record of the Raft log, torn-write appends a partial one; then restarts the replica. */
  private async tear(f: PlannedFault, target: string, done: InjectedFault): Promise<void> {
    const { cluster } = this;
    await cluster.kill(target, 'SIGKILL');
    const logPath = cluster.logPath(target);
    const logBytesBefore = existsSync(logPath) ? statSync(logPath).size : 0;
    const replicaDir = join(this.setup.dataDir, target);
    let torn = false;
    if (f.kind === 'torn-tail') {
      const cut = tearRaftLogTail(replicaDir, f.tornBytes ?? 1);
      torn = cut !== null;
      done.detail = cut ? `cut ${cut.cutBytes} of ${cut.sizeBytes} bytes of ${cut.file}` : 'last segment had no record to tear';
    } else {
      const added = appendTornRecord(replicaDir, f.tornBytes ?? 1);
      torn = added !== null;
      done.detail = added ? `appended ${added.appendedBytes} bytes of a partial record to ${added.file}` : 'no segment yet';
    }
    await sleep(f.holdMs);
    await cluster.restart(target, READY_TIMEOUT_MS);
    if (torn) {
      const since = readFileSync(logPath).subarray(logBytesBefore).toString('utf8');
      done.detail += since.includes('torn tail truncated on recovery') ? '; recovery truncated the torn record' : '; recovery found no torn record (the cut ended on a record boundary)';
    }
  }

  // --- membership (thesis §4): 3 → 5 → 3, the leader removed on the way --------------------

  /** Each step resolves to the voters in the configuration its last change committed. */
  private membershipSteps(): { atFraction: number; action: string; run: () => Promise<string[]> }[] {
    const { cluster, members } = this;
    return [
      { atFraction: 0.12, action: 'join and add c4', run: () => cluster.join('c4', 'consensus', READY_TIMEOUT_MS).then(() => members.add('c4')) },
      { atFraction: 0.3, action: 'join and add c5', run: () => cluster.join('c5', 'consensus', READY_TIMEOUT_MS).then(() => members.add('c5')) },
      {
        atFraction: 0.5,
        action: 'remove the leader',
        run: async () => {
          const leader = await cluster.leaderId(READY_TIMEOUT_MS);
          const voters = await members.remove(leader);
          await cluster.forget(leader);
          return voters;
        },
      },
      {
        atFraction: 0.7,
        action: 'remove a first-three follower',
        run: async () => {
          const leader = await cluster.leaderId(READY_TIMEOUT_MS);
          const victim = ['c1', 'c2', 'c3'].find((id) => id !== leader && cluster.ids('consensus').includes(id));
          if (!victim) throw new Error('no first-three follower left to remove');
          const voters = await members.remove(victim);
          await cluster.forget(victim);
          return voters;
        },
      },
    ];
  }

  private async membershipLoop(): Promise<void> {
    const { options, cluster } = this;
    if (!options.membership) return;
    for (const step of this.membershipSteps()) {
      const waitMs = step.atFraction * options.durationMs - this.elapsed();
      if (waitMs > 0) await sleep(waitMs, undefined, { signal: options.signal }).catch(() => undefined);
      if (this.over()) break;
      const atMs = this.elapsed();
      try {
        const leaderBefore = await cluster.leaderId(READY_TIMEOUT_MS);
        const voters = await this.exclusive(step.run);
        const action = step.action === 'remove the leader' ? `removed leader ${leaderBefore}` : step.action;
        this.membershipLog.push({ action, atMs, ms: this.elapsed() - atMs, voters });
        this.say(`chaos: +${(atMs / 1000).toFixed(1)}s membership: ${action} in ${this.elapsed() - atMs} ms; voters ${voters.join(',')}`);
      } catch (e) {
        this.problems.push(`membership step "${step.action}" at +${atMs} ms failed: ${(e as Error).message}`);
        break;
      }
    }
  }

  // --- heal, final reads, check ------------------------------------------------------------

  private async heal(): Promise<void> {
    const { cluster, problems } = this;
    for (const p of this.setup.proxies.values()) p.heal();
    await healAll(cluster, this.paused, this.natsDown).catch((e: unknown) => problems.push(`healing failed: ${(e as Error).message}`));
    this.natsDown = false;
    await cluster.waitReady(READY_TIMEOUT_MS).catch((e: unknown) => problems.push(`not ready after healing: ${(e as Error).message}`));
  }

  /** Final reads of every key, the membership outcome, the linearizability check; the result. */
  private async finish(): Promise<ChaosResult> {
    const { options, setup, clients, keys, bigValues, recorder } = this;
    const keyNames = [...Array.from({ length: keys }, (_, k) => `k${k}`), ...(bigValues ? bigKeys(bigValues.keys ?? 4) : []), ...(options.txn ? [...counterKeys(), ...accountKeys()] : [])];
    await finalReads(recorder, clients, keyNames, setup.host, setup.port, this.requestTimeoutMs, this.problems);
    await this.checkMembershipEnd();
    await this.checkWatchers();
    this.say('chaos: checking the history');
    const ops = recorder.operations();
    const check = checkHistory(ops, { timeoutMs: options.checkTimeoutMs ?? CHECK_DEFAULTS.timeoutMs });
    this.passed = check.ok && this.problems.length === 0 && (this.watchResult?.ok ?? true);
    let historyPath: string | null = options.historyPath ? resolve(options.historyPath) : null;
    if (!historyPath && !this.passed) historyPath = join(setup.dir, 'history.jsonl');
    if (historyPath) writeFileSync(historyPath, recorder.toJSON());
    return this.result(ops, check, historyPath);
  }

  /** With watchers: an end marker, every watcher through it, the reference history, the check. */
  private async checkWatchers(): Promise<void> {
    const { watchers, setup, problems } = this;
    if (!watchers) return;
    const endKey = `${WATCHED_PREFIX}~end`;
    const value = `end-${this.options.seed}`;
    let endRevision = 0;
    for (let attempt = 0; attempt < FINAL_READ_ATTEMPTS_MAX && endRevision === 0; attempt++) {
      const conn = await CairnClient.connect({ host: setup.host, port: setup.port, connectTimeoutMs: 2000, requestTimeoutMs: this.requestTimeoutMs }).catch(() => null);
      // A retried marker could apply twice (two revisions): the check would flag its value committed twice, so each attempt writes its own value.
      const r = await conn?.set(endKey, `${value}-${attempt}`).catch(() => null);
      await conn?.close().catch(() => conn.destroy());
      if (r) {
        endRevision = r.revision;
        this.writes.push({ type: 'put', key: endKey, value: `${value}-${attempt}`, outcome: 'ok', revision: r.revision });
      } else {
        this.writes.push({ type: 'put', key: endKey, value: `${value}-${attempt}`, outcome: 'info' });
        await sleep(FINAL_READ_BACKOFF_MS);
      }
    }
    if (endRevision === 0) {
      problems.push('watchers: the end marker could not be written');
      await watchers.abort();
      return;
    }
    this.say(`chaos: end marker at revision ${endRevision}; waiting for the watchers`);
    const streams = await watchers.finish(endRevision, WATCHERS_END_TIMEOUT_MS);
    problems.push(...watchers.problems);
    try {
      const reference = await readReferenceHistory(setup.host, setup.port, endRevision);
      this.watchResult = checkWatchers(reference, streams, this.writes);
    } catch (e) {
      problems.push(`watchers: the reference watch failed: ${(e as Error).message}`);
    }
  }

  private async checkMembershipEnd(): Promise<void> {
    const { options, problems, membershipLog } = this;
    if (options.membership && membershipLog.length === 4) {
      const conf = await this.members.list().catch((e: unknown) => ({ voters: [], learners: [], error: (e as Error).message }));
      if (conf.voters.length !== 3 || conf.learners.length !== 0) problems.push(`membership: expected 3 voters and no learners at the end, got ${JSON.stringify(conf)}`);
    } else if (options.membership && !problems.some((p) => p.startsWith('membership'))) {
      problems.push(`membership: only ${membershipLog.length} of 4 steps ran (run too short or aborted)`);
    }
  }

  private result(ops: Operation[], check: CheckResult, historyPath: string | null): ChaosResult {
    const { options, setup, clients, keys, bigValues, faultLog } = this;
    const faults = Object.fromEntries(FAULT_KINDS.map((k) => [k, faultLog.filter((f) => f.kind === k).length])) as Record<FaultKind, number>;
    return {
      passed: this.passed,
      seed: options.seed,
      durationMs: options.durationMs,
      clients,
      keys,
      elapsedMs: Date.now() - setup.startedMs,
      operations: countOutcomes(ops),
      faults,
      faultLog,
      membershipLog: this.membershipLog,
      check,
      problems: this.problems,
      unexpectedExits: this.unexpectedExits,
      lostWrites: lostAcknowledgedWrites(ops, clients),
      bigValues: this.bigStats,
      watch: this.watchResult,
      leases: this.leasesResult,
      historyPath,
      dir: setup.dir,
      dirKept: setup.dirGiven || !this.passed,
      replay: `node tools/chaos/dist/main.js --seed ${options.seed} --duration ${options.durationMs / 1000}s --clients ${clients} --keys ${keys}${options.faults?.kinds ? ` --faults ${options.faults.kinds.join(',') || 'none'}` : ''}${options.membership ? ' --membership' : ''}${bigValues ? ' --big-values' : ''}${options.cas ? ' --cas' : ''}${options.txn ? ' --txn' : ''}${options.watchers ? ` --watchers ${options.watchers}` : ''}${options.leases ? ' --leases' : ''}`,
    };
  }

  private async cleanup(): Promise<void> {
    const { cluster, setup } = this;
    await this.watchers?.abort();
    // A stopped process ignores SIGTERM until continued: resume before stopping.
    for (const id of this.paused) {
      const pid = cluster.pid(id);
      if (pid !== null) process.kill(pid, 'SIGCONT');
    }
    await cluster.stop();
    await Promise.all([...setup.proxies.values()].map((p) => p.close()));
    if (this.passed && !setup.dirGiven) rmSync(setup.dir, { recursive: true, force: true });
  }
}

/** Resumes paused processes, restarts stopped ones and nats-server. */
async function healAll(cluster: LocalCluster, paused: Set<string>, natsDown: boolean): Promise<void> {
  for (const id of paused) {
    const pid = cluster.pid(id);
    if (pid !== null) process.kill(pid, 'SIGCONT');
  }
  paused.clear();
  if (natsDown) await cluster.startNats();
  for (const id of cluster.ids()) if (!cluster.isRunning(id)) await cluster.restart(id, READY_TIMEOUT_MS);
}

/**
 * Waits until every consensus replica reports (fresh heartbeat) a last index and commit index at
 * least the highest commit index heard when called: after a torn tail, the replica holds again
 * every entry it may have acknowledged before the next fault can hit another replica.
 * @returns null when caught up, else what lags after `timeoutMs`.
 */
async function waitCaughtUp(cluster: LocalCluster, timeoutMs: number): Promise<string | null> {
  const fresh = () => cluster.statuses().consensus.filter((s) => s.ageMs <= 1000);
  const target = Math.max(0, ...fresh().map((s) => s.commitIndex));
  const deadlineMs = Date.now() + timeoutMs;
  let lagging = '';
  while (Date.now() < deadlineMs) {
    const byId = new Map(fresh().map((s) => [s.id, s]));
    const behind = cluster.ids('consensus').filter((id) => {
      const s = byId.get(id);
      return !s || s.lastIndex < target || s.commitIndex < target;
    });
    if (behind.length === 0) return null;
    lagging = behind.join(', ');
    await sleep(100);
  }
  return `consensus ${lagging} did not catch up to commit index ${target} within ${timeoutMs} ms`;
}

/** Waits until storage node `id` applied the highest commit index heard when called. @returns null, or what lags after `timeoutMs`. */
async function waitStorageCaughtUp(cluster: LocalCluster, id: string, timeoutMs: number): Promise<string | null> {
  const target = Math.max(0, ...cluster.statuses().consensus.filter((s) => s.ageMs <= 1000).map((s) => s.commitIndex));
  const deadlineMs = Date.now() + timeoutMs;
  while (Date.now() < deadlineMs) {
    const s = cluster.statuses().storage.find((x) => x.id === id && x.ageMs <= 1000);
    if (s && s.appliedIndex >= target) return null;
    await sleep(100);
  }
  return `storage ${id} did not catch up to commit index ${target} within ${timeoutMs} ms`;
}

/** One linearizable GET of every key by client `clientId`, recorded; retried until one succeeds. */
async function finalReads(recorder: HistoryRecorder, clientId: number, keys: readonly string[], host: string, port: number, requestTimeoutMs: number, problems: string[]): Promise<void> {
  let conn: CairnClient | null = null;
  try {
    for (const key of keys) {
      let done = false;
      for (let attempt = 0; attempt < FINAL_READ_ATTEMPTS_MAX && !done; attempt++) {
        const id = recorder.invoke(clientId, 'get', key);
        try {
          conn ??= await CairnClient.connect({ host, port, connectTimeoutMs: 2000, requestTimeoutMs });
          const got = await conn.get(key);
          // The identity the writers recorded (small values: the value itself; big ones: tag#bytes).
          recorder.ok(id, got ? valueIdentity(got.value) : null);
          done = true;
        } catch {
          recorder.fail(id);
          if (conn?.stats().closed) conn = null;
          await sleep(FINAL_READ_BACKOFF_MS);
        }
      }
      if (!done) problems.push(`final read of ${key} failed ${FINAL_READ_ATTEMPTS_MAX} times`);
    }
  } finally {
    await conn?.close().catch(() => conn?.destroy());
  }
}

/** The run's summary: verdict, operations, faults, check result, problems, history and replay command. */
export function formatChaosSummary(r: ChaosResult): string {
  const o = r.operations;
  // cas, incr, txn, range only when the run made any (a run without those workloads prints as before)
  const kinds = (['put', 'get', 'delete', 'cas', 'incr', 'txn', 'range'] as const)
    .filter((k) => ['put', 'get', 'delete'].includes(k) || o.byKind[k].ok + o.byKind[k].fail + o.byKind[k].info > 0)
    .map((k) => `${k} ${o.byKind[k].ok}/${o.byKind[k].fail}/${o.byKind[k].info}`)
    .join(', ');
  const faultTotal = Object.values(r.faults).reduce((a, b) => a + b, 0);
  const lines = [
    `chaos: ${r.passed ? 'PASSED' : 'FAILED'} seed=${r.seed} duration=${r.durationMs / 1000}s clients=${r.clients} keys=${r.keys} elapsed=${(r.elapsedMs / 1000).toFixed(1)}s`,
    `operations: ${o.total} (ok ${o.ok}, fail ${o.fail}, info ${o.info}); ok/fail/info by kind: ${kinds}`,
    `faults: ${faultTotal} (${FAULT_KINDS.map((k) => `${k} ${r.faults[k]}`).join(', ')})`,
    ...(r.bigValues ? [formatBigValuesStats(r.bigValues)] : []),
    ...(r.membershipLog.length ? [`membership: ${r.membershipLog.map((m) => `+${(m.atMs / 1000).toFixed(1)}s ${m.action} (${m.ms} ms) → voters ${m.voters.join(',')}`).join('; ')}`] : []),
    `violations: ${r.check.violations.length}${r.check.unknown ? ` (unknown keys: ${r.check.unknownKeys?.length})` : ''}; lost acknowledged writes: ${r.lostWrites}; unexpected process exits: ${r.unexpectedExits}`,
    formatCheckResult(r.check),
    ...(r.watch ? [formatWatchCheckResult(r.watch)] : []),
    ...(r.leases ? [`leases: ${r.leases.violations.length} violations; ${r.leases.ttlWrites} TTL keys written, ${r.leases.ttlReadsAfterExpiry} reads after their expiry, ${r.leases.keptReads} reads of kept-alive keys (${r.leases.keptReadsCovered} covered by an acknowledged renewal), ${r.leases.renewals} renewals, ${r.leases.leasesLost} leases lost (no renewal acknowledged within the TTL)`] : []),
  ];
  for (const p of r.problems) lines.push(`problem: ${p}`);
  if (r.historyPath) lines.push(`history: ${r.historyPath}`);
  if (r.dirKept) lines.push(`config, data and logs: ${r.dir}`);
  lines.push(`replay: ${r.replay}`);
  return lines.join('\n');
}

/** Membership through the gateway HTTP API (docs/http.md "Membership"); throws on any non-200 answer. */
class MembersApi {
  constructor(
    private readonly host: string,
    private readonly httpPort: number,
  ) {}

  list(): Promise<{ voters: string[]; learners: string[] }> {
    return this.call('GET', '/v1/cluster/members');
  }

  /** @returns the voters once the replica is a voter. */
  async add(id: string): Promise<string[]> {
    return (await this.call<{ conf: { voters: string[] } }>('POST', '/v1/cluster/members', { id, kind: 'replica' })).conf.voters;
  }

  /** @returns the voters once the removal committed. */
  async remove(id: string): Promise<string[]> {
    return (await this.call<{ conf: { voters: string[] } }>('DELETE', `/v1/cluster/members/${id}`)).conf.voters;
  }

  /** Retries 503 (no leader, outcome unknown: the API is idempotent) for up to MEMBERSHIP_TIMEOUT_MS. */
  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const deadline = Date.now() + MEMBERSHIP_TIMEOUT_MS;
    for (;;) {
      const res = await fetch(`http://${this.host}:${this.httpPort}${path}`, {
        method,
        headers: body ? { 'content-type': 'application/json' } : {},
        body: body ? JSON.stringify(body) : undefined,
      });
      const json = (await res.json().catch(() => ({}))) as T & { message?: string };
      if (res.ok) return json;
      if (res.status !== 503 || Date.now() >= deadline) throw new Error(`${method} ${path}: ${res.status} ${json.message ?? ''}`);
      await sleep(200);
    }
  }
}
