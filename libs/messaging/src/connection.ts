import { connect, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from 'nats';
import type { Logger } from '@cairn/logging';
import type { Transport, TransportMsg, TransportSubscription } from '@cairn/world';
import { logNetworkFault, PayloadTooLargeError, respondSafe, tryRespond } from './bus';
import { asTransport } from './transport';

export { inboxPrefixOf } from './transport';

export interface NatsOptions {
  servers: string[];
  /** Connection name shown by the NATS server (`cairn-<role>-<id>`). */
  name: string;
  /** NKey user seed (`SU…` bytes): the connection authenticates by signing the server's nonce. Absent: no credential. */
  seed?: Uint8Array;
  /** Prefix of the connection's reply inboxes (`Subjects.inboxPrefix(role)`); absent: nats.js's `_INBOX`. */
  inboxPrefix?: string;
  /** TLS to the server (PEM files); absent: plain TCP unless the server requires TLS (then the connect fails). */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
}

/** The nats.js options for `opts`' credential, reply inbox prefix and TLS (for connections made without `connectNats`, e.g. the local launcher's). */
export function natsSecurityOptions(opts: Pick<NatsOptions, 'seed' | 'inboxPrefix' | 'tls'>): Partial<ConnectionOptions> {
  return {
    ...(opts.seed ? { authenticator: nkeyAuthenticator(opts.seed) } : {}),
    ...(opts.inboxPrefix ? { inboxPrefix: opts.inboxPrefix } : {}),
    ...(opts.tls ? { tls: { ...opts.tls } } : {}),
  };
}

/**
 * Connects to NATS and keeps reconnecting forever: a Cairn process outlives NATS restarts.
 * Core NATS is at-most-once, so every caller tolerates lost messages (retry or backfill).
 * A refused credential ends the attempts (nats.js closes after the same server refused it twice):
 * the promise rejects with nats.js's AUTHORIZATION_VIOLATION error.
 */
export async function connectNats(opts: NatsOptions, log?: Logger): Promise<NatsConnection> {
  const nc = await connect({
    servers: opts.servers,
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    pingInterval: 5_000,
    ...natsSecurityOptions(opts),
  });
  if (log) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error') {
          // A permissions violation names the operation and subject (a role publishing what the bus refuses it).
          const denied = (s as { permissionContext?: { operation: string; subject: string } }).permissionContext;
          log.warn({ nats: s.type, data: String(s.data), ...(denied ? { denied } : {}) }, 'nats connection status');
        }
      }
    })();
  }
  return nc;
}

/**
 * Serves binary request/reply on `subject`: each message's data goes to `handler`; its result (if
 * not null) is the reply. A handler error is logged and answered by `onError(err)` when given, so a
 * requester never waits for its timeout because of a bug on this side.
 *
 * Nothing here throws out of the subscription callback or a promise: a reply over the server's
 * `max_payload` is replaced by `onError(PayloadTooLargeError)` (the handler's TOO_LARGE answer)
 * when that fits, else dropped and logged; a reply the connection refuses (closed, draining) is a
 * network fault, logged rate-limited (`respondSafe`). The requester then times out and retries.
 */
export function serveRequests(
  bus: Transport | NatsConnection,
  subject: string,
  handler: (data: Uint8Array, msg: TransportMsg) => Uint8Array | null | Promise<Uint8Array | null>,
  opts: { log?: Logger; queue?: string; onError?: (err: unknown) => Uint8Array } = {},
): TransportSubscription {
  const { log, onError } = opts;
  const nc = asTransport(bus);
  const errorReply = (msg: TransportMsg, e: unknown): void => {
    if (!onError || !msg.reply) return;
    let out: Uint8Array;
    try {
      out = onError(e);
    } catch (e2) {
      log?.error({ err: e2, subject }, 'request error handler failed');
      return;
    }
    respondSafe(msg, out, log);
  };
  return nc.subscribe(
    subject,
    (msg) => {
      const reply = (data: Uint8Array | null): void => {
        if (!data || !msg.reply) return;
        // The client checks the size (one check, where it is enforced); a refused reply is
        // replaced by the handler's TOO_LARGE answer.
        const r = tryRespond(msg, data);
        if (r.code === 'MAX_PAYLOAD_EXCEEDED') {
          const max = nc.maxPayloadBytes();
          logNetworkFault(log, `serve:${subject}:PAYLOAD_TOO_LARGE`, { subject, bytes: data.length, maxPayloadBytes: max }, 'reply over the NATS max_payload; answering with the error reply instead');
          errorReply(msg, new PayloadTooLargeError(subject, data.length, max));
        } else if (r.code) {
          logNetworkFault(log, `respond:${r.code}`, { subject, bytes: data.length, code: r.code, err: r.err }, 'reply failed; the requester will time out');
        }
      };
      const fail = (e: unknown): void => {
        log?.error({ err: e, subject }, 'request handler failed');
        errorReply(msg, e);
      };
      try {
        const out = handler(msg.data, msg);
        if (out instanceof Promise) out.then(reply, fail);
        else reply(out);
      } catch (e) {
        fail(e);
      }
    },
    { queue: opts.queue },
  );
}
