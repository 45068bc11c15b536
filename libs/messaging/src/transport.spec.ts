import type { TransportMsg } from '@cairn/world';
import { natsTransport, serveRequests } from './index';
import { startNatsTestBus, type NatsTestBus } from './testing';

describe('natsTransport: coalesced publishes and its own request/reply', () => {
  let bus: NatsTestBus;
  beforeAll(async () => {
    bus = await startNatsTestBus('transport');
  });
  afterAll(() => bus?.close());

  it('answers many concurrent requests each with its own reply', async () => {
    const t = natsTransport(bus.nc);
    const sub = serveRequests(t, 'echo', (data) => Uint8Array.from([...data, 0xff]));
    try {
      const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => t.request('echo', Uint8Array.of(i % 256, i >> 8), { timeoutMs: 5000 })));
      replies.forEach((r, i) => expect([...r.data]).toEqual([i % 256, i >> 8, 0xff]));
    } finally {
      sub.unsubscribe();
    }
  });

  it('rejects NO_RESPONDERS when nobody subscribes, TIMEOUT when nobody answers, and ignores a late reply', async () => {
    const t = natsTransport(bus.nc);
    await expect(t.request('nobody.here', Uint8Array.of(1), { timeoutMs: 5000 })).rejects.toMatchObject({ name: 'TransportError', code: 'NO_RESPONDERS' });
    const held: TransportMsg[] = [];
    const sub = t.subscribe('silent', (m) => held.push(m));
    try {
      await expect(t.request('silent', Uint8Array.of(1), { timeoutMs: 200 })).rejects.toMatchObject({ name: 'TransportError', code: 'TIMEOUT' });
      expect(held).toHaveLength(1);
      // The reply after the timeout finds no one waiting; the next request is answered normally.
      expect(held[0].respond(Uint8Array.of(9))).toBe(true);
      const next = t.request('silent', Uint8Array.of(2), { timeoutMs: 5000 });
      await new Promise<void>((resolve) => {
        const poll = (): void => (held.length === 2 ? resolve() : void setImmediate(poll));
        poll();
      });
      held[1].respond(Uint8Array.of(2, 2));
      expect([...(await next).data]).toEqual([2, 2]);
    } finally {
      sub.unsubscribe();
    }
  });

  it('keeps the order of the publishes of one turn and of several turns', async () => {
    const t = natsTransport(bus.nc);
    const got: number[] = [];
    const all = new Promise<void>((resolve) => {
      const sub = t.subscribe('ordered', (m) => {
        got.push(m.data[0] | (m.data[1] << 8));
        if (got.length === 1000) {
          sub.unsubscribe();
          resolve();
        }
      });
    });
    await bus.nc.flush();
    for (let i = 0; i < 500; i++) t.publish('ordered', Uint8Array.of(i & 0xff, i >> 8));
    await new Promise((r) => setImmediate(r));
    // Beyond PUBLISH_COALESCE_BYTES_MAX within one turn: handed to nats.js at once, still in order.
    for (let i = 500; i < 1000; i++) t.publish('ordered', Uint8Array.of(i & 0xff, i >> 8, ...new Uint8Array(1024)));
    await all;
    expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });
});

describe('natsTransport on a connection that closes', () => {
  it('fails the requests still waiting with CLOSED at once, and refuses new ones', async () => {
    const bus = await startNatsTestBus('transport-close');
    try {
      const t = natsTransport(bus.nc);
      const sub = t.subscribe('never', () => undefined);
      const waiting = t.request('never', Uint8Array.of(1), { timeoutMs: 60_000 });
      waiting.catch(() => undefined);
      await bus.nc.flush();
      sub.unsubscribe();
      await bus.nc.close();
      await expect(waiting).rejects.toMatchObject({ name: 'TransportError', code: 'CLOSED' });
      expect(() => t.publish('x', Uint8Array.of(1))).toThrow(expect.objectContaining({ code: 'CLOSED' }) as Error);
    } finally {
      await bus.close();
    }
  });
});
