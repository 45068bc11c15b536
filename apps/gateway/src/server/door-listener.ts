import type { Server, Socket } from 'node:net';
import { DoorTraffic } from '../metrics/door-traffic';
import { listenOn } from './listen';
import type { DoorServer } from './tls';

/** What a door's listener needs of a connection: its graceful drain (ConnectionFlow.drain). */
export interface DrainableConnection {
  drain(timeoutMs: number): Promise<void>;
}

/**
 * The listening half both client doors share (the TLV TcpServer, the RESP RespServer): the plain
 * or TLS server `make` builds (createDoorServer), the open connections, `listen` (the certificate
 * reload starts once bound), the bound port, and the graceful `close`: stop accepting, drain every
 * connection (each bounded by `drainTimeoutMs`), resolve once the server closed; the door's
 * traffic counters (bytes of every accepted socket, pauses counted by each connection's flow). A subclass
 * decides what an accepted socket becomes (`accept`).
 */
export abstract class DoorListener<C extends DrainableConnection> {
  protected readonly connections = new Set<C>();
  protected readonly server: Server;
  /** This door's bytes and backpressure pauses (GatewayMetrics.trackTraffic reads it at scrape time). */
  readonly traffic = new DoorTraffic();
  private readonly door: DoorServer;

  constructor(
    private readonly drainTimeoutMs: number,
    make: (onSocket: (socket: Socket) => void) => DoorServer,
  ) {
    this.door = make((socket) => {
      this.traffic.attach(socket);
      this.accept(socket);
    });
    this.server = this.door.server;
  }

  /** A new client socket: refuse it or make it a connection. */
  protected abstract accept(socket: Socket): void;

  async listen(host: string, port: number): Promise<void> {
    await listenOn(this.server, host, port);
    this.door.reloader?.start();
  }

  /** The bound port (useful with port 0). */
  port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  connectionCount(): number {
    return this.connections.size;
  }

  async close(): Promise<void> {
    this.door.reloader?.stop();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.connections].map((c) => c.drain(this.drainTimeoutMs)));
    await closed;
  }
}
