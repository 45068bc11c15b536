import { loadClusterConfig } from '@cairn/config';
import { UsageError } from './exit-codes';

export const DEFAULT_GATEWAY = '127.0.0.1:7380';

export interface GatewayAddress {
  host: string;
  port: number;
}

/** Parses `host:port` (`[v6]:port` too). @throws UsageError when malformed. */
export function parseHostPort(s: string): GatewayAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) throw new UsageError(`bad gateway address "${s}": expected host:port`);
  return { host: m[1] ?? m[2], port };
}

/**
 * The gateway to talk to: `--gateway`, else the first gateway of `--config`, else $CAIRN_GATEWAY,
 * else 127.0.0.1:7380. @throws UsageError / ConfigError on a malformed address or config.
 */
export function resolveGateway(opts: { gateway?: string; config?: string }, env: NodeJS.ProcessEnv = process.env): GatewayAddress {
  if (opts.gateway) return parseHostPort(opts.gateway);
  if (opts.config) {
    const g = loadClusterConfig(opts.config).gateway.gateways[0];
    return { host: g.host, port: g.port };
  }
  return parseHostPort(env.CAIRN_GATEWAY || DEFAULT_GATEWAY);
}
