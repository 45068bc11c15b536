import { RESPONSE_HEADER_BYTES, ResponseFlags, Status, encodeResponseInto, type Response } from '@cairn/protocol';

const EMPTY = Buffer.alloc(0);

/** Bytes of frames one batch holds at most: a larger batch is written at once and a new one starts. */
export const WATCH_BATCH_BYTES_MAX = 256 * 1024;

/**
 * The watch frames (response flag WATCH, docs/protocol.md "WATCH") of one TLV connection in one
 * turn of the event loop, written as ONE buffer in one socket write (docs/watch.md "Gateway"): the
 * hub hands a storage node's message to every watch of a connection in the same turn, so N watches
 * on a connection cost one write and one flushed callback, not N. The batch is written at the end
 * of the turn (process.nextTick) or once it holds WATCH_BATCH_BYTES_MAX bytes; its owner calls
 * `flush()` before writing any other reply and before closing, so frames keep their order among
 * themselves and with the connection's other replies. Each frame's `flushed` runs when the kernel
 * took the batch (ConnectionFlow.write), as it did frame by frame.
 */
export class WatchFrameBatch {
  private ids: number[] = [];
  private revisions: number[] = [];
  private payloads: Buffer[] = [];
  private flushedCbs: ((() => void) | undefined)[] = [];
  private bytes = 0;
  private scheduled = false;
  private readonly atTurnEnd = () => {
    this.scheduled = false;
    this.flush();
  };
  /** Reused for every header: encodeResponseInto reads these fields only. */
  private readonly scratch: Response = { status: Status.Ok, flags: ResponseFlags.Watch, requestId: 0, revision: 0, payload: EMPTY };

  /** `write`: hands one buffer of frames to the connection (ConnectionFlow.write); `onFlushed` runs once the kernel took it. */
  constructor(private readonly write: (frames: Buffer, onFlushed: (() => void) | undefined) => void) {}

  /** Frames waiting for the end of the turn. */
  size(): number {
    return this.ids.length;
  }

  /** Bytes of the frames waiting for the end of the turn (headers included). */
  pendingBytes(): number {
    return this.bytes;
  }

  /** Queues one watch frame (status OK, flag WATCH) for the watch `requestId`; the payload is copied at flush, not changed. */
  add(requestId: number, revision: number, payload: Buffer, flushed?: () => void): void {
    this.ids.push(requestId);
    this.revisions.push(revision);
    this.payloads.push(payload);
    this.flushedCbs.push(flushed);
    this.bytes += RESPONSE_HEADER_BYTES + payload.length;
    if (this.bytes >= WATCH_BATCH_BYTES_MAX) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.atTurnEnd);
    }
  }

  /** Writes every queued frame now, in order, as one buffer (nothing when none is queued). */
  flush(): void {
    const n = this.ids.length;
    if (n === 0) return;
    const buf = Buffer.allocUnsafe(this.bytes);
    const res = this.scratch;
    let at = 0;
    for (let i = 0; i < n; i++) {
      res.requestId = this.ids[i];
      res.revision = this.revisions[i];
      res.payload = this.payloads[i];
      at += encodeResponseInto(res, buf, at);
    }
    res.payload = EMPTY; // holds no frame's payload alive
    const cbs = this.flushedCbs;
    this.ids = [];
    this.revisions = [];
    this.payloads = [];
    this.flushedCbs = [];
    this.bytes = 0;
    this.write(buf, () => {
      for (const f of cbs) f?.();
    });
  }
}
