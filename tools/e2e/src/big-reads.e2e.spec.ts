import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { CairnClient } from '@cairn/client';
import { LocalCluster, type ProcessExit } from '@cairn/cluster';
import { startNatsServer, type NatsServerHandle } from '@cairn/messaging/testing';
import { RespSocketClient, encodeCommand, type RespValue } from '@cairn/resp';
import { writeTestConfig } from './fixtures';

/**
 * Issue 9, reproduction 2, on real processes: reads whose replies are larger than the NATS
 * server's max_payload. Through the RESP door, SET of a value at the value limit then MGET of it
 * 16 times; through the TLV door, 1,024 pipelined GETs of one 64 KiB value. Before the fix the
 * storage node's reply overflowed max_payload, reply() threw, and both storage nodes exited in
 * turn. Now every read is answered with the value, no process exits, no reply even reaches the
 * bound (the logs of storage nodes and gateway say so), and the cluster still serves.
 * Once with the local default max_payload (8 MiB) and once with nats-server's default (1 MiB).
 */

/** Replies to `bytes`, or a failure if the server closes the connection first. */
async function resp(c: RespSocketClient, bytes: Buffer | string, expected: number): Promise<RespValue[]> {
  return Promise.race([c.send(bytes, expected), c.closed.then(() => Promise.reject(new Error(`connection closed after ${c.replies.length} replies`)))]);
}

/** Sends `request` on a fresh socket and collects `bytes` bytes of reply (or what came before the server closed). */
async function rawReply(port: number, request: Buffer, bytes: number): Promise<Buffer> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  let n = 0;
  return new Promise<Buffer>((resolve) => {
    const done = () => {
      socket.destroy();
      resolve(Buffer.concat(chunks));
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      n += chunk.length;
      if (n >= bytes) done();
    });
    socket.on('close', done);
    socket.write(request);
  });
}

function scenario(name: string, opts: { maxPayloadBytes: number | null; valueBytes: number; gateway?: Record<string, unknown>; consensus?: Record<string, unknown> }) {
  describe(name, () => {
    let cluster: LocalCluster;
    let nats: NatsServerHandle | null = null;
    let respPort: number;
    let gatewayPort: number;
    const exits: ProcessExit[] = [];
    const pids = new Map<string, number | null>();

    beforeAll(async () => {
      const cfg = await writeTestConfig({ consensus: opts.consensus });
      respPort = cfg.respPort;
      gatewayPort = cfg.gatewayPort;
      if (opts.gateway) {
        const config = JSON.parse(readFileSync(cfg.configPath, 'utf8'));
        config.gateway = { ...config.gateway, ...opts.gateway };
        writeFileSync(cfg.configPath, JSON.stringify(config, null, 2));
      }
      if (opts.maxPayloadBytes !== null) {
        const config = JSON.parse(readFileSync(cfg.configPath, 'utf8'));
        const port = Number(new URL(config.nats.servers[0]).port);
        nats = await startNatsServer({ port, dir: mkdtempSync(join(tmpdir(), 'cairn-e2e-nats-')), maxPayloadBytes: opts.maxPayloadBytes });
      }
      cluster = await LocalCluster.start({ configPath: cfg.configPath, startNats: nats === null, onUnexpectedExit: (x) => exits.push(x) });
      for (const id of cluster.ids()) pids.set(id, cluster.pid(id));
    });

    afterAll(async () => {
      await cluster?.stop();
      await nats?.stop();
    });

    const everyProcessAlive = () => {
      expect(exits.map((x) => `${x.id} exited (code ${x.code}, signal ${x.signal}):\n${x.logTail}`)).toEqual([]);
      for (const id of cluster.ids()) {
        expect({ id, running: cluster.isRunning(id), pid: cluster.pid(id) }).toEqual({ id, running: true, pid: pids.get(id) });
      }
      // Not even a reply replaced or dropped at the bound (libs/messaging logs each): the storage
      // nodes cut their read replies, the gateway its requests, before NATS could refuse them.
      for (const id of [...cluster.ids('storage'), ...cluster.ids('gateway')]) {
        expect({ id, lines: readFileSync(cluster.logPath(id), 'utf8').split('\n').filter((l) => /over the NATS max_payload/.test(l)) }).toEqual({ id, lines: [] });
      }
    };

    it(`RESP: SET of a ${opts.valueBytes}-byte value, then MGET of it 16 times: 16 values back, no process exits`, async () => {
      const value = Buffer.alloc(opts.valueBytes);
      for (let i = 0; i < value.length; i++) value[i] = (i * 31 + 7) & 0xff;
      const c = await RespSocketClient.connect(respPort);
      expect(await resp(c, encodeCommand(['SET', 'big', value]), 1)).toEqual([{ type: 'simple', value: 'OK' }]);
      c.socket.destroy();
      // The 16 MiB reply is compared byte for byte on a raw socket (RespSocketClient re-parses
      // its whole buffer on every chunk: quadratic on a reply this size).
      const bulk = Buffer.concat([Buffer.from(`$${value.length}\r\n`), value, Buffer.from('\r\n')]);
      const expected = Buffer.concat([Buffer.from('*16\r\n'), ...Array<Buffer>(16).fill(bulk)]);
      const got = await rawReply(respPort, encodeCommand(['MGET', ...Array<string>(16).fill('big')]), expected.length);
      expect(got.length).toBe(expected.length);
      expect(got.equals(expected) ? 'the 16 values' : got.subarray(0, 200).toString()).toBe('the 16 values');
      everyProcessAlive();
    });

    it('TLV: 1,024 pipelined GETs of one 64 KiB value: every one answered with it, no process exits', async () => {
      const value = Buffer.alloc(64 * 1024, 0x5a);
      const client = await CairnClient.connect({ host: '127.0.0.1', port: gatewayPort, requestTimeoutMs: 60_000 });
      try {
        await client.set('big64', value);
        const got = await Promise.all(Array.from({ length: 1024 }, () => client.get('big64')));
        expect(got.filter((g) => g === null || Buffer.compare(Buffer.from(g.value), value) !== 0)).toEqual([]);
      } finally {
        await client.close();
      }
      everyProcessAlive();
    });

    it('afterwards a fresh connection still gets PING, SET and GET right', async () => {
      const c = await RespSocketClient.connect(respPort);
      expect(await resp(c, Buffer.concat([encodeCommand(['PING']), encodeCommand(['SET', 'after', 'ok']), encodeCommand(['GET', 'after'])]), 3)).toEqual([
        { type: 'simple', value: 'PONG' },
        { type: 'simple', value: 'OK' },
        { type: 'bulk', value: Buffer.from('ok') },
      ]);
      c.socket.destroy();
      everyProcessAlive();
    });
  });
}

describe('big reads: replies larger than NATS max_payload (issue 9, reproduction 2)', () => {
  scenario('local default max_payload (8 MiB), values up to the 1 MiB limit', { maxPayloadBytes: null, valueBytes: 1024 * 1024 });
  // nats-server's own default: the value and Append limits must be lowered for the start-up payload check to accept them.
  scenario('nats-server default max_payload (1 MiB), values up to 1,000,000 bytes', {
    maxPayloadBytes: 1024 * 1024,
    valueBytes: 1_000_000,
    gateway: { valueBytesMax: 1_000_000 },
    consensus: { msgBytesMax: 768 * 1024 },
  });
});
