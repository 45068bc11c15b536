import { loadClusterConfig, type ClusterConfig } from '@cairn/config';
import { CodedError, decodeStatus, type ConsensusStatus, type StorageStatus } from '@cairn/protocol';
import { busConnectOptions, natsSecurityOptions, natsServerAuthorization, Subjects } from '@cairn/messaging';
import { startNatsServer, type NatsServerHandle } from '@cairn/messaging/testing';
import { ensureBusCredentials, ensureBusTls } from './bus-credentials';
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join, resolve } from 'node:path';
import { connect as natsConnect, type NatsConnection } from 'nats';

/**
 * glibc malloc settings for every Cairn process (also in the Dockerfile; the caller's environment
 * overrides them). Node's Buffers over 4 KiB come from malloc; with glibc's defaults a freed
 * large Buffer stays in the process (the mmap threshold rises after each large free, and arenas
 * per thread fragment), so RSS never falls after a burst. Measured (docs/reliability.md,
 * "Hostile clients"): gateway RSS 10 s after six never-reading clients closed 307 MB with the
 * defaults, 136 MB with these (baseline 97 MB).
 */
export const MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
};

export type ProcessRole = 'consensus' | 'storage' | 'gateway';

/** The app directory (under `<repo>/apps/`) that runs each role. */
export const APP_OF_ROLE: Record<ProcessRole, string> = {
  consensus: 'consensus',
  storage: 'storage-node',
  gateway: 'gateway',
};

/** Repo root: this file is `tools/cluster/{src,dist}/cluster.{ts,js}` in both the source and built layouts. */
export const REPO_ROOT = resolve(__dirname, '../../..');

/** A status heartbeat is "fresh" when received within this window (10 heartbeat intervals). */
export const STATUS_FRESH_MS = 1_000;
/** How long `stop()`/graceful kills wait after SIGTERM before SIGKILL. */
export const STOP_GRACE_MS = 10_000;

export interface LocalClusterOptions {
  configPath: string;
  /**
   * Default true: start a private nats-server on the port of `config.nats.servers[0]`. When the
   * config names `nats.credentials`, the launcher creates the missing seed files and the server
   * admits those NKeys only, with each role's subject permissions; when it names `nats.tls.caFile`,
   * the server speaks TLS only, with a certificate from a private CA the launcher makes when
   * `caFile` is absent (`ensureBusTls`), verifying client certificates when `certFile` is set
   * (docs/security.md "The internal bus").
   */
  startNats?: boolean;
  /** Default `<dataDir>/logs`. One `<id>.log` per process (stdout+stderr appended), plus `nats-server.log`. */
  logDir?: string;
  /** Extra environment for the Cairn processes (merged over `process.env`). */
  env?: NodeJS.ProcessEnv;
  /**
   * Run every Cairn process with `node --cpu-prof`, its profile written into this directory as
   * `<id>.<spawn time ms>.cpuprofile` when it exits (a graceful stop; a SIGKILLed process writes none).
   * Node refuses `--cpu-prof` in NODE_OPTIONS, hence an option.
   */
  cpuProfDir?: string;
  /** Script run for a role instead of `<repo>/apps/<app>/dist/main.js` (tests use stand-ins). */
  appMain?: Partial<Record<ProcessRole, string>>;
  /** Called when a Cairn process exits without `kill`/`stop` asking it to, once start-up is done. */
  onUnexpectedExit?: (info: ProcessExit) => void;
  /**
   * Restart a process that exits unexpectedly once start-up is done, with exponential backoff
   * (Kubernetes `restartPolicy: Always`). Off by default: callers that kill on purpose still can
   * (`kill`, `restart`, `stop` and `forget` cancel a pending restart), but tests that count
   * unexpected exits usually want them to stay visible. `true` = SUPERVISION_DEFAULTS.
   */
  supervise?: boolean | Partial<SupervisionOptions>;
  /** Called when supervision schedules a restart (after `onUnexpectedExit`). */
  onRestartScheduled?: (info: RestartInfo) => void;
  /**
   * Config file passed to one process instead of `configPath` (same cluster, e.g. a different
   * `nats.servers` so the process goes through its own proxy). Undefined or absent: `configPath`.
   */
  configPathFor?: (id: string) => string | undefined;
}

/**
 * Restart backoff of a supervised cluster: the n-th consecutive restart of a process waits
 * `min(backoffInitialMs × 2^(n-1), backoffMaxMs)`; a process that stayed up `stableAfterMs` starts
 * over at `backoffInitialMs` (as the kubelet's CrashLoopBackOff: 10 s doubling to 5 min, reset
 * after 10 min; shorter here, a local cluster restarts fast).
 */
export interface SupervisionOptions {
  backoffInitialMs: number;
  backoffMaxMs: number;
  stableAfterMs: number;
}

export const SUPERVISION_DEFAULTS: Readonly<SupervisionOptions> = { backoffInitialMs: 500, backoffMaxMs: 30_000, stableAfterMs: 60_000 };

/** A restart scheduled by supervision: `restarts` counts this one; `delayMs` is its backoff. */
export interface RestartInfo {
  id: string;
  role: ProcessRole;
  restarts: number;
  delayMs: number;
  exit: ProcessExit;
}

/**
 * Backoff before the `consecutive`-th consecutive restart (1-based), ms.
 * @throws RangeError when `consecutive` < 1.
 */
export function restartBackoffMs(consecutive: number, o: Pick<SupervisionOptions, 'backoffInitialMs' | 'backoffMaxMs'> = SUPERVISION_DEFAULTS): number {
  if (!(consecutive >= 1)) throw new RangeError(`consecutive restart count must be >= 1, got ${consecutive}`);
  // 2^30 ms is already past any sane bound: cap the exponent so the product stays finite.
  return Math.min(o.backoffInitialMs * 2 ** Math.min(consecutive - 1, 30), o.backoffMaxMs);
}

export interface ProcessExit {
  id: string;
  role: ProcessRole;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Last lines of the process's log. */
  logTail: string;
}

/** Thrown when a Cairn process exits while the launcher waits for it (or the cluster) to be ready. */
export class ProcessExitedError extends CodedError {
  readonly code = 'PROCESS_EXITED';
  constructor(readonly exit: ProcessExit) {
    super(
      `${exit.role} process ${exit.id} exited (code ${exit.code}, signal ${exit.signal}) during start-up; ` +
        `last lines of its log:\n${exit.logTail}`,
    );
  }
}

/** Thrown when the cluster (or one process) is not ready in time; the message says what is missing. */
export class ReadyTimeoutError extends CodedError {
  readonly code = 'READY_TIMEOUT';
}

/** Thrown when an app's `dist/main.js` is missing (not built). */
export class AppNotBuiltError extends CodedError {
  readonly code = 'APP_NOT_BUILT';
  constructor(path: string) {
    super(`${path} does not exist: build the apps first (\`npm run build\` or \`npx nx run-many -t build\`)`);
  }
}

interface ManagedProcess {
  id: string;
  role: ProcessRole;
  child: ChildProcess | null;
  exited: Promise<void> | null;
  /** Set by kill/stop so the exit is not reported as unexpected. */
  exitExpected: boolean;
  /** Local time of the latest spawn; heartbeats received before it belong to a previous incarnation. */
  spawnedAtMs: number;
  /** Not in the config file: started with `--join` (added at run time with `cairn member add`). */
  join: boolean;
  /** Supervision: restarts so far, restarts since the process last stayed up `stableAfterMs`, and the pending one. */
  restarts: number;
  consecutiveRestarts: number;
  restartTimer: NodeJS.Timeout | null;
}

interface Heard<S> {
  status: S;
  receivedAtMs: number;
}

/** Last `lines` lines (at most the last 8 KiB) of a log file, '' when unreadable. */
export function logTail(path: string, lines = 20): string {
  try {
    const size = statSync(path).size;
    const len = Math.min(size, 8192);
    const buf = Buffer.alloc(len);
    const fd = openSync(path, 'r');
    try {
      readSync(fd, buf, 0, len, size - len);
    } finally {
      closeSync(fd);
    }
    return buf.toString('utf8').split('\n').slice(-lines - 1).join('\n').trimEnd();
  } catch {
    return '';
  }
}

/** The TCP port of a `nats://host:port` URL (4222 when absent). */
export function natsPort(url: string): number {
  const u = new URL(url.includes('://') ? url : `nats://${url}`);
  return u.port ? Number(u.port) : 4222;
}

function tcpAccepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const sock = tcpConnect({ host, port });
    sock.once('connect', () => {
      sock.destroy();
      resolvePromise(true);
    });
    sock.once('error', () => {
      sock.destroy();
      resolvePromise(false);
    });
  });
}

/**
 * A local Cairn cluster: a private nats-server plus one Node process per consensus replica,
 * storage node and gateway of a config file. Used by `npm start` (src/main.ts) and the e2e tests.
 *
 * Readiness is event-driven: the launcher subscribes to the status heartbeats every process
 * publishes (`status.consensus` / `status.storage`, every 100 ms) and re-evaluates on each one.
 */
export class LocalCluster {
  readonly config: ClusterConfig;
  readonly configPath: string;
  readonly logDir: string;
  private readonly procs = new Map<string, ManagedProcess>();
  private readonly consensus = new Map<string, Heard<ConsensusStatus>>();
  private readonly storage = new Map<string, Heard<StorageStatus>>();
  /** Emits 'status' on every heartbeat and 'exit' (ProcessExit) when a process exits. */
  private readonly events = new EventEmitter();
  private nats: NatsServerHandle | null = null;
  private nc: NatsConnection | null = null;
  private stopping = false;
  /** Set once launch() succeeded: from then on, exits go to onUnexpectedExit (before, they fail the launch). */
  private launched = false;

  private readonly supervision: SupervisionOptions | null;

  private constructor(private readonly opts: LocalClusterOptions) {
    this.supervision = opts.supervise ? { ...SUPERVISION_DEFAULTS, ...(opts.supervise === true ? {} : opts.supervise) } : null;
    this.configPath = resolve(opts.configPath);
    this.config = loadClusterConfig(this.configPath);
    this.logDir = resolve(opts.logDir ?? join(this.config.dataDir, 'logs'));
    this.events.setMaxListeners(0);
    const add = (role: ProcessRole, id: string) =>
      this.procs.set(id, LocalCluster.managed(id, role, false));
    for (const m of this.config.consensus.replicas) add('consensus', m.id);
    for (const m of this.config.storage.nodes) add('storage', m.id);
    for (const m of this.config.gateway.gateways) add('gateway', m.id);
  }

  /**
   * Starts nats-server (unless `startNats: false`), then every consensus replica, storage node and
   * gateway, and resolves when the cluster is ready (see `waitReady`).
   * @throws ConfigError on a bad config, NatsServerMissingError when nats-server is absent,
   *   BusCredentialError, BusTlsFilesError or OpensslMissingError for the bus's seeds and TLS files,
   *   AppNotBuiltError, ProcessExitedError (with the log tail) or ReadyTimeoutError; everything
   *   already started is stopped before the error is thrown.
   */
  static async start(opts: LocalClusterOptions, readyTimeoutMs = 30_000): Promise<LocalCluster> {
    const cluster = LocalCluster.create(opts);
    await cluster.launch(readyTimeoutMs);
    return cluster;
  }

  /** Loads the config without starting anything (then `launch()`), so a caller can `stop()` mid-launch. @throws ConfigError */
  static create(opts: LocalClusterOptions): LocalCluster {
    return new LocalCluster(opts);
  }

  /** The second half of `start()`: same behaviour and errors. */
  async launch(readyTimeoutMs = 30_000): Promise<void> {
    for (const role of Object.keys(APP_OF_ROLE) as ProcessRole[]) {
      const main = this.appMain(role);
      if (!existsSync(main)) throw new AppNotBuiltError(main);
    }
    mkdirSync(this.logDir, { recursive: true });
    try {
      if (this.opts.startNats ?? true) {
        const creds = this.config.nats.credentials;
        const extraConfig = creds ? natsServerAuthorization(new Subjects(this.config.clusterName), ensureBusCredentials(creds)) : undefined;
        const tls = this.config.nats.tls ? ensureBusTls(this.config.nats.tls) : undefined;
        this.nats = await startNatsServer({ port: natsPort(this.config.nats.servers[0]), dir: this.logDir, extraConfig, tls });
        if (this.stopping) throw new Error('cluster stopped during launch');
      }
      await this.connectStatus();
      for (const role of ['consensus', 'storage', 'gateway'] as const) {
        for (const id of this.ids(role)) this.spawnProcess(id);
      }
      await this.waitReady(readyTimeoutMs);
      this.launched = true;
    } catch (e) {
      await this.stop().catch(() => undefined);
      throw e;
    }
  }

  /** Process ids from the config, in config order; only those of `role` when given. */
  ids(role?: ProcessRole): string[] {
    return [...this.procs.values()].filter((p) => !role || p.role === role).map((p) => p.id);
  }

  /** Role of a process id. @throws Error when the id is not in the config. */
  role(id: string): ProcessRole {
    return this.proc(id).role;
  }

  /** OS pid of a running process, null when it is stopped. */
  pid(id: string): number | null {
    const p = this.proc(id);
    return p.child ? (p.child.pid ?? null) : null;
  }

  /** Restarts supervision made of `id` so far (0 without supervision). */
  restarts(id: string): number {
    return this.proc(id).restarts;
  }

  /** True while the process is running. */
  isRunning(id: string): boolean {
    return this.proc(id).child !== null;
  }

  /** Path of a process's log file. */
  logPath(id: string): string {
    return join(this.logDir, `${id}.log`);
  }

  /** Sends `signal` to a running process; resolves when it has exited (no-op when stopped). */
  async kill(id: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc(id);
    // Killed on purpose: a restart supervision scheduled after an earlier crash must not revive it.
    LocalCluster.cancelRestart(p);
    // Also for a process that is down already (crashed): it is now down on purpose.
    p.exitExpected = true;
    if (!p.child || !p.exited) return;
    const exited = p.exited;
    p.child.kill(signal);
    // A graceful signal that is ignored or slow must not hang the caller forever.
    const t = signal === 'SIGKILL' ? null : setTimeout(() => p.child?.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    if (t) clearTimeout(t);
  }

  /**
   * Starts a stopped process (a running one is first stopped with SIGTERM) and resolves when that
   * process is up: its first status heartbeat (consensus, storage) or every door it has (TLV, RESP, HTTP) accepting TCP (gateway).
   * @throws ProcessExitedError when it exits first, ReadyTimeoutError after `timeoutMs`.
   */
  async restart(id: string, timeoutMs = 30_000): Promise<void> {
    if (this.isRunning(id)) await this.kill(id, 'SIGTERM');
    this.spawnProcess(id);
    await this.waitFor(timeoutMs, () => this.processUp(id), [id]);
  }

  /**
   * Starts a consensus replica or storage node whose id is not in the config file (`--join`), and
   * resolves on its first status heartbeat. It serves once a member: `cairn member add <id>`
   * (Raft thesis §4). From then on it is managed like the others (kill, restart, stop).
   * @throws Error if the id is taken; ProcessExitedError / ReadyTimeoutError as `restart`.
   */
  async join(id: string, role: 'consensus' | 'storage', timeoutMs = 30_000): Promise<void> {
    if (this.procs.has(id)) throw new Error(`process id ${id} is already in this cluster`);
    this.procs.set(id, LocalCluster.managed(id, role, true));
    this.spawnProcess(id);
    await this.waitFor(timeoutMs, () => this.processUp(id), [id]);
  }

  /** Stops `id` with SIGTERM (after `cairn member remove`) and forgets it: no longer started, waited for or listed. */
  async forget(id: string): Promise<void> {
    await this.kill(id, 'SIGTERM');
    this.procs.delete(id);
    this.consensus.delete(id);
    this.storage.delete(id);
  }

  /** Kills every Cairn process (not nats-server) with `signal`; resolves when all have exited. */
  async killAll(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await Promise.all(this.ids().map((id) => this.kill(id, signal)));
  }

  /** Starts every stopped process and waits until the cluster is ready. */
  async startAll(timeoutMs = 30_000): Promise<void> {
    for (const id of this.ids()) if (!this.isRunning(id)) this.spawnProcess(id);
    await this.waitReady(timeoutMs);
  }

  /**
   * Resolves when the cluster is ready: every running consensus replica and storage node has sent
   * a heartbeat since it was (re)started, one running replica reports itself leader at the highest
   * fresh term, and every running gateway's port accepts TCP.
   * A process waiting for a supervised restart counts as not ready.
   * @throws ProcessExitedError when a process exits meanwhile (unless supervision restarts it);
   *   ReadyTimeoutError naming what is missing.
   */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    await this.waitFor(timeoutMs, () => this.clusterReady(), this.ids());
  }

  /** The current leader's id, from heartbeats of running replicas; waits for one (default 30 s). */
  async leaderId(timeoutMs = 30_000): Promise<string> {
    let leader: string | null = null;
    await this.waitFor(timeoutMs, async () => {
      leader = this.currentLeader();
      return leader ? null : 'no consensus replica reports itself leader';
    }, []);
    return leader!;
  }

  /** Latest heartbeats (with their age) of the consensus replicas and storage nodes. */
  statuses(): { consensus: (ConsensusStatus & { ageMs: number })[]; storage: (StorageStatus & { ageMs: number })[] } {
    const now = Date.now();
    return {
      consensus: [...this.consensus.values()].map((h) => ({ ...h.status, ageMs: now - h.receivedAtMs })),
      storage: [...this.storage.values()].map((h) => ({ ...h.status, ageMs: now - h.receivedAtMs })),
    };
  }

  /**
   * Stops the private nats-server (fault injection: every Cairn process and the status
   * subscription lose NATS and reconnect once `startNats()` brings it back). No-op when it is not
   * running or the cluster was created with `startNats: false`.
   */
  async stopNats(): Promise<void> {
    if (!this.nats) return;
    const nats = this.nats;
    this.nats = null;
    await nats.stop();
  }

  /**
   * Starts the private nats-server again on the config's port after `stopNats()`; resolves when
   * it is ready (the Cairn processes reconnect on their own). No-op when it is running.
   * @throws Error when the cluster is stopping or nats-server does not become ready.
   */
  async startNats(): Promise<void> {
    if (this.nats) return;
    if (this.stopping) throw new Error('cluster is stopping: cannot start nats-server');
    this.nats = await startNatsServer({ port: natsPort(this.config.nats.servers[0]), dir: this.logDir });
  }

  /**
   * Stops everything: SIGTERM the gateways, then the storage nodes, then the consensus replicas
   * (SIGKILL after STOP_GRACE_MS each), then closes the status subscription and stops nats-server.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const p of this.procs.values()) LocalCluster.cancelRestart(p);
    this.events.emit('stop');
    for (const role of ['gateway', 'storage', 'consensus'] as const) {
      await Promise.all(this.ids(role).map((id) => this.kill(id, 'SIGTERM')));
    }
    if (this.nc) {
      const nc = this.nc;
      this.nc = null;
      await nc.close().catch(() => undefined);
    }
    if (this.nats) {
      const nats = this.nats;
      this.nats = null;
      await nats.stop();
    }
  }

  // --- internals -------------------------------------------------------------------------------

  private static managed(id: string, role: ProcessRole, join: boolean): ManagedProcess {
    return { id, role, child: null, exited: null, exitExpected: false, spawnedAtMs: 0, join, restarts: 0, consecutiveRestarts: 0, restartTimer: null };
  }

  private static cancelRestart(p: ManagedProcess): void {
    if (p.restartTimer) clearTimeout(p.restartTimer);
    p.restartTimer = null;
  }

  /** Supervision: schedules the restart of `p` after its unexpected exit `info`. */
  private scheduleRestart(p: ManagedProcess, info: ProcessExit, upMs: number): void {
    const s = this.supervision;
    if (!s || this.stopping || p.restartTimer || this.procs.get(p.id) !== p) return;
    if (upMs >= s.stableAfterMs) p.consecutiveRestarts = 0;
    p.consecutiveRestarts++;
    p.restarts++;
    const delayMs = restartBackoffMs(p.consecutiveRestarts, s);
    this.opts.onRestartScheduled?.({ id: p.id, role: p.role, restarts: p.restarts, delayMs, exit: info });
    p.restartTimer = setTimeout(() => {
      p.restartTimer = null;
      if (this.stopping || p.child || this.procs.get(p.id) !== p) return;
      try {
        this.spawnProcess(p.id);
      } catch (e) {
        // A spawn that fails synchronously (e.g. EMFILE): count it as another crash and back off again.
        this.scheduleRestart(p, { ...info, code: null, signal: null, logTail: String(e) }, 0);
      }
    }, delayMs);
  }

  private proc(id: string): ManagedProcess {
    const p = this.procs.get(id);
    if (!p) throw new Error(`unknown process id "${id}" (config has ${this.ids().join(', ')})`);
    return p;
  }

  private appMain(role: ProcessRole): string {
    return this.opts.appMain?.[role] ?? join(REPO_ROOT, 'apps', APP_OF_ROLE[role], 'dist', 'main.js');
  }

  private async connectStatus(): Promise<void> {
    const subjects = new Subjects(this.config.clusterName);
    const name = `cairn-cluster-launcher-${process.pid}`;
    // The launcher listens to status heartbeats only: as `admin` on an authenticated bus (else `gateway`, which may too).
    const bus = busConnectOptions(this.config.nats, 'admin', subjects, name) ?? busConnectOptions(this.config.nats, 'gateway', subjects, name);
    this.nc = await natsConnect({
      servers: this.config.nats.servers,
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      // A first attempt can fail on a loaded box (a TLS handshake past nats-server's timeout): keep trying, as the processes do.
      waitOnFirstConnect: true,
      ...(bus ? natsSecurityOptions(bus) : {}),
    });
    for (const subject of [subjects.consensusStatus(), subjects.storageStatus()]) {
      this.nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err) return;
          const s = decodeStatus(msg.data);
          if (!s) return;
          const heard = { receivedAtMs: Date.now() };
          if (s.kind === 'consensus') this.consensus.set(s.id, { status: s, ...heard });
          else this.storage.set(s.id, { status: s, ...heard });
          this.events.emit('status');
        },
      });
    }
  }

  private spawnProcess(id: string): void {
    const p = this.proc(id);
    if (p.child) throw new Error(`process ${id} is already running (pid ${p.child.pid})`);
    LocalCluster.cancelRestart(p);
    if (this.stopping) throw new Error(`cluster is stopping: cannot start ${id}`);
    const logPath = this.logPath(id);
    const fd = openSync(logPath, 'a');
    let child: ChildProcess;
    try {
      const configPath = this.opts.configPathFor?.(id) ?? this.configPath;
      const prof = this.opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${this.opts.cpuProfDir}`, `--cpu-prof-name=${id}.${Date.now()}.cpuprofile`] : [];
      const args = [...prof, this.appMain(p.role), '--config', configPath, '--id', id, ...(p.join ? ['--join'] : [])];
      child = spawn(process.execPath, args, {
        stdio: ['ignore', fd, fd],
        env: { ...MALLOC_ENV, ...process.env, ...this.opts.env },
        // Own process group: a terminal Ctrl-C reaches only the launcher, which then stops the
        // processes in order (gateways first) instead of all of them at once.
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    p.child = child;
    p.exitExpected = false;
    p.spawnedAtMs = Date.now();
    const spawnedAtMs = p.spawnedAtMs;
    p.exited = new Promise<void>((resolveExit) => {
      child.once('exit', (code, signal) => {
        if (p.child === child) {
          p.child = null;
          p.exited = null;
        }
        const info: ProcessExit = { id, role: p.role, code, signal, logTail: logTail(logPath) };
        if (!p.exitExpected && !this.stopping) {
          this.events.emit('exit', info);
          if (this.launched) {
            this.opts.onUnexpectedExit?.(info);
            if (p.child === null) this.scheduleRestart(p, info, Date.now() - spawnedAtMs);
          }
        }
        resolveExit();
      });
    });
    // spawn() failures (e.g. EMFILE) arrive as 'error' and may come without 'exit'.
    child.once('error', (err) => {
      if (child.exitCode === null && child.signalCode === null && p.child === child) {
        p.child = null;
        p.exited = null;
        const info: ProcessExit = { id, role: p.role, code: null, signal: null, logTail: String(err) };
        this.events.emit('exit', info);
        if (this.launched && !p.exitExpected && !this.stopping) {
          this.opts.onUnexpectedExit?.(info);
          this.scheduleRestart(p, info, 0);
        }
      }
    });
  }

  private heardSinceSpawn(id: string): boolean {
    const p = this.proc(id);
    const h = p.role === 'consensus' ? this.consensus.get(id) : this.storage.get(id);
    return !!h && h.receivedAtMs >= p.spawnedAtMs && Date.now() - h.receivedAtMs <= STATUS_FRESH_MS;
  }

  /** Leader at the highest term among fresh heartbeats of running replicas, else null. */
  private currentLeader(): string | null {
    const now = Date.now();
    let best: ConsensusStatus | null = null;
    for (const [id, h] of this.consensus) {
      const p = this.procs.get(id);
      if (!p?.child || h.receivedAtMs < p.spawnedAtMs || now - h.receivedAtMs > STATUS_FRESH_MS) continue;
      if (h.status.role === 'leader' && (!best || h.status.term > best.term)) best = h.status;
    }
    if (!best) return null;
    // A stale leader (partitioned, lower term) must not win over a newer term seen elsewhere.
    for (const h of this.consensus.values()) {
      if (now - h.receivedAtMs <= STATUS_FRESH_MS && h.status.term > best.term) return null;
    }
    return best.id;
  }

  /** null when this process is up, else what is missing. */
  private async processUp(id: string): Promise<string | null> {
    const p = this.proc(id);
    if (!p.child) return `${id} is not running`;
    if (p.role === 'gateway') {
      // Every door, not only TLV: the gateway opens them one after another (TLV, RESP, HTTP), and
      // a test that used the RESP door the moment TLV accepted got ECONNREFUSED on a loaded box.
      const g = this.config.gateway.gateways.find((m) => m.id === id)!;
      for (const port of [g.port, g.respPort, g.httpPort]) {
        if (port !== undefined && !(await tcpAccepts(g.host, port))) return `gateway ${id} is not accepting TCP on ${g.host}:${port}`;
      }
      return null;
    }
    return this.heardSinceSpawn(id) ? null : `${p.role} ${id} has not reported status`;
  }

  /** null when the cluster is ready, else what is missing. */
  private async clusterReady(): Promise<string | null> {
    const missing: string[] = [];
    for (const p of this.procs.values()) {
      if (p.restartTimer) missing.push(`${p.role} ${p.id} is waiting for its restart (supervision backoff)`);
      if (p.child && p.role !== 'gateway' && !this.heardSinceSpawn(p.id)) missing.push(`${p.role} ${p.id} has not reported status`);
    }
    if (!this.currentLeader()) missing.push('no leader');
    if (missing.length) return missing.join('; ');
    for (const p of this.procs.values()) {
      if (p.child && p.role === 'gateway') {
        const why = await this.processUp(p.id);
        if (why) missing.push(why);
      }
    }
    return missing.length ? missing.join('; ') : null;
  }

  /**
   * Re-evaluates `check` on every status heartbeat (and once at once) until it returns null.
   * Rejects with ProcessExitedError when one of `watch` exits unexpectedly, ReadyTimeoutError
   * (carrying the last reason) after `timeoutMs`.
   */
  private waitFor(timeoutMs: number, check: () => Promise<string | null>, watch: string[]): Promise<void> {
    return new Promise<void>((resolveWait, reject) => {
      let lastReason = 'no status heartbeat received';
      let checking = false;
      let again = false;
      let done = false;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.events.off('status', onEvent);
        this.events.off('exit', onExit);
        this.events.off('stop', onStop);
        if (err) reject(err);
        else resolveWait();
      };
      const onEvent = () => {
        if (done) return;
        if (checking) {
          again = true;
          return;
        }
        checking = true;
        check().then(
          (reason) => {
            checking = false;
            if (reason === null) return finish();
            lastReason = reason;
            if (again) {
              again = false;
              onEvent();
            }
          },
          (e: unknown) => finish(e as Error),
        );
      };
      const onExit = (info: ProcessExit) => {
        // Under supervision a launched cluster restarts the process: keep waiting for it.
        if (watch.includes(info.id) && !(this.supervision && this.launched)) finish(new ProcessExitedError(info));
      };
      const onStop = () => finish(new Error('cluster is stopping'));
      const timer = setTimeout(
        () => finish(new ReadyTimeoutError(`not ready after ${timeoutMs} ms: ${lastReason} (logs in ${this.logDir})`)),
        timeoutMs,
      );
      this.events.on('status', onEvent);
      this.events.on('exit', onExit);
      this.events.on('stop', onStop);
      if (this.stopping) return onStop();
      for (const id of watch) {
        const p = this.proc(id);
        if (!p.child && p.spawnedAtMs > 0 && !p.exitExpected && !p.restartTimer) {
          // Exited before we started listening.
          return finish(new ProcessExitedError({ id, role: p.role, code: null, signal: null, logTail: logTail(this.logPath(id)) }));
        }
      }
      onEvent();
    });
  }
}
