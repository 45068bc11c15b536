import { ConfigError, loadClusterConfig, roleOf, type ClusterConfig } from '@cairn/config';
import { Command } from 'commander';

export type ProcessRole = 'consensus' | 'storage' | 'gateway';

export interface ProcessArgs {
  configPath: string;
  id: string;
  config: ClusterConfig;
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
    .allowExcessArguments(false)
    .exitOverride();
  cmd.parse(argv);
  const opts = cmd.opts<{ config: string; id?: string }>();
  if (!opts.id) throw new ConfigError(`--id is required (the id of this ${role} process in ${opts.config})`);
  const config = loadClusterConfig(opts.config);
  const actual = roleOf(config, opts.id);
  if (actual !== role) throw new ConfigError(`process id "${opts.id}" is a ${actual} member, not a ${role} member`);
  return { configPath: opts.config, id: opts.id, config };
}
