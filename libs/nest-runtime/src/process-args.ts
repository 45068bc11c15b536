import { ConfigError, loadClusterConfig, roleOf, type ClusterConfig } from '@cairn/config';
import { Command } from 'commander';

/** Same alphabet as config ids and Raft ConfChange node ids (they appear in NATS subjects and paths). */
const PROCESS_ID = /^[A-Za-z0-9_-]{1,64}$/;

export type ProcessRole = 'consensus' | 'storage' | 'gateway';

export interface ProcessArgs {
  configPath: string;
  id: string;
  config: ClusterConfig;
  /**
   * `--join`: this consensus replica or storage node is not in the config file; it joins a
   * running cluster and waits to be added with `cairn member add` (Raft thesis §4).
   * `CAIRN_JOIN=auto` sets it exactly when the id is not in the config (one pod template for the
   * initial members and for those a StatefulSet scale-up adds; docs/deploy.md).
   */
  join: boolean;
}

function isInConfig(config: ClusterConfig, id: string): boolean {
  try {
    roleOf(config, id);
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses `--config FILE --id ID` (or $CAIRN_CONFIG / $CAIRN_ID), loads and validates the config,
 * and checks that `id` is a member with the expected role.
 * @throws ConfigError on a missing/invalid config or an id of another role.
 */
export function parseProcessArgs(argv: string[], role: ProcessRole): ProcessArgs {
  const cmd = new Command(`cairn-${role}`)
    .option('-c, --config <file>', 'cluster config JSON file', process.env.CAIRN_CONFIG ?? 'cairn.config.json')
    .option('-i, --id <id>', `this ${role} process's id in the config`, process.env.CAIRN_ID)
    .option('--join', 'the id is not in the config: join a running cluster (consensus and storage only; then `cairn member add`)', process.env.CAIRN_JOIN === '1')
    .allowExcessArguments(false)
    .exitOverride();
  cmd.parse(argv);
  const opts = cmd.opts<{ config: string; id?: string; join: boolean }>();
  if (!opts.id) throw new ConfigError(`--id is required (the id of this ${role} process in ${opts.config})`);
  const config = loadClusterConfig(opts.config);
  if (!opts.join && process.env.CAIRN_JOIN === 'auto' && role !== 'gateway') opts.join = !isInConfig(config, opts.id);
  if (opts.join) {
    if (role === 'gateway') throw new ConfigError('--join is for consensus replicas and storage nodes; gateways are listed in the config');
    if (!PROCESS_ID.test(opts.id)) throw new ConfigError(`process id "${opts.id}" must be 1-64 of [A-Za-z0-9_-]`);
    let actual: string | null = null;
    try {
      actual = roleOf(config, opts.id);
    } catch {
      // not in the config: that is what --join is for
    }
    if (actual !== null && actual !== role) throw new ConfigError(`process id "${opts.id}" is a ${actual} member, not a ${role} member`);
    return { configPath: opts.config, id: opts.id, config, join: true };
  }
  let actual: string;
  try {
    actual = roleOf(config, opts.id);
  } catch (e) {
    const hint = role === 'gateway' ? '' : `; to add a new ${role} process to a running cluster use --join`;
    throw new ConfigError(`${(e as Error).message}${hint}`);
  }
  if (actual !== role) throw new ConfigError(`process id "${opts.id}" is a ${actual} member, not a ${role} member`);
  return { configPath: opts.config, id: opts.id, config, join: false };
}
