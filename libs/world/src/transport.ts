/**
 * The message bus as a process sees it: core NATS's shape (subjects, publish, subscribe with an
 * optional queue group, request/reply with a timeout) and its limits. Production wraps a nats.js
 * connection (`natsTransport` in @cairn/messaging); the simulator passes `SimNetwork.connect(host)`.
 *
 * Semantics both implementations keep (nats-server 2.x, nats.js 2.x):
 * - at most once: a message may be lost (disconnect, slow consumer, partition); never corrupted;
 * - a payload over the server's `max_payload` is refused by the client: `publish` and `respond`
 *   throw TransportError `MAX_PAYLOAD_EXCEEDED`, `request` rejects with it; nothing is sent;
 * - `request` to a subject nobody subscribes to rejects with `NO_RESPONDERS` (nats-server's 503
 *   status), else with `TIMEOUT` when no reply came within `timeoutMs`;
 * - a queue group delivers each message to one of its members; plain subscribers each get a copy;
 * - subjects are literal here (Cairn uses no wildcards).
 */
import { CodedError } from '@cairn/protocol';

export type TransportErrorCode = 'MAX_PAYLOAD_EXCEEDED' | 'NO_RESPONDERS' | 'TIMEOUT' | 'CLOSED';

/** A transport failure with its `code`; `cause` is the client library's own error, when there is one. */
export class TransportError extends CodedError {
  constructor(
    readonly code: TransportErrorCode,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/** A delivered message. `respond` answers a request (false when the message has no reply subject). */
export interface TransportMsg {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly reply?: string;
  /** @throws TransportError MAX_PAYLOAD_EXCEEDED or CLOSED */
  respond(data: Uint8Array): boolean;
}

export interface TransportSubscription {
  unsubscribe(): void;
}

export interface Transport {
  /** The server's `max_payload`, bytes (may change on reconnect: read it per batch). */
  maxPayloadBytes(): number;
  /** @throws TransportError MAX_PAYLOAD_EXCEEDED or CLOSED */
  publish(subject: string, data: Uint8Array): void;
  /** Delivers each message on `subject` to `callback` (one member of `queue` when given). */
  subscribe(subject: string, callback: (msg: TransportMsg) => void, opts?: { queue?: string }): TransportSubscription;
  /** @returns the reply. @throws (rejects) TransportError NO_RESPONDERS, TIMEOUT, MAX_PAYLOAD_EXCEEDED or CLOSED */
  request(subject: string, data: Uint8Array, opts: { timeoutMs: number }): Promise<TransportMsg>;
}

/** True when `e` is a TransportError with `code`. */
export function isTransportError(e: unknown, code?: TransportErrorCode): e is TransportError {
  return e instanceof TransportError && (code === undefined || e.code === code);
}
