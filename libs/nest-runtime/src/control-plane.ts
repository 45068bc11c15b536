import type { INestMicroservice, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientNats, ServerNats, type ConsumerDeserializer, type ConsumerSerializer, type IncomingRequest, type IncomingResponse, type NatsOptions, type OutgoingResponse, type ProducerDeserializer, type ProducerSerializer, type ReadPacket } from '@nestjs/microservices';
// Not re-exported by the package's index: what ClientNats rejects with on an empty reply.
import { EmptyResponseException } from '@nestjs/microservices/errors/empty-response.exception';
import type { Logger } from '@cairn/logging';
import { TransportError, type Transport, type TransportMsg } from '@cairn/world';
import { asTransport, inboxPrefixOf, natsTransportError } from '@cairn/messaging';
import { type Msg, type NatsConnection } from 'nats';
import { firstValueFrom, timeout, TimeoutError } from 'rxjs';

/*
 * Cairn's control plane (membership today; docs/architecture.md "Control plane and hot paths") on
 * Nest's NATS transport: `@MessagePattern(subject)` handlers on the replica, a ClientProxy on the
 * gateway. Nest's default NATS envelope (JSON `{pattern, data, id}` / `{id, response, err}`) is
 * replaced by the raw serializers below: the body of a request or reply is exactly the existing
 * codec's bytes (docs/protocol.md: e.g. the JSON MemberRequest → MemberReply on `member.<replica>`),
 * the subject is the pattern and the per-request reply inbox is the correlation id, so the wire is
 * unchanged, any raw nats.js requester still interoperates, and a body is never re-encoded.
 */

/**
 * The control plane of `module` outside a process shell (specs, the membership bench): a Nest
 * microservice served by a ControlPlaneServer on `nc`, without Nest's own logger, listening.
 * Close it with `app.close()` (the connection stays open: it is the caller's).
 */
export async function listenControlPlane(module: Type<unknown>, nc: NatsConnection, log: Logger): Promise<INestMicroservice> {
  const server = new ControlPlaneServer();
  const app = await NestFactory.createMicroservice(module, { strategy: server, logger: false });
  server.useConnection(nc, log);
  await app.listen();
  return app;
}

/** The reply a control-plane handler failed to give (it threw, or its reply could not be sent): every control reply decoder reads `status`/`message`. */
export function controlErrorReply(message: string): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ status: 'unavailable', message, leaderHint: '' }));
}

function asBytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  throw new TypeError(`control plane: a body must be a Uint8Array (the codec's bytes), got ${typeof v}`);
}

/** What Nest's NATS client and server publish: a body and (here never) headers. */
export interface RawNatsRecord {
  data: Uint8Array;
  headers: undefined;
}

/** Client side, outgoing: the request body is the packet's `data` bytes as they are. */
export class RawRequestSerializer implements ProducerSerializer {
  serialize(packet: ReadPacket): RawNatsRecord {
    return { data: asBytes(packet.data), headers: undefined };
  }
}

/** Client side, incoming: the reply's bytes are the response, and the only one (one reply per request inbox). */
export class RawReplyDeserializer implements ProducerDeserializer {
  deserialize(value: Uint8Array): IncomingResponse {
    return { id: '', response: value, isDisposed: true } as IncomingResponse;
  }
}

/** Server side, incoming: the subject is the pattern, the reply inbox the id; never throws (a bad body is the handler's to answer). */
export class RawRequestDeserializer implements ConsumerDeserializer {
  deserialize(value: Uint8Array, options?: { channel?: string; replyTo?: string }): IncomingRequest {
    // No reply subject: Nest treats a packet without an id as an event (no handler: logged, dropped).
    return { pattern: options?.channel ?? '', data: value, id: options?.replyTo || undefined } as IncomingRequest;
  }
}

/** Server side, outgoing: the handler's reply bytes; a thrown error becomes `controlErrorReply`. */
export class RawReplySerializer implements ConsumerSerializer {
  serialize(packet: OutgoingResponse): RawNatsRecord {
    if (packet.err !== undefined && packet.err !== null) return { data: controlErrorReply(`control handler failed: ${errorText(packet.err)}`), headers: undefined };
    return { data: asBytes(packet.response), headers: undefined };
  }
}

/** Nest's RPC exception filter hands over `{status: 'error', message}` (or the thrown value). */
function errorText(err: unknown): string {
  const m = (err as { message?: unknown })?.message;
  if (typeof m === 'string') return m;
  return typeof err === 'string' ? err : JSON.stringify(err);
}

/**
 * Nest's NATS server on the process's own connection (no second connection; NatsCloser drains it
 * last), with the raw serializers. Bounds: a reply over the server's max_payload (or any failure to
 * send it) fails that one request with a small `controlErrorReply`, and a failing handler is
 * logged; neither ends the process (Nest's stock publisher would throw into rxjs).
 */
export class ControlPlaneServer extends ServerNats {
  private nc: NatsConnection | null = null;
  private cairnLog: Pick<Logger, 'warn'> = { warn: (obj: object, msg: string) => this.logger.warn(`${msg} ${JSON.stringify(obj)}`) } as Pick<Logger, 'warn'>;
  private readonly subs: { unsubscribe(): void }[] = [];

  constructor() {
    super({ serializer: new RawReplySerializer(), deserializer: new RawRequestDeserializer() } as NonNullable<NatsOptions['options']>);
  }

  /** The connection to serve on and the process logger; set before `listen` (the process's providers). */
  useConnection(nc: NatsConnection, log: Logger): void {
    this.nc = nc;
    this.cairnLog = log;
  }

  override createNatsClient(): Promise<NatsConnection> {
    if (!this.nc) return Promise.reject(new Error('ControlPlaneServer: useConnection was not called before listen'));
    return Promise.resolve(this.nc);
  }

  override bindEvents(client: NatsConnection): void {
    for (const channel of this.messageHandlers.keys()) {
      this.subs.push(client.subscribe(channel, { callback: (err, msg) => (err ? this.cairnLog.warn({ err, channel }, 'control plane subscription error') : this.serve(channel, msg)) }));
    }
  }

  private serve(channel: string, msg: Msg): void {
    this.handleMessage(channel, msg).catch((err: unknown) => this.cairnLog.warn({ err, channel }, 'control plane request failed'));
  }

  override getPublisher(natsMsg: Msg, id: string, ctx: Parameters<ServerNats['getPublisher']>[2]): (response: OutgoingResponse) => unknown {
    const publish = super.getPublisher(natsMsg, id, ctx);
    return (response) => {
      try {
        return publish(response);
      } catch (err) {
        this.cairnLog.warn({ err, subject: natsMsg.subject }, 'control plane reply not sent; answering with an error');
        try {
          return natsMsg.respond(controlErrorReply(`reply not sent: ${(err as Error).message}`));
        } catch {
          return false; // the connection is gone: the requester times out
        }
      }
    };
  }

  /** Stops serving; the shared connection stays open for the rest of the shutdown. */
  override close(): Promise<void> {
    for (const s of this.subs.splice(0)) s.unsubscribe();
    return Promise.resolve();
  }
}

/** Nest's NATS client on an existing connection (closing it leaves the connection alone), with the raw serializers. */
export class ControlPlaneClient extends ClientNats {
  constructor(private readonly nc: NatsConnection) {
    // Replies come to the connection's own inbox prefix: a role may subscribe to its own only (docs/security.md).
    const inboxPrefix = inboxPrefixOf(nc);
    super({ serializer: new RawRequestSerializer(), deserializer: new RawReplyDeserializer(), ...(inboxPrefix ? { inboxPrefix } : {}) } as NonNullable<NatsOptions['options']>);
  }

  override createClient(): Promise<NatsConnection> {
    return Promise.resolve(this.nc);
  }

  override close(): Promise<void> {
    return Promise.resolve();
  }
}

/** rxjs / Nest errors of a control request → TransportError codes (the ones `requestLeader` reads); then nats.js's, as on the raw bus. */
function mapError(e: unknown): unknown {
  if (e instanceof TimeoutError) return new TransportError('TIMEOUT', 'control request timed out', e);
  // Nest's client reads NATS's no-responders status (an empty message on the inbox) as an empty
  // response; control replies are never empty.
  if (e instanceof EmptyResponseException) return new TransportError('NO_RESPONDERS', e.message, e);
  return natsTransportError(e);
}

/**
 * The process's Transport with `request` sent through the control-plane ClientProxy (`send` +
 * rxjs `timeout`): what the gateway's leader-following loop uses for control requests. A request
 * over max_payload rejects with TransportError MAX_PAYLOAD_EXCEEDED (nothing sent); no reply in
 * `timeoutMs` with TIMEOUT; no subscriber on the subject (NATS's no-responders status) with
 * NO_RESPONDERS, as a raw nats.js request would, so the caller fails over at once.
 */
export function controlPlaneTransport(nc: NatsConnection, client: ControlPlaneClient = new ControlPlaneClient(nc)): Transport {
  const raw = asTransport(nc);
  return {
    maxPayloadBytes: () => raw.maxPayloadBytes(),
    publish: (subject, data) => raw.publish(subject, data),
    subscribe: (subject, callback, opts) => raw.subscribe(subject, callback, opts),
    request: async (subject, data, opts): Promise<TransportMsg> => {
      try {
        const reply = await firstValueFrom(client.send<Uint8Array, Uint8Array>(subject, data).pipe(timeout(opts.timeoutMs)));
        return { subject, data: reply, reply: undefined, respond: () => false };
      } catch (e) {
        throw mapError(e);
      }
    },
  };
}
