import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CairnPool, type WatchEventItem } from '@cairn/client';
import { LocalCluster } from '@cairn/cluster';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { RespSocketClient, encodeCommand, type RespValue } from '@cairn/resp';
import { CLI } from './fixtures';
import { freePort } from '@cairn/messaging/testing';

/**
 * Watch on every door end to end (docs/watch.md): real processes, 2 storage nodes, 2 gateways.
 * The @cairn/client iterator resumes across a SIGKILL of the gateway it watched through, with no
 * gap and no duplicate against the acknowledged writes.
 */
describe('watch end to end (client iterator, failover)', () => {
  let cluster: LocalCluster;
  const gateways: { port: number; httpPort: number; respPort: number }[] = [];

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-e2e-watchdoors-'));
    for (let i = 0; i < 2; i++) gateways.push({ port: await freePort(), httpPort: await freePort(), respPort: await freePort() });
    const config = {
      clusterName: 'watchdoors',
      dataDir: join(dir, 'data'),
      nats: { servers: [`nats://127.0.0.1:${await freePort()}`] },
      consensus: { replicas: [{ id: 'c1' }, { id: 'c2' }, { id: 'c3' }] },
      storage: { nodes: [{ id: 's1' }, { id: 's2' }] },
      gateway: { watchProgressIntervalMs: 200, gateways: gateways.map((g, i) => ({ id: `g${i + 1}`, host: '127.0.0.1', ...g })) },
    };
    const configPath = join(dir, 'cairn.json');
    writeFileSync(configPath, JSON.stringify(config));
    cluster = await LocalCluster.start({ configPath });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('a client watch resumes across a SIGKILL of its gateway with no gap and no duplicate', async () => {
    // The writer goes through g2 only; the watcher's pool lists g1 first, so its watch opens on g1.
    const writer = await CairnPool.connect({ gateways: [{ host: '127.0.0.1', port: gateways[1].port }] });
    const watcher = await CairnPool.connect({ gateways: gateways.map((g) => ({ host: '127.0.0.1', port: g.port })), reconnectBackoffBaseMs: 1000 });
    const WRITES = 300;
    try {
      const first = (await writer.set('wd/0', 'v0')).revision;
      const acked = [first];
      const write = async (from: number, to: number) => {
        for (let i = from; i < to; i++) acked.push((await writer.set(`wd/${i}`, `v${i}`)).revision);
      };
      const got: WatchEventItem[] = [];
      let seen: () => void = () => undefined;
      const watching = (async () => {
        for await (const ev of watcher.watch({ prefix: 'wd/', startRevision: first })) {
          if (ev.type === 'progress') continue;
          got.push(ev);
          seen();
          if (got.length === WRITES) return;
        }
      })();
      const received = (n: number) => new Promise<void>((r) => (seen = () => got.length >= n && r()));
      // A third streamed through g1; a third committed while g1 dies; a third after: all through g2.
      const third = received(WRITES / 3);
      await write(1, WRITES / 3);
      await third;
      await Promise.all([cluster.kill('g1', 'SIGKILL'), write(WRITES / 3, (2 * WRITES) / 3)]);
      await write((2 * WRITES) / 3, WRITES);
      await watching;
      expect(got.map((e) => e.modRevision)).toEqual(acked);
      expect(got.map((e) => `${e.type} ${e.key.toString()}=${e.value.toString()}`)).toEqual(acked.map((_, i) => `put wd/${i}=v${i}`));
    } finally {
      writer.destroy();
      watcher.destroy();
    }
  });

  it('cairn watch --prefix --rev --prev-kv prints the changes as etcdctl does and exits 0 on SIGTERM', async () => {
    const writer = await CairnPool.connect({ gateways: [{ host: '127.0.0.1', port: gateways[1].port }] });
    try {
      const r1 = (await writer.set('cli/a', '1')).revision;
      const cli = spawn(process.execPath, [CLI, '--gateway', `127.0.0.1:${gateways[1].port}`, 'watch', '--prefix', 'cli/', '--rev', String(r1), '--prev-kv'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      cli.stderr.on('data', (d: Buffer) => (err += d.toString()));
      let onOut: () => void = () => undefined;
      cli.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        onOut();
      });
      const printed = (text: string) =>
        new Promise<void>((resolve) => {
          onOut = () => {
            if (out.includes(text)) resolve();
          };
          onOut();
        });
      await printed('PUT\ncli/a\n1\n');
      await writer.set('cli/a', '2');
      await writer.del('cli/a');
      await printed('DELETE');
      const exited = once(cli, 'exit');
      cli.kill('SIGTERM');
      const [code] = await exited;
      expect({ code, err }).toEqual({ code: 0, err: '' });
      expect(out).toBe('PUT\ncli/a\n1\nPUT\ncli/a\n1\ncli/a\n2\nDELETE\ncli/a\n2\ncli/a\n\n');
    } finally {
      writer.destroy();
    }
  });

  /** Reads Server-Sent Events from a fetch body: each `{ event, id, data }` as it completes. */
  async function sse(url: string, headers: Record<string, string> = {}) {
    const ac = new AbortController();
    const res = await fetch(url, { headers, signal: ac.signal });
    const got: { event: string; id: string | null; data: string }[] = [];
    let wake: () => void = () => undefined;
    const reading = (async () => {
      let text = '';
      const decoder = new TextDecoder();
      for await (const chunk of res.body!) {
        text += decoder.decode(chunk, { stream: true });
        for (let i = text.indexOf('\n\n'); i >= 0; i = text.indexOf('\n\n')) {
          const block = text.slice(0, i).split('\n');
          text = text.slice(i + 2);
          const field = (name: string) => block.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2) ?? null;
          if (field('event')) got.push({ event: field('event')!, id: field('id'), data: field('data') ?? '' });
        }
        wake();
      }
    })().catch(() => undefined);
    const until = (pred: () => boolean) =>
      new Promise<void>((resolve) => {
        wake = () => pred() && resolve();
        wake();
      });
    return { res, got, until, close: async () => (ac.abort(), await reading) };
  }

  it('GET /v1/watch streams Server-Sent Events (put, delete, progress) and resumes from Last-Event-ID', async () => {
    const writer = await CairnPool.connect({ gateways: [{ host: '127.0.0.1', port: gateways[1].port }] });
    const url = `http://127.0.0.1:${gateways[1].httpPort}/v1/watch?prefix=sse%2F&prevValue=true`;
    const a = await sse(url);
    try {
      expect(a.res.status).toBe(200);
      expect(a.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const r1 = (await writer.set('sse/a', '1')).revision;
      const r2 = (await writer.set('sse/a', '2')).revision;
      await writer.set('other', 'x');
      const r3 = (await writer.del('sse/a')).revision;
      await a.until(() => a.got.some((e) => e.event === 'delete') && a.got.some((e) => e.event === 'progress' && Number(e.id) >= r3));
      const changes = a.got.filter((e) => e.event !== 'progress');
      expect(changes.map((e) => [e.event, e.id, JSON.parse(e.data)])).toEqual([
        ['put', String(r1), { type: 'put', key: 'sse/a', value: '1', modRevision: r1, createRevision: r1, version: 1 }],
        ['put', String(r2), { type: 'put', key: 'sse/a', value: '2', modRevision: r2, createRevision: r1, version: 2, prevValue: '1' }],
        ['delete', String(r3), { type: 'delete', key: 'sse/a', value: '', modRevision: r3, createRevision: 0, version: 0, prevValue: '2' }],
      ]);
      // A browser reconnecting sends the last id it got: the stream goes on after it.
      const b = await sse(url, { 'Last-Event-ID': String(r1) });
      try {
        await b.until(() => b.got.some((e) => e.event === 'delete'));
        expect(b.got.filter((e) => e.event !== 'progress').map((e) => e.id)).toEqual([String(r2), String(r3)]);
      } finally {
        await b.close();
      }
      const bad = await fetch(`http://127.0.0.1:${gateways[1].httpPort}/v1/watch?key=a&prefix=b`);
      expect(bad.status).toBe(400);
    } finally {
      await a.close();
      writer.destroy();
    }
  });

  /** A reply as plain data: arrays, strings, numbers, `ERR:<text>` for an error. */
  const plain = (v: RespValue): unknown => (v.type === 'array' ? (v.value?.map(plain) ?? null) : v.type === 'bulk' ? (v.value?.toString() ?? null) : v.type === 'error' ? `ERR:${v.value}` : v.value);

  it('RESP SUBSCRIBE / PSUBSCRIBE get keyspace notifications of writes through any door (an expiry as `expired`); a subscriber runs only pub/sub commands', async () => {
    const writer = await CairnPool.connect({ gateways: [{ host: '127.0.0.1', port: gateways[1].port }] });
    const sub = await RespSocketClient.connect(gateways[1].respPort);
    try {
      expect((await sub.send(encodeCommand(['SUBSCRIBE', '__keyevent@0__:del']), 1)).map(plain)).toEqual([['subscribe', '__keyevent@0__:del', 1]]);
      expect((await sub.send(encodeCommand(['PSUBSCRIBE', '__keyspace@0__:rs/*']), 1)).map(plain)).toEqual([['psubscribe', '__keyspace@0__:rs/*', 2]]);
      expect((await sub.send(encodeCommand(['GET', 'rs/a']), 1)).map(plain)).toEqual([expect.stringMatching(/^ERR:ERR Can't execute 'get': only \(P\|S\)SUBSCRIBE/)]);
      const before = sub.replies.length;
      await writer.set('rs/a', '1'); // the TLV door
      const resp = await RespSocketClient.connect(gateways[1].respPort);
      await resp.send(encodeCommand(['DEL', 'rs/a']), 1); // the RESP door
      resp.socket.destroy();
      await sub.waitFor(before + 3);
      expect(sub.replies.slice(before).map(plain)).toEqual([
        ['pmessage', '__keyspace@0__:rs/*', '__keyspace@0__:rs/a', 'set'],
        ['pmessage', '__keyspace@0__:rs/*', '__keyspace@0__:rs/a', 'del'],
        ['message', '__keyevent@0__:del', 'rs/a'],
      ]);
      // A key whose TTL passes is `expired`, not `del` (Redis keyspace notifications; the leader's ExpireKey).
      expect((await sub.send(encodeCommand(['SUBSCRIBE', '__keyevent@0__:expired']), 1)).map(plain)).toEqual([['subscribe', '__keyevent@0__:expired', 3]]);
      const beforeTtl = sub.replies.length;
      const ttl = await RespSocketClient.connect(gateways[1].respPort);
      await ttl.send(encodeCommand(['SET', 'rs/e', '1', 'PX', '300']), 1);
      ttl.socket.destroy();
      await sub.waitFor(beforeTtl + 3);
      expect(sub.replies.slice(beforeTtl).map(plain)).toEqual([
        ['pmessage', '__keyspace@0__:rs/*', '__keyspace@0__:rs/e', 'set'],
        ['pmessage', '__keyspace@0__:rs/*', '__keyspace@0__:rs/e', 'expired'],
        ['message', '__keyevent@0__:expired', 'rs/e'],
      ]);
      // A key whose lease the leader expires is `expired` too (its LeaseRevoke carries cause Expired; a client's revoke stays `del`).
      const beforeLease = sub.replies.length;
      const lease = await writer.leaseGrant(300);
      await writer.set('rs/l', '1', { lease: lease.leaseId });
      await sub.waitFor(beforeLease + 3);
      expect(sub.replies.slice(beforeLease).map(plain)).toEqual([
        ['pmessage', '__keyspace@0__:rs/*', '__keyspace@0__:rs/l', 'set'],
        ['pmessage', '__keyspace@0__:rs/*', '__keyspace@0__:rs/l', 'expired'],
        ['message', '__keyevent@0__:expired', 'rs/l'],
      ]);
      // redis-cli, when installed, as a Redis user would run it.
      let hasRedisCli = true;
      try {
        execFileSync('redis-cli', ['--version'], { stdio: 'ignore' });
      } catch {
        hasRedisCli = false;
      }
      if (hasRedisCli) {
        const cli = spawn('redis-cli', ['-p', String(gateways[1].respPort), 'SUBSCRIBE', '__keyspace@0__:rs/b'], { stdio: ['ignore', 'pipe', 'ignore'] });
        let out = '';
        let onOut: () => void = () => undefined;
        cli.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          onOut();
        });
        const printed = (text: string) => new Promise<void>((resolve) => ((onOut = () => out.includes(text) && resolve()), onOut()));
        await printed('__keyspace@0__:rs/b\n1\n');
        await writer.set('rs/b', '2');
        await printed('message\n__keyspace@0__:rs/b\nset\n');
        const exited = once(cli, 'exit');
        cli.kill('SIGTERM');
        await exited;
      }
    } finally {
      sub.socket.destroy();
      writer.destroy();
    }
  });
});
