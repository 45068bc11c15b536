import { ErrorCode, NatsError, createInbox, type Msg, type NatsConnection } from 'nats';
import { TransportError, type Transport, type TransportMsg, type TransportSubscription } from '@cairn/world';
import { hopTrace, subjectKind } from './hop-trace';

/** nats.js error codes → the Transport's (TransportError); other errors pass through unchanged. */
export function natsTransportError(e: unknown): unknown {
  switch ((e as NatsError)?.code) {
    case ErrorCode.MaxPayloadExceeded:
      return new TransportError('MAX_PAYLOAD_EXCEEDED', (e as Error).message, e);
    case ErrorCode.NoResponders:
      return new TransportError('NO_RESPONDERS', (e as Error).message, e);
    case ErrorCode.Timeout:
      return new TransportError('TIMEOUT', (e as Error).message, e);
    case ErrorCode.ConnectionClosed:
    case ErrorCode.ConnectionDraining:
      return new TransportError('CLOSED', (e as Error).message, e);
    default:
      return e;
  }
}

/**
 * Bytes of publishes a connection holds for the end of the event-loop turn (`natsTransport`);
 * at this many the queue goes to nats.js at once (nats.js itself writes to the socket every 32 KiB).
 */
export const PUBLISH_COALESCE_BYTES_MAX = 256 * 1024;
/**
 * Requests one connection may have awaiting a reply (`natsTransport`); one more is refused at once
 * with TIMEOUT (callers already treat that as "may have been delivered", the safe reading). A
 * backstop: every caller bounds its own requests far below it (proposalsInflightMax, the door's
 * inflight bounds).
 */
export const REQUESTS_PENDING_MAX = 65_536;

/**
 * The production Transport: a nats.js connection. `maxPayloadBytes` is the connected server's
 * `max_payload` (INFO at connect, updated on reconnect; nats-server's default 1 MiB before the
 * first INFO). Errors of nats.js are mapped to TransportError codes (docs/architecture.md, "The
 * injected world").
 *
 * Two things are Cairn's own, for CPU per message (docs/benchmarks.md "Coalesced publishes and
 * own request/reply on the bus"):
 * - Publishes (replies and requests included) are queued and handed to nats.js together at the end
 *   of the event-loop turn (`setImmediate`), so the messages of one turn leave in one socket write
 *   (one TLS record) instead of one per callback; a queue of PUBLISH_COALESCE_BYTES_MAX goes at
 *   once. The payload bound and a closed connection are still checked when `publish` is called
 *   (they throw there, as the Transport promises); an error nats.js raises later is a lost message.
 * - `request` uses one long-lived reply subscription per connection (`<inboxPrefix>.<nuid>.*`) and
 *   its own correlation token, a timer and a map entry per request (at most REQUESTS_PENDING_MAX),
 *   instead of nats.js's `request`, which builds two or three Error objects with stack traces per
 *   call. A 503 status reply (nats-server: no subscriber) rejects NO_RESPONDERS, as nats.js does.
 */
export function natsTransport(nc: NatsConnection): Transport {
  return new NatsTransport(nc);
}

interface PendingRequest {
  subject: string;
  resolve(msg: TransportMsg): void;
  reject(e: unknown): void;
  timer: NodeJS.Timeout;
}

class NatsTransport implements Transport {
  private queue: { subject: string; data: Uint8Array; reply?: string }[] = [];
  private queuedBytes = 0;
  private flushScheduled = false;
  private inbox: string | null = null;
  private nextToken = 0;
  private readonly pending = new Map<string, PendingRequest>();

  constructor(private readonly nc: NatsConnection) {}

  maxPayloadBytes(): number {
    return this.nc.info?.max_payload ?? 1024 * 1024;
  }

  publish(subject: string, data: Uint8Array): void {
    if (hopTrace.enabled) hopTrace.mark(`pub.${subjectKind(subject)}`);
    this.enqueue(subject, data);
  }

  subscribe(subject: string, callback: (msg: TransportMsg) => void, opts: { queue?: string } = {}): TransportSubscription {
    return this.nc.subscribe(subject, {
      queue: opts.queue,
      callback: (err, msg) => {
        // A subscription error (permissions, slow consumer) loses messages; core NATS is at-most-once anyway.
        if (err) return;
        if (hopTrace.enabled) hopTrace.mark(`recv.${subjectKind(msg.subject)}`);
        callback(this.wrap(msg));
      },
    });
  }

  request(subject: string, data: Uint8Array, opts: { timeoutMs: number }): Promise<TransportMsg> {
    if (hopTrace.enabled) hopTrace.mark(`req.${subjectKind(subject)}`);
    return new Promise((resolve, reject) => {
      if (this.pending.size >= REQUESTS_PENDING_MAX) {
        reject(new TransportError('TIMEOUT', `request on ${subject} refused: ${REQUESTS_PENDING_MAX} requests already await a reply on this connection (REQUESTS_PENDING_MAX)`));
        return;
      }
      const token = (this.nextToken++).toString(36);
      try {
        this.enqueue(subject, data, `${this.replyInbox()}.${token}`);
      } catch (e) {
        reject(e);
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(token);
        reject(new TransportError('TIMEOUT', `no reply on ${subject} within ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
      this.pending.set(token, { subject, resolve, reject, timer });
    });
  }

  /** The connection's reply subscription's prefix, subscribed on first use (nats.js re-subscribes it after a reconnect). */
  private replyInbox(): string {
    if (this.inbox) return this.inbox;
    const inbox = createInbox(inboxPrefixOf(this.nc));
    this.nc.subscribe(`${inbox}.*`, { callback: (err, msg) => (err ? undefined : this.onReply(msg)) });
    // As nats.js's own requests: a closed connection fails what still waits, at once.
    void this.nc.closed().then(() => this.failPending());
    this.inbox = inbox;
    return inbox;
  }

  private failPending(): void {
    for (const [token, p] of this.pending) {
      this.pending.delete(token);
      clearTimeout(p.timer);
      p.reject(natsTransportError(NatsError.errorForCode(ErrorCode.ConnectionClosed)));
    }
  }

  private onReply(msg: Msg): void {
    const token = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
    const p = this.pending.get(token);
    // A reply after its timeout, or a second reply: nobody waits for it.
    if (!p) return;
    this.pending.delete(token);
    clearTimeout(p.timer);
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      p.reject(new TransportError('NO_RESPONDERS', `no subscriber for ${p.subject}`));
      return;
    }
    if (hopTrace.enabled) hopTrace.mark(`reply.${subjectKind(p.subject)}`);
    p.resolve(this.wrap(msg));
  }

  private wrap(msg: Msg): TransportMsg {
    const reply = msg.reply || undefined;
    return {
      subject: msg.subject,
      data: msg.data,
      reply,
      respond: (data) => {
        if (!reply) return false;
        if (hopTrace.enabled) hopTrace.mark(`respond.${subjectKind(msg.subject)}`);
        this.enqueue(reply, data);
        return true;
      },
    };
  }

  /** Queues one publish for the end of the turn. @throws TransportError MAX_PAYLOAD_EXCEEDED or CLOSED (nothing queued). */
  private enqueue(subject: string, data: Uint8Array, reply?: string): void {
    // The errors nats.js would raise, as their causes (logs name nats.js's codes, as before).
    if (data.length > this.maxPayloadBytes()) throw natsTransportError(NatsError.errorForCode(ErrorCode.MaxPayloadExceeded));
    if (this.nc.isClosed()) throw natsTransportError(NatsError.errorForCode(ErrorCode.ConnectionClosed));
    if (this.nc.isDraining()) throw natsTransportError(NatsError.errorForCode(ErrorCode.ConnectionDraining));
    this.queue.push(reply ? { subject, data, reply } : { subject, data });
    this.queuedBytes += data.length;
    if (this.queuedBytes >= PUBLISH_COALESCE_BYTES_MAX) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const queue = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    // nats.js writes all of them in one socket write (its own flush runs once, in a microtask).
    for (const m of queue) {
      try {
        this.nc.publish(m.subject, m.data, m.reply ? { reply: m.reply } : undefined);
      } catch {
        // Closed or draining since it was queued: a lost message, as core NATS allows (callers retry or time out).
      }
    }
  }
}

/**
 * The reply inbox prefix a connection was made with (`NatsOptions.inboxPrefix`; nats.js keeps its
 * options on the connection object), for clients that make their own inboxes (Nest's ClientNats).
 * @returns undefined for the default `_INBOX` (or a Transport that is not a nats.js connection).
 */
export function inboxPrefixOf(nc: unknown): string | undefined {
  const p = (nc as { options?: { inboxPrefix?: unknown } } | null)?.options?.inboxPrefix;
  return typeof p === 'string' && p ? p : undefined;
}

const wrapped = new WeakMap<NatsConnection, Transport>();

/** `t` itself when it is a Transport; a nats.js connection wrapped once (`natsTransport`) otherwise. */
export function asTransport(t: Transport | NatsConnection): Transport {
  if (typeof (t as Transport).maxPayloadBytes === 'function') return t as Transport;
  const nc = t as NatsConnection;
  let w = wrapped.get(nc);
  if (!w) wrapped.set(nc, (w = natsTransport(nc)));
  return w;
}
