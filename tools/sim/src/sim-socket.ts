import { Socket } from 'node:net';

/**
 * A client connection's socket as the gateway's connection code sees it, with no kernel and no
 * network under it (whole-cluster simulation, "clients that stop reading"). A subclass of
 * net.Socket, never connected: its Writable side hands each write (or corked batch) to a simulated
 * kernel buffer whose write callbacks run only while the client reads — a client that stopped
 * reading never lets them run, so the bytes stay unflushed exactly as with a full TCP window. The
 * Readable side carries what the client sends (`send`), paused and resumed by the gateway as a
 * real socket is.
 */
export class SimSocket extends Socket {
  /** Bytes written by the gateway and not taken by the client (its kernel buffer). */
  unreadBytes = 0;
  private held: { bytes: number; done: (err?: Error | null) => void }[] = [];
  private clientReads = true;

  /** The client sends `data` (one or more frames) to the gateway. */
  send(data: Buffer): void {
    this.push(data);
  }

  /** The client stops (false) or starts (true) reading its replies; starting takes everything held. */
  setClientReading(on: boolean): void {
    this.clientReads = on;
    if (!on) return;
    const held = this.held;
    this.held = [];
    this.unreadBytes = 0;
    for (const h of held) h.done();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.holdUnread(chunk.length, done);
  }

  override _writev(chunks: { chunk: Buffer }[], done: (err?: Error | null) => void): void {
    this.holdUnread(
      chunks.reduce((n, c) => n + c.chunk.length, 0),
      done,
    );
  }

  override _read(): void {
    // Data arrives only through send().
  }

  override _final(done: (err?: Error | null) => void): void {
    done();
  }

  /** The idle timeout is not simulated (its timer would be a real one). */
  override setTimeout(): this {
    return this;
  }

  private holdUnread(bytes: number, done: (err?: Error | null) => void): void {
    if (this.clientReads) return done();
    this.unreadBytes += bytes;
    this.held.push({ bytes, done });
  }
}
