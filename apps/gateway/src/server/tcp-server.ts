import { createServer, type Server } from 'node:net';
import type { Logger } from '@cairn/messaging';
import { ClientConnection, type ConnectionDeps } from './client-connection';
import { listenOn } from './listen';

/**
 * The client-facing TCP listener: accepts up to `connectionsMax` connections, each a
 * ClientConnection. `close()` is the graceful shutdown: stop accepting, drain in-flight requests
 * (bounded by `drainTimeoutMs`), then close every connection.
 */
export class TcpServer {
  private readonly server: Server;
  private readonly connections = new Set<ClientConnection>();

  constructor(
    private readonly deps: Omit<ConnectionDeps, 'onClose'> & { connectionsMax: number; drainTimeoutMs: number },
    log: Logger,
  ) {
    this.server = createServer((socket) => {
      if (this.connections.size >= deps.connectionsMax) {
        log.warn({ remote: socket.remoteAddress }, 'connection refused: connectionsMax reached');
        socket.destroy();
        return;
      }
      this.connections.add(new ClientConnection(socket, { ...deps, onClose: (c) => this.connections.delete(c) }));
    });
  }

  listen(host: string, port: number): Promise<void> {
    return listenOn(this.server, host, port);
  }

  connectionCount(): number {
    return this.connections.size;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.connections].map((c) => c.drain(this.deps.drainTimeoutMs)));
    await closed;
  }
}
