import { realClock, type Clock, type TimerHandle } from '@cairn/world';

/**
 * The members of a client socket the connection code uses (net.Socket in production; the
 * simulator's SimSocket). The idle timeout is the socket's (`setTimeout`, its 'timeout' event):
 * only the socket sees its own read and write activity.
 */
export interface FlowSocket {
  readonly destroyed: boolean;
  /** The events the connections listen to. Results of the calls below are ignored (`unknown`). */
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'timeout' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  once(event: 'close', listener: () => void): unknown;
  pause(): unknown;
  resume(): unknown;
  cork(): void;
  uncork(): void;
  /** `flushed` runs once the kernel took the bytes (or with the error that ended the socket). */
  write(data: Uint8Array, flushed: (err?: Error | null) => void): unknown;
  end(done: () => void): unknown;
  destroy(): unknown;
  /** Idle timeout in ms; the socket then emits 'timeout'. */
  setTimeout(timeoutMs: number): unknown;
  setNoDelay(noDelay: boolean): unknown;
}

/**
 * Bytes the gateway holds for its clients, across every connection of every door: request bytes
 * read but not yet answered plus reply bytes handed to a socket but not yet flushed to the kernel.
 * Above `bytesMax` every connection stops reading (ConnectionFlow) until enough is released.
 * Replies of requests already in flight still arrive when it is over: they are queued for
 * connections that read, and replaced by a small error for connections that do not
 * (ConnectionFlow.replyRefused; docs/protocol.md, "Connection limits and backpressure").
 */
export class ByteBudget {
  private usedBytes = 0;
  private valueEstimate = 0;
  private readonly waiters = new Set<() => void>();
  private readonly releaseWaiters = new Set<() => void>();
  /** Bytes of read reservations grown past their first estimate whose read is not answered yet (ReadPath). */
  private growingBytes = 0;

  constructor(readonly bytesMax: number) {
    if (!(bytesMax > 0)) throw new Error('ByteBudgetPositive: bytesMax must be > 0');
  }

  used(): number {
    return this.usedBytes;
  }

  /**
   * A value of `bytes` went through the gateway (a SET's value, a GET's answer): feeds the
   * estimate of what a read in flight will bring back (a maximum that decays by 1% per value).
   */
  observeValue(bytes: number): void {
    this.valueEstimate = Math.max(bytes, this.valueEstimate * 0.99);
  }

  /**
   * Bytes a read in flight is assumed to bring back, reserved until its answer arrives: without
   * it a connection's first `inflightPerConnectionMax` GETs of large values (1024 × 1 MiB) would
   * all be fetched before any answer counted (docs/protocol.md).
   */
  readEstimate(): number {
    return Math.round(this.valueEstimate);
  }

  over(): boolean {
    return this.usedBytes > this.bytesMax;
  }

  take(bytes: number): void {
    this.usedBytes += bytes;
  }

  give(bytes: number): void {
    this.usedBytes -= bytes;
    if (this.usedBytes < 0) throw new Error('ByteBudgetNonNegative: released more bytes than taken');
    if (this.waiters.size > 0 && !this.over()) {
      const ws = [...this.waiters];
      this.waiters.clear();
      for (const w of ws) w();
    }
    if (this.releaseWaiters.size > 0) this.wakeReleased();
  }

  /**
   * May a read reservation grow by `bytes` now (read flow control: the storage node withheld a
   * value larger than the reservation)? Yes while the budget has room for it; and, so that a lone
   * value larger than the room still makes progress, when no other grown read is unanswered and
   * the budget is not over. The bytes held thus exceed `bytesMax` by at most one value; past that,
   * grows wait for bytes to be released (or for their read's deadline: UNAVAILABLE).
   */
  mayGrow(bytes: number): boolean {
    return this.usedBytes + bytes <= this.bytesMax || (this.growingBytes === 0 && !this.over());
  }

  /** A grant of mayGrow taken (`bytes` > 0) or its read answered (`bytes` < 0). */
  growing(bytes: number): void {
    this.growingBytes += bytes;
    if (this.growingBytes < 0) throw new Error('ByteBudgetGrowingNonNegative: more grown bytes settled than granted');
    if (bytes < 0 && this.growingBytes === 0) this.wakeReleased();
  }

  /** Calls `fn` once, the next time bytes are released or the last grown read is answered. */
  whenReleased(fn: () => void): void {
    this.releaseWaiters.add(fn);
  }

  private wakeReleased(): void {
    const ws = [...this.releaseWaiters];
    this.releaseWaiters.clear();
    for (const w of ws) w();
  }

  /** Calls `fn` once, the next time bytes are released and the budget is no longer over. */
  whenUnder(fn: () => void): void {
    this.waiters.add(fn);
  }

  forget(fn: () => void): void {
    this.waiters.delete(fn);
  }
}

/**
 * Value bytes reserved for one read's answer, held in a ByteBudget (read flow control,
 * docs/protocol.md "Read flow control"): the read path asks the storage node for at most `bytes`
 * of value; a larger value is withheld by the node and the reservation grows to its exact size
 * (when ByteBudget.mayGrow allows) before the read is asked again.
 */
export interface ReadReservation {
  /** Value bytes reserved now. */
  readonly bytes: number;
  /** The budget the bytes are held in. */
  readonly budget: ByteBudget;
  /** Reserves `bytes` more (taken from the budget now; released with the rest). */
  grow(bytes: number): void;
  /** True once the client the read serves has gone: the read is not sent; if sent, its answer is dropped. */
  cancelled(): boolean;
}

/**
 * The bytes one client request holds from decode until its reply is written: its frame and the
 * value reservations of its reads (ReadReservation), counted in its connection's request bytes and
 * in the gateway-wide ByteBudget. `prepay` reserves reads before the command runs (so the
 * connection stops reading at once); `read()` hands those out, then reserves more.
 */
export class RequestHold {
  private heldBytes = 0;
  private released = false;
  private prepaidReads = 0;
  private prepaidBytes = 0;

  constructor(
    private readonly flow: ConnectionFlow,
    private readonly budget: ByteBudget,
    bytes: number,
  ) {
    this.add(bytes);
  }

  /** Bytes held now (tests). */
  held(): number {
    return this.heldBytes;
  }

  private add(bytes: number): void {
    if (this.released || bytes <= 0) return;
    this.heldBytes += bytes;
    this.flow.holdRequest(bytes);
  }

  /** Reserves `reads` reads of `valueBytes` each now. */
  prepay(reads: number, valueBytes: number): void {
    this.prepaidReads += reads;
    this.prepaidBytes = valueBytes;
    this.add(reads * valueBytes);
  }

  /** A reservation for one read: a prepaid one, else `valueBytes` reserved now. */
  read(valueBytes: number): ReadReservation {
    let bytes = valueBytes;
    if (this.prepaidReads > 0) {
      this.prepaidReads--;
      bytes = this.prepaidBytes;
    } else this.add(bytes);
    return new HoldReservation(this, this.budget, bytes);
  }

  /** Adds `bytes` a reservation of this hold grew by (HoldReservation.grow). */
  grew(bytes: number): void {
    this.add(bytes);
  }

  /** True once the connection the request came on has closed. */
  connectionClosed(): boolean {
    return this.flow.closed();
  }

  /** Releases one read's reservation early (its value was handed to the socket; an MGET in parts). */
  releaseRead(r: ReadReservation): void {
    if (this.released) return;
    const n = Math.min(r.bytes, this.heldBytes);
    this.heldBytes -= n;
    this.flow.releaseRequest(n);
  }

  /** Releases everything held (once; later calls and grows are no-ops). */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.flow.releaseRequest(this.heldBytes);
    this.heldBytes = 0;
  }
}

/** One read's reservation in a RequestHold (an object per read on the hot path: a class, not closures). */
class HoldReservation implements ReadReservation {
  constructor(
    private readonly hold: RequestHold,
    readonly budget: ByteBudget,
    public bytes: number,
  ) {}

  grow(n: number): void {
    this.bytes += n;
    this.hold.grew(n);
  }

  cancelled(): boolean {
    return this.hold.connectionClosed();
  }
}

/** Per-connection bounds shared by the TLV and RESP doors (gateway config; docs/protocol.md). */
export interface FlowLimits {
  /** Unflushed reply bytes (handed to the socket, not yet taken by the kernel) above which the connection stops reading. */
  connectionReplyBytesMax: number;
  /** Bytes of requests read but not yet answered above which the connection stops reading. */
  connectionRequestBytesMax: number;
  /** A frame (RESP: a command) that has started must be complete within this, ms of reading time. */
  frameDeadlineMs: number;
  /** A connection that must close is destroyed at the latest this long after its last reply was handed to the socket, ms. */
  closeTimeoutMs: number;
  /** A connection with no traffic for this long is closed, ms (see ConnectionFlow's idle rule). */
  idleTimeoutMs: number;
  /** Where the door counts backpressure pauses (its DoorListener's DoorTraffic); absent: not counted. */
  pauses?: { pauses: number };
}

/** The FlowLimits of a gateway config. */
export function flowLimits(g: FlowLimits): FlowLimits {
  return {
    connectionReplyBytesMax: g.connectionReplyBytesMax,
    connectionRequestBytesMax: g.connectionRequestBytesMax,
    frameDeadlineMs: g.frameDeadlineMs,
    closeTimeoutMs: g.closeTimeoutMs,
    idleTimeoutMs: g.idleTimeoutMs,
  };
}

export interface FlowHooks {
  /** Bytes read from the socket. */
  data: (chunk: Buffer) => void;
  /** The client shut its side (its FIN was read; `peerEnded()` is true from then on): answer what came, then close. */
  peerEnded: () => void;
  /** Something that gates reading changed (bytes flushed, budget released): re-decide. */
  update: () => void;
  /** A frame started and did not finish within frameDeadlineMs of reading. */
  frameDeadline: () => void;
  /** Requests whose answer the cluster has not produced yet (they keep an idle connection open). */
  awaitingCluster: () => number;
  /** The socket closed (after the flow released its bytes). */
  closed: () => void;
  /** The connection starts to close (closeAfterFlush): write what the connection still batches (its watch frames) before the FIN. */
  beforeClose?: () => void;
}

/**
 * Reading, writing and closing of one client connection, by bytes (docs/protocol.md, "Connection
 * limits and backpressure"): counts the connection's request bytes and unflushed reply bytes
 * (each also in the gateway-wide ByteBudget), says when the connection must stop reading, runs
 * the frame deadline while a frame is half read, and closes by a defined rule: after the last
 * reply is flushed, or by force after `closeTimeoutMs`.
 *
 * Idle rule: after `idleTimeoutMs` without socket activity the connection is closed unless a
 * request is still waiting for the cluster; replies the client does not read do not keep it open.
 */
export class ConnectionFlow {
  private replyBytes = 0;
  private requestBytes = 0;
  private corked = false;
  private closedFlag = false;
  private closing = false;
  private reading = true;
  private peerEndedFlag = false;
  /** Set by drain(): stopping to read from then on is not a backpressure pause. */
  private draining = false;
  private frameTimer: TimerHandle | null = null;
  private closeTimer: TimerHandle | null = null;
  /** drain() calls waiting until no request awaits the cluster or the socket closed. */
  private drainWaiters: (() => void)[] = [];
  private readonly onBudget = () => this.hooks.update();

  /** `clock`: the frame deadline and close timeout run on it (default Node's timers; the simulator passes virtual time). */
  constructor(
    private readonly socket: FlowSocket,
    private readonly limits: FlowLimits,
    private readonly budget: ByteBudget,
    private readonly hooks: FlowHooks,
    private readonly clock: Clock = realClock,
  ) {
    socket.setTimeout(limits.idleTimeoutMs);
    socket.on('data', hooks.data);
    // The servers are created with allowHalfOpen: without it Node ends our side as soon as the
    // client's FIN is read, and a reply still waiting (a frame in the backlog behind a byte bound,
    // a request in flight) would be written after end and lost.
    socket.on('end', () => {
      this.peerEndedFlag = true;
      hooks.peerEnded();
    });
    socket.on('timeout', () => {
      if (hooks.awaitingCluster() === 0) this.closeAfterFlush(true);
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.closedFlag = true;
      this.clearFrameTimer();
      if (this.closeTimer) this.clock.clearTimer(this.closeTimer);
      this.budget.forget(this.onBudget);
      // The socket's buffers are gone: what it still held no longer counts. Requests in flight
      // release their bytes when they complete (releaseRequest).
      this.budget.give(this.replyBytes);
      this.replyBytes = 0;
      this.wakeDrainWaiters();
      hooks.closed();
    });
  }

  closed(): boolean {
    return this.closedFlag || this.socket.destroyed;
  }

  /** The client shut its side (its FIN was read). */
  peerEnded(): boolean {
    return this.peerEndedFlag;
  }

  /**
   * Graceful close, for both doors: stop reading (the caller set its draining flag), wait (at most
   * `timeoutMs`) until no request awaits the cluster (the connection calls `answered()` as answers
   * come), then close by closeAfterFlush's rule (FIN once the replies are flushed; destroyed after
   * closeTimeoutMs at the latest). Replies of requests still in flight after the timeout are not
   * written. Resolves once the socket closed.
   */
  async drain(timeoutMs: number): Promise<void> {
    if (this.closed()) return;
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    this.draining = true;
    this.setReading(false, false);
    if (this.hooks.awaitingCluster() > 0) {
      await new Promise<void>((resolve) => {
        const t = this.clock.setTimeout(resolve, timeoutMs);
        this.drainWaiters.push(() => {
          this.clock.clearTimer(t);
          resolve();
        });
      });
    }
    this.closeAfterFlush();
    await closed;
  }

  /** An answer came from the cluster: a drain waiting for the last one goes on. */
  answered(): void {
    if (this.hooks.awaitingCluster() === 0) this.wakeDrainWaiters();
  }

  private wakeDrainWaiters(): void {
    const ws = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of ws) w();
  }

  /** True once closeAfterFlush was called: no further input is taken. */
  isClosing(): boolean {
    return this.closing;
  }

  /** Unflushed reply bytes and request bytes held (tests, status). */
  heldBytes(): { reply: number; request: number } {
    return { reply: this.replyBytes, request: this.requestBytes };
  }

  /** True while a byte bound says: do not read (this connection's replies or requests, or the whole gateway's). */
  blocked(): boolean {
    return this.replyBytes > this.limits.connectionReplyBytesMax || this.requestBytes > this.limits.connectionRequestBytesMax || this.budget.over();
  }

  /**
   * Starts or stops reading the socket. While stopped because the gateway-wide budget is over,
   * the connection is woken (hooks.update) when bytes are released anywhere.
   */
  setReading(on: boolean, midFrame: boolean): void {
    if (this.closed()) return;
    if (on && !this.closing) {
      this.budget.forget(this.onBudget);
      if (!this.reading) {
        this.reading = true;
        this.socket.resume();
      }
      // The deadline counts reading time only: a frame the gateway stopped reading is not late.
      this.frame(midFrame);
      return;
    }
    if (this.reading) {
      this.reading = false;
      this.socket.pause();
      // A bound was crossed (bytes, inflightMax), unless the connection is closing or draining.
      if (this.limits.pauses && !this.closing && !this.draining) this.limits.pauses.pauses++;
    }
    this.clearFrameTimer();
    if (this.budget.over()) this.budget.whenUnder(this.onBudget);
  }

  /** After input was decoded: arms the frame deadline while a frame is half read, clears it at a boundary. */
  frame(midFrame: boolean): void {
    if (!midFrame) return this.clearFrameTimer();
    if (this.frameTimer || this.closing || !this.reading) return;
    this.frameTimer = this.clock.setTimeout(() => {
      this.frameTimer = null;
      if (!this.closed() && !this.closing) this.hooks.frameDeadline();
    }, this.limits.frameDeadlineMs);
  }

  /**
   * True when a reply of `bytes` to a read must not be queued: this connection already holds more
   * than connectionReplyBytesMax unflushed (its client is not reading) and the reply would take
   * the gateway-wide bytes above pendingBytesMax. Replies of requests taken before reading stopped
   * would otherwise pile up without bound (1024 pipelined GETs of 1 MiB values are 1 GiB); the
   * caller answers a small retryable error instead (docs/protocol.md). `reservedBytes`: what the
   * request still holds for this reply (released once it is written), not counted twice.
   */
  replyRefused(bytes: number, reservedBytes = 0): boolean {
    return this.replyBytes > this.limits.connectionReplyBytesMax && this.budget.used() - reservedBytes + bytes > this.budget.bytesMax;
  }

  holdRequest(bytes: number): void {
    this.requestBytes += bytes;
    this.budget.take(bytes);
  }

  releaseRequest(bytes: number): void {
    this.requestBytes -= bytes;
    this.budget.give(bytes);
  }

  /**
   * Writes one reply; its bytes count until the kernel took them, then `onFlushed` runs (not when
   * the socket closed first). Replies written in the same tick leave in one write (cork).
   */
  write(reply: Buffer, onFlushed?: () => void): void {
    if (this.closed()) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    const n = reply.length;
    this.replyBytes += n;
    this.budget.take(n);
    this.socket.write(reply, () => {
      if (this.closedFlag) return; // released in bulk by the 'close' handler
      this.replyBytes -= n;
      this.budget.give(n);
      onFlushed?.();
      if (this.closing) this.finishClose();
      else this.hooks.update();
    });
  }

  /**
   * The connection must close (protocol error, QUIT, idle, shutdown): stop reading; once every
   * reply handed to the socket is flushed, send FIN and destroy the socket (input the client kept
   * sending is not read, so it gets a reset, as from Redis). At the latest after `closeTimeoutMs`
   * (a client that does not read its last replies) the socket is destroyed anyway.
   * `now`: do not wait for replies still to be written (idle close); otherwise the caller has
   * written its last reply already.
   */
  closeAfterFlush(now = false): void {
    if (this.closing || this.closed()) return;
    this.hooks.beforeClose?.();
    this.closing = true;
    this.setReading(false, false);
    this.closeTimer = this.clock.setTimeout(() => this.socket.destroy(), this.limits.closeTimeoutMs);
    if (now && this.replyBytes > 0) {
      // Idle with replies the client has not read for idleTimeoutMs: it is not reading.
      this.socket.destroy();
      return;
    }
    this.finishClose();
  }

  private finishClose(): void {
    if (this.replyBytes > 0 || this.closed()) return;
    this.socket.end(() => this.socket.destroy());
  }

  private clearFrameTimer(): void {
    if (this.frameTimer) this.clock.clearTimer(this.frameTimer);
    this.frameTimer = null;
  }
}
