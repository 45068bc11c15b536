import {
  decodeWatchEvents,
  decodeWatchHistoryReply,
  peekWatchEventsRange,
  encodeWatchHistoryRequest,
  encodeWatchInterest,
  inWatchRange,
  WATCH_INTEREST_MS,
  WATCH_INTEREST_REFRESH_MS,
  WatchCancelReason,
  WatchHistoryResult,
  clientWatchEventBytes,
  type WatchEvent,
  type WatchEventsMessage,
  type WatchHistoryReply,
  type StorageStatus,
} from '@cairn/protocol';
import { asTransport, publishSafe, type Subjects } from '@cairn/messaging';
import type { Logger } from '@cairn/logging';
import { realWorld, sleep, type TimerHandle, type Transport, type TransportSubscription, type World } from '@cairn/world';
import type { NatsConnection } from 'nats';
import { retryBackoffMs } from '../paths/backoff';

/** Gateway watch bounds (GatewayConfig watch…; docs/watch.md "Gateway"). */
export interface WatchLimits {
  watchesPerConnectionMax: number;
  watchersMax: number;
  /** Event bytes (client layout) handed to a watch's connection and not yet flushed; beyond, SLOW. */
  watchQueueBytesMax: number;
  /** Events handed to a watch's connection and not yet flushed; beyond, SLOW. */
  watchQueueEventsMax: number;
  watchProgressIntervalMs: number;
  /** How long a history page may keep failing (no storage node answers) before the watch is cancelled UNAVAILABLE, ms. */
  readTimeoutMs: number;
}

/** Where a watch's frames go (one door's connection). Each call hands the frame to the socket; `flushed` runs once the kernel took it. */
export interface WatchSink {
  events(events: WatchEvent[], revision: number, flushed: () => void): void;
  /**
   * Whether a frame of `bytes` more must not be queued on this sink's connection: the connection
   * holds more than connectionReplyBytesMax unflushed and the frame would take the gateway past
   * pendingBytesMax (TLV door: ConnectionFlow.replyRefused, the rule a GET answer follows). Asked
   * for every frame, the first one too: one message can hold hundreds of events, and handed to
   * 1,000 watches in one turn it would be 1,000 first frames. True cancels the watch SLOW.
   * `bytes`: the events' client bytes; `events`: the array `events()` would get (a door that writes
   * one array once for several watches counts what it would really write).
   * Absent: only the per-watch bounds apply.
   */
  refused?(bytes: number, events?: readonly WatchEvent[]): boolean;
  progress(revision: number): void;
  /** The last frame of the watch; no call follows. */
  canceled(reason: WatchCancelReason, oldestRevision: number, message: string): void;
}

/** What a door asks for: the keys [start, end) (end null = no upper bound) from `startRevision` (0 = from now). */
export interface WatchRequest {
  start: Uint8Array;
  end: Uint8Array | null;
  startRevision: number;
  prevValue: boolean;
}

/** Thrown by `WatchHub.open` when `watchersMax` watches are open on the gateway. */
export class WatchersFullError extends Error {
  readonly code = 'WATCHERS_FULL';
}

/** History page bounds asked of a storage node (the node also stays under its payload bound). */
const PAGE_EVENTS_MAX = 1000;
const PAGE_BYTES_MAX = 512 * 1024;
const PAGE_TIMEOUT_MS = 3000;

/** One message's events filtered for one range (and prevValue option), shared by the watchers on it. */
interface SharedEvents {
  out: WatchEvent[];
  bytes: number;
}

/** A history page with the filtered arrays of the watchers that asked it together (all at one position). */
interface SharedPage {
  reply: WatchHistoryReply;
  shared: Map<string, SharedEvents>;
}

/**
 * One open watch. `next` is the next revision it must deliver: every matching event with a
 * revision below it was handed to its sink. Live: it takes the hub's stream; catching up: it pages
 * the history from `next` until it reaches what the hub has seen (docs/watch.md "Gateway").
 */
export class Watcher {
  next: number;
  live = false;
  closed = false;
  queuedBytes = 0;
  queuedEvents = 0;
  lastFrameMs: number;
  /** Range and prevValue option as a string: watchers with equal keys get equal events. */
  readonly rangeKey: string;

  constructor(
    readonly req: WatchRequest,
    readonly sink: WatchSink,
    startRevision: number,
    nowMs: number,
  ) {
    this.next = startRevision;
    this.lastFrameMs = nowMs;
    const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
    this.rangeKey = `${req.prevValue ? 'p' : 'n'}${latin1(req.start).length}:${latin1(req.start)}${req.end === null ? '*' : `=${latin1(req.end)}`}`;
  }
}

/** What the hub reads of the cluster (ClusterView): the live storage nodes, most advanced first. */
export interface WatchHubView {
  liveStorageNodes(): readonly Pick<StorageStatus, 'id' | 'appliedIndex'>[];
}

/**
 * The gateway's side of watch (docs/watch.md "Gateway"; etcd's watchableStore split into synced
 * and unsynced watchers is the model). While at least one watch is open: one subscription to every
 * storage node's WatchEvents (`watch.*`), and a WatchInterest to every live storage node every
 * WATCH_INTEREST_REFRESH_MS (a node publishes only while some gateway wants its events); with no
 * watch open, neither (no event is decoded for nobody). Every node's stream is the same committed
 * history, so the hub takes each revision
 * from whichever node brings it first and drops what it has seen (`seen`). Live watchers get the
 * events of a message that chains to what they have delivered; a watcher that would see a gap (a
 * message lost by core NATS, a new watch from an old revision) catches up from a storage node's
 * history (WatchHistoryRequest pages) and then goes live. A watcher whose connection holds more
 * than watchQueueBytesMax / watchQueueEventsMax of its unflushed events is cancelled SLOW, and so
 * is one with unflushed events whose sink refuses more (the gateway at pendingBytesMax).
 */
export class WatchHub {
  private readonly bus: Transport;
  private sub: TransportSubscription | null = null;
  /** Every event with a revision ≤ seen came through the hub (null until the first message). */
  private seen: number | null = null;
  private readonly watchers = new Set<Watcher>();
  private progressTimer: TimerHandle | null = null;
  private interestTimer: TimerHandle | null = null;
  private started = false;
  /**
   * History pages in flight by range and start revision: catching-up watchers on the same range at
   * the same position ask ONE page and share its events (etcd's syncWatchers reads the history once
   * for its whole unsynced group). A gap in the live stream sends every live watcher behind it to
   * catch up at once — 1,000 watchers on one prefix sent 1,000 identical 512 KiB page requests,
   * and the storage nodes and the bus stalled. At most one entry per open watch.
   */
  private readonly pages = new Map<string, Promise<SharedPage>>();

  constructor(
    bus: Transport | NatsConnection,
    private readonly subjects: Subjects,
    private readonly view: WatchHubView,
    private readonly limits: WatchLimits,
    private readonly log: Pick<Logger, 'warn'>,
    private readonly world: World = realWorld,
  ) {
    this.bus = asTransport(bus);
  }

  start(): void {
    this.started = true;
    this.scheduleProgress();
  }

  /**
   * The first watch opened: subscribe to the storage nodes' WatchEvents, then ask them for their
   * events. Messages of batches applied while no gateway asked were never published; the first
   * message that comes chains to one of them, so live watchers see a gap (prevRevision > seen)
   * and page it from the history — the same path as a message core NATS dropped.
   */
  private listen(): void {
    if (this.sub || !this.started) return;
    this.sub = this.bus.subscribe(this.subjects.watch('*'), (msg) => {
      let m: WatchEventsMessage;
      try {
        // Every storage node publishes the same history: a message another node already brought
        // is dropped from its head, before its events are decoded (half the decoding with 2 nodes).
        if (this.seen !== null && peekWatchEventsRange(msg.data).lastRevision <= this.seen) return;
        m = decodeWatchEvents(msg.data);
      } catch (e) {
        this.log.warn({ err: e }, 'malformed WatchEvents message dropped');
        return;
      }
      this.onMessage(m);
    });
    this.sendInterest();
  }

  /** The last watch closed: no subscription, no interest (the nodes stop publishing once it expires). */
  private quiet(): void {
    this.sub?.unsubscribe();
    this.sub = null;
    // What the hub saw is stale from now on: the nodes go on applying writes it will never see. A
    // watch opened later from a revision above the stale `seen` would count as live and wait for
    // a message that chains, which an idle key space never sends; unknown, it pages the history
    // up to the node's last revision first (catchUp).
    this.seen = null;
    if (this.interestTimer) this.world.clock.clearTimer(this.interestTimer);
    this.interestTimer = null;
  }

  /** A WatchInterest (WATCH_INTEREST_MS) to every live storage node, again every WATCH_INTEREST_REFRESH_MS while subscribed. */
  private sendInterest(): void {
    const interest = encodeWatchInterest({ forMs: WATCH_INTEREST_MS });
    // A lost one is covered by the next (the interest outlives two refreshes).
    for (const n of this.view.liveStorageNodes()) publishSafe(this.bus, this.subjects.read(n.id), interest);
    this.interestTimer = this.world.clock.setTimeout(() => {
      this.interestTimer = null;
      if (this.sub) this.sendInterest();
    }, WATCH_INTEREST_REFRESH_MS);
  }

  /** Cancels every watch SHUTDOWN and stops. */
  stop(): void {
    this.started = false;
    this.quiet();
    if (this.progressTimer) this.world.clock.clearTimer(this.progressTimer);
    this.progressTimer = null;
    for (const w of [...this.watchers]) this.cancel(w, WatchCancelReason.Shutdown, 0, 'the gateway is shutting down: resume from the last revision seen on another gateway');
  }

  size(): number {
    return this.watchers.size;
  }

  /** The revision a watch "from now" starts after: what the hub has seen, else the most advanced storage node's applied index. */
  currentRevision(): number {
    const nodes = this.view.liveStorageNodes();
    return Math.max(this.seen ?? 0, nodes.length ? nodes[0].appliedIndex : 0);
  }

  /**
   * Opens a watch; returns it with the revision of the OK answer (events after it follow, or from
   * `startRevision` when given). @throws WatchersFullError at watchersMax.
   */
  open(req: WatchRequest, sink: WatchSink): { watcher: Watcher; revision: number } {
    if (this.watchers.size >= this.limits.watchersMax) throw new WatchersFullError(`${this.limits.watchersMax} watches are open on this gateway (gateway.watchersMax)`);
    const revision = req.startRevision > 0 ? req.startRevision - 1 : this.currentRevision();
    const w = new Watcher(req, sink, revision + 1, this.world.clock.nowMs());
    this.watchers.add(w);
    this.listen();
    void this.catchUp(w);
    return { watcher: w, revision };
  }

  /** Ends a watch: sends its CANCELED frame (unless the connection is gone: `silent`). */
  cancel(w: Watcher, reason: WatchCancelReason, oldestRevision: number, message: string, silent = false): void {
    if (w.closed) return;
    w.closed = true;
    this.watchers.delete(w);
    if (this.watchers.size === 0) this.quiet();
    if (!silent) w.sink.canceled(reason, oldestRevision, message);
  }

  private onMessage(m: WatchEventsMessage): void {
    if (this.seen !== null && m.lastRevision <= this.seen) return; // another node brought it first
    if (this.seen === null || m.prevRevision > this.seen) {
      // First message, or a gap (core NATS dropped one): live watchers behind it catch up.
      this.seen = m.lastRevision;
      for (const w of this.watchers) if (w.live && w.next <= m.prevRevision) this.toCatchUp(w);
    } else this.seen = m.lastRevision;
    // Watchers on the same range at the same position (`next`) get the same event array: filtered
    // once per range and position, not once per watcher (1,000 watchers on one prefix: one filter,
    // and the TLV door encodes that array's frame once, encodedWatchEventsFrame). The position
    // matters because storage nodes cut their messages at different revisions: a message that
    // overlaps one taken from another node is delivered from each watcher's `next` on.
    const shared = new Map<number, Map<string, SharedEvents>>();
    const nowMs = this.world.clock.nowMs();
    for (const w of this.watchers) {
      if (!w.live || w.next > m.lastRevision) continue;
      if (w.next <= m.prevRevision) {
        this.toCatchUp(w);
        continue;
      }
      let atNext = shared.get(w.next);
      if (!atNext) shared.set(w.next, (atNext = new Map()));
      this.deliver(w, m.events, m.lastRevision, atNext, nowMs);
    }
  }

  private toCatchUp(w: Watcher): void {
    w.live = false;
    void this.catchUp(w);
  }

  /**
   * Hands `w` its matching events of `events` from w.next on, then w.next = through + 1. With
   * `shared` (the arrays of watchers at w's position, w.next), the filtered array is taken from /
   * left in it under w's range and prevValue option: sinks must not change the array or its events.
   */
  private deliver(w: Watcher, events: readonly WatchEvent[], through: number, shared: Map<string, SharedEvents> | null, nowMs = this.world.clock.nowMs()): void {
    let filtered = shared?.get(w.rangeKey);
    if (!filtered) {
      filtered = { out: [], bytes: 0 };
      for (const e of events) {
        if (e.modRevision < w.next || !inWatchRange(e.key, w.req.start, w.req.end)) continue;
        const ev = w.req.prevValue ? e : { ...e, prevValue: null, prevOmitted: undefined };
        filtered.out.push(ev);
        filtered.bytes += clientWatchEventBytes(ev);
      }
      shared?.set(w.rangeKey, filtered);
    }
    const { out, bytes } = filtered;
    w.next = Math.max(w.next, through + 1);
    if (out.length === 0) return;
    // The first frame always goes; past the bounds, the watcher is not keeping up.
    if (w.queuedEvents > 0 && (w.queuedBytes + bytes > this.limits.watchQueueBytesMax || w.queuedEvents + out.length > this.limits.watchQueueEventsMax)) {
      this.cancel(w, WatchCancelReason.Slow, 0, `watch cancelled: its connection did not take its events (${w.queuedEvents} events, ${w.queuedBytes} bytes unflushed; gateway.watchQueueEventsMax ${this.limits.watchQueueEventsMax}, watchQueueBytesMax ${this.limits.watchQueueBytesMax}); resume from revision ${out[0].modRevision}`);
      return;
    }
    // The per-watch bounds hold each watch, not their sum: 1,000 watches on one prefix took the
    // gateway to 3× pendingBytesMax (measured), and then no connection is read — writers stall
    // behind watchers. A watch whose connection is not taking its frames is cancelled once the gateway is full.
    if (w.sink.refused?.(bytes, out)) {
      this.cancel(w, WatchCancelReason.Slow, 0, `watch cancelled: its connection did not take its frames (this watch: ${w.queuedEvents} events, ${w.queuedBytes} bytes unflushed) and the gateway holds gateway.pendingBytesMax; resume from revision ${out[0].modRevision}`);
      return;
    }
    w.queuedBytes += bytes;
    w.queuedEvents += out.length;
    w.lastFrameMs = nowMs;
    w.sink.events(out, out[out.length - 1].modRevision, () => {
      w.queuedBytes -= bytes;
      w.queuedEvents -= out.length;
    });
  }

  /** Pages the history from w.next until the hub's stream covers it, then marks `w` live. */
  private async catchUp(w: Watcher): Promise<void> {
    const deadline = () => this.world.clock.nowMs() + this.limits.readTimeoutMs;
    let failingUntil = deadline();
    let why = 'no storage node is alive';
    for (let attempt = 0; !w.closed; ) {
      // Live once the hub has seen everything before w.next: later messages chain to it.
      if (this.seen !== null && w.next > this.seen) {
        w.live = true;
        return;
      }
      const page = await this.sharedPage(w).catch((e: Error) => {
        why = e.message;
        return null;
      });
      const reply = page?.reply ?? null;
      if (w.closed) return;
      if (reply?.result === WatchHistoryResult.Compacted) {
        this.cancel(w, WatchCancelReason.Compacted, reply.oldestRevision, `COMPACTED: ${reply.message}`);
        return;
      }
      if (reply?.result === WatchHistoryResult.Ok) {
        failingUntil = deadline();
        this.deliver(w, reply.events, reply.nextRevision - 1, page!.shared);
        if (w.closed) return;
        // Nothing more there yet and the hub has seen nothing: live (a node's stream will chain).
        if (this.seen === null && w.next > reply.lastRevision) {
          w.live = true;
          return;
        }
        if (reply.events.length > 0 || reply.nextRevision > reply.lastRevision) attempt = 0;
        if (w.next <= reply.lastRevision) continue;
      } else if (reply) why = reply.message;
      if (this.world.clock.nowMs() >= failingUntil) {
        this.cancel(w, WatchCancelReason.Unavailable, 0, `UNAVAILABLE: watch history not served within ${this.limits.readTimeoutMs} ms: ${why}; resume from revision ${w.next}`);
        return;
      }
      // The node asked is behind the hub (or failed): wait, then ask again.
      await sleep(this.world.clock, retryBackoffMs(attempt++, this.world.random));
    }
  }

  /**
   * The history page from w.next for w's range, asked once for every catching-up watcher at that
   * position on that range (the first asks, the others wait for the same reply): they get one
   * shared filtered array, so one encoded frame (and one SHARED_EVENTS frame per connection).
   */
  private sharedPage(w: Watcher): Promise<SharedPage> {
    const key = `${w.next}@${w.rangeKey}`;
    let p = this.pages.get(key);
    if (!p) {
      p = this.page(w)
        .then((reply) => ({ reply, shared: new Map<string, SharedEvents>() }))
        .finally(() => this.pages.delete(key));
      this.pages.set(key, p);
    }
    return p;
  }

  /**
   * One history page from the most advanced live storage node. Each node trims its history at its
   * own record boundaries, so when that node answers COMPACTED the others are asked in turn: the
   * first that still holds `w.next` serves the page; if none does, the COMPACTED with the smallest
   * oldest revision is returned, so the revision a COMPACTED names is one some node serves.
   * @throws when the first node's request fails (the caller retries with backoff)
   */
  private async page(w: Watcher): Promise<WatchHistoryReply> {
    const nodes = this.view.liveStorageNodes();
    if (nodes.length === 0) throw new Error('no storage node is alive');
    const q = encodeWatchHistoryRequest({ fromRevision: w.next, toRevision: 0, start: w.req.start, end: w.req.end, bytesMax: PAGE_BYTES_MAX, eventsMax: PAGE_EVENTS_MAX });
    const ask = async (id: string) => decodeWatchHistoryReply((await this.bus.request(this.subjects.read(id), q, { timeoutMs: PAGE_TIMEOUT_MS })).data);
    let reply = await ask(nodes[0].id);
    for (const node of nodes.slice(1)) {
      if (reply.result !== WatchHistoryResult.Compacted) break;
      const other = await ask(node.id).catch(() => null);
      if (other && (other.result !== WatchHistoryResult.Compacted || other.oldestRevision < reply.oldestRevision)) reply = other;
    }
    return reply;
  }

  /** Progress notifications (etcd progress_notify): a live watch with no frame for watchProgressIntervalMs learns how far it has seen. */
  private scheduleProgress(): void {
    const every = this.limits.watchProgressIntervalMs;
    this.progressTimer = this.world.clock.setTimeout(() => {
      const now = this.world.clock.nowMs();
      for (const w of this.watchers) {
        if (w.live && now - w.lastFrameMs >= every && w.queuedEvents === 0) {
          w.lastFrameMs = now;
          w.sink.progress(w.next - 1);
        }
      }
      if (this.started) this.scheduleProgress();
    }, Math.max(50, Math.floor(every / 2)));
  }
}
