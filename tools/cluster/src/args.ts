import { Command, CommanderError } from 'commander';
import { CodedError } from '@cairn/protocol';

export interface LauncherArgs {
  /** Cluster config file (resolved by the caller against the working directory). */
  configPath: string;
  /** False with `--no-nats`: use an already running NATS at `config.nats.servers`. */
  startNats: boolean;
  /** `--log-dir`, default `<dataDir>/logs`. */
  logDir?: string;
  /** `--ready-timeout`, ms. */
  readyTimeoutMs: number;
  /** False with `--no-restart`: a process that exits stays down (default: restarted with backoff). */
  restart: boolean;
  /** `--cpu-prof DIR`: every Cairn process runs with `node --cpu-prof` and writes its profile into DIR when it exits (docs/benchmarks.md, "Where the time goes"). */
  cpuProfDir?: string;
}

/** Thrown on bad launcher arguments (or `--help`); `exitCode` is what the process should exit with. */
export class LauncherArgsError extends CodedError {
  readonly code = 'LAUNCHER_ARGS';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/**
 * Parses `cairn-cluster [--config FILE] [--no-nats] [--log-dir DIR] [--ready-timeout MS] [--no-restart] [--cpu-prof DIR]`
 * (`argv` as in process.argv). Output (help, errors) goes to `write`.
 * @throws LauncherArgsError on an unknown option, a bad number, or `--help` (exitCode 0).
 */
export function parseLauncherArgs(argv: string[], write: (s: string) => void = (s) => process.stderr.write(s)): LauncherArgs {
  const cmd = new Command('cairn-cluster')
    .description('Start a local Cairn cluster (nats-server, consensus replicas, storage nodes, gateways) and keep it up until Ctrl-C.')
    .option('-c, --config <file>', 'cluster config JSON file', process.env.CAIRN_CONFIG ?? 'cairn.config.json')
    .option('--no-nats', 'do not start a private nats-server; use the one at config nats.servers')
    .option('--log-dir <dir>', 'directory for the process logs (default <dataDir>/logs)')
    .option('--ready-timeout <ms>', 'how long to wait for the cluster to be ready, ms', '30000')
    .option('--no-restart', 'do not restart a process that exits unexpectedly (default: restart it with exponential backoff, 0.5 s doubling to 30 s)')
    .option('--cpu-prof <dir>', 'run every Cairn process with node --cpu-prof, writing <id>.<spawn ms>.cpuprofile into <dir> when each stops')
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeOut: write, writeErr: write });
  try {
    cmd.parse(argv);
  } catch (e) {
    if (e instanceof CommanderError) throw new LauncherArgsError(e.message, e.exitCode === 0 ? 0 : 2);
    throw e;
  }
  const o = cmd.opts<{ config: string; nats: boolean; logDir?: string; readyTimeout: string; restart: boolean; cpuProf?: string }>();
  const readyTimeoutMs = Number(o.readyTimeout);
  if (!Number.isInteger(readyTimeoutMs) || readyTimeoutMs <= 0) {
    throw new LauncherArgsError(`--ready-timeout must be a positive integer (ms), got "${o.readyTimeout}"`, 2);
  }
  return { configPath: o.config, startNats: o.nats, logDir: o.logDir, readyTimeoutMs, restart: o.restart, ...(o.cpuProf ? { cpuProfDir: o.cpuProf } : {}) };
}
