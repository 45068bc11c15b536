import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { connectNats, serveRequests, Subjects } from './index';
import { startNatsServer, type NatsServerHandle } from './testing';

describe('messaging against a real nats-server', () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startNatsServer({ dir: mkdtempSync(join(tmpdir(), 'cairn-nats-')) });
    nc = await connectNats({ servers: [server.url], name: 'test' });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

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
