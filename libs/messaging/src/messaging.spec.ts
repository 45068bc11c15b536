import type { NatsConnection } from 'nats';
import { serveRequests, Subjects } from './index';
import { startNatsTestBus, type NatsTestBus } from './testing';

describe('messaging against a real nats-server', () => {
  let bus: NatsTestBus;
  let nc: NatsConnection;
  beforeAll(async () => {
    bus = await startNatsTestBus('nats');
    nc = bus.nc;
  });
  afterAll(() => bus?.close());

  it('names subjects under cairn.<cluster>', () => {
    const s = new Subjects('prod');
    expect(s.raft('c1')).toBe('cairn.prod.raft.c1');
    expect(s.fetch('c2')).toBe('cairn.prod.log.fetch.c2');
    expect(s.read('s1')).toBe('cairn.prod.read.s1');
  });

  it('serves binary request/reply, sync, async and failing handlers', async () => {
    serveRequests(nc, 'echo', (d) => Buffer.concat([Buffer.from('re:'), d]));
    serveRequests(nc, 'async', async (d) => Uint8Array.from(d).reverse());
    serveRequests(nc, 'boom', () => {
      throw new Error('bad');
    }, { onError: (e) => Buffer.from(`error:${(e as Error).message}`) });
    expect(Buffer.from((await nc.request('echo', Buffer.from('x'))).data).toString()).toBe('re:x');
    expect([...(await nc.request('async', Uint8Array.of(1, 2, 3))).data]).toEqual([3, 2, 1]);
    expect(Buffer.from((await nc.request('boom', Buffer.alloc(0))).data).toString()).toBe('error:bad');
  });
});
