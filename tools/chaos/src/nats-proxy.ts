import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** Connections one proxy carries at once; beyond, a new one is closed at accept (a NATS client needs one). */
export const PROXY_CONNECTIONS_MAX = 64;

export interface TcpProxyOptions {
  /** Where every accepted connection is forwarded (nats-server). */
  upstreamHost: string;
  upstreamPort: number;
  /** Listen address, default 127.0.0.1 and a free port. */
  host?: string;
  port?: number;
  /** Default PROXY_CONNECTIONS_MAX. */
  connectionsMax?: number;
}

/** What a proxy did, for the chaos summary and the tests. */
export interface TcpProxyStats {
  /** Connections accepted and forwarded. */
  forwarded: number;
  /** Connections closed at accept: while cut, or over connectionsMax. */
  refused: number;
  /** Connections destroyed by `cut()`. */
  severed: number;
  /** Connections open now. */
  open: number;
}

/**
 * A TCP proxy in front of nats-server for ONE Cairn process (its config names the proxy's port as
 * its NATS server), so the chaos run can cut that process off the bus alone: `cut()` destroys
 * every connection it carries (RST to the client, which starts reconnecting) and refuses new
 * ones until `heal()`. Bytes are piped both ways with stream backpressure (a slow side pauses the
 * other; nothing is buffered past the sockets' high-water marks); at most `connectionsMax`
 * connections at once. When either side closes or fails, both are destroyed.
 */
export class TcpProxy {
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  private isCut = false;
  private readonly stats_: Omit<TcpProxyStats, 'open'> = { forwarded: 0, refused: 0, severed: 0 };

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly opts: TcpProxyOptions,
  ) {}

  /** Listens and resolves once bound. @throws the listen error (e.g. EADDRINUSE). */
  static async start(opts: TcpProxyOptions): Promise<TcpProxy> {
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const proxy = new TcpProxy(server, (server.address() as { port: number }).port, opts);
    server.on('connection', (s) => proxy.accept(s));
    return proxy;
  }

  /** `nats://127.0.0.1:<port>`: the URL to give the process instead of nats-server's. */
  get url(): string {
    return `nats://${this.opts.host ?? '127.0.0.1'}:${this.port}`;
  }

  get cutOff(): boolean {
    return this.isCut;
  }

  stats(): TcpProxyStats {
    return { ...this.stats_, open: this.pairs.size };
  }

  /** Partition: destroys every open connection (RST) and refuses new ones until `heal()`. @returns connections destroyed. */
  cut(): number {
    this.isCut = true;
    const n = this.pairs.size;
    for (const p of [...this.pairs]) this.drop(p);
    this.stats_.severed += n;
    return n;
  }

  /** Ends the partition: new connections are forwarded again (the client reconnects on its own). */
  heal(): void {
    this.isCut = false;
  }

  /** Stops listening and destroys every connection; resolves when the server is closed. */
  async close(): Promise<void> {
    this.isCut = true;
    for (const p of [...this.pairs]) this.drop(p);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.isCut || this.pairs.size >= (this.opts.connectionsMax ?? PROXY_CONNECTIONS_MAX)) {
      this.stats_.refused++;
      client.on('error', () => undefined);
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection({ host: this.opts.upstreamHost, port: this.opts.upstreamPort, noDelay: true });
    const pair = { client, upstream };
    this.pairs.add(pair);
    this.stats_.forwarded++;
    const end = () => this.drop(pair);
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  private drop(pair: { client: Socket; upstream: Socket }): void {
    if (!this.pairs.delete(pair)) return;
    // RST, not FIN: a cut cable, not a polite goodbye (the client must not wait for a reply).
    if (!pair.client.destroyed) pair.client.resetAndDestroy();
    if (!pair.upstream.destroyed) pair.upstream.destroy();
  }
}
