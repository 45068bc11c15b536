import { loadConfigFile } from './config-file';
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

/** Parses a comma-separated endpoint list (`a:1,b:2`; blanks around commas ignored). @throws UsageError when empty or malformed. */
export function parseEndpoints(s: string, what = '--endpoints'): GatewayAddress[] {
  const parts = s
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (parts.length === 0) throw new UsageError(`${what} is empty: expected host:port[,host:port...]`);
  return parts.map((p) => parseHostPort(p));
}

/** `host:port` (`[v6]:port` for an IPv6 host). */
export function formatAddress(a: GatewayAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/**
 * The gateways to talk to (etcdctl's rules and names): `--endpoints a,b,c`, else `--gateway`
 * (one), else every gateway of `--config`, else $CAIRN_ENDPOINTS, else $CAIRN_GATEWAY, else
 * 127.0.0.1:7380. The CLI fails over between them (CairnPool).
 * @throws UsageError when both flags are given or an address is malformed; ConfigError on a bad config.
 */
export async function resolveEndpoints(opts: { endpoints?: string; gateway?: string; config?: string }, env: NodeJS.ProcessEnv = process.env): Promise<GatewayAddress[]> {
  if (opts.endpoints !== undefined && opts.gateway !== undefined) throw new UsageError('give --endpoints or --gateway, not both (--gateway is one endpoint)');
  if (opts.endpoints !== undefined) return parseEndpoints(opts.endpoints);
  if (opts.gateway !== undefined) return [parseHostPort(opts.gateway)];
  if (opts.config) return (await loadConfigFile(opts.config)).gateway.gateways.map((g) => ({ host: g.host, port: g.port }));
  if (env.CAIRN_ENDPOINTS) return parseEndpoints(env.CAIRN_ENDPOINTS, '$CAIRN_ENDPOINTS');
  return [parseHostPort(env.CAIRN_GATEWAY || DEFAULT_GATEWAY)];
}
