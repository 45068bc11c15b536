import { ErrorCode, type Msg, type NatsConnection, type NatsError } from 'nats';
import { TransportError, type Transport, type TransportMsg } from '@cairn/world';
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

function wrapMsg(msg: Msg): TransportMsg {
  return {
    subject: msg.subject,
    data: msg.data,
    reply: msg.reply || undefined,
    respond: (data) => {
      if (hopTrace.enabled) hopTrace.mark(`respond.${subjectKind(msg.subject)}`);
      try {
        return msg.respond(data);
      } catch (e) {
        throw natsTransportError(e);
      }
    },
  };
}

/**
 * The production Transport: a nats.js connection. `maxPayloadBytes` is the connected server's
 * `max_payload` (INFO at connect, updated on reconnect; nats-server's default 1 MiB before the
 * first INFO). Errors of nats.js are mapped to TransportError codes (docs/architecture.md, "The
 * injected world").
 */
export function natsTransport(nc: NatsConnection): Transport {
  return {
    maxPayloadBytes: () => nc.info?.max_payload ?? 1024 * 1024,
    publish: (subject, data) => {
      if (hopTrace.enabled) hopTrace.mark(`pub.${subjectKind(subject)}`);
      try {
        nc.publish(subject, data);
      } catch (e) {
        throw natsTransportError(e);
      }
    },
    subscribe: (subject, callback, opts = {}) =>
      nc.subscribe(subject, {
        queue: opts.queue,
        callback: (err, msg) => {
          // A subscription error (permissions, slow consumer) loses messages; core NATS is at-most-once anyway.
          if (err) return;
          if (hopTrace.enabled) hopTrace.mark(`recv.${subjectKind(msg.subject)}`);
          callback(wrapMsg(msg));
        },
      }),
    request: async (subject, data, opts) => {
      if (hopTrace.enabled) hopTrace.mark(`req.${subjectKind(subject)}`);
      try {
        const reply = wrapMsg(await nc.request(subject, data, { timeout: opts.timeoutMs }));
        if (hopTrace.enabled) hopTrace.mark(`reply.${subjectKind(subject)}`);
        return reply;
      } catch (e) {
        throw natsTransportError(e);
      }
    },
  };
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
