import type { Socket } from 'node:net';
import { Status, encodeResponse } from '@cairn/protocol';
import type { Logger } from '@cairn/logging';
import type { Clock } from '@cairn/world';
import { ClientConnection, type ConnectionDeps } from './client-connection';
import { destroyWithin } from './close-deadline';
import { DoorListener } from './door-listener';
import { createDoorServer, type DoorTls } from './tls';

/**
 * The client-facing TCP listener: accepts up to `connectionsMax` connections, each a
 * ClientConnection. One more is answered UNAVAILABLE (requestId 0, "too many connections") and
 * closed. `close()` is the graceful shutdown: stop accepting, drain in-flight requests (bounded
 * by `drainTimeoutMs`), then close every connection. With `tls` it speaks TLS only (tls.ts:
 * certificates reloaded on change, handshakes bounded by frameDeadlineMs); otherwise plain TCP.
 */
export class TcpServer extends DoorListener<ClientConnection> {
  constructor(
    private readonly deps: Omit<ConnectionDeps, 'onClose'> & { connectionsMax: number; drainTimeoutMs: number; tls?: DoorTls | null },
    private readonly log: Logger,
  ) {
    super(deps.drainTimeoutMs, (onSocket) => createDoorServer({ door: 'TLV', tls: deps.tls ?? null, connectionsMax: deps.connectionsMax, handshakeTimeoutMs: deps.flow.frameDeadlineMs, allowHalfOpen: true, log, clock: deps.clock }, onSocket));
  }

  protected accept(socket: Socket): void {
    const deps = this.deps;
    if (this.connections.size >= deps.connectionsMax) {
      this.log.warn({ remote: socket.remoteAddress }, 'connection refused: connectionsMax reached');
      const message = Buffer.from(`too many connections: connectionsMax is ${deps.connectionsMax}`);
      refuse(socket, encodeResponse({ status: Status.Unavailable, flags: 0, requestId: 0, revision: 0, payload: message }), deps.flow.closeTimeoutMs, deps.clock);
      return;
    }
    this.connections.add(new ClientConnection(socket, { ...deps, flow: { ...deps.flow, pauses: this.traffic }, onClose: (c) => this.connections.delete(c) }));
  }
}

/**
 * A connection over the cap: writes `answer`, reads nothing, sends FIN and destroys the socket
 * once flushed, or after `closeTimeoutMs` on `clock` at the latest (shared with the RESP door).
 */
export function refuse(socket: Socket, answer: Buffer, closeTimeoutMs: number, clock?: Clock): void {
  socket.on('error', () => socket.destroy());
  socket.pause();
  destroyWithin(socket, closeTimeoutMs, clock);
  socket.end(answer, () => socket.destroy());
}
