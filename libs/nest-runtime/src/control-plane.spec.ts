import 'reflect-metadata';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { startNatsTestBus, type NatsTestBus } from '@cairn/messaging/testing';
import { createLogger } from '@cairn/logging';
import { isTransportError } from '@cairn/world';
import { ControlPlaneClient, RawReplyDeserializer, RawReplySerializer, RawRequestDeserializer, RawRequestSerializer, controlPlaneTransport, listenControlPlane } from './control-plane';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('raw control-plane serializers', () => {
  it('carry the codec bytes unchanged both ways, the subject as pattern and the inbox as id', () => {
    const body = enc('{"op":"add"}');
    expect(new RawRequestSerializer().serialize({ pattern: 'c.member.r1', data: body }).data).toBe(body);
    expect(new RawRequestDeserializer().deserialize(body, { channel: 'c.member.r1', replyTo: '_INBOX.x' })).toEqual({ pattern: 'c.member.r1', data: body, id: '_INBOX.x' });
    expect(new RawReplySerializer().serialize({ id: '_INBOX.x', response: body }).data).toBe(body);
    expect(new RawReplyDeserializer().deserialize(body)).toMatchObject({ response: body, isDisposed: true });
  });

  it('answer a handler error as a status/message reply, and refuse a body that is not bytes', () => {
    const r = JSON.parse(dec(new RawReplySerializer().serialize({ id: 'i', response: undefined, err: new Error('boom') }).data)) as { status: string; message: string };
    expect(r).toMatchObject({ status: 'unavailable', message: 'control handler failed: boom' });
    expect(() => new RawRequestSerializer().serialize({ pattern: 'p', data: { op: 'add' } })).toThrow(TypeError);
  });

  it('a request without a reply subject has no id (Nest treats it as an event)', () => {
    expect(new RawRequestDeserializer().deserialize(enc('x'), { channel: 'p' }).id).toBeUndefined();
  });
});

describe('ControlPlaneServer and controlPlaneTransport on a real nats-server', () => {
  const MAX_PAYLOAD = 64 * 1024;
  let bus: NatsTestBus;
  let app: INestMicroservice;

  @Controller()
  class EchoController {
    @MessagePattern('t.echo')
    echo(@Payload() data: Uint8Array): Uint8Array {
      return data;
    }
    @MessagePattern('t.big')
    big(@Payload() data: Uint8Array): Uint8Array {
      return new Uint8Array(Number(dec(data)));
    }
    @MessagePattern('t.fail')
    fail(): Promise<Uint8Array> {
      return Promise.reject(new Error('handler broke'));
    }
  }
  @Module({ controllers: [EchoController] })
  class EchoModule {}

  beforeAll(async () => {
    bus = await startNatsTestBus('control-plane', MAX_PAYLOAD);
    app = await listenControlPlane(EchoModule, bus.nc, createLogger('control-plane-spec', 'silent'));
  });

  afterAll(async () => {
    await app?.close();
    await bus?.close();
  });

  it('round-trips the bytes through a ClientProxy, and a raw nats.js request gets the same reply (the wire is the codec)', async () => {
    const t = controlPlaneTransport(bus.nc);
    const reply = await t.request('t.echo', enc('{"op":"add","kind":"replica","id":"r4"}'), { timeoutMs: 10_000 });
    expect(dec(reply.data)).toBe('{"op":"add","kind":"replica","id":"r4"}');
    const raw = await bus.nc.request('t.echo', enc('raw'), { timeout: 10_000 });
    expect(dec(raw.data)).toBe('raw');
  });

  it('a request over max_payload fails that request only (MAX_PAYLOAD_EXCEEDED); the next one succeeds', async () => {
    const t = controlPlaneTransport(bus.nc, new ControlPlaneClient(bus.nc));
    const err = await t.request('t.echo', new Uint8Array(MAX_PAYLOAD + 1), { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(isTransportError(err, 'MAX_PAYLOAD_EXCEEDED')).toBe(true);
    expect(dec((await t.request('t.echo', enc('after'), { timeoutMs: 10_000 })).data)).toBe('after');
  });

  it('a reply over max_payload is answered with an error reply and the server keeps serving', async () => {
    const t = controlPlaneTransport(bus.nc);
    const r = JSON.parse(dec((await t.request('t.big', enc(String(MAX_PAYLOAD + 1)), { timeoutMs: 10_000 })).data)) as { status: string; message: string };
    expect(r.status).toBe('unavailable');
    expect(r.message).toMatch(/reply not sent/);
    expect(dec((await t.request('t.echo', enc('still here'), { timeoutMs: 10_000 })).data)).toBe('still here');
  });

  it('a failing handler answers a status/message error reply (Nest filter hides the message; it logs it)', async () => {
    const r = JSON.parse(dec((await controlPlaneTransport(bus.nc).request('t.fail', enc('x'), { timeoutMs: 10_000 })).data)) as { status: string; message: string };
    expect(r).toMatchObject({ status: 'unavailable', message: 'control handler failed: Internal server error' });
  });

  it('no subscriber rejects with NO_RESPONDERS (NATS answers the inbox with an empty status message)', async () => {
    const err = await controlPlaneTransport(bus.nc).request('t.nobody', enc('x'), { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(isTransportError(err, 'NO_RESPONDERS')).toBe(true);
  });

  it('no reply within timeoutMs rejects with TIMEOUT', async () => {
    const silent = bus.nc.subscribe('t.silent');
    await bus.nc.flush();
    try {
      const err = await controlPlaneTransport(bus.nc).request('t.silent', enc('x'), { timeoutMs: 200 }).catch((e: unknown) => e);
      expect(isTransportError(err, 'TIMEOUT')).toBe(true);
    } finally {
      silent.unsubscribe();
    }
  });
});
