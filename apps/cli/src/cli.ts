import { Command, CommanderError, Option } from 'commander';
import type { ClientTlsOptions, ClientWatchOptions, WatchItem } from '@cairn/client';
import type { TxnOpResponse, TxnRequest } from '@cairn/protocol';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchProgress, RawBenchOptions } from './bench';
import { EXIT_CODES_HELP, ExitCode, NotAppliedError, NotFoundError, UsageError, exitCodeFor } from './exit-codes';
import { formatEndpoints, formatPingSummary, formatStatus, silentMembers, summarizePings, valueJson, type ClusterStatus, type EndpointState } from './format';
import { formatAddress, resolveEndpoints, type GatewayAddress } from './gateway';
import { explainError, type HintContext } from './hints';
import { memberCommand } from './member';
import { authCommands } from './auth';
import { snapshotCommand } from './snapshot';
import { createProgress, type ProgressReporter } from './progress';
import { IMPORT_BATCH_DEFAULT, assertVerified, formatVerify, importRows, verifyRows, type KvConnection, type RowRetry } from './transfer';
import { isSkipHeader, tsvFileRows, type SkipHeader, type TsvRow } from './tsv';
import { AUTH_HOW, AuthRefusedError, credentialsOf, type CliCredentials } from './credentials';
import { watchCommand } from './watch';
import { TXN_SCRIPT_BYTES_MAX, parseTxnScript, responseJson, txnText } from './txn';
import { printRange, rangeReadOf, type RangeConnection, type RawRangeOptions } from './range';
import { durationMsArg, leaseCommand, leaseIdArg, type LeaseClient } from './lease';

/** What the commands need from a Cairn connection (`CairnPool` satisfies it). */
export interface CliClient extends KvConnection, RangeConnection, LeaseClient {
  /** `stale`: skip the read-your-writes wait (request flag STALE). */
  get(key: string, opts?: { stale?: boolean }): ReturnType<KvConnection['get']>;
  /** `applied` is false only for a conditional set whose condition was false (`ifRevision`: the key's mod revision was not that). `lease` / `ttlMs`: the key's lease and TTL (request flag LEASE). */
  set(key: string, value: string, opts?: { ifAbsent?: boolean; ifPresent?: boolean; ifRevision?: number; lease?: number; ttlMs?: number }): Promise<{ revision: number | bigint; applied?: boolean }>;
  /** One etcd Txn (TLV TXN; CairnPool `commitTxn`). */
  commitTxn(request: TxnRequest): Promise<{ revision: number; succeeded: boolean; responses: TxnOpResponse[] }>;
  /** `applied` is false only with `ifRevision` when the key's mod revision was not that (nothing deleted). */
  del(key: string, opts?: { ifRevision?: number }): Promise<{ revision: number | bigint; applied?: boolean }>;
  ping(): Promise<unknown>;
  status(): Promise<unknown>;
  close(): Promise<void> | void;
  /** Which endpoints have a live connection (CairnPool `stats`); `status` marks the others unreachable. */
  stats?(): { gateways: EndpointState[] };
  /** A resuming watch (CairnPool `watch`; `cairn watch`). */
  watch(opts: ClientWatchOptions): AsyncIterable<WatchItem>;
}

/** How `connect` opens a CairnPool (main.ts: connection.ts `poolOptions`). */
export interface ConnectOptions {
  /** The gateways to fail over between (resolveEndpoints), at least one. */
  endpoints: GatewayAddress[];
  /** Deadline of one call, ms (`--timeout`): every attempt and the wait for a reachable endpoint included. */
  requestTimeoutMs: number;
  /** Requests in flight per connection. */
  inflightMax: number;
  /**
   * `pool`: CairnPool's retries (reads on any retryable error, on another endpoint; writes only
   * when provably never sent). `none`: one attempt per call (bench measures what the gateway
   * answers; import/verify retry rows themselves, transfer.ts `retryRow`).
   */
  retries: 'pool' | 'none';
  /** TLS to every endpoint (`--tls`, `--cacert`, `--cert`, `--key`); absent: plain TCP. */
  tls?: ClientTlsOptions;
  /** Credentials every connection logs in with (AUTH) before its first request (credentials.ts `credentialsOf`); absent: none. */
  credentials?: CliCredentials;
}

export interface CliDeps {
  connect(opts: ConnectOptions): Promise<CliClient>;
  stdout: NodeJS.WriteStream | { write(s: string | Uint8Array): unknown; isTTY?: boolean };
  stderr: NodeJS.WriteStream | { write(s: string | Uint8Array): unknown; isTTY?: boolean };
  env?: NodeJS.ProcessEnv;
  /** Progress reporter factory; default cli-progress bar on a TTY stderr, else periodic lines. */
  progress?: (label: string, totalBytes: number) => ProgressReporter;
  /** Backoff wait between retries; default setTimeout (tests inject an immediate one). */
  sleep?: (ms: number) => Promise<void>;
  /** Clock for retry deadlines, ms; default Date.now (tests inject one that `sleep` advances). */
  now?: () => number;
  /** Monotonic clock of `bench`, ms; default performance.now. */
  benchClock?: () => number;
  /** HTTP client of `member`, `user`, `role`, `auth` (gateway HTTP API); default global fetch. */
  fetch?: typeof fetch;
  /** The lines of standard input (`txn` without --file), without their line ends; `isTTY`: prompts go to stderr. main.ts reads process.stdin. */
  stdin?: { isTTY?: boolean; lines(): AsyncIterable<string> };
  /** One line of standard input (`user add` / `passwd` without --new-user-password); main.ts reads process.stdin. */
  readLine?: () => Promise<string | null>;
  /** What `--version` prints; default the `version` of apps/cli/package.json. */
  version?: string;
  /** A signal aborted on Ctrl-C / SIGTERM, the handlers installed when called (`cairn watch` and `lease keepalive` end cleanly on it; main.ts); absent: none. */
  interrupted?: () => AbortSignal;
  /** Adds the `completion` commands to the program (main.ts: completion.ts `addCompletion`); none when absent. */
  completion?: (program: Command, argv: string[]) => Promise<void>;
}

/** The `version` field of apps/cli/package.json (read next to src/ or dist/). */
export function cliVersion(): string {
  return (JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
}

interface GlobalOpts {
  json?: boolean;
  endpoints?: string;
  gateway?: string;
  config?: string;
  timeout: number;
  tls?: boolean;
  cacert?: string;
  cert?: string;
  key?: string;
  user?: string;
  password?: string;
  token?: string;
}

/**
 * The client TLS options of `--tls`, `--cacert`, `--cert`, `--key` (etcdctl's names): TLS when any
 * is given; the files are read here (PEM). @throws UsageError for `--cert` without `--key` (or the
 * reverse) and an unreadable file.
 */
export function tlsOptionsOf(g: Pick<GlobalOpts, 'tls' | 'cacert' | 'cert' | 'key'>): ClientTlsOptions | undefined {
  if (!g.tls && !g.cacert && !g.cert && !g.key) return undefined;
  if (!g.cert !== !g.key) throw new UsageError('--cert and --key go together (a client certificate and its private key)');
  const read = (flag: string, file: string | undefined) => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (e) {
      throw new UsageError(`cannot read ${flag} ${file}: ${(e as Error).message}`);
    }
  };
  return { ca: read('--cacert', g.cacert), cert: read('--cert', g.cert), key: read('--key', g.key) };
}

/** `{ credentials }` of the global options (credentialsOf), or nothing when none were given. */
function credentialsOpt(g: GlobalOpts, env: NodeJS.ProcessEnv | undefined): { credentials?: CliCredentials } {
  const credentials = credentialsOf(g, env);
  return credentials ? { credentials } : {};
}

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer, got "${v}"`);
    return n;
  };
}

/** What every command's action uses: the deps, output lines, global options, a connection. */
interface Ctx {
  deps: CliDeps;
  out(s: string): void;
  err(s: string): void;
  globals(cmd: Command): GlobalOpts;
  /** The command's endpoints (resolveEndpoints); remembered so that `run` can explain a connection error. */
  endpoints(cmd: Command): Promise<GatewayAddress[]>;
  /** Opens a connection to the command's endpoints. */
  connect(cmd: Command, inflightMax: number, retries: ConnectOptions['retries']): Promise<CliClient>;
  /** Runs `fn` on a fresh connection and always closes it. */
  withClient(cmd: Command, fn: (c: CliClient) => Promise<void>): Promise<void>;
}

/** Set by the command that ran: what `run` may name when it explains an error. */
export interface RunState {
  hint?: HintContext;
}

/** Builds the `cairn` commander program; `run` drives it. Exposed for tests (fake `connect`). */
export function buildProgram(deps: CliDeps, state: RunState = {}): Command {
  const program = new Command('cairn')
    .description('Command-line client for Cairn, a replicated key-value store.')
    .option('--endpoints <list>', 'gateways to fail over between, host:port[,host:port...] (default: every gateway of --config, else $CAIRN_ENDPOINTS, else $CAIRN_GATEWAY, else 127.0.0.1:7380)')
    .option('-g, --gateway <host:port>', 'one gateway (the same as --endpoints with one address)')
    .option('-c, --config <file>', 'cluster config file to take the gateway addresses from')
    .option('-t, --timeout <ms>', 'deadline of one request, ms (retries and failover included)', positiveInt('--timeout'), 5_000)
    .option('--json', 'print the result as one JSON object on stdout (every command)')
    .option('--tls', "connect with TLS, verifying the gateway's certificate (implied by --cacert, --cert, --key)")
    .option('--cacert <file>', "PEM CA certificate(s) the gateway's certificate must chain to (default: Node's root CAs)")
    .option('--cert <file>', 'PEM client certificate, for a gateway door with mTLS (with --key)')
    .option('--key <file>', 'PEM private key of --cert')
    .option('--user <name[:password]>', 'user for a cluster with auth enabled, on every command (TLV: AUTH; HTTP: Basic); else $CAIRN_USER')
    .option('--password <password>', 'password of --user (else after the colon in --user, else $CAIRN_PASSWORD)')
    .option('--token <token>', 'bearer token (POST /v1/auth/token) instead of --user; else $CAIRN_TOKEN')
    .version(deps.version ?? cliVersion(), '-V, --version', 'print the version of cairn')
    .addHelpText('after', `\n${EXIT_CODES_HELP}\n`)
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => deps.stdout.write(s), writeErr: (s) => deps.stderr.write(s) });

  const globals = (cmd: Command) => cmd.optsWithGlobals<GlobalOpts>();
  const ctx: Ctx = {
    deps,
    out: (s) => deps.stdout.write(s.endsWith('\n') ? s : s + '\n'),
    err: (s) => deps.stderr.write(s.endsWith('\n') ? s : s + '\n'),
    globals,
    endpoints: async (cmd) => {
      const g = globals(cmd);
      const endpoints = await resolveEndpoints(g, deps.env);
      state.hint = { endpoints, timeoutMs: g.timeout };
      return endpoints;
    },
    connect: async (cmd, inflightMax, retries) => deps.connect({ endpoints: await ctx.endpoints(cmd), requestTimeoutMs: globals(cmd).timeout, inflightMax, retries, tls: tlsOptionsOf(globals(cmd)), ...credentialsOpt(globals(cmd), deps.env) }),
    withClient: async (cmd, fn) => {
      const c = await ctx.connect(cmd, 16, 'pool');
      try {
        await fn(c);
      } finally {
        await c.close();
      }
    },
  };
  addPutCommand(program, ctx);
  addKeyCommands(program, ctx);
  addTxnCommand(program, ctx);
  program.addCommand(memberCommand({ fetch: deps.fetch, env: deps.env, out: ctx.out }));
  for (const c of authCommands({ fetch: deps.fetch, env: deps.env, out: ctx.out, readLine: deps.readLine, tls: (cmd) => tlsOptionsOf(globals(cmd)) })) program.addCommand(c);
  program.addCommand(snapshotCommand({ env: deps.env, out: ctx.out, tls: (cmd) => tlsOptionsOf(globals(cmd)), credentials: (cmd) => credentialsOf(globals(cmd), deps.env) }));
  program.addCommand(leaseCommand({ withClient: ctx.withClient, out: ctx.out, json: (cmd) => globals(cmd).json === true, interrupted: deps.interrupted }));
  addInfoCommands(program, ctx);
  program.addCommand(watchCommand({ withClient: ctx.withClient, out: ctx.out, json: (cmd) => globals(cmd).json === true, interrupted: deps.interrupted }));
  addBenchCommand(program, ctx);
  addTransferCommands(program, ctx);
  return program;
}

/** put (with its conditions, lease and TTL). */
function addPutCommand(program: Command, { out, globals, withClient }: Ctx): void {
  const json = (cmd: Command) => globals(cmd).json === true;
  program
    .command('put')
    .description('set KEY to VALUE; prints the new revision. --nx / --xx: only if KEY is absent / present; --if-rev N: only if its mod revision is N (atomic); exit 6 when not applied')
    .argument('<key>')
    .argument('<value>')
    .addOption(new Option('--nx', 'only if KEY does not exist (like Redis SET NX)').conflicts(['xx', 'ifRev']))
    .addOption(new Option('--xx', 'only if KEY exists (like Redis SET XX)').conflicts(['nx', 'ifRev']))
    .addOption(new Option('--if-rev <n>', "compare-and-swap: only if KEY's mod revision is N (0: only if KEY does not exist; etcd's mod_revision compare)").argParser(revisionArg('--if-rev')))
    .addOption(leaseOption())
    .addOption(ttlOption())
    .action(async (key: string, value: string, o: { nx?: boolean; xx?: boolean; ifRev?: number; lease?: number; ttl?: number }, cmd: Command) =>
      withClient(cmd, async (c) => {
        const leased = leasedOf(o);
        const r = o.ifRev !== undefined ? await c.set(key, value, { ifRevision: o.ifRev, ...leased }) : o.nx || o.xx ? await c.set(key, value, { ifAbsent: o.nx === true, ifPresent: o.xx === true, ...leased }) : await c.set(key, value, leased);
        if (json(cmd)) out(JSON.stringify({ key, revision: Number(r.revision), applied: r.applied !== false }));
        if (r.applied === false) throw new NotAppliedError(`not applied: ${key} ${notAppliedWhy(o)}; condition evaluated at revision ${r.revision}`);
        if (!json(cmd)) out(String(r.revision));
      }),
    );
}

/** get (a key or a range), ls, del. */
function addKeyCommands(program: Command, { deps, out, globals, withClient }: Ctx): void {
  const json = (cmd: Command) => globals(cmd).json === true;
  program
    .command('get')
    .description('print the value of KEY to stdout as is (no newline added); exit 1 if not found. --json: key, value, revision, createRevision, version. With --prefix or --from/--to: a range read, each key and value on a line (etcdctl get --prefix)')
    .argument('[key]', 'the key; with --prefix alone, the prefix')
    .addOption(new Option('--prefix [prefix]', 'every key starting with PREFIX (or with KEY; alone: every key), in key order, page after page'))
    .addOption(new Option('--from <key>', 'range read from this key (inclusive)'))
    .addOption(new Option('--to <key>', 'range end (exclusive; default: no end)'))
    .addOption(new Option('--limit <n>', 'print at most N keys of the range').argParser(positiveInt('--limit')))
    .option('--keys-only', 'print only the keys of the range')
    .option('--count-only', 'print only the number of keys in the range')
    .option('--reverse', 'the range in descending key order')
    .option('--stale', 'skip the linearizable read (ReadIndex): answer from a storage node as it is')
    .action(async (key: string | undefined, o: RawRangeOptions, cmd: Command) =>
      withClient(cmd, async (c) => {
        const ranged = rangeReadOf(key, o);
        if (ranged) {
          await printRange(c, ranged, deps.stdout, json(cmd));
          return;
        }
        const r = await c.get(key!, o.stale ? { stale: true } : undefined);
        if (!r) throw new NotFoundError(key!);
        const bytes = typeof r.value === 'string' ? Buffer.from(r.value, 'utf8') : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
        if (json(cmd)) out(JSON.stringify({ key, ...valueJson(bytes), revision: Number(r.revision), createRevision: r.createRevision, version: r.version }));
        else deps.stdout.write(bytes);
      }),
    );

  program
    .command('ls')
    .description('list the keys starting with PREFIX (default: every key), one a line, in key order (etcdctl get --prefix --keys-only)')
    .argument('[prefix]', 'key prefix', '')
    .addOption(new Option('--limit <n>', 'list at most N keys').argParser(positiveInt('--limit')))
    .option('--stale', 'skip the linearizable read (ReadIndex)')
    .action(async (prefix: string, o: { limit?: number; stale?: boolean }, cmd: Command) =>
      withClient(cmd, async (c) => {
        await printRange(c, { query: { prefix, keysMax: o.limit, keysOnly: true, stale: o.stale === true }, countOnly: false }, deps.stdout, json(cmd), true);
      }),
    );

  program
    .command('del')
    .description("delete KEY; prints the revision of the delete. --if-rev N: only if KEY's mod revision is N (atomic); exit 6 when not applied")
    .argument('<key>')
    .addOption(new Option('--if-rev <n>', "compare-and-swap: only if KEY's mod revision is N (etcd's mod_revision compare)").argParser(revisionArg('--if-rev')))
    .action(async (key: string, o: { ifRev?: number }, cmd: Command) =>
      withClient(cmd, async (c) => {
        const r = o.ifRev === undefined ? await c.del(key) : await c.del(key, { ifRevision: o.ifRev });
        if (o.ifRev !== undefined && json(cmd)) out(JSON.stringify({ key, revision: Number(r.revision), applied: r.applied !== false }));
        if (r.applied === false) throw new NotAppliedError(`not deleted: ${key} ${notAppliedWhy(o)}; condition evaluated at revision ${r.revision}`);
        if (o.ifRev === undefined || !json(cmd)) out(json(cmd) ? JSON.stringify({ key, revision: Number(r.revision) }) : String(r.revision));
      }),
    );
}

const leaseOption = () => new Option('--lease <id>', 'attach KEY to this lease (cairn lease grant): KEY goes when the lease is revoked or expires; exit 1 when the lease is not live').argParser(leaseIdArg('--lease'));
const ttlOption = () => new Option('--ttl <ttl>', 'KEY expires after TTL (e.g. 30s, 500ms, 2m; a bare number is seconds), like Redis SET PX').argParser(durationMsArg('--ttl'));

/** The `set` options of put --lease / --ttl (request flag LEASE). */
function leasedOf(o: { lease?: number; ttl?: number }): { lease?: number; ttlMs?: number } {
  return { ...(o.lease !== undefined ? { lease: o.lease } : {}), ...(o.ttl !== undefined ? { ttlMs: o.ttl } : {}) };
}

/** Why a conditional put was not applied. */
function notAppliedWhy(o: { nx?: boolean; ifRev?: number }): string {
  if (o.ifRev !== undefined) return o.ifRev === 0 ? 'exists (--if-rev 0)' : `has another mod revision than ${o.ifRev}, or does not exist (--if-rev ${o.ifRev})`;
  return o.nx ? 'exists (--nx)' : 'does not exist (--xx)';
}

/** A revision argument: an integer in 0..2^53-1. */
function revisionArg(name: string) {
  return (v: string): number => {
    if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) throw new UsageError(`${name} must be a revision, an integer in 0..2^53-1, got "${v}"`);
    return Number(v);
  };
}

const TXN_PROMPTS = ['compares:', 'success requests (get, put, del):', 'failure requests (get, put, del):'];

/** The lines of a txn script: `file`, else standard input (prompts on stderr when it is a terminal, which ends after the third section). @throws UsageError past TXN_SCRIPT_BYTES_MAX. */
async function txnScriptLines(file: string | undefined, deps: CliDeps, err: (s: string) => void): Promise<string[]> {
  if (file !== undefined) {
    if (statSync(file).size > TXN_SCRIPT_BYTES_MAX) throw new UsageError(`${file} is over ${TXN_SCRIPT_BYTES_MAX} bytes: a txn script is at most that`);
    return readFileSync(file, 'utf8').split('\n');
  }
  if (!deps.stdin) throw new UsageError('no standard input: give the txn with --file');
  const tty = deps.stdin.isTTY === true;
  const lines: string[] = [];
  let bytes = 0;
  let section = 0;
  if (tty) err(TXN_PROMPTS[0]);
  for await (const line of deps.stdin.lines()) {
    bytes += Buffer.byteLength(line) + 1;
    if (bytes > TXN_SCRIPT_BYTES_MAX) throw new UsageError(`standard input is over ${TXN_SCRIPT_BYTES_MAX} bytes: a txn script is at most that`);
    lines.push(line);
    if (line.trim() !== '') continue;
    if (++section === 3 && tty) break;
    if (tty) err(`\n${TXN_PROMPTS[section]}`);
  }
  return lines;
}

/** txn (etcdctl's): compares, success ops, failure ops from --file or standard input. */
function addTxnCommand(program: Command, { deps, out, err, globals, withClient }: Ctx): void {
  program
    .command('txn')
    .description('an etcd transaction, as etcdctl txn: compares, a blank line, success ops, a blank line, failure ops (standard input or --file); prints SUCCESS or FAILURE and the responses')
    .option('-f, --file <file>', 'read the txn from FILE instead of standard input')
    .action(async (o: { file?: string }, cmd: Command) => {
      const source = o.file ?? 'stdin';
      const request = parseTxnScript(await txnScriptLines(o.file, deps, err), source);
      await withClient(cmd, async (c) => {
        const r = await c.commitTxn(request);
        const ops = r.succeeded ? request.success : request.failure;
        if (globals(cmd).json) out(JSON.stringify({ succeeded: r.succeeded, revision: r.revision, responses: r.responses.map((x, i) => responseJson(x, ops[i])) }));
        else deps.stdout.write(txnText(r.succeeded, r.responses, ops));
      });
    });
}

/** ping, status. */
function addInfoCommands(program: Command, { out, globals, withClient }: Ctx): void {
  program
    .command('ping')
    .description('round trips to the gateway: RTT of each in µs, then min/avg/p50/max')
    .option('-n, --count <n>', 'number of pings', positiveInt('--count'), 4)
    .action(async (o: { count: number }, cmd: Command) =>
      withClient(cmd, async (c) => {
        const json = globals(cmd).json === true;
        const rtts: number[] = [];
        for (let i = 1; i <= o.count; i++) {
          const t0 = process.hrtime.bigint();
          await c.ping();
          const us = Number((process.hrtime.bigint() - t0) / 1000n);
          rtts.push(us);
          if (!json) out(`ping ${i}: ${us} µs`);
        }
        const summary = summarizePings(rtts);
        out(json ? JSON.stringify({ ...summary, rttUs: rtts }) : formatPingSummary(summary));
      }),
    );

  program
    .command('status')
    .description("the gateway's view of the cluster: leader, consensus replicas, storage nodes (DOWN when their heartbeats stopped); endpoints the CLI could not reach are marked UNREACHABLE")
    .action(async (_o, cmd: Command) =>
      withClient(cmd, async (c) => {
        const raw = await c.status();
        const s = (typeof raw === 'string' ? JSON.parse(raw) : raw) as ClusterStatus;
        const endpoints = (c.stats?.().gateways ?? []).map((g) => ({ address: formatAddress(g), reachable: g.up }));
        out(globals(cmd).json ? JSON.stringify({ ...s, endpoints, unreachable: silentMembers(s) }, null, 2) : `${endpoints.length ? `${formatEndpoints(endpoints)}\n` : ''}${formatStatus(s)}`);
      }),
    );
}

function addBenchCommand(program: Command, ctx: Ctx): void {
  const { deps, out, globals } = ctx;
  program
    .command('bench')
    .description('load generator (like redis-benchmark): throughput and latency percentiles of SET/GET, 2-key transactions, range reads')
    .option('--op <op>', 'set | get | mixed | txn (compare 2 keys\' mod revisions, put both) | range (a linearizable range read of --range-keys keys)', 'set')
    .option('--range-keys <n>', 'keys of each range read, --op range (default 1000)')
    .option('--ratio <r>', 'share of GETs for --op mixed, 0..1', '0.9')
    .option('--clients <n>', 'connections, each with its own pipeline', '16')
    .option('--pipeline <n>', 'requests in flight per connection', '1')
    .option('--keyspace <n>', 'keys are key:000000000000 .. key:<keyspace-1>, chosen uniformly', '100000')
    .option('--value-size <bytes>', 'SET value size', '100')
    .option('--duration <time>', 'how long to measure: 10s, 500ms, 2m (default 10s)')
    .option('--requests <n>', 'measure this many requests instead of a duration')
    .option('--warmup-keys', 'SET every key of the keyspace first (default for get and mixed)')
    .option('--no-warmup-keys', 'do not load the keyspace first')
    .action(async (o: RawBenchOptions, cmd: Command) => {
      // Imported here: hdr-histogram-js is a sixth of the CLI's start-up CPU and only the bench uses it.
      const { WARMUP_PIPELINE, benchConfig, formatBenchReport, formatProgress, runBench } = await import('./bench.js');
      const g = globals(cmd);
      const cfg = benchConfig({ ...o, json: g.json });
      const endpoints = await ctx.endpoints(cmd);
      const inflightMax = Math.max(cfg.pipeline, cfg.warmupKeys ? WARMUP_PIPELINE : 1);
      const tty = deps.stderr.isTTY === true;
      let opened = 0;
      const tls = tlsOptionsOf(g);
      const creds = credentialsOpt(g, deps.env);
      const report = await runBench(cfg, {
        // Each bench client is one connection; clients are spread round-robin over the endpoints.
        connect: () => deps.connect({ endpoints: [endpoints[opened++ % endpoints.length]], requestTimeoutMs: g.timeout, inflightMax, retries: 'none', tls, ...creds }),
        onProgress: (p: BenchProgress) => deps.stderr.write(tty ? `\r${formatProgress(cfg.op, p)}\x1b[K` : `${formatProgress(cfg.op, p)}\n`),
        now: deps.benchClock,
      });
      if (tty) deps.stderr.write('\r\x1b[K');
      out(cfg.json ? JSON.stringify(report) : formatBenchReport(report));
    });
}

interface TransferOpts {
  inflight: number;
  skipHeader: string;
  retryMs: number;
}

/** The size of the TSV file to transfer. @throws UsageError when it is not a readable file or --skip-header is bad. */
function transferFileBytes(file: string, o: TransferOpts): number {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new UsageError(`${file} is not a file`);
    size = st.size;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
  }
  if (!isSkipHeader(o.skipHeader)) throw new UsageError(`--skip-header must be auto, yes or no`);
  return size;
}

/** Shared set-up of import/verify: file check, connection, row retries with warnings, progress. */
async function transfer<T>(
  ctx: Ctx,
  label: string,
  file: string,
  o: TransferOpts,
  cmd: Command,
  fn: (rows: AsyncIterable<TsvRow>, conn: CliClient, retry: RowRetry, progress: ProgressReporter) => Promise<T>,
): Promise<T> {
  const { deps, err } = ctx;
  const size = transferFileBytes(file, o);
  let lastWarnMs = 0;
  const retry: RowRetry = {
    retryMs: o.retryMs,
    sleep: deps.sleep,
    now: deps.now,
    onRetry: (e) => {
      // Hundreds of pipelined rows fail together when a gateway dies: one line per 2 s is enough.
      const now = Date.now();
      if (now - lastWarnMs < 2_000) return;
      lastWarnMs = now;
      err(`${label}: retrying (${(e as { code?: string }).code ?? 'error'}: ${(e as Error).message})`);
    },
  };
  const conn = await ctx.connect(cmd, o.inflight, 'none');
  const progress = deps.progress?.(label, size) ?? createProgress({ label, totalBytes: size, stream: deps.stderr as NodeJS.WriteStream });
  try {
    return await fn(tsvFileRows(file, o.skipHeader as SkipHeader), conn, retry, progress);
  } finally {
    progress.stop();
    await Promise.resolve(conn.close()).catch(() => undefined);
  }
}

/** import, verify. */
function addTransferCommands(program: Command, ctx: Ctx): void {
  const transferOptions = (cmd: Command) =>
    cmd
      .argument('<file>', 'TSV file: key = first column, value = the rest of the row after the first tab')
      .option('--inflight <n>', 'requests in flight (pipelining window)', positiveInt('--inflight'), 512)
      .addOption(
        new Option('--skip-header <mode>', 'skip line 1: auto = when it starts with "name<TAB>"').choices(['auto', 'yes', 'no']).default('auto'),
      )
      .option('--retry-ms <ms>', 'keep retrying a row on retryable errors for this long, ms', positiveInt('--retry-ms'), 60_000);

  transferOptions(program.command('import').description('SET every row of a TSV file, pipelined, retrying retryable errors'))
    .option('--rows-per-txn <n>', 'rows written per transaction (one TXN of puts; 1: one SET per row, --inflight of them in flight)', positiveInt('--rows-per-txn'), IMPORT_BATCH_DEFAULT.rowsMax)
    .option('--txns-inflight <n>', 'transactions in flight at once (with --rows-per-txn above 1)', positiveInt('--txns-inflight'), IMPORT_BATCH_DEFAULT.inflightMax)
    .action(async (file: string, o: TransferOpts & { rowsPerTxn: number; txnsInflight: number }, cmd: Command) => {
      const batch = { rowsMax: o.rowsPerTxn, bytesMax: IMPORT_BATCH_DEFAULT.bytesMax, inflightMax: o.txnsInflight };
      const r = await transfer(ctx, 'import', file, o, cmd, (rows, conn, retry, progress) => importRows(rows, conn, { windowMax: o.inflight, retry, progress, batch }));
      const summary = { rows: r.rows, seconds: Number(r.seconds.toFixed(2)), rowsPerSecond: Math.round(r.rowsPerSecond) };
      ctx.out(ctx.globals(cmd).json ? JSON.stringify(summary) : `imported rows=${summary.rows} seconds=${r.seconds.toFixed(2)} rows/s=${summary.rowsPerSecond}`);
    });

  transferOptions(program.command('verify').description('GET every key of a TSV file and compare; exit 4 on any missing or mismatched key')).action(
    async (file: string, o: TransferOpts, cmd: Command) => {
      const r = await transfer(ctx, 'verify', file, o, cmd, (rows, conn, retry, progress) => verifyRows(rows, conn, { windowMax: o.inflight, retry, progress }));
      ctx.out(ctx.globals(cmd).json ? JSON.stringify(r) : formatVerify(r));
      for (const x of r.examples) ctx.err(`${x.problem}: line ${x.lineNo} key ${JSON.stringify(x.key)}`);
      assertVerified(r);
    },
  );
}

/**
 * Runs `cairn` with `argv` (as process.argv) and returns the exit code; errors are printed to
 * stderr as `cairn: <message>`, a connection error with what to check (hints.ts `explainError`).
 */
export async function run(argv: string[], deps: CliDeps): Promise<number> {
  const state: RunState = {};
  const program = buildProgram(deps, state);
  try {
    await deps.completion?.(program, argv);
    await program.parseAsync(argv);
    return ExitCode.ok;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    const code = exitCodeFor(e);
    // An error without a code is a bug somewhere: show its stack.
    const detail = code === ExitCode.serverError && !(e as { code?: unknown }).code ? (e as Error).stack : (e as Error).message;
    const explained = state.hint && (code === ExitCode.unavailable || code === ExitCode.serverError) ? explainError(e, state.hint) : null;
    // A TLV refusal says only "authentication required": say how to log in (HTTP ones already do).
    const how = code === ExitCode.denied && (e as { code?: unknown }).code === 'UNAUTHENTICATED' && !(e instanceof AuthRefusedError) ? ` (${AUTH_HOW})` : '';
    deps.stderr.write(`cairn: ${explained ?? detail}${how}\n`);
    return code;
  }
}
