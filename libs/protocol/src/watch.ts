/**
 * Watch (docs/watch.md; etcd's Watch API is the model): the event a storage node produces for each
 * key mutation it applies, the internal messages that carry events from storage nodes to gateways,
 * and the client TLV WATCH / WATCH_CANCEL request values and the server-streamed watch frames.
 * All big-endian; u64 = a number < 2^53.
 */
import { ByteReader, ByteWriter, clampString, stringFieldBytes } from './bytes';
import { ProtocolError } from './constants';

/** What happened to the key (etcd mvccpb.Event.EventType). */
export enum WatchEventType {
  Put = 0,
  Delete = 1,
}

/** Event flag bits. */
export const WatchEventFlags = {
  /** The event carries the key's previous value (it existed before this mutation). */
  Prev: 0x01,
  /** The key existed before, but its previous value was left out: the event with it would not fit a bus message (docs/watch.md "Bounds"). */
  PrevOmitted: 0x02,
  /**
   * Internal layout only (bus and history log, not client frames): a Delete made by an expiry —
   * an ExpireKey the leader proposed once a key's TTL passed (Redis keyspace notifications report
   * it as `expired`, not `del`; docs/watch.md "Event source").
   */
  Expired: 0x04,
} as const;
const EVENT_FLAGS_KNOWN = WatchEventFlags.Prev | WatchEventFlags.PrevOmitted | WatchEventFlags.Expired;
/** Client frames (TLV EVENTS) carry these bits only: a client decoder refuses any other. */
const CLIENT_EVENT_FLAGS = WatchEventFlags.Prev | WatchEventFlags.PrevOmitted;

/**
 * One key mutation as applied (etcd mvccpb.Event with prev_kv). Events of one Raft entry share its
 * revision. A Delete is produced only for a key that existed (a DEL of a missing key writes a
 * tombstone but is no event, as in etcd and Redis). Delete: `value` empty, createRevision 0, version 0.
 */
export interface WatchEvent {
  type: WatchEventType;
  key: Uint8Array;
  value: Uint8Array;
  /** The revision (Raft index) of the mutation. */
  modRevision: number;
  /** Put: the revision that created the key (this one for a new key); Delete: 0. */
  createRevision: number;
  /** Put: writes since creation (1 for a new key); Delete: 0. */
  version: number;
  /** The value before this mutation; null when the key did not exist before (or the value was omitted: `prevOmitted`). */
  prevValue: Uint8Array | null;
  /** The key existed but its previous value is not carried (it would not fit a bus message). */
  prevOmitted?: boolean;
  /** A Delete by an expiry (flag Expired; internal layout only: client frames leave it out). */
  expired?: boolean;
}

/** Bytes an internal event adds besides its key and value: `u8 type | u8 flags | u32 keyLen | u64 mod | u64 create | u64 version | u32 valueLen` (a previous value adds `u32 prevLen | prev`). */
export const WATCH_EVENT_OVERHEAD_BYTES = 1 + 1 + 4 + 8 + 8 + 8 + 4;

/** Encoded bytes of `e` on the internal bus and in the history log (with its previous value when it has one). */
export function watchEventBytes(e: WatchEvent): number {
  return WATCH_EVENT_OVERHEAD_BYTES + e.key.length + e.value.length + (e.prevValue ? 4 + e.prevValue.length : 0);
}

function eventFlags(e: WatchEvent): number {
  return (e.prevValue ? WatchEventFlags.Prev : 0) | (e.prevOmitted ? WatchEventFlags.PrevOmitted : 0) | (e.expired ? WatchEventFlags.Expired : 0);
}

/** `u8 type | u8 flags | bytes key | u64 modRevision | u64 createRevision | u64 version | bytes value | [bytes prev]` (internal: u32 lengths). */
export function writeWatchEvent(w: ByteWriter, e: WatchEvent): void {
  w.u8(e.type).u8(eventFlags(e)).bytes(e.key).u64(e.modRevision).u64(e.createRevision).u64(e.version).bytes(e.value);
  if (e.prevValue) w.bytes(e.prevValue);
}

/** Key, value and previous value are views of the input. @throws ProtocolError on an unknown type or flag bits. */
export function readWatchEvent(r: ByteReader): WatchEvent {
  const type = r.u8();
  if (type !== WatchEventType.Put && type !== WatchEventType.Delete) throw new ProtocolError(`unknown watch event type ${type}`);
  const flags = r.u8();
  if (flags & ~EVENT_FLAGS_KNOWN) throw new ProtocolError(`unknown watch event flag bits 0x${(flags & ~EVENT_FLAGS_KNOWN).toString(16)}`);
  const key = r.bytes();
  const modRevision = r.u64();
  const createRevision = r.u64();
  const version = r.u64();
  const value = r.bytes();
  const prevValue = flags & WatchEventFlags.Prev ? r.bytes() : null;
  const e: WatchEvent = { type, key, value, modRevision, createRevision, version, prevValue };
  if (flags & WatchEventFlags.PrevOmitted) e.prevOmitted = true;
  if (flags & WatchEventFlags.Expired) e.expired = true;
  return e;
}

/**
 * `e` without its previous value (flag PrevOmitted), for an event that would not fit a bus message
 * with it; `e` itself when it has none.
 */
export function withoutPrev(e: WatchEvent): WatchEvent {
  return e.prevValue ? { ...e, prevValue: null, prevOmitted: true } : e;
}

/** Whether `key` is in the watched range [start, end) (end null: no upper bound). */
export function inWatchRange(key: Uint8Array, start: Uint8Array, end: Uint8Array | null): boolean {
  return Buffer.compare(key, start) >= 0 && (end === null || Buffer.compare(key, end) < 0);
}

/** The exclusive end of the range that is exactly `key` (`key` + 0x00), as etcd's single-key watch. */
export function singleKeyEnd(key: Uint8Array): Buffer {
  const end = Buffer.alloc(key.length + 1);
  end.set(key, 0);
  return end;
}

// ---- internal: storage node → gateway --------------------------------------------------------------

/** Internal message types (docs/protocol.md "Internal messages"). The history request shares the read subject. */
export const WATCH_HISTORY_REQUEST_TYPE = 40;
export const WATCH_HISTORY_REPLY_TYPE = 41;
export const WATCH_EVENTS_TYPE = 42;
export const WATCH_INTEREST_TYPE = 43;
const VERSION = 1;

/**
 * How long one WatchInterest keeps a storage node publishing its WatchEvents, ms: a gateway with
 * open watches sends one every WATCH_INTEREST_REFRESH_MS, so two lost in a row stop nothing.
 */
export const WATCH_INTEREST_MS = 3000;
/** How often a gateway with open watches tells each live storage node it wants their events, ms. */
export const WATCH_INTEREST_REFRESH_MS = 1000;
/** The longest interest a storage node takes from one WatchInterest, ms (a larger `forMs` is cut to it). */
export const WATCH_INTEREST_MS_MAX = 60_000;

/**
 * Gateway → storage node (published on `read.<node>`, no reply): publish your WatchEvents for the
 * next `forMs` ms (docs/watch.md "Delivery"). A node that heard none recently publishes nothing:
 * its history still records every batch, and a gateway pages the gap it sees when events resume.
 */
export interface WatchInterest {
  /** How long the node keeps publishing after receiving this, ms (≤ WATCH_INTEREST_MS_MAX is honoured). */
  forMs: number;
}

/** `header(43) | u32 forMs`. */
export function encodeWatchInterest(m: WatchInterest): Buffer {
  return new ByteWriter(2 + 4).u8(WATCH_INTEREST_TYPE).u8(VERSION).u32(m.forMs).finish();
}

/** @throws ProtocolError on a malformed message. */
export function decodeWatchInterest(b: Uint8Array): WatchInterest {
  const r = new ByteReader(b);
  r.header(WATCH_INTEREST_TYPE, VERSION, 'WatchInterest');
  const forMs = r.u32();
  r.end();
  return { forMs };
}


/**
 * Published by a storage node on `watch.<node>` after it applied a batch: every event with a
 * revision in (prevRevision, lastRevision], in revision order. Consecutive messages of one node
 * chain (the next one's prevRevision is this one's lastRevision); a gateway that sees a message
 * whose prevRevision is above what it has seen lost one (core NATS drops) and pages the history.
 */
export interface WatchEventsMessage {
  nodeId: string;
  prevRevision: number;
  lastRevision: number;
  events: WatchEvent[];
}

/** Bytes of a WatchEvents message with no events, besides its node id: header, two u64, string length, count. */
export const WATCH_EVENTS_BASE_BYTES = 2 + 8 + 8 + 2 + 4;

/** `header(42) | string nodeId | u64 prevRevision | u64 lastRevision | u32 n | n × event`. */
export function encodeWatchEvents(m: WatchEventsMessage): Buffer {
  let size = WATCH_EVENTS_BASE_BYTES - 2 + stringFieldBytes(m.nodeId);
  for (const e of m.events) size += watchEventBytes(e);
  const w = new ByteWriter(size).u8(WATCH_EVENTS_TYPE).u8(VERSION).string(m.nodeId).u64(m.prevRevision).u64(m.lastRevision).u32(m.events.length);
  for (const e of m.events) writeWatchEvent(w, e);
  return w.finish();
}

/** @throws ProtocolError on a malformed message or when lastRevision < prevRevision. */
export function decodeWatchEvents(b: Uint8Array): WatchEventsMessage {
  const r = new ByteReader(b);
  r.header(WATCH_EVENTS_TYPE, VERSION, 'WatchEvents');
  const nodeId = r.string();
  const prevRevision = r.u64();
  const lastRevision = r.u64();
  if (lastRevision < prevRevision) throw new ProtocolError(`WatchEvents lastRevision ${lastRevision} < prevRevision ${prevRevision}`);
  const events: WatchEvent[] = r.list(WATCH_EVENT_OVERHEAD_BYTES, readWatchEvent);
  r.end();
  return { nodeId, prevRevision, lastRevision, events };
}

/**
 * The revisions a WatchEvents message covers, read from its head without decoding its events: a
 * gateway drops a message another storage node already brought before paying for its events
 * (every node publishes the same committed history). @throws ProtocolError on a malformed head or
 * when lastRevision < prevRevision (the events are checked by decodeWatchEvents).
 */
export function peekWatchEventsRange(b: Uint8Array): { prevRevision: number; lastRevision: number } {
  const r = new ByteReader(b);
  r.header(WATCH_EVENTS_TYPE, VERSION, 'WatchEvents');
  r.string();
  const prevRevision = r.u64();
  const lastRevision = r.u64();
  if (lastRevision < prevRevision) throw new ProtocolError(`WatchEvents lastRevision ${lastRevision} < prevRevision ${prevRevision}`);
  return { prevRevision, lastRevision };
}

/** Gateway → storage node: one page of the node's event history (on `read.<node>`). */
export interface WatchHistoryRequest {
  /** First revision wanted (≥ 1). */
  fromRevision: number;
  /** Last revision wanted; 0 = up to the node's last applied one. */
  toRevision: number;
  /** The keys [start, end); end null = no upper bound. */
  start: Uint8Array;
  end: Uint8Array | null;
  /** Page bytes at most (events as encoded); the first event always goes; the reply also stays under the node's payload bound. */
  bytesMax: number;
  /** Events at most (≥ 1). */
  eventsMax: number;
}

export enum WatchHistoryResult {
  Ok = 0,
  /** `fromRevision` is below the oldest revision the node retains (`oldestRevision`). */
  Compacted = 1,
  /** The node cannot answer now (opening, bootstrapping): ask another. */
  Unavailable = 2,
}

/**
 * Ok: the matching events with revisions in [fromRevision, nextRevision), in order; the next page
 * starts at `nextRevision` (> toRevision once done). `oldestRevision`: the smallest revision a watch
 * may start from on this node; `lastRevision`: the last revision the history holds.
 */
export interface WatchHistoryReply {
  result: WatchHistoryResult;
  oldestRevision: number;
  lastRevision: number;
  nextRevision: number;
  message: string;
  events: WatchEvent[];
}

/** `header(40) | u64 fromRevision | u64 toRevision | bytes start | bool hasEnd | bytes end | u32 bytesMax | u32 eventsMax`. */
export function encodeWatchHistoryRequest(q: WatchHistoryRequest): Buffer {
  const end = q.end ?? Buffer.alloc(0);
  return new ByteWriter(2 + 8 + 8 + 4 + q.start.length + 1 + 4 + end.length + 4 + 4)
    .u8(WATCH_HISTORY_REQUEST_TYPE)
    .u8(VERSION)
    .u64(q.fromRevision)
    .u64(q.toRevision)
    .bytes(q.start)
    .bool(q.end !== null)
    .bytes(end)
    .u32(q.bytesMax)
    .u32(q.eventsMax)
    .finish();
}

/** @throws ProtocolError on a malformed message, fromRevision 0 or eventsMax 0. */
export function decodeWatchHistoryRequest(b: Uint8Array): WatchHistoryRequest {
  const r = new ByteReader(b);
  r.header(WATCH_HISTORY_REQUEST_TYPE, VERSION, 'WatchHistoryRequest');
  const fromRevision = r.u64();
  const toRevision = r.u64();
  const start = r.bytes();
  const hasEnd = r.bool();
  const end = r.bytes();
  const bytesMax = r.u32();
  const eventsMax = r.u32();
  r.end();
  if (fromRevision < 1) throw new ProtocolError('WatchHistoryRequest fromRevision must be >= 1');
  if (eventsMax < 1) throw new ProtocolError('WatchHistoryRequest eventsMax must be >= 1');
  return { fromRevision, toRevision, start, end: hasEnd ? end : null, bytesMax, eventsMax };
}

/** Bytes of a WatchHistoryReply with no events and an empty message. */
export const WATCH_HISTORY_REPLY_BASE_BYTES = 2 + 1 + 8 + 8 + 8 + 2 + 4;

/** `header(41) | u8 result | u64 oldestRevision | u64 lastRevision | u64 nextRevision | string message | u32 n | n × event`. */
export function encodeWatchHistoryReply(q: WatchHistoryReply): Buffer {
  const message = clampString(q.message);
  let size = WATCH_HISTORY_REPLY_BASE_BYTES - 2 + stringFieldBytes(message);
  for (const e of q.events) size += watchEventBytes(e);
  const w = new ByteWriter(size).u8(WATCH_HISTORY_REPLY_TYPE).u8(VERSION).u8(q.result).u64(q.oldestRevision).u64(q.lastRevision).u64(q.nextRevision).string(message).u32(q.events.length);
  for (const e of q.events) writeWatchEvent(w, e);
  return w.finish();
}

/** @throws ProtocolError on a malformed message or an unknown result. */
export function decodeWatchHistoryReply(b: Uint8Array): WatchHistoryReply {
  const r = new ByteReader(b);
  r.header(WATCH_HISTORY_REPLY_TYPE, VERSION, 'WatchHistoryReply');
  const result = r.u8();
  if (result > WatchHistoryResult.Unavailable) throw new ProtocolError(`unknown WatchHistoryReply result ${result}`);
  const oldestRevision = r.u64();
  const lastRevision = r.u64();
  const nextRevision = r.u64();
  const message = r.string();
  const events: WatchEvent[] = r.list(WATCH_EVENT_OVERHEAD_BYTES, readWatchEvent);
  r.end();
  return { result, oldestRevision, lastRevision, nextRevision, message, events };
}

// ---- client TLV: WATCH request value and watch frames ------------------------------------------------

/** Options byte of a WATCH request value. Unknown bits are BAD_REQUEST. */
export const WatchOptions = {
  /** The key is a prefix: every key starting with it (end must be empty). */
  Prefix: 0x01,
  /** Events carry the key's previous value (etcd prev_kv). */
  PrevValue: 0x02,
  /**
   * The client takes SHARED_EVENTS frames for this watch (docs/protocol.md "WATCH"): the gateway may
   * send the events of one message once for several watches of the connection. Without it the
   * watch gets EVENTS frames only (clients from before the option keep working unchanged).
   */
  SharedFrames: 0x04,
} as const;
export const WATCH_OPTIONS_KNOWN = WatchOptions.Prefix | WatchOptions.PrevValue | WatchOptions.SharedFrames;

/** A WATCH request's value, decoded. The request key is the watched key, the range start or the prefix. */
export interface WatchSpec {
  options: number;
  /** First revision to deliver; 0 = from now (events after the revision in the OK answer). */
  startRevision: number;
  /** Exclusive range end; empty with no Prefix option = the single key. */
  end: Buffer;
}

/** `u8 options | u64 startRevision | u16 endLength | end`. */
export function encodeWatchSpec(s: { options?: number; startRevision?: number; end?: Uint8Array }): Buffer {
  const end = s.end ?? Buffer.alloc(0);
  return new ByteWriter(1 + 8 + 2 + end.length).u8(s.options ?? 0).u64(s.startRevision ?? 0).u16(end.length).raw(end).finish();
}

/** @throws ProtocolError when `b` is not exactly a watch spec, sets unknown option bits, or sets Prefix with an end. */
export function decodeWatchSpec(b: Uint8Array): WatchSpec {
  const r = new ByteReader(b);
  const options = r.u8();
  if (options & ~WATCH_OPTIONS_KNOWN) throw new ProtocolError(`unknown WATCH option bits 0x${(options & ~WATCH_OPTIONS_KNOWN).toString(16)}`);
  const startRevision = r.u64();
  const end = r.raw(r.u16());
  r.end();
  if (options & WatchOptions.Prefix && end.length > 0) throw new ProtocolError('WATCH with the Prefix option takes no end');
  return { options, startRevision, end };
}

/** Kind byte that starts the payload of a server-streamed watch frame (response flag WATCH). */
export enum WatchFrameKind {
  /** Events, in revision order: `u32 n | n × event` (client layout); header revision = the last event's. */
  Events = 0x01,
  /** No events: header revision = every event of the watch up to it was delivered (etcd progress notify). */
  Progress = 0x02,
  /** The watch ended: `u8 reason | u64 oldestRevision | UTF-8 message`; no frame of this watch follows. */
  Canceled = 0x03,
  /**
   * Events for several watches of the connection (each opened with option SharedFrames), identical
   * for all of them: `u16 idCount | idCount × u32 watchId | u32 n | n × event` (the EVENTS layout
   * after its count); header requestId = the first listed id, revision = the last event's.
   */
  SharedEvents = 0x04,
}

/**
 * Watch ids one SHARED_EVENTS frame names at most (1..this, distinct); a gateway with more watches
 * sharing one message's events on a connection sends several frames. etcd's v3rpc sends one
 * WatchResponse per watch id; this is our batching of them.
 */
export const WATCH_FRAME_IDS_MAX = 1024;

/** Why a watch ended (a CANCELED frame). */
export enum WatchCancelReason {
  /** The client cancelled it (WATCH_CANCEL). */
  Client = 1,
  /** Its start revision is older than the oldest one retained: `oldestRevision` names the oldest available. */
  Compacted = 2,
  /** Its connection did not take its events fast enough: the watcher's queue crossed watchQueueBytesMax / watchQueueEventsMax. */
  Slow = 3,
  /** No storage node could serve its history or stream: resume from the last revision seen (retryable). */
  Unavailable = 4,
  /** The gateway is shutting down: resume from the last revision seen on another gateway. */
  Shutdown = 5,
}

const CANCEL_REASON_NAMES: Record<WatchCancelReason, string> = {
  [WatchCancelReason.Client]: 'CANCELED',
  [WatchCancelReason.Compacted]: 'COMPACTED',
  [WatchCancelReason.Slow]: 'SLOW',
  [WatchCancelReason.Unavailable]: 'UNAVAILABLE',
  [WatchCancelReason.Shutdown]: 'SHUTDOWN',
};

/** `COMPACTED`, `SLOW`, …; `REASON_<n>` for an unknown one. */
export function watchCancelReasonName(r: number): string {
  return CANCEL_REASON_NAMES[r as WatchCancelReason] ?? `REASON_${r}`;
}

/** A decoded watch frame payload. */
export type WatchFrame =
  | { kind: WatchFrameKind.Events; events: WatchEvent[] }
  | { kind: WatchFrameKind.SharedEvents; watchIds: number[]; events: WatchEvent[] }
  | { kind: WatchFrameKind.Progress }
  | { kind: WatchFrameKind.Canceled; reason: number; oldestRevision: number; message: string };

/** Bytes a client event adds besides key and value: `u8 type | u8 flags | u16 keyLen | u64 ×3 | u32 valueLen` (a previous value adds `u32 prevLen | prev`). */
export const CLIENT_WATCH_EVENT_OVERHEAD_BYTES = 1 + 1 + 2 + 24 + 4;

/** Client-facing bytes of `e`. */
export function clientWatchEventBytes(e: WatchEvent): number {
  return CLIENT_WATCH_EVENT_OVERHEAD_BYTES + e.key.length + e.value.length + (e.prevValue ? 4 + e.prevValue.length : 0);
}

/** EVENTS payload: `u8 0x01 | u32 n | n × (u8 type | u8 flags | u16 keyLength | key | u64 modRevision | u64 createRevision | u64 version | u32 valueLength | value | [u32 prevLength | prev])`. */
export function encodeWatchEventsFrame(events: readonly WatchEvent[]): Buffer {
  let size = 1 + 4;
  for (const e of events) size += clientWatchEventBytes(e);
  const w = new ByteWriter(size).u8(WatchFrameKind.Events).u32(events.length);
  for (const e of events) {
    w.u8(e.type).u8(eventFlags(e) & CLIENT_EVENT_FLAGS).u16(e.key.length).raw(e.key).u64(e.modRevision).u64(e.createRevision).u64(e.version).u32(e.value.length).raw(e.value);
    if (e.prevValue) w.u32(e.prevValue.length).raw(e.prevValue);
  }
  return w.finish();
}

/** Bytes of the SHARED_EVENTS payload naming `idCount` watches around an encoded EVENTS payload of `eventsFrameBytes`. */
export function watchSharedEventsFrameBytes(idCount: number, eventsFrameBytes: number): number {
  return 1 + 2 + 4 * idCount + eventsFrameBytes - 1;
}

/**
 * Writes the SHARED_EVENTS payload `u8 0x04 | u16 idCount | idCount × u32 watchId | u32 n | events`
 * into `buf` at `offset` from an encoded EVENTS payload (`encodeWatchEventsFrame`: the events are
 * encoded once, whatever the ids); returns the bytes written.
 * @throws RangeError unless 1 ≤ ids ≤ WATCH_FRAME_IDS_MAX, or when `eventsFrame` is not an EVENTS payload
 */
export function encodeWatchSharedEventsFrameInto(watchIds: readonly number[], eventsFrame: Uint8Array, buf: Buffer, offset: number): number {
  if (watchIds.length < 1 || watchIds.length > WATCH_FRAME_IDS_MAX) throw new RangeError(`a SHARED_EVENTS frame names 1..${WATCH_FRAME_IDS_MAX} watches, got ${watchIds.length}`);
  if (eventsFrame[0] !== WatchFrameKind.Events) throw new RangeError('encodeWatchSharedEventsFrameInto takes an EVENTS payload');
  let at = offset;
  buf[at++] = WatchFrameKind.SharedEvents;
  at = buf.writeUInt16BE(watchIds.length, at);
  for (const id of watchIds) at = buf.writeUInt32BE(id, at);
  buf.set(eventsFrame.subarray(1), at);
  return at + eventsFrame.length - 1 - offset;
}

/** SHARED_EVENTS payload (layout at encodeWatchSharedEventsFrameInto) for `watchIds` and `events`. */
export function encodeWatchSharedEventsFrame(watchIds: readonly number[], events: readonly WatchEvent[]): Buffer {
  const eventsFrame = encodeWatchEventsFrame(events);
  const buf = Buffer.allocUnsafe(watchSharedEventsFrameBytes(watchIds.length, eventsFrame.length));
  encodeWatchSharedEventsFrameInto(watchIds, eventsFrame, buf, 0);
  return buf;
}

/** PROGRESS payload: `u8 0x02`. */
export function encodeWatchProgressFrame(): Buffer {
  return Buffer.from([WatchFrameKind.Progress]);
}

/** CANCELED payload: `u8 0x03 | u8 reason | u64 oldestRevision | UTF-8 message`. */
export function encodeWatchCanceledFrame(reason: WatchCancelReason, oldestRevision: number, message: string): Buffer {
  const m = Buffer.from(clampString(message), 'utf8');
  return new ByteWriter(1 + 1 + 8 + m.length).u8(WatchFrameKind.Canceled).u8(reason).u64(oldestRevision).raw(m).finish();
}

/** The events of an EVENTS or SHARED_EVENTS payload after its ids: `u32 n | n × event`; views of the input. */
function readClientEvents(r: ByteReader): WatchEvent[] {
  const events: WatchEvent[] = r.list(CLIENT_WATCH_EVENT_OVERHEAD_BYTES, () => {
    const type = r.u8();
    if (type !== WatchEventType.Put && type !== WatchEventType.Delete) throw new ProtocolError(`unknown watch event type ${type}`);
    const flags = r.u8();
    if (flags & ~CLIENT_EVENT_FLAGS) throw new ProtocolError(`unknown watch event flag bits 0x${(flags & ~CLIENT_EVENT_FLAGS).toString(16)}`);
    const key = r.raw(r.u16());
    const modRevision = r.u64();
    const createRevision = r.u64();
    const version = r.u64();
    const value = r.raw(r.u32());
    const prevValue = flags & WatchEventFlags.Prev ? r.raw(r.u32()) : null;
    const event: WatchEvent = { type, key, value, modRevision, createRevision, version, prevValue };
    if (flags & WatchEventFlags.PrevOmitted) event.prevOmitted = true;
    return event;
  });
  r.end();
  return events;
}

/**
 * Keys and values are views of `b`. @throws ProtocolError on an unknown kind, truncation or
 * trailing bytes; SHARED_EVENTS: on 0 or more than WATCH_FRAME_IDS_MAX ids, or an id listed twice.
 */
export function decodeWatchFrame(b: Uint8Array): WatchFrame {
  const r = new ByteReader(b);
  const kind = r.u8();
  switch (kind) {
    case WatchFrameKind.Events:
      return { kind, events: readClientEvents(r) };
    case WatchFrameKind.SharedEvents: {
      const idCount = r.u16();
      if (idCount < 1 || idCount > WATCH_FRAME_IDS_MAX) throw new ProtocolError(`SHARED_EVENTS frame names ${idCount} watches (1..${WATCH_FRAME_IDS_MAX})`);
      const watchIds: number[] = new Array(idCount);
      for (let i = 0; i < idCount; i++) watchIds[i] = r.u32();
      if (idCount > 1 && new Set(watchIds).size !== idCount) throw new ProtocolError('SHARED_EVENTS frame names a watch id twice');
      return { kind, watchIds, events: readClientEvents(r) };
    }
    case WatchFrameKind.Progress:
      r.end();
      return { kind };
    case WatchFrameKind.Canceled: {
      const reason = r.u8();
      const oldestRevision = r.u64();
      const message = r.raw(r.remaining()).toString('utf8');
      return { kind, reason, oldestRevision, message };
    }
    default:
      throw new ProtocolError(`unknown watch frame kind 0x${kind.toString(16)}`);
  }
}

/** WATCH_CANCEL request value: `u32 watchId` (the request id of the WATCH that created it). */
export function encodeWatchCancel(watchId: number): Buffer {
  return new ByteWriter(4).u32(watchId).finish();
}

/** @throws ProtocolError unless `b` is exactly a u32. */
export function decodeWatchCancel(b: Uint8Array): number {
  const r = new ByteReader(b);
  const id = r.u32();
  r.end();
  return id;
}
