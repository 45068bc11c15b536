import { connect, type Msg, type NatsConnection, type Subscription } from 'nats';
import type { Logger } from 'pino';

export interface NatsOptions {
  servers: string[];
  /** Connection name shown by the NATS server (`cairn-<role>-<id>`). */
  name: string;
}

/**
 * Connects to NATS and keeps reconnecting forever: a Cairn process outlives NATS restarts.
 * Core NATS is at-most-once, so every caller tolerates lost messages (retry or backfill).
 */
export async function connectNats(opts: NatsOptions, log?: Logger): Promise<NatsConnection> {
  const nc = await connect({
    servers: opts.servers,
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    pingInterval: 5_000,
  });
  if (log) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error') {
          log.warn({ nats: s.type, data: String(s.data) }, 'nats connection status');
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
 */
export function serveRequests(
  nc: NatsConnection,
  subject: string,
  handler: (data: Uint8Array, msg: Msg) => Uint8Array | null | Promise<Uint8Array | null>,
  opts: { log?: Logger; queue?: string; onError?: (err: unknown) => Uint8Array } = {},
): Subscription {
  return nc.subscribe(subject, {
    queue: opts.queue,
    callback: (err, msg) => {
      if (err) {
        opts.log?.error({ err, subject }, 'subscription error');
        return;
      }
      const reply = (data: Uint8Array | null) => {
        if (data && msg.reply) msg.respond(data);
      };
      const fail = (e: unknown) => {
        opts.log?.error({ err: e, subject }, 'request handler failed');
        if (opts.onError && msg.reply) msg.respond(opts.onError(e));
      };
      try {
        const out = handler(msg.data, msg);
        if (out instanceof Promise) out.then(reply, fail);
        else reply(out);
      } catch (e) {
        fail(e);
      }
    },
  });
}
