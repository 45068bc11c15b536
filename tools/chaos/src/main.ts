#!/usr/bin/env node
/**
 * `node tools/chaos/dist/main.js --seed N --duration 600s --clients 8 --keys 20 [--config-out DIR] [--history FILE]
 *   [--faults kinds] [--membership] [--big-values [--big-value-max BYTES]] [--cas] [--txn] [--watchers N] [--leases] [--proxies]`:
 * one chaos run (src/chaos.ts) on a real local cluster, then its summary on stdout.
 * `--check-history FILE` re-checks a saved history instead of running.
 * Exit codes: 0 passed (linearizable), 1 failed (violation or problem), 2 inconclusive (the
 * checker ran out of budget on some key), 3 bad arguments or the cluster could not start.
 */
import { checkHistoryFile, formatCheckResult } from '@cairn/checker';
import { Command, CommanderError } from 'commander';
import { formatChaosSummary, runChaos, type ChaosResult } from './chaos';
import { FAULT_KINDS, parseDurationMs, type FaultKind } from './schedule';

function int(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return n;
  };
}

/** The command line (commander), parsed into ChaosArgs. */
function command(): Command {
  return new Command('cairn-chaos')
    .description('Chaos run: random client load on a local cluster under injected faults, then a linearizability check of the history.')
    .option('--seed <n>', 'seed of the fault schedule and of the clients\' choices (default: random)', int('seed', 0))
    .option('--duration <d>', 'load and faults last this long: 600s, 10m, 1500ms', '60s')
    .option('--clients <n>', 'concurrent clients', int('clients', 1), 8)
    .option('--keys <n>', 'keys k0..k(n-1)', int('keys', 1), 20)
    .option('--config-out <dir>', 'keep the cluster config, data and logs in this directory (default: a temp dir, deleted after a pass)')
    .option('--history <file>', 'save the history as JSON lines (always saved on failure)')
    .option('--request-timeout <ms>', 'client request timeout, ms', int('request-timeout', 1), 5000)
    .option('--think <ms>', 'pause between one client\'s operations, ms', int('think', 0), 0)
    .option('--check-timeout <ms>', 'checker budget, ms', int('check-timeout', 1), 300_000)
    .option('--faults <kinds>', `comma-separated fault kinds to draw from (default all: ${FAULT_KINDS.join(',')}), or none`)
    .option('--membership', 'also grow the consensus group 3 → 5 and shrink it back to 3 (removing the leader) during the run')
    .option('--big-values', 'also run the big-values workload: values of 1 byte to 1 MiB on keys big0..big3, pipelined TLV reads, RESP MGETs of 16 large values')
    .option('--big-value-max <bytes>', 'largest value of the big-values workload, bytes', int('big-value-max', 1), 1024 * 1024)
    .option('--cas', 'compare-and-swap in the workload: 3 operations in 10 read a key, then write it only if its mod revision is still the one read (put --if-rev), checked as a CAS register')
    .option('--watchers <n>', 'watchers on ranges of the keys during the run, their streams checked against the committed history (no gap, no duplicate, equal events)', int('watchers', 0), 0)
    .option('--leases', 'leases and key TTLs in the workload: keys with 300-1,000 ms TTLs must miss every read started after their expiry, the keys of a lease kept alive must never vanish while an acknowledged renewal covers them')
    .option('--txn', 'the data-model workload: besides the --cas mix, INCRBY on counters n0..n1 through a retrying pool, bank transfers between accounts a0..a3 (a range read, then one txn guarded by both mod revisions) and range reads, checked by the map model')
    .option('--proxies', 'put every process behind its own NATS proxy even without partition faults')
    .option('--check-history <file>', 're-check a saved history and exit')
    .allowExcessArguments(false)
    .exitOverride();
}

/** What `command()` parses. */
interface ChaosArgs {
  seed?: number;
  duration: string;
  clients: number;
  keys: number;
  configOut?: string;
  history?: string;
  requestTimeout: number;
  think: number;
  checkTimeout: number;
  checkHistory?: string;
  faults?: string;
  membership?: boolean;
  bigValues?: boolean;
  bigValueMax: number;
  cas?: boolean;
  watchers: number;
  leases?: boolean;
  txn?: boolean;
  proxies?: boolean;
}

async function main(): Promise<number> {
  let o;
  try {
    o = command().parse(process.argv).opts<ChaosArgs>();
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 3;
    process.stderr.write(`cairn-chaos: ${(e as Error).message}\n`);
    return 3;
  }
  if (o.checkHistory) {
    const r = checkHistoryFile(o.checkHistory, { timeoutMs: o.checkTimeout });
    process.stdout.write(formatCheckResult(r) + '\n');
    return r.ok ? 0 : r.violations.length ? 1 : 2;
  }
  let durationMs: number;
  let kinds: FaultKind[] | undefined;
  try {
    durationMs = parseDurationMs(o.duration);
    kinds = o.faults === 'none' ? [] : (o.faults?.split(',').map((k) => k.trim()) as FaultKind[] | undefined);
    for (const k of kinds ?? []) if (!FAULT_KINDS.includes(k)) throw new RangeError(`--faults: unknown kind ${JSON.stringify(k)} (kinds: ${FAULT_KINDS.join(', ')})`);
  } catch (e) {
    process.stderr.write(`cairn-chaos: ${(e as Error).message}\n`);
    return 3;
  }
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`cairn-chaos: ${signal}: ending the load early; healing and checking what was recorded\n`);
    abort.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let result;
  try {
    result = await runChaos({
      seed,
      durationMs,
      clients: o.clients,
      keys: o.keys,
      configOut: o.configOut,
      historyPath: o.history,
      requestTimeoutMs: o.requestTimeout,
      thinkMs: o.think,
      checkTimeoutMs: o.checkTimeout,
      faults: kinds ? { kinds } : undefined,
      membership: o.membership === true,
      bigValues: o.bigValues ? { valueBytesMax: o.bigValueMax } : false,
      cas: o.cas === true,
      watchers: o.watchers,
      leases: o.leases === true,
      txn: o.txn === true,
      proxies: o.proxies === true,
      signal: abort.signal,
      log: (line) => process.stderr.write(`${line}\n`),
    });
  } catch (e) {
    process.stderr.write(`cairn-chaos: the cluster could not start: ${(e as Error).message}\n`);
    return 3;
  }
  process.stdout.write(formatChaosSummary(result) + '\n');
  return exitCode(result);
}

/** 0 passed, 1 a violation (history or watch streams) or a problem, 2 inconclusive. */
function exitCode(r: ChaosResult): number {
  if (r.passed) return 0;
  return r.check.violations.length || r.problems.length || r.watch?.violations.length ? 1 : 2;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`cairn-chaos: ${(e as Error).stack}\n`);
    process.exit(3);
  },
);
