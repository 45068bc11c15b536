import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '@cairn/logging';
import type { ProcessComponent } from './component.module';

/** What a process's probe answers: `null` when ready, else why not (the 503 body). */
export type ReadinessCheck = () => string | null;

export interface MetricsServerOptions {
  /** Prometheus registry scraped on `GET /metrics`. */
  registry: Registry;
  /** `GET /readyz`: 200 `ready` when it returns null, else 503 with its reason. */
  ready: ReadinessCheck;
  /** Interface to bind (`0.0.0.0` in a pod; tests use 127.0.0.1). */
  host: string;
  /** TCP port; 0 picks a free one (tests). */
  port: number;
}

/** Requests served at once on the metrics port; more are refused with 503 (a scraper retries). */
const METRICS_REQUESTS_INFLIGHT_MAX = 8;
/** A request line and headers must arrive within this long, ms (Node's headersTimeout); then the socket closes. */
const METRICS_HEADERS_TIMEOUT_MS = 5_000;
/** Header bytes of one request (Node's maxHeaderSize); larger ones get 431 and a close. */
const METRICS_HEADER_BYTES_MAX = 8 * 1024;
/** Open connections to the metrics port; over it new ones are closed at once. */
const METRICS_CONNECTIONS_MAX = 16;

/**
 * The small HTTP listener of a consensus replica or storage node (docs/metrics.md):
 * `GET /metrics` (Prometheus text format 0.0.4), `GET /healthz` (200 while the process serves),
 * `GET /readyz` (200 or 503 with the reason from `ready`). Anything else: 404; a method other than
 * GET/HEAD: 405. Bounded: METRICS_CONNECTIONS_MAX connections, METRICS_REQUESTS_INFLIGHT_MAX
 * requests in flight, METRICS_HEADER_BYTES_MAX header bytes, METRICS_HEADERS_TIMEOUT_MS to send
 * them. Request bodies are not read. Errors: `listen` rejects with the socket error (EADDRINUSE…).
 */
export class MetricsServer {
  private readonly server: Server;
  private inflight = 0;

  constructor(private readonly opts: MetricsServerOptions) {
    this.server = createServer({ maxHeaderSize: METRICS_HEADER_BYTES_MAX, headersTimeout: METRICS_HEADERS_TIMEOUT_MS, requestTimeout: METRICS_HEADERS_TIMEOUT_MS }, (req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const send = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
        res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
      if (path === '/healthz') return send(200, 'ok\n');
      if (path === '/readyz') {
        const why = this.opts.ready();
        return why === null ? send(200, 'ready\n') : send(503, `not ready: ${why}\n`);
      }
      if (path !== '/metrics') return send(404, 'not found: try /metrics, /healthz or /readyz\n');
      if (this.inflight >= METRICS_REQUESTS_INFLIGHT_MAX) return send(503, 'too many scrapes in flight\n');
      this.inflight++;
      this.opts.registry.metrics().then(
        (text) => send(200, text, this.opts.registry.contentType),
        (e: unknown) => send(500, `scrape failed: ${String(e)}\n`),
      ).finally(() => this.inflight--);
    });
    this.server.maxConnections = METRICS_CONNECTIONS_MAX;
  }

  /** Starts listening; resolves with the bound port. */
  async listen(): Promise<number> {
    this.server.listen(this.opts.port, this.opts.host);
    await once(this.server, 'listening');
    return (this.server.address() as AddressInfo).port;
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    if (!this.server.listening) return;
    const closed = once(this.server, 'close');
    this.server.close();
    this.server.closeAllConnections();
    await closed;
  }
}

/**
 * A Prometheus counter that mirrors a count kept elsewhere (a plain number the component
 * increments): at each scrape it adds what `read()` grew by since the last one. `read` must be
 * monotonic (counts since process start) except that a restart of the source from 0 is seen as
 * such; `null` skips the scrape.
 */
export function countedCounter(registers: Registry[], name: string, help: string, read: () => number | null): Counter {
  let seen = 0;
  return new Counter({
    name,
    help,
    registers,
    collect() {
      const now = read();
      if (now === null) return; // source not readable now (stores closed): nothing counted
      // Below the last value: the source restarted from 0, so all of `now` is new.
      const added = now >= seen ? now - seen : now;
      if (added > 0) this.inc(added);
      seen = now;
    },
  });
}

/**
 * `component` plus its metrics listener when `port` is set: the listener opens after the
 * component started (so `/readyz` never reads a half-started one) and closes before it stops.
 * The port of a consensus replica or storage node is its member's `metricsPort`, else its role's.
 */
export function withMetricsServer<C extends ProcessComponent>(component: C, port: number | undefined, registry: Registry, ready: ReadinessCheck, log: Logger): ProcessComponent {
  if (port === undefined) return component;
  const server = new MetricsServer({ registry, ready, host: '0.0.0.0', port });
  return {
    async start() {
      await component.start();
      await server.listen();
      log.info({ metricsPort: port }, 'metrics, /healthz and /readyz listening');
    },
    async stop() {
      await server.close();
      await component.stop();
    },
  };
}

/** A gauge set from `read()` at each scrape; `undefined` leaves the last value (the source is not readable now). */
export function readGauge(registers: Registry[], name: string, help: string, read: () => number | undefined): Gauge {
  return new Gauge({
    name,
    help,
    registers,
    collect() {
      const v = read();
      if (v !== undefined) this.set(v);
    },
  });
}
