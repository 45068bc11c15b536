import { CairnPool, type PoolOptions } from '@cairn/client';
import type { CliClient, ConnectOptions } from './cli';

/**
 * The CairnPool options of a CLI connection: one pipelined connection per endpoint, requests
 * spread over the endpoints that are up, a lost one reconnected in the background. The connect
 * timeout and the deadline of every call are `--timeout`; `retries: 'none'` makes one attempt.
 */
export function poolOptions(o: ConnectOptions): PoolOptions {
  return {
    gateways: o.endpoints,
    connectionsPerGateway: 1,
    connectTimeoutMs: o.requestTimeoutMs,
    requestTimeoutMs: o.requestTimeoutMs,
    inflightMax: o.inflightMax,
    attemptsMax: o.retries === 'none' ? 1 : undefined,
    tls: o.tls,
    ...o.credentials,
  };
}

/** Opens the CLI's connection. @throws the first connect error (e.g. ECONNREFUSED) when no endpoint could be reached. */
export async function connectPool(o: ConnectOptions): Promise<CliClient> {
  return CairnPool.connect(poolOptions(o));
}
