import { CommandCondition, Opcode, RequestDecoder, RequestFlags, Status, encodeResponse, type DecodeEvent, type FrameLimits, type Request, type Response } from '@cairn/protocol';
import type { Socket } from 'node:net';
import type { RequestObserver, RequestOp } from '../metrics/request-metrics';
import { KvSession, type KvResult } from '../paths/kv-session';
import type { ReadIndexClient } from '../paths/read-index';
import type { ReadPath } from '../paths/read-path';
import type { WritePath } from '../paths/write-path';
import { drainConnection } from './drain';

export interface ConnectionDeps {
  limits: FrameLimits;
  inflightMax: number;
  idleTimeoutMs: number;
  reads: ReadPath;
  /** Absent (tests): reads are read-your-writes only. */
  readIndex?: ReadIndexClient;
  writes: WritePath;
  status: () => unknown;
  onClose: (c: ClientConnection) => void;
  /** Called once per answered request (GatewayMetrics.observer('tlv')); absent in tests. */
  observer?: RequestObserver;
}

const EMPTY = Buffer.alloc(0);

/**
 * One client TCP connection speaking protocol v1 (docs/protocol.md): a streaming decoder, many
 * requests in flight (pipelining; responses are written as they complete, matched by request id),
 * backpressure by pausing the socket at `inflightMax`, and read-your-writes: every read carries
 * the index of this connection's last acknowledged write.
 */
export class ClientConnection {
  private readonly decoder: RequestDecoder;
  private readonly session: KvSession;
  private inflight = 0;
  private corked = false;
  private draining = false;
  private closed = false;
  private drainWaiters: (() => void)[] = [];
  /** Decoded frames not yet handled because `inflightMax` requests are in flight. */
  private backlog: DecodeEvent[] = [];
  private backlogHead = 0;

  constructor(
    private readonly socket: Socket,
    private readonly deps: ConnectionDeps,
  ) {
    this.decoder = new RequestDecoder(deps.limits);
    this.session = new KvSession({ reads: deps.reads, readIndex: deps.readIndex, writes: deps.writes, limits: deps.limits });
    socket.setNoDelay(true);
    socket.setTimeout(deps.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('timeout', () => {
      if (this.inflight === 0) socket.end();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.closed = true;
      this.wakeDrainWaiters();
      deps.onClose(this);
    });
  }

  /** Stops reading new requests, waits (at most `timeoutMs`) for in-flight ones, then closes. */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    await drainConnection(this.socket, () => this.inflight, () => this.closed, this.drainWaiters, timeoutMs);
  }

  private onData(chunk: Buffer): void {
    for (const ev of this.decoder.push(chunk)) this.backlog.push(ev);
    this.processBacklog();
  }

  /**
   * Handles decoded frames while fewer than `inflightMax` requests are in flight. One TCP chunk
   * can hold many frames, so the rest wait in `backlog` (at most one chunk's worth) with the
   * socket paused, and resume as answers go out: the bound is exact, not per chunk.
   */
  private processBacklog(): void {
    while (this.backlogHead < this.backlog.length && !this.closed) {
      if (this.inflight >= this.deps.inflightMax) {
        this.socket.pause();
        return;
      }
      const ev = this.backlog[this.backlogHead++];
      if (ev.kind === 'request') this.handle(ev.request);
      else if (ev.kind === 'reject') {
        this.respond({ status: ev.status, flags: 0, requestId: ev.requestId, revision: 0, payload: Buffer.from(ev.message) });
        this.deps.observer?.observe('other', ev.status, 0);
      } else {
        // Framing is lost: answer once, then close (docs/protocol.md, "bad headers").
        this.respond({ status: ev.status, flags: 0, requestId: ev.requestId, revision: 0, payload: Buffer.from(ev.message) });
        this.socket.end();
        this.socket.pause();
        this.backlog = [];
        this.backlogHead = 0;
        return;
      }
    }
    this.backlog = [];
    this.backlogHead = 0;
    if (!this.draining && !this.closed && this.socket.isPaused()) this.socket.resume();
  }

  private handle(req: Request): void {
    const startMs = performance.now();
    switch (req.opcode) {
      case Opcode.Ping:
        this.respond({ status: Status.Ok, flags: 0, requestId: req.requestId, revision: 0, payload: req.value });
        this.deps.observer?.observe('ping', Status.Ok, (performance.now() - startMs) / 1000);
        return;
      case Opcode.Status:
        this.respond({ status: Status.Ok, flags: 0, requestId: req.requestId, revision: 0, payload: Buffer.from(JSON.stringify(this.deps.status())) });
        this.deps.observer?.observe('status', Status.Ok, (performance.now() - startMs) / 1000);
        return;
      case Opcode.Get:
        this.track(req.requestId, 'get', startMs, this.session.get(req.key, { stale: (req.flags & RequestFlags.Stale) !== 0 }));
        return;
      case Opcode.Set:
        this.track(req.requestId, 'set', startMs, this.session.set(req.key, req.value, { condition: conditionOf(req.flags) }));
        return;
      case Opcode.Del:
        this.track(req.requestId, 'del', startMs, this.session.del(req.key));
        return;
      default:
        this.respond({ status: Status.BadRequest, flags: 0, requestId: req.requestId, revision: 0, payload: Buffer.from(`unsupported opcode ${req.opcode}`) });
        this.deps.observer?.observe('other', Status.BadRequest, 0);
    }
  }

  /** `startMs` (performance.now() at decode) times the request for the observer. */
  private track(requestId: number, op: RequestOp, startMs: number, p: Promise<KvResult>): void {
    this.inflight++;
    p.catch((e: Error) => ({ status: Status.Error, revision: 0, value: EMPTY, message: `gateway error: ${e.message}` })).then((r) => {
      this.inflight--;
      const payload = r.status === Status.Ok ? Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength) : r.status === Status.NotFound || r.status === Status.ConditionFailed ? EMPTY : Buffer.from(r.message);
      this.respond({ status: r.status, flags: 0, requestId, revision: r.revision, payload });
      this.deps.observer?.observe(op, r.status, (performance.now() - startMs) / 1000);
      if (this.inflight === 0) this.wakeDrainWaiters();
      if (!this.draining) this.processBacklog();
    });
  }

  private respond(res: Response): void {
    if (this.closed || this.socket.destroyed) return;
    // Cork for the rest of this tick so responses completed together leave in one write.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(encodeResponse(res));
  }

  private wakeDrainWaiters(): void {
    const ws = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of ws) w();
  }
}

/** The write condition of a SET's request flags (the decoder already refused both bits at once). */
function conditionOf(flags: number): CommandCondition {
  if (flags & RequestFlags.IfAbsent) return CommandCondition.IfAbsent;
  if (flags & RequestFlags.IfPresent) return CommandCondition.IfPresent;
  return CommandCondition.None;
}
