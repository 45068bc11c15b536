import { WatchCancelReason, WatchEventType, type WatchEvent } from '@cairn/protocol';
import { encodeArray, encodeBulk, encodeError, encodeInteger, NULL_BULK } from '@cairn/resp';
import { WatchersFullError, type WatchHub, type Watcher } from '../watch/watch-hub';
import type { GatewayAuth } from '../auth/gateway-auth';
import type { RespClient } from './commands';
import { globMatch } from './scan';

/** What pub/sub needs of its connection (RespConnection). */
export interface PubSubConnection {
  /** A message, written after every reply still pending, in order; `flushed` once the kernel took it. */
  push(message: Buffer, flushed: () => void): void;
  /** The connection's last reply: written, then the connection closes. */
  close(last: Buffer): void;
  /** Whether `bytes` more must not be queued (it does not read and the gateway is at pendingBytesMax: ConnectionFlow.replyRefused); absent: never. */
  refused?(bytes: number): boolean;
}

export interface PubSubDeps {
  hub: Pick<WatchHub, 'open' | 'cancel'>;
  /** Channels plus patterns one connection may subscribe to (gateway.watchesPerConnectionMax). */
  subscriptionsMax: number;
  /** Credentials and permissions; absent (tests): everything allowed. */
  auth?: GatewayAuth;
}

const KEYSPACE = Buffer.from('__keyspace@0__:', 'latin1');
const KEYEVENT_SET = Buffer.from('__keyevent@0__:set', 'latin1');
const KEYEVENT_DEL = Buffer.from('__keyevent@0__:del', 'latin1');
const KEYEVENT_EXPIRED = Buffer.from('__keyevent@0__:expired', 'latin1');
const EVENT_SET = Buffer.from('set');
const EVENT_DEL = Buffer.from('del');
const EVENT_EXPIRED = Buffer.from('expired');
const EMPTY = Buffer.alloc(0);
const PUBSUB_COMMANDS = new Set(['subscribe', 'psubscribe', 'unsubscribe', 'punsubscribe']);

/** `["message", channel, payload]` (RESP2 push as Redis sends it). */
function message(channel: Buffer, payload: Buffer): Buffer {
  return encodeArray([encodeBulk('message'), encodeBulk(channel), encodeBulk(payload)]);
}

/**
 * Redis keyspace notifications (https://redis.io/docs/latest/develop/use/keyspace-notifications/),
 * a documented subset (docs/resp.md "Keyspace notifications"), for one RESP connection: SUBSCRIBE /
 * PSUBSCRIBE / UNSUBSCRIBE / PUNSUBSCRIBE, and the messages of `__keyspace@0__:<key>` (payload
 * `set`, `del`, or `expired` for a key whose TTL passed) and `__keyevent@0__:set|del|expired` (payload the key) for every change the watch hub
 * sees (docs/watch.md "Gateway"), so writes through every door are notified. One hub watch (every
 * key, from the revision at the first subscription) serves all of a connection's subscriptions;
 * a subscriber that does not read is cancelled SLOW by the hub's bounds and disconnected, as
 * Redis disconnects a pub/sub client past client-output-buffer-limit. Other channels are accepted
 * but never get a message (PUBLISH is not served).
 */
export class RespPubSub {
  private readonly channels = new Set<string>();
  private readonly patterns = new Map<string, Buffer>();
  private watcher: Watcher | null = null;
  /** The next revision whose changes are notified (a watch re-opened after UNAVAILABLE starts there). */
  private next = 0;
  private closed = false;

  constructor(
    private readonly deps: PubSubDeps,
    private readonly conn: PubSubConnection,
  ) {}

  /** Subscribed channels plus patterns: above 0 the connection is in subscribe mode. */
  count(): number {
    return this.channels.size + this.patterns.size;
  }

  /**
   * The reply to `args` when pub/sub handles it (one of the four commands; in subscribe mode also
   * PING and the refusal of anything but QUIT, Redis's RESP2 rule); null to let the command table run it.
   */
  handle(args: Buffer[], client: RespClient): Buffer | Promise<Buffer> | null {
    const name = args[0].toString('latin1').toLowerCase();
    if (!PUBSUB_COMMANDS.has(name)) {
      if (this.count() === 0 || name === 'quit') return null;
      if (name === 'ping') return args.length > 2 ? wrongArity(name) : encodeArray([encodeBulk('pong'), encodeBulk(args[1] ?? EMPTY)]);
      return encodeError(`ERR Can't execute '${name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`);
    }
    if ((name === 'subscribe' || name === 'psubscribe') && args.length < 2) return wrongArity(name);
    const refused = this.refusal(client);
    if (refused) return refused.then((r) => r ?? this.run(name, args.slice(1)));
    return this.run(name, args.slice(1));
  }

  /** The connection closed: its watch ends without a message. */
  close(): void {
    this.closed = true;
    if (this.watcher) this.deps.hub.cancel(this.watcher, WatchCancelReason.Client, 0, 'connection closed', true);
    this.watcher = null;
  }

  /** NOAUTH before AUTH, NOPERM without read permission on every key (notifications name any key); null when allowed. */
  private refusal(client: RespClient): Promise<Buffer | null> | null {
    const auth = this.deps.auth;
    if (!auth || !auth.view.current()?.state.enabled) return null;
    if ((client.identity?.user ?? null) === null) return Promise.resolve(encodeError('NOAUTH Authentication required.'));
    return auth
      .guardFor(client.identity!)
      .range(EMPTY, null)
      .then((denied) => (denied ? encodeError(`NOPERM keyspace notifications name every key: ${denied.message}`) : null));
  }

  private run(name: string, names: Buffer[]): Buffer {
    const pattern = name.startsWith('p');
    const set = pattern ? this.patterns : this.channels;
    const replies: Buffer[] = [];
    if (name.endsWith('unsubscribe')) {
      const targets = names.length > 0 ? names : [...set.keys()].map((k) => Buffer.from(k, 'latin1'));
      for (const n of targets) {
        set.delete(n.toString('latin1'));
        replies.push(encodeArray([encodeBulk(name), encodeBulk(n), encodeInteger(this.count())]));
      }
      if (targets.length === 0) replies.push(encodeArray([encodeBulk(name), NULL_BULK, encodeInteger(this.count())]));
      if (this.count() === 0 && this.watcher) {
        this.deps.hub.cancel(this.watcher, WatchCancelReason.Client, 0, 'unsubscribed', true);
        this.watcher = null;
      }
      return Buffer.concat(replies);
    }
    for (const n of names) {
      const k = n.toString('latin1');
      if (!set.has(k) && this.count() >= this.deps.subscriptionsMax) {
        replies.push(encodeError(`ERR ${this.deps.subscriptionsMax} subscriptions on this connection (gateway.watchesPerConnectionMax)`));
        continue;
      }
      if (pattern) this.patterns.set(k, Buffer.from(n));
      else this.channels.add(k);
      const opened = this.openWatch();
      if (opened) {
        set.delete(k);
        replies.push(opened);
        continue;
      }
      replies.push(encodeArray([encodeBulk(name), encodeBulk(n), encodeInteger(this.count())]));
    }
    return Buffer.concat(replies);
  }

  /** Opens the connection's hub watch when it has none; an error reply when the hub is full. */
  private openWatch(): Buffer | null {
    if (this.watcher || this.closed) return null;
    try {
      const { watcher, revision } = this.deps.hub.open(
        { start: EMPTY, end: null, startRevision: this.next, prevValue: false },
        {
          events: (events, revision, flushed) => {
            this.next = revision + 1;
            const out = this.notifications(events);
            if (out.length > 0) this.conn.push(out, flushed);
            else flushed();
          },
          // A subscriber that does not read is cancelled SLOW once the gateway is full (then disconnected, onCanceled).
          refused: (bytes) => this.conn.refused?.(bytes) ?? false,
          progress: (revision) => (this.next = revision + 1),
          canceled: (reason, _oldest, text) => this.onCanceled(reason, text),
        },
      );
      this.watcher = watcher;
      this.next = revision + 1;
      return null;
    } catch (e) {
      if (e instanceof WatchersFullError) return encodeError(`ERR ${e.message}`);
      throw e;
    }
  }

  private onCanceled(reason: WatchCancelReason, text: string): void {
    this.watcher = null;
    if (this.closed || this.count() === 0) return;
    // No storage node served the history for a while: go on from where the notifications were.
    if (reason === WatchCancelReason.Unavailable && this.openWatch() === null) return;
    this.conn.close(encodeError(`ERR keyspace notifications ended: ${text}`));
  }

  /** The messages of `events` for this connection's channels and patterns: per change its keyspace message, then its keyevent one. */
  private notifications(events: readonly WatchEvent[]): Buffer {
    const out: Buffer[] = [];
    for (const e of events) {
      // A delete by a TTL passing is `expired` (Redis notify.c: NOTIFY_EXPIRED), any other `del`.
      const [event, keyevent] = e.type === WatchEventType.Put ? [EVENT_SET, KEYEVENT_SET] : e.expired ? [EVENT_EXPIRED, KEYEVENT_EXPIRED] : [EVENT_DEL, KEYEVENT_DEL];
      const key = Buffer.from(e.key.buffer, e.key.byteOffset, e.key.byteLength);
      this.notify(out, Buffer.concat([KEYSPACE, key]), event);
      this.notify(out, keyevent, key);
    }
    return Buffer.concat(out);
  }

  private notify(out: Buffer[], channel: Buffer, payload: Buffer): void {
    if (this.channels.has(channel.toString('latin1'))) out.push(message(channel, payload));
    for (const p of this.patterns.values()) if (globMatch(p, channel)) out.push(encodeArray([encodeBulk('pmessage'), encodeBulk(p), encodeBulk(channel), encodeBulk(payload)]));
  }
}

function wrongArity(name: string): Buffer {
  return encodeError(`ERR wrong number of arguments for '${name}' command`);
}
