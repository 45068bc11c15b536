import type { Socket } from 'node:net';

/**
 * Bytes and backpressure pauses of one front door (TLV, RESP), read by GatewayMetrics at scrape
 * time. Nothing runs per byte: bytes are the sockets' own `bytesRead` / `bytesWritten` (wire bytes,
 * TLS records included), summed over closed sockets at their close and over open ones at each
 * scrape; a pause is one plain increment by ConnectionFlow.
 */
export class DoorTraffic {
  /** Times a connection of this door stopped reading because a bound was crossed (ConnectionFlow.setReading). */
  pauses = 0;
  private closedReceived = 0;
  private closedSent = 0;
  private readonly open = new Set<Socket>();

  /** Counts `socket`'s bytes from now until it closes (DoorListener, for every accepted socket). */
  attach(socket: Socket): void {
    this.open.add(socket);
    socket.once('close', () => {
      this.open.delete(socket);
      this.closedReceived += socket.bytesRead;
      this.closedSent += socket.bytesWritten;
    });
  }

  /** Bytes received from clients of this door so far. */
  receivedBytes(): number {
    let n = this.closedReceived;
    for (const s of this.open) n += s.bytesRead;
    return n;
  }

  /** Bytes sent to clients of this door so far (handed to the kernel or still buffered in the socket). */
  sentBytes(): number {
    let n = this.closedSent;
    for (const s of this.open) n += s.bytesWritten;
    return n;
  }
}
