import { CairnClient } from '@cairn/client';
import { RespSocketClient, encodeCommand, type RespValue } from '@cairn/resp';
import { useBusCluster } from './bus-cluster.spec-helpers';

const bulk = (s: string | null): RespValue => ({ type: 'bulk', value: s === null ? null : Buffer.from(s) });

/** The RESP2 door of a real gateway on a real cluster (3 replicas, 2 storage nodes, nats-server). */
describe('RESP2 door end to end', () => {
  const e2e = useBusCluster('e2e-resp');

  it('SET/GET/MGET/EXISTS/DEL pipelined and answered in order, inline commands, INFO, QUIT', async () => {
    const c = await RespSocketClient.connect(e2e.cfg.respPort);
    const pipelined = Buffer.concat([
      encodeCommand(['SET', 'greeting', 'hello']),
      encodeCommand(['GET', 'greeting']), // read-your-writes behind its own SET
      encodeCommand(['MSET', 'a', '1', 'b', '2']),
      encodeCommand(['MGET', 'a', 'missing', 'b']),
      encodeCommand(['EXISTS', 'a', 'b', 'missing']),
      encodeCommand(['DEL', 'a', 'missing']),
      encodeCommand(['GET', 'a']),
      encodeCommand(['SET', 'bin', Buffer.from([0, 13, 10, 255])]),
      encodeCommand(['GET', 'bin']),
    ]);
    expect(await c.send(pipelined, 9)).toEqual([
      { type: 'simple', value: 'OK' },
      bulk('hello'),
      { type: 'simple', value: 'OK' },
      { type: 'array', value: [bulk('1'), bulk(null), bulk('2')] },
      { type: 'integer', value: 2 },
      { type: 'integer', value: 1 },
      bulk(null),
      { type: 'simple', value: 'OK' },
      { type: 'bulk', value: Buffer.from([0, 13, 10, 255]) },
    ]);
    expect(await c.send('SET hello "inline world"\r\nGET hello\r\n', 2)).toEqual([{ type: 'simple', value: 'OK' }, bulk('inline world')]);
    const [info] = await c.send(encodeCommand(['INFO', 'replication']), 1);
    expect(info.type === 'bulk' && info.value!.toString()).toMatch(/cairn_leader_id:c[123]\r\n/);
    // TTLs (docs/leases.md): a key whose absolute expiry has passed is never returned, even before its delete is applied
    expect(await c.send(encodeCommand(['SET', 'k', 'v', 'EX', '100']), 1)).toEqual([{ type: 'simple', value: 'OK' }]);
    expect(await c.send(encodeCommand(['SET', 'gone', 'v', 'PXAT', '1']), 1)).toEqual([{ type: 'simple', value: 'OK' }]);
    expect(await c.send(encodeCommand(['MGET', 'k', 'gone']), 1)).toEqual([{ type: 'array', value: [bulk('v'), bulk(null)] }]);
    expect(await c.send(encodeCommand(['QUIT']), 1)).toEqual([{ type: 'simple', value: 'OK' }]);
    await c.closed;
  });

  it('a key written through any door reads back identically through the other two', async () => {
    const value = Buffer.from([0, 1, 2, 13, 10, 128, 255]);
    const resp = await RespSocketClient.connect(e2e.cfg.respPort);
    const tlv = await CairnClient.connect({ host: '127.0.0.1', port: e2e.cfg.gatewayPort });
    const http = (key: string) => `http://127.0.0.1:${e2e.cfg.httpPort}/v1/kv/${encodeURIComponent(key)}`;
    // The HTTP listener may open a moment after the TCP one the launcher waited for.
    for (let i = 0; i < 600 && (await fetch(`http://127.0.0.1:${e2e.cfg.httpPort}/readyz`).then((r) => r.status, () => 0)) !== 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    try {
      // RESP → binary protocol and HTTP
      expect(await resp.send(encodeCommand(['SET', 'from-resp', value]), 1)).toEqual([{ type: 'simple', value: 'OK' }]);
      expect((await tlv.get('from-resp'))!.value).toEqual(value);
      expect(Buffer.from(await (await fetch(http('from-resp'))).arrayBuffer())).toEqual(value);
      // binary protocol → RESP and HTTP
      await tlv.set('from-tlv', value);
      expect(await resp.send(encodeCommand(['GET', 'from-tlv']), 1)).toEqual([{ type: 'bulk', value }]);
      expect(Buffer.from(await (await fetch(http('from-tlv'))).arrayBuffer())).toEqual(value);
      // HTTP → RESP and binary protocol
      expect((await fetch(http('from-http'), { method: 'PUT', body: value })).status).toBe(200);
      expect(await resp.send(encodeCommand(['GET', 'from-http']), 1)).toEqual([{ type: 'bulk', value }]);
      expect((await tlv.get('from-http'))!.value).toEqual(value);
    } finally {
      resp.socket.destroy();
      await tlv.close();
    }
  });

  it('a protocol error gets Redis text and closes the connection', async () => {
    const c = await RespSocketClient.connect(e2e.cfg.respPort);
    expect(await c.send('PING\r\n*1\r\nx\r\n', 2)).toEqual([
      { type: 'simple', value: 'PONG' },
      { type: 'error', value: "ERR Protocol error: expected '$', got 'x'" },
    ]);
    await c.closed;
  });
});
