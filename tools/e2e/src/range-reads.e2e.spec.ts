import { CairnClient } from '@cairn/client';
import { RespSocketClient, encodeCommand, type RespValue } from '@cairn/resp';
import { useBusCluster } from './bus-cluster.spec-helpers';

/**
 * Ordered range reads on real processes (docs/protocol.md "RANGE"): N keys written, then read back
 * in key order through every door (TLV pages and the @cairn/client iterator, HTTP GET /v1/kv?prefix,
 * RESP SCAN and KEYS), with their metadata; again after a storage node is SIGKILLed and restarted
 * (its ordered index rebuilt from its files) and serves alone.
 */
describe('range reads end to end', () => {
  let client: CairnClient;
  const e2e = useBusCluster('e2e-range-reads', {}, { beforeStop: () => client?.close() });
  const N = 300;
  const key = (i: number) => `user/${String(i).padStart(4, '0')}`;
  const userKeys = Array.from({ length: N }, (_, i) => key(i));
  const created = new Map<string, number>();
  const last = new Map<string, { value: string; revision: number; version: number }>();

  beforeAll(async () => {
    client = await CairnClient.connect({ host: '127.0.0.1', port: e2e.cfg.gatewayPort });
    const writes = await Promise.all(userKeys.map((k) => client.set(k, `v-${k}`)));
    userKeys.forEach((k, i) => {
      created.set(k, writes[i].revision);
      last.set(k, { value: `v-${k}`, revision: writes[i].revision, version: 1 });
    });
    await Promise.all(Array.from({ length: 40 }, (_, i) => client.set(`other/${i}`, 'x')));
    // Every tenth key written twice more: version 3, same create revision.
    for (const k of userKeys.filter((_, i) => i % 10 === 0)) {
      await client.set(k, 'second');
      const w = await client.set(k, `third-${k}`);
      last.set(k, { value: `third-${k}`, revision: w.revision, version: 3 });
    }
  });

  async function checkClient(): Promise<void> {
    const seen: string[] = [];
    for await (const it of client.scan({ prefix: 'user/', limit: 7 })) {
      const k = it.key.toString();
      seen.push(k);
      expect({ k, value: it.value.toString(), revision: it.revision, createRevision: it.createRevision, version: it.version }).toEqual({ k, ...last.get(k), createRevision: created.get(k) });
    }
    expect(seen).toEqual(userKeys);
    const count = await client.range({ prefix: 'user/', countOnly: true });
    expect(count).toMatchObject({ count: N, more: false, items: [] });
    const reversed: string[] = [];
    for await (const it of client.scan({ start: 'user/0100', end: 'user/0200', reverse: true, keysOnly: true, limit: 33 })) {
      expect(it.value.length).toBe(0);
      reversed.push(it.key.toString());
    }
    expect(reversed).toEqual(userKeys.slice(100, 200).reverse());
    const page = await client.range({ prefix: 'user/', limit: 50 });
    expect(page).toMatchObject({ count: N, more: true });
    expect(page.items).toHaveLength(50);
    const stale: string[] = [];
    for await (const it of client.scan({ prefix: 'other/', stale: true, keysOnly: true })) stale.push(it.key.toString());
    expect(stale).toHaveLength(40);
  }

  async function checkHttp(): Promise<void> {
    const base = `http://127.0.0.1:${e2e.cfg.httpPort}`;
    const seen: string[] = [];
    let token: string | null = null;
    do {
      const res: Response = await fetch(`${base}/v1/kv?prefix=user%2F&limit=64${token ? `&token=${token}` : ''}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { revision: number; count: number; more: boolean; token: string | null; kvs: { key: string; value: string; mod_revision: number; create_revision: number; version: number }[] };
      expect(body.count).toBe(N - seen.length); // the keys from this page on
      expect(Number(res.headers.get('x-cairn-revision'))).toBe(body.revision);
      for (const kv of body.kvs) {
        const k = Buffer.from(kv.key, 'base64').toString();
        seen.push(k);
        expect({ k, value: Buffer.from(kv.value, 'base64').toString(), rev: kv.mod_revision, created: kv.create_revision, version: kv.version }).toEqual({ k, value: last.get(k)!.value, rev: last.get(k)!.revision, created: created.get(k), version: last.get(k)!.version });
      }
      token = body.more ? body.token : null;
    } while (token);
    expect(seen).toEqual(userKeys);
    const between = (await (await fetch(`${base}/v1/kv?start=user%2F0010&end=user%2F0013&keys_only=true`)).json()) as { kvs: { key: string; value?: string }[] };
    expect(between.kvs.map((kv) => Buffer.from(kv.key, 'base64').toString())).toEqual(userKeys.slice(10, 13));
    expect(between.kvs[0].value).toBeUndefined();
    expect((await fetch(`${base}/v1/kv?prefix=user%2F&start=a`)).status).toBe(400);
  }

  const items = (v: RespValue): RespValue[] => (v.type === 'array' && v.value ? v.value : []);
  const text = (v: RespValue): string => (v.type === 'bulk' && v.value ? v.value.toString() : `<${v.type}>`);

  async function checkResp(): Promise<void> {
    const r = await RespSocketClient.connect(e2e.cfg.respPort);
    try {
      const seen = new Set<string>();
      let cursor = '0';
      let pages = 0;
      do {
        const [reply] = await r.send(encodeCommand(['SCAN', cursor, 'MATCH', 'user/*', 'COUNT', '40']), 1);
        const [next, keys] = items(reply);
        for (const k of items(keys)) seen.add(text(k));
        cursor = text(next);
        pages++;
      } while (cursor !== '0');
      expect([...seen].sort()).toEqual(userKeys);
      expect(pages).toBe(Math.ceil(N / 40));
      const [keys] = await r.send(encodeCommand(['KEYS', 'user/00[0-1]?']), 1);
      expect(items(keys).map(text)).toEqual(userKeys.slice(0, 20));
      const [bad] = await r.send(encodeCommand(['SCAN', '12345']), 1);
      expect(bad).toEqual({ type: 'error', value: 'ERR invalid cursor' });
    } finally {
      r.socket.destroy();
    }
  }

  it('every door reads the keys in order with their metadata', async () => {
    await checkClient();
    await checkHttp();
    await checkResp();
  });

  it('after a storage node is SIGKILLed and restarted, it serves the same ranges alone', async () => {
    await e2e.cluster.kill('s1', 'SIGKILL');
    await client.set('user/0001', 'after-kill').then((w) => last.set('user/0001', { value: 'after-kill', revision: w.revision, version: 2 }));
    await e2e.cluster.restart('s1');
    await e2e.cluster.kill('s2', 'SIGKILL');
    await checkClient();
    await checkHttp();
    await checkResp();
    await e2e.cluster.restart('s2');
  });
});
