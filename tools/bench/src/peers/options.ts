import { Command, CommanderError } from 'commander';
import { CodedError } from '@cairn/protocol';

/** The stores `bench:peers` knows, in the order they run and print. */
export const STORES = ['cairn', 'etcd', 'nats', 'redis'] as const;
export type StoreName = (typeof STORES)[number];

/**
 * What one request does: `put` a 256-byte value; `get` a linearizable read (etcd's default range,
 * Cairn's GET); `staleGet` a read that may be stale (etcd `serializable`, Cairn's STALE flag,
 * NATS KV get, Redis GET).
 */
export const WORKLOADS = ['put', 'get', 'staleGet'] as const;
export type Workload = (typeof WORKLOADS)[number];

/** A validated `bench:peers` run. */
export interface PeersOptions {
  only: StoreName[];
  /** Concurrent clients of each point, each one connection with one request at a time (closed loop). */
  clients: number[];
  durationMs: number;
  rounds: number;
  /** Keys are `key_` + 12 digits in [0, keys); every store is loaded with all of them before the reads. */
  keys: number;
  valueBytes: number;
  /** JSON report path, or null. */
  out: string | null;
  /** Install missing peers with apt-get (default true; `--no-install` only reports them missing). */
  install: boolean;
  /** Measure the machine's limits first (4 KiB append + fdatasync, 64-byte TCP ping-pong); `--no-limits` skips them. */
  limits: boolean;
  /** Cairn's consensus replicas (odd, 1..7; default 3) and storage nodes (1..5; default 2). */
  cairnReplicas: number;
  cairnStorageNodes: number;
}

/** A bad command line; `bench:peers` prints it with the usage and exits 2. */
export class PeersUsageError extends CodedError {
  readonly code = 'USAGE';
  /** `help`: the message is the usage text asked for with --help (exit 0). */
  constructor(
    message: string,
    readonly help = false,
  ) {
    super(message);
  }
}

export const PEERS_DEFAULTS = { clients: [1, 16, 128], durationMs: 10_000, rounds: 2, keys: 100_000, valueBytes: 256 } as const;
/** `--quick`: a smoke run (1 client, 2 s, 1 round). */
export const PEERS_QUICK = { clients: [1], durationMs: 2_000, rounds: 1 } as const;

/** `10s`, `500ms`, `2m` or a bare number of seconds → ms. @throws PeersUsageError */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s.trim());
  const ms = m ? Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000) : NaN;
  if (!(ms >= 100)) throw new PeersUsageError(`--duration must look like 10s, 500ms or 2m (at least 100ms), got "${s}"`);
  return Math.round(ms);
}

function positiveInt(name: string, s: string, max: number): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new PeersUsageError(`${name} must be an integer in [1, ${max}], got "${s}"`);
  return n;
}

/** An odd replica count in [1, 7] (an even one adds a member without adding a tolerated failure). @throws PeersUsageError */
function oddReplicas(s: string): number {
  const n = positiveInt('--cairn-replicas', s, 7);
  if (n % 2 === 0) throw new PeersUsageError(`--cairn-replicas must be odd, got ${n}`);
  return n;
}

/** `cairn,etcd` → the stores in run order, each once. @throws PeersUsageError on an unknown name */
export function parseOnly(s: string): StoreName[] {
  const names = s.split(',').map((x) => x.trim().toLowerCase()).filter((x) => x !== '');
  for (const n of names) if (!(STORES as readonly string[]).includes(n)) throw new PeersUsageError(`--only: unknown store "${n}" (known: ${STORES.join(', ')})`);
  if (names.length === 0) throw new PeersUsageError('--only names no store');
  return STORES.filter((s) => names.includes(s));
}

/** `1,16,128` → ascending distinct client counts, each in [1, 1024]. @throws PeersUsageError */
export function parseClients(s: string): number[] {
  const xs = s.split(',').map((x) => x.trim()).filter((x) => x !== '').map((x) => positiveInt('--clients', x, 1024));
  if (xs.length === 0) throw new PeersUsageError('--clients names no count');
  return [...new Set(xs)].sort((a, b) => a - b);
}

interface RawOptions {
  only?: string;
  clients?: string;
  duration?: string;
  rounds?: string;
  keys?: string;
  valueBytes?: string;
  out?: string;
  quick?: boolean;
  install: boolean;
  limits: boolean;
  cairnReplicas?: string;
  cairnStorageNodes?: string;
}

/** The command line (without `node main.js`) → options; `--quick` sets defaults that explicit options override. @throws PeersUsageError */
export function parsePeersArgs(argv: string[]): PeersOptions {
  const cmd = new Command('bench:peers')
    .description('Cairn side by side with etcd, NATS JetStream KV and Redis on this machine (docs/benchmarks.md "Peers")')
    .option('--only <stores>', `comma-separated subset of ${STORES.join(',')}`)
    .option('--clients <list>', 'concurrent clients of each point', '1,16,128')
    .option('--duration <time>', 'measured time of each point, e.g. 10s')
    .option('--rounds <n>', 'rounds; the table shows the median of each point')
    .option('--keys <n>', 'key space, loaded before the reads', String(PEERS_DEFAULTS.keys))
    .option('--value-bytes <n>', 'value size', String(PEERS_DEFAULTS.valueBytes))
    .option('--out <file.json>', 'also write the results as JSON')
    .option('--quick', 'smoke run: 1 client, 2 s, 1 round')
    .option('--no-install', 'do not apt-get install missing peers (skip them)')
    .option('--no-limits', "skip the machine's limits (fdatasync rate, TCP ping-pong)")
    .option('--cairn-replicas <n>', "Cairn's consensus replicas (odd)", '3')
    .option('--cairn-storage-nodes <n>', "Cairn's storage nodes", '2')
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined })
    .allowExcessArguments(false);
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) throw e.code === 'commander.helpDisplayed' ? new PeersUsageError(cmd.helpInformation(), true) : new PeersUsageError(`${e.message}\n${cmd.helpInformation()}`);
    throw e;
  }
  const o = cmd.opts<RawOptions>();
  const quick = o.quick === true;
  const clientsGiven = cmd.getOptionValueSource('clients') === 'cli';
  return {
    only: o.only === undefined ? [...STORES] : parseOnly(o.only),
    clients: clientsGiven || !quick ? parseClients(o.clients ?? '1,16,128') : [...PEERS_QUICK.clients],
    durationMs: o.duration !== undefined ? parseDuration(o.duration) : quick ? PEERS_QUICK.durationMs : PEERS_DEFAULTS.durationMs,
    rounds: o.rounds !== undefined ? positiveInt('--rounds', o.rounds, 100) : quick ? PEERS_QUICK.rounds : PEERS_DEFAULTS.rounds,
    keys: positiveInt('--keys', o.keys ?? String(PEERS_DEFAULTS.keys), 10_000_000),
    valueBytes: positiveInt('--value-bytes', o.valueBytes ?? String(PEERS_DEFAULTS.valueBytes), 1 << 20),
    out: o.out ?? null,
    install: o.install,
    limits: o.limits,
    cairnReplicas: oddReplicas(o.cairnReplicas ?? '3'),
    cairnStorageNodes: positiveInt('--cairn-storage-nodes', o.cairnStorageNodes ?? '2', 5),
  };
}
