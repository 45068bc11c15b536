import type { Server, Socket } from 'node:net';
import { Status, encodeResponse } from '@cairn/protocol';
import type { Logger } from '@cairn/logging';
import { ClientConnection, type ConnectionDeps } from './client-connection';
import { listenOn } from './listen';
import { createDoorServer, type CertificateReloader, type DoorTls } from './tls';

/**
 * The client-facing TCP listener: accepts up to `connectionsMax` connections, each a
 * ClientConnection. One more is answered UNAVAILABLE (requestId 0, "too many connections") and
 * closed. `close()` is the graceful shutdown: stop accepting, drain in-flight requests (bounded
 * by `drainTimeoutMs`), then close every connection. With `tls` it speaks TLS only (tls.ts:
 * certificates reloaded on change, handshakes bounded by frameDeadlineMs); otherwise plain TCP.
 */
export class TcpServer {
  private readonly server: Server;
  private readonly connections = new Set<ClientConnection>();
  private readonly reloader: CertificateReloader | null;

  constructor(
    private readonly deps: Omit<ConnectionDeps, 'onClose'> & { connectionsMax: number; drainTimeoutMs: number; tls?: DoorTls | null },
    log: Logger,
  ) {
    const door = { door: 'TLV', tls: deps.tls ?? null, connectionsMax: deps.connectionsMax, handshakeTimeoutMs: deps.flow.frameDeadlineMs, log };
    ({ server: this.server, reloader: this.reloader } = createDoorServer(door, (socket) => {
      if (this.connections.size >= deps.connectionsMax) {
        log.warn({ remote: socket.remoteAddress }, 'connection refused: connectionsMax reached');
        const message = Buffer.from(`too many connections: connectionsMax is ${deps.connectionsMax}`);
        refuse(socket, encodeResponse({ status: Status.Unavailable, flags: 0, requestId: 0, revision: 0, payload: message }), deps.flow.closeTimeoutMs);
        return;
      }
      this.connections.add(new ClientConnection(socket, { ...deps, onClose: (c) => this.connections.delete(c) }));
    }));
  }

  async listen(host: string, port: number): Promise<void> {
    await listenOn(this.server, host, port);
    this.reloader?.start();
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
    this.reloader?.stop();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.connections].map((c) => c.drain(this.deps.drainTimeoutMs)));
    await closed;
  }
}

/**
 * A connection over the cap: writes `answer`, reads nothing, sends FIN and destroys the socket
 * once flushed, or after `closeTimeoutMs` at the latest (shared with the RESP door).
 */
export function refuse(socket: Socket, answer: Buffer, closeTimeoutMs: number): void {
  socket.on('error', () => socket.destroy());
  socket.pause();
  const t = setTimeout(() => socket.destroy(), closeTimeoutMs);
  socket.once('close', () => clearTimeout(t));
  socket.end(answer, () => socket.destroy());
}
