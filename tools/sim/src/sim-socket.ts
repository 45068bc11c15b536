import { Socket } from 'node:net';
import type { Clock, TimerHandle } from '@cairn/world';

/**
 * A client connection's socket as the gateway's connection code sees it, with no kernel and no
 * network under it (whole-cluster simulation, "clients that stop reading"). A subclass of
 * net.Socket, never connected: its Writable side hands each write (or corked batch) to a simulated
 * kernel buffer whose write callbacks run only while the client reads — a client that stopped
 * reading never lets them run, so the bytes stay unflushed exactly as with a full TCP window. The
 * Readable side carries what the client sends (`send`), paused and resumed by the gateway as a
 * real socket is. The idle timeout (`setTimeout`, the 'timeout' event) runs on `clock`, the
 * gateway incarnation's virtual clock, and is re-armed by activity as Node's is: data read, a
 * write handed down, a write taken by the kernel.
 */
export class SimSocket extends Socket {
  /** Bytes written by the gateway and not taken by the client (its kernel buffer). */
  unreadBytes = 0;
  /** Virtual time at which the socket closed (null while open). */
  closedAtMs: number | null = null;
  private held: { bytes: number; done: (err?: Error | null) => void }[] = [];
  private clientReads = true;
  private idleMs = 0;
  private idleTimer: TimerHandle | undefined;

  constructor(private readonly clock: Clock) {
    super();
    this.once('close', () => {
      this.closedAtMs = clock.nowMs();
      clock.clearTimer(this.idleTimer);
    });
  }

  /** The client sends `data` (one or more frames) to the gateway. */
  send(data: Buffer): void {
    this.active();
    this.push(data);
  }

  /** The client stops (false) or starts (true) reading its replies; starting takes everything held. */
  setClientReading(on: boolean): void {
    this.clientReads = on;
    if (!on) return;
    const held = this.held;
    this.held = [];
    this.unreadBytes = 0;
    if (held.length) this.active();
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

  /** Emits 'timeout' after `ms` of virtual time without activity (0: off), as net.Socket does on real time. */
  override setTimeout(ms: number): this {
    this.idleMs = ms;
    this.active();
    return this;
  }

  /** Activity: re-arms the idle timer. */
  private active(): void {
    this.clock.clearTimer(this.idleTimer);
    this.idleTimer = undefined;
    if (this.idleMs > 0 && !this.destroyed) this.idleTimer = this.clock.setTimeout(() => this.emit('timeout'), this.idleMs);
  }

  private holdUnread(bytes: number, done: (err?: Error | null) => void): void {
    this.active();
    if (this.clientReads) return done();
    this.unreadBytes += bytes;
    this.held.push({ bytes, done });
  }
}
