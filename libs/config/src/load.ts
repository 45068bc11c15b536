import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError } from 'class-validator';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ClusterConfig } from './schema';

/** Thrown when a config file is unreadable, not JSON, or fails validation. `problems` lists `path: constraint`. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    message: string,
    readonly problems: string[] = [],
  ) {
    super(problems.length ? `${message}:\n  - ${problems.join('\n  - ')}` : message);
    this.name = 'ConfigError';
  }
}

function flatten(errors: ValidationError[], prefix = ''): string[] {
  const out: string[] = [];
  for (const e of errors) {
    const path = prefix ? `${prefix}.${e.property}` : e.property;
    for (const msg of Object.values(e.constraints ?? {})) out.push(`${path}: ${msg}`);
    if (e.children?.length) out.push(...flatten(e.children, path));
  }
  return out;
}

/**
 * Validates a plain object (e.g. parsed JSON) as a ClusterConfig, applying defaults.
 * Unknown fields are errors (a typo must not be silently ignored).
 * @throws ConfigError naming every invalid field as `path: constraint`.
 */
export function parseClusterConfig(plain: unknown, source = 'config'): ClusterConfig {
  if (typeof plain !== 'object' || plain === null || Array.isArray(plain)) {
    throw new ConfigError(`${source}: expected a JSON object`);
  }
  const config = plainToInstance(ClusterConfig, plain, { exposeDefaultValues: true });
  const errors = validateSync(config, { forbidUnknownValues: true, whitelist: true, forbidNonWhitelisted: true });
  if (errors.length) throw new ConfigError(`${source} is invalid`, flatten(errors));
  const extra: string[] = [];
  if (config.consensus.heartbeatIntervalMs >= config.consensus.electionTimeoutMinMs) {
    extra.push('consensus.heartbeatIntervalMs: must be less than consensus.electionTimeoutMinMs');
  }
  const { readLeaseMs, electionTimeoutMinMs, tickMs, checkQuorum } = config.consensus;
  if (readLeaseMs > 0 && (readLeaseMs >= electionTimeoutMinMs || readLeaseMs < tickMs || !checkQuorum)) {
    extra.push('consensus.readLeaseMs: must be 0 (off), or at least tickMs and below electionTimeoutMinMs with checkQuorum on');
  }
  if (config.consensus.tickMs > config.consensus.heartbeatIntervalMs) {
    extra.push('consensus.tickMs: must not exceed consensus.heartbeatIntervalMs');
  }
  const ids = [...config.consensus.replicas, ...config.storage.nodes, ...config.gateway.gateways].map((m) => m.id);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) extra.push(`${dup}: process ids must be unique across consensus, storage and gateway`);
  if (extra.length) throw new ConfigError(`${source} is invalid`, extra);
  return config;
}

/**
 * Reads and validates a cluster config JSON file; `dataDir` and the `nats` credential and TLS files
 * become absolute (relative to the file).
 * @throws ConfigError when the file is missing, not JSON, or invalid.
 */
export function loadClusterConfig(path: string): ClusterConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  let plain: unknown;
  try {
    plain = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  const config = parseClusterConfig(plain, path);
  const dir = dirname(resolve(path));
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(dir, p));
  config.dataDir = abs(config.dataDir);
  for (const c of Object.values(config.nats.credentials ?? {}) as ({ seedFile: string } | undefined)[]) if (c) c.seedFile = abs(c.seedFile);
  const tls = config.nats.tls;
  if (tls) for (const k of ['caFile', 'certFile', 'keyFile'] as const) if (tls[k] !== undefined) tls[k] = abs(tls[k]);
  return config;
}

/** The role a process id has in the config, or throws ConfigError when the id is not a member. */
export function roleOf(config: ClusterConfig, id: string): 'consensus' | 'storage' | 'gateway' {
  if (config.consensus.replicas.some((m) => m.id === id)) return 'consensus';
  if (config.storage.nodes.some((m) => m.id === id)) return 'storage';
  if (config.gateway.gateways.some((m) => m.id === id)) return 'gateway';
  throw new ConfigError(`process id "${id}" is not a member of the config`);
}
