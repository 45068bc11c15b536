import { Opcode, Status, WatchCancelReason, WatchEventType, WatchFrameKind, WatchOptions, decodeWatchFrame, encodeWatchCancel, encodeWatchSpec, watchCancelReasonName, type Response, type WatchEvent, type WatchFrame } from '@cairn/protocol';
import { AbortError, CairnError, type ConnectionClosedError, ResponseProtocolError, WatchCompactedError, WatchSlowError, errorForResponse } from './errors';
import { positiveInt, toBuffer, type RequestOptions } from './commands';
import { fullJitterBackoffMs } from './retry';

/**
 * What to watch (docs/watch.md; etcd clientv3 Watch): exactly one of `key`, `prefix`, or
 * `start` + `end` (the keys [start, end)).
 */
export interface ClientWatchOptions {
  /** One key. */
  key?: string | Uint8Array;
  /** Every key starting with these bytes ('' = every key). */
  prefix?: string | Uint8Array;
  /** The range [start, end); both required. */
  start?: string | Uint8Array;
  end?: string | Uint8Array;
  /** First revision to deliver (every event with a revision ≥ it); default: from now (events after the revision the gateway knows applied). */
  startRevision?: number;
  /** Events carry the key's previous value (etcd prev_kv). */
  prevValue?: boolean;
  /** Also yield progress notifications (`{ type: 'progress', revision }`): every event up to `revision` was yielded. */
  progress?: boolean;
  /** Aborting ends the iteration with AbortError and cancels the watch. */
  signal?: AbortSignal;
  /** Events received and not yet pulled by the loop, at most; beyond, WatchSlowError. Default 10,000. */
  bufferEventsMax?: number;
  /** Bytes of frames received and not yet pulled by the loop, at most; beyond, WatchSlowError. Default 16 MiB. */
  bufferBytesMax?: number;
  /**
   * How long the watch keeps trying to resume (re-open from the last revision seen + 1, on another
   * gateway for a CairnPool) without success before it throws the last error, ms. Default 16000.
   */
  resumeTimeoutMs?: number;
  /**
   * Open the watch with option SHARED_FRAMES (docs/protocol.md "WATCH"): the gateway may send one
   * message's events once for every watch of the connection that gets them, decoded once for all.
   * Default true; a gateway from before the option answers BAD_REQUEST, and the watch is then
   * opened again without it (and that connection is not asked again).
   */
  sharedFrames?: boolean;
}

/**
 * One change (etcd mvccpb.Event). `key`, `value` and `prevValue` may be views of a received chunk;
 * the same object may be yielded to every watch a SHARED_EVENTS frame names: read-only.
 */
export interface WatchEventItem {
  type: 'put' | 'delete';
  key: Buffer;
  /** Empty for a delete. */
  value: Buffer;
  /** The revision (Raft index) of the change; changes of one transaction share it. */
  modRevision: number;
  /** put: the revision that created the key; delete: 0. */
  createRevision: number;
  /** put: writes since creation (1 for a new key); delete: 0. */
  version: number;
  /** With `prevValue`: the value before the change, null when the key did not exist (or the value was omitted: `prevOmitted`). */
  prevValue: Buffer | null;
  /** The key existed but its previous value was too large to carry. */
  prevOmitted: boolean;
}

/** A progress notification (etcd progress_notify): every event of the watch up to `revision` was yielded. */
export interface WatchProgressItem {
  type: 'progress';
  revision: number;
}

export type WatchItem = WatchEventItem | WatchProgressItem;

/**
 * The events of one watch frame for one watch (etcd clientv3 WatchResponse): what `watchBatches()`
 * yields. `events` are in revision order, whole revisions; the SAME array (and event objects) may
 * be handed to every watch a SHARED_EVENTS frame names: do not modify them. `progress`: a progress
 * notification (no events; every event up to `revision` was yielded), only with option `progress`.
 */
export interface WatchBatch {
  /** The last event's revision; for a progress notification, the revision every event up to which was yielded. */
  revision: number;
  events: readonly WatchEventItem[];
  progress: boolean;
}

/** What the watch loop needs of a connection (CairnClient). */
export interface WatchConnection {
  openStream(opcode: Opcode, key: Uint8Array, value: Uint8Array, listener: StreamListenerLike, opts?: RequestOptions): Promise<{ response: Response; requestId: number }>;
  endStream(requestId: number, listener: StreamListenerLike): void;
  request(opcode: Opcode, key: Uint8Array, value: Uint8Array, flags?: number, opts?: RequestOptions): Promise<Response>;
}
interface StreamListenerLike {
  frame(res: Response, decoded?: WatchFrame): void;
  closed(err: ConnectionClosedError): void;
}

/**
 * Where a watch (re)opens: CairnClient answers itself while its connection is open (then throws
 * its ConnectionClosedError), CairnPool a connection to a gateway that is up, another than
 * `previous`'s when one is (waiting for one within `deadlineMs`).
 */
export type WatchConnector = (previous: WatchConnection | null, deadlineMs: number, signal: AbortSignal | undefined) => Promise<WatchConnection>;

const DEFAULTS = { bufferEventsMax: 10_000, bufferBytesMax: 16 * 1024 * 1024, resumeTimeoutMs: 16_000 };
const BACKOFF_BASE_MS = 50;
const BACKOFF_MAX_MS = 1000;

/** The WATCH request key and value of `o`. @throws RangeError unless exactly one of key / prefix / start+end is given, or on a bad startRevision. */
export function watchRequest(o: ClientWatchOptions, startRevision: number, sharedFrames = false): { key: Buffer; value: Buffer } {
  const kinds = [o.key !== undefined, o.prefix !== undefined, o.start !== undefined || o.end !== undefined].filter(Boolean).length;
  if (kinds !== 1) throw new RangeError('watch takes exactly one of key, prefix, or start and end');
  if ((o.start === undefined) !== (o.end === undefined)) throw new RangeError('a range watch takes both start and end');
  if (!Number.isSafeInteger(startRevision) || startRevision < 0) throw new RangeError(`startRevision must be an integer ≥ 0, got ${startRevision}`);
  const options = (o.prefix !== undefined ? WatchOptions.Prefix : 0) | (o.prevValue ? WatchOptions.PrevValue : 0) | (sharedFrames ? WatchOptions.SharedFrames : 0);
  const key = toBuffer(o.key ?? o.prefix ?? o.start!);
  return { key, value: encodeWatchSpec({ options, startRevision, end: o.end === undefined ? undefined : toBuffer(o.end) }) };
}

type Ended = { err: Error; resumable: boolean };

/**
 * One opening of the watch on one connection: a bounded queue of its frames until it ends (a
 * CANCELED frame, the connection closing, or the buffer bound crossed).
 */
/** A frame as queued: the response, and its decoded payload when the connection decoded it (SHARED_EVENTS, once for every watch it names). */
interface QueuedFrame {
  res: Response;
  decoded: WatchFrame | undefined;
  events: number;
}

class WatchAttempt implements StreamListenerLike {
  private frames: QueuedFrame[] = [];
  private bytes = 0;
  private events = 0;
  ended: Ended | null = null;
  private wake: (() => void) | null = null;
  private fail: ((e: Error) => void) | null = null;
  /** The signal `take` listens to: one listener per attempt, not one per wait (a signal shared by 1,000 watches would hold 1,000 listeners to scan per add). */
  private signal: AbortSignal | undefined;
  private readonly onAbort = () => {
    const fail = this.fail;
    this.wake = this.fail = null;
    fail?.(new AbortError('watch aborted', this.signal!.reason));
  };
  /** Cancels the watch on the gateway (set once it is open): a watch this client gave up on must not keep streaming. */
  onOverflow: () => void = () => undefined;

  constructor(
    private readonly eventsMax: number,
    private readonly bytesMax: number,
    private readonly next: () => number,
  ) {}

  /** One frame of this watch; `decoded`: its payload decoded by the connection (a SHARED_EVENTS frame, shared with the other watches it names). */
  frame(res: Response, decoded?: WatchFrame): void {
    if (this.ended) return;
    // The first 4 bytes after the kind are the event count of an EVENTS frame. A shared frame counts
    // whole toward each watch's bounds, as if it had its own frame.
    const n = decoded && 'events' in decoded ? decoded.events.length : res.payload[0] === WatchFrameKind.Events && res.payload.length >= 5 ? res.payload.readUInt32BE(1) : 0;
    if (this.frames.length > 0 && (this.events + n > this.eventsMax || this.bytes + res.payload.length > this.bytesMax)) {
      this.end({ err: new WatchSlowError(`watch cancelled: the loop did not pull its events (${this.events} events, ${this.bytes} bytes buffered; bufferEventsMax ${this.eventsMax}, bufferBytesMax ${this.bytesMax}); resume from revision ${this.next()}`, this.next()), resumable: false });
      this.onOverflow();
      return;
    }
    this.frames.push({ res, decoded, events: n });
    this.bytes += res.payload.length;
    this.events += n;
    this.poke();
  }

  closed(err: ConnectionClosedError): void {
    this.end({ err, resumable: true });
  }

  end(e: Ended): void {
    if (this.ended) return;
    this.ended = e;
    this.poke();
  }

  /** The next buffered frame without waiting (undefined when none is, or the attempt ended SLOW): no promise when the loop lags behind its frames. */
  poll(): QueuedFrame | undefined {
    if (this.ended && !this.ended.resumable) return undefined;
    const f = this.frames.shift();
    if (f) {
      this.bytes -= f.res.payload.length;
      this.events -= f.events;
    }
    return f;
  }

  /** The next frame, or null once the attempt ended (buffered frames come first, unless it ended SLOW). */
  async take(signal: AbortSignal | undefined): Promise<QueuedFrame | null> {
    for (;;) {
      const f = this.poll();
      if (f) return f;
      // No frame: none is buffered, or the attempt ended SLOW (its buffered frames are dropped).
      if (this.ended) return null;
      if (signal?.aborted) throw new AbortError('watch aborted', signal.reason);
      if (signal && signal !== this.signal) {
        this.dispose();
        this.signal = signal;
        signal.addEventListener('abort', this.onAbort, { once: true });
      }
      await new Promise<void>((resolve, reject) => {
        this.wake = resolve;
        this.fail = reject;
      });
    }
  }

  /** The attempt is over: stop listening to the signal. */
  dispose(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    this.signal = undefined;
  }

  private poke(): void {
    const w = this.wake;
    this.wake = this.fail = null;
    w?.();
  }
}

/** Client items of a decoded frame's events, made once per events array: a SHARED_EVENTS frame's watches get the same items. */
const itemsByEvents = new WeakMap<readonly WatchEvent[], WatchEventItem[]>();
function itemsOf(events: readonly WatchEvent[]): WatchEventItem[] {
  let items = itemsByEvents.get(events);
  if (!items) {
    items = events.map(eventItem);
    itemsByEvents.set(events, items);
  }
  return items;
}

function eventItem(e: WatchEvent): WatchEventItem {
  return {
    type: e.type === WatchEventType.Put ? 'put' : 'delete',
    key: toBuffer(e.key),
    value: toBuffer(e.value),
    modRevision: e.modRevision,
    createRevision: e.createRevision,
    version: e.version,
    prevValue: e.prevValue ? toBuffer(e.prevValue) : null,
    prevOmitted: e.prevOmitted === true,
  };
}

/** Connections whose gateway refused option SHARED_FRAMES (a gateway from before it): watches there open without it. */
const noSharedFrames = new WeakSet<WatchConnection>();

/**
 * The watch loop behind `client.watch()` / `pool.watch()` (docs/watch.md "Client"): yields each
 * event (and progress with `progress`) of `watchBatchLoop`, one by one.
 */
export async function* watchLoop(connect: WatchConnector, o: ClientWatchOptions): AsyncGenerator<WatchItem, void, undefined> {
  for await (const b of watchBatchLoop(connect, o)) {
    if (b.progress) yield { type: 'progress', revision: b.revision };
    else yield* b.events;
  }
}

/**
 * The watch loop behind `client.watchBatches()` / `pool.watchBatches()` and `watch()` (docs/watch.md
 * "Client"): opens WATCH on a connection from `connect`, yields the events of each frame as one
 * batch (and progress with `progress`), and when the watch ends UNAVAILABLE or SHUTDOWN, or its
 * connection closes, opens it again from the last revision seen + 1 — so no event is yielded
 * twice and none is skipped. Ends with WatchCompactedError (COMPACTED), WatchSlowError (SLOW, or
 * the loop did not pull), AbortError (`signal`), the connector's error (e.g. a CairnClient's
 * ConnectionClosedError), or the last error after `resumeTimeoutMs` of failed re-opens. `break`
 * cancels the watch (WATCH_CANCEL).
 */
export async function* watchBatchLoop(connect: WatchConnector, o: ClientWatchOptions): AsyncGenerator<WatchBatch, void, undefined> {
  const eventsMax = positiveInt('bufferEventsMax', o.bufferEventsMax ?? DEFAULTS.bufferEventsMax);
  const bytesMax = positiveInt('bufferBytesMax', o.bufferBytesMax ?? DEFAULTS.bufferBytesMax);
  const resumeTimeoutMs = positiveInt('resumeTimeoutMs', o.resumeTimeoutMs ?? DEFAULTS.resumeTimeoutMs);
  const { signal } = o;
  /** The next revision to yield; 0 until the first OK answer of a watch "from now". */
  let next = o.startRevision ?? 0;
  watchRequest(o, next); // validates before anything is sent
  let conn: WatchConnection | null = null;
  let failingSince: number | null = null;
  for (let failures = 0; ; ) {
    if (signal?.aborted) throw new AbortError('watch aborted', signal.reason);
    let err: Error;
    // The connector's own failure ends the watch: a closed CairnClient, or no gateway until the deadline.
    conn = await connect(conn, (failingSince ?? Date.now()) + resumeTimeoutMs, signal);
    try {
      const attempt = new WatchAttempt(eventsMax, bytesMax, () => next);
      const shared = o.sharedFrames !== false && !noSharedFrames.has(conn);
      const q = watchRequest(o, next, shared);
      // Not aborted mid-open: the gateway may have opened it, and only its id lets us cancel it (deliver does, on abort).
      const { response, requestId } = await conn.openStream(Opcode.Watch, q.key, q.value, attempt);
      if (response.status === Status.BadRequest && shared) {
        // A gateway from before SHARED_FRAMES refuses the unknown option bit: ask again without it
        // (a BAD_REQUEST of the watch itself comes again, and then ends the loop).
        noSharedFrames.add(conn);
        continue;
      }
      if (response.status !== Status.Ok) throw errorForResponse(response);
      if (next === 0) next = response.revision + 1;
      failingSince = null;
      failures = 0;
      err = yield* deliver(conn, requestId, attempt, () => next, (r) => (next = r), o.progress === true, signal);
    } catch (e) {
      if (!(e instanceof CairnError) || !e.retryable || e instanceof WatchSlowError) throw e;
      err = e;
    }
    failingSince ??= Date.now();
    if (Date.now() - failingSince >= resumeTimeoutMs) throw err;
    await backoff(fullJitterBackoffMs(failures++, BACKOFF_BASE_MS, BACKOFF_MAX_MS, Math.random), signal);
  }
}

/**
 * Yields the frames of one opening as batches until it ends; returns the retryable error to resume
 * after. @throws the final errors (COMPACTED, SLOW, abort); a `break` of the caller's loop
 * (generator return) or a throw cancels the watch on the gateway.
 */
async function* deliver(conn: WatchConnection, requestId: number, attempt: WatchAttempt, next: () => number, setNext: (r: number) => void, progress: boolean, signal: AbortSignal | undefined): AsyncGenerator<WatchBatch, Error, undefined> {
  let open = true;
  const cancel = () => {
    if (!open) return;
    open = false;
    conn.request(Opcode.WatchCancel, Buffer.alloc(0), encodeWatchCancel(requestId)).catch(() => undefined);
  };
  attempt.onOverflow = cancel;
  if (attempt.ended && !attempt.ended.resumable) cancel();
  try {
    for (;;) {
      const q = attempt.poll() ?? (await attempt.take(signal));
      if (!q) {
        const ended = attempt.ended!;
        if (!ended.resumable) throw ended.err; // our buffer overflowed (the watch was cancelled then)
        open = false;
        return ended.err;
      }
      let f: WatchFrame;
      try {
        f = q.decoded ?? decodeWatchFrame(q.res.payload);
      } catch (e) {
        throw new ResponseProtocolError(`watch frame: ${(e as Error).message}`, e);
      }
      if (f.kind === WatchFrameKind.Canceled) {
        open = false;
        const text = `watch ${watchCancelReasonName(f.reason)}: ${f.message}`;
        if (f.reason === WatchCancelReason.Compacted) throw new WatchCompactedError(text, f.oldestRevision, next());
        if (f.reason === WatchCancelReason.Slow) throw new WatchSlowError(text, next());
        if (f.reason === WatchCancelReason.Client) throw new AbortError(text);
        return new CairnError(watchCancelReasonName(f.reason), Status.Unavailable, text, true); // UNAVAILABLE, SHUTDOWN, or a reason this client does not know
      }
      if (f.kind === WatchFrameKind.Progress) {
        if (q.res.revision + 1 > next()) setNext(q.res.revision + 1);
        if (progress) yield { revision: q.res.revision, events: [], progress: true };
        continue;
      }
      // Whole revisions per frame: what is below `from` was yielded before a resumption.
      const from = next();
      const n = f.events.length;
      if (n === 0 || f.events[n - 1].modRevision < from) continue;
      setNext(f.events[n - 1].modRevision + 1);
      const items = itemsOf(f.events);
      yield { revision: f.events[n - 1].modRevision, events: f.events[0].modRevision >= from ? items : items.filter((e) => e.modRevision >= from), progress: false };
    }
  } finally {
    attempt.dispose();
    conn.endStream(requestId, attempt);
    cancel();
  }
}

function backoff(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortError('watch aborted', signal!.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
