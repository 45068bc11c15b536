import { RESPONSE_HEADER_BYTES, ResponseFlags, Status, WATCH_FRAME_IDS_MAX, encodeResponseHeaderInto, encodeWatchSharedEventsFrameInto, watchSharedEventsFrameBytes, type WatchEvent } from '@cairn/protocol';

/** Bytes of frames one batch holds at most: a larger batch is written at once and a new one starts. */
export const WATCH_BATCH_BYTES_MAX = 256 * 1024;

/**
 * Where one watch's frames stand in the current batch (owned by the watch's sink): a watch may join
 * a SHARED_EVENTS frame only if none of its own frames is queued after that frame, so its frames
 * keep their order.
 */
export interface WatchBatchSlot {
  /** The batch generation (`WatchFrameBatch` counts flushes) `lastEntry` belongs to. */
  generation: number;
  /** Index of the watch's last queued frame in that generation. */
  lastEntry: number;
}

/** One frame of the batch: a single watch's (ids.length 1), or a SHARED_EVENTS frame naming ids.length watches. */
interface Entry {
  ids: number[];
  revision: number;
  /** The frame payload; for a shared group, the EVENTS payload its SHARED_EVENTS payload is built from. */
  payload: Buffer;
  flushed: (() => void)[];
  /** The events array the group shares (null: not joinable). */
  events: readonly WatchEvent[] | null;
}

/** Bytes `entry` takes in the written buffer: header plus EVENTS payload, or the SHARED_EVENTS form for two ids or more. */
function entryBytes(ids: number, payloadBytes: number, shared: boolean): number {
  return RESPONSE_HEADER_BYTES + (shared && ids > 1 ? watchSharedEventsFrameBytes(ids, payloadBytes) : payloadBytes);
}

/**
 * The watch frames (response flag WATCH, docs/protocol.md "WATCH") of one TLV connection in one
 * turn of the event loop, written as ONE buffer in one socket write (docs/watch.md "Gateway"): the
 * hub hands a storage node's message to every watch of a connection in the same turn, so N watches
 * on a connection cost one write and one flushed callback, not N. Watches opened with option
 * SHARED_FRAMES that get the same events array (the hub shares one per range, prevValue option and
 * position) are named together in ONE SHARED_EVENTS frame (up to WATCH_FRAME_IDS_MAX ids): the
 * events are written once per connection, not once per watch (etcd v3rpc's per-stream batching of
 * WatchResponses, one step further). The batch is written at the end of the turn (process.nextTick)
 * or before a frame that would take it past WATCH_BATCH_BYTES_MAX; its owner calls `flush()` before writing any other
 * reply and before closing, so frames keep their order among themselves and with the connection's
 * other replies. Each frame's `flushed` runs when the kernel took the batch (ConnectionFlow.write).
 */
export class WatchFrameBatch {
  private entries: Entry[] = [];
  /** Shared groups of this generation that may still take an id, by events array. */
  private groups = new Map<readonly WatchEvent[], number>();
  private bytes = 0;
  /** Counts flushes: a slot of an older generation has no frame in the batch. */
  private generation = 0;
  private scheduled = false;
  private readonly atTurnEnd = () => {
    this.scheduled = false;
    this.flush();
  };

  /** `write`: hands one buffer of frames to the connection (ConnectionFlow.write); `onFlushed` runs once the kernel took it. */
  constructor(private readonly write: (frames: Buffer, onFlushed: (() => void) | undefined) => void) {}

  /** Frames waiting for the end of the turn (a SHARED_EVENTS frame counts once). */
  size(): number {
    return this.entries.length;
  }

  /** Bytes of the frames waiting for the end of the turn (headers included): what the write will hand to the socket. */
  pendingBytes(): number {
    return this.bytes;
  }

  /** Queues one watch frame (status OK, flag WATCH) for the watch `requestId`; the payload is copied at flush, not changed. */
  add(requestId: number, revision: number, payload: Buffer, flushed?: () => void, slot?: WatchBatchSlot): void {
    this.push({ ids: [requestId], revision, payload, flushed: flushed ? [flushed] : [], events: null }, slot);
  }

  /**
   * Queues `events` (encoded as `payload`, an EVENTS payload) for the watch `requestId` of a client
   * that takes SHARED_EVENTS frames: joins the frame of this turn that carries the same array when
   * the watch has no frame after it, else starts one. The array and its events must not change.
   */
  addShared(requestId: number, revision: number, events: readonly WatchEvent[], payload: Buffer, slot: WatchBatchSlot, flushed?: () => void): void {
    const at = this.joinable(events, slot);
    if (at === null) {
      this.push({ ids: [requestId], revision, payload, flushed: flushed ? [flushed] : [], events }, slot);
      return;
    }
    const e = this.entries[at];
    this.bytes += entryBytes(e.ids.length + 1, e.payload.length, true) - entryBytes(e.ids.length, e.payload.length, true);
    e.ids.push(requestId);
    if (flushed) e.flushed.push(flushed);
    if (e.ids.length >= WATCH_FRAME_IDS_MAX) this.groups.delete(events);
    slot.generation = this.generation;
    slot.lastEntry = at;
  }

  /** Bytes `addShared` (or `add` with `payloadBytes`, slot null) would add now: what the connection would write more. */
  bytesToAdd(events: readonly WatchEvent[] | null, payloadBytes: number, slot: WatchBatchSlot | null): number {
    const at = events && slot ? this.joinable(events, slot) : null;
    if (at === null) return RESPONSE_HEADER_BYTES + payloadBytes;
    const e = this.entries[at];
    return entryBytes(e.ids.length + 1, e.payload.length, true) - entryBytes(e.ids.length, e.payload.length, true);
  }

  /** Writes every queued frame now, in order, as one buffer (nothing when none is queued). */
  flush(): void {
    const entries = this.entries;
    if (entries.length === 0) return;
    const buf = Buffer.allocUnsafe(this.bytes);
    const header = { status: Status.Ok, flags: ResponseFlags.Watch, requestId: 0, revision: 0 };
    let at = 0;
    for (const e of entries) {
      header.requestId = e.ids[0];
      header.revision = e.revision;
      if (e.ids.length === 1) {
        encodeResponseHeaderInto(header, e.payload.length, buf, at);
        buf.set(e.payload, at + RESPONSE_HEADER_BYTES);
        at += RESPONSE_HEADER_BYTES + e.payload.length;
      } else {
        const n = watchSharedEventsFrameBytes(e.ids.length, e.payload.length);
        encodeResponseHeaderInto(header, n, buf, at);
        at += RESPONSE_HEADER_BYTES + encodeWatchSharedEventsFrameInto(e.ids, e.payload, buf, at + RESPONSE_HEADER_BYTES);
      }
    }
    if (at !== buf.length) throw new Error(`WatchBatchBytes: wrote ${at} bytes of a ${buf.length}-byte batch`);
    this.entries = [];
    this.groups.clear();
    this.bytes = 0;
    this.generation++;
    this.write(buf, () => {
      for (const e of entries) for (const f of e.flushed) f();
    });
  }

  /** The index of this turn's shared frame carrying `events` that the slot's watch may join, or null. */
  private joinable(events: readonly WatchEvent[], slot: WatchBatchSlot): number | null {
    const at = this.groups.get(events);
    if (at === undefined) return null;
    if (slot.generation === this.generation && slot.lastEntry >= at) return null; // it has a frame after that one
    return at;
  }

  /**
   * Appends a frame; the batch is written first when the frame would take it past
   * WATCH_BATCH_BYTES_MAX (so a write is at most the bound, or one frame, plus the 4-byte ids of
   * watches that joined its shared frames), not after: a shared frame stays open to the rest of
   * the turn's watches even when its events alone fill a batch.
   */
  private push(e: Entry, slot: WatchBatchSlot | undefined): void {
    const bytes = RESPONSE_HEADER_BYTES + e.payload.length;
    if (this.entries.length > 0 && this.bytes + bytes > WATCH_BATCH_BYTES_MAX) this.flush();
    if (e.events) this.groups.set(e.events, this.entries.length);
    if (slot) {
      slot.generation = this.generation;
      slot.lastEntry = this.entries.length;
    }
    this.entries.push(e);
    this.bytes += bytes;
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.atTurnEnd);
    }
  }
}
