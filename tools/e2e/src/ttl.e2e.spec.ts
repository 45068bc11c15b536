import { CairnClient } from '@cairn/client';
import { RespSocketClient, encodeCommand, type RespValue } from '@cairn/resp';
import { useBusCluster } from './bus-cluster.spec-helpers';
import { pollUntil } from './fixtures';

const KEYS = 1000;
const TTL_MS = 2000;
/**
 * How long after their expiry the keys' deletes may take to be applied and reported (docs/leases.md
 * "Expiry bound": expiryCheckIntervalMs + a commit + the storage heartbeat, with room for the
 * shared 2-core box).
 */
const DELETE_BOUND_MS = 3000;

/** Key TTLs on a real cluster (3 replicas, 2 storage nodes, nats-server): expiry is decided by the leader and applied through the log. */
describe('TTL keys end to end', () => {
  const e2e = useBusCluster('e2e-ttl');

  it(`${KEYS} keys with a ${TTL_MS} ms TTL: none readable after expiry on any door (RESP, TLV, HTTP; gets and ranges), all deleted on every storage node within the bound; a key without TTL stays`, async () => {
    const c = await RespSocketClient.connect(e2e.cfg.respPort);
    const tlv = await CairnClient.connect({ host: '127.0.0.1', port: e2e.cfg.gatewayPort, requestTimeoutMs: 15_000 });
    try {
      expect(await c.send(encodeCommand(['SET', 'stays', 'v']), 1)).toEqual([{ type: 'simple', value: 'OK' }]);
      const sets = Buffer.concat(Array.from({ length: KEYS }, (_, i) => encodeCommand(['SET', `ttl:${i}`, 'v', 'PX', String(TTL_MS)])));
      const replies = await c.send(sets, KEYS);
      const badReply = replies.find((r) => !(r.type === 'simple' && r.value === 'OK'));
      expect(badReply).toBeUndefined();
      // Each key expires TTL_MS after the gateway took its SET, so by t0 + TTL_MS all have.
      const t0 = Date.now();
      // Expiry is a point in time: wait for it, then every read must miss (hidden even before the delete applies).
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + TTL_MS - Date.now())));
      const mget = encodeCommand(['MGET', ...Array.from({ length: KEYS }, (_, i) => `ttl:${i}`), 'stays']);
      const [all] = await c.send(mget, 1);
      const values = (all as Extract<RespValue, { type: 'array' }>).value ?? [];
      expect(values.slice(0, KEYS).filter((v) => v.type !== 'bulk' || v.value !== null)).toEqual([]);
      expect(values[KEYS]).toEqual({ type: 'bulk', value: Buffer.from('v') });
      // Meanwhile the leader proposes the deletes: every storage node's key count (its heartbeat) falls to the one key left.
      const deleted = pollUntil('every storage node deleted them', () => {
        const st = e2e.cluster.statuses().storage;
        return st.length === 2 && st.every((s) => s.keys === 1) ? Date.now() : null;
      }, { timeoutMs: Math.max(1, t0 + TTL_MS + DELETE_BOUND_MS - Date.now()), everyMs: 50, last: () => JSON.stringify(e2e.cluster.statuses().storage.map((s) => [s.id, s.keys])) });
      deleted.catch(() => undefined); // awaited below; a rejection meanwhile is not unhandled
      // The TLV door (gets and a range read) and HTTP (a range read, a get) miss them too, deleted yet or not.
      const gets = await Promise.all(Array.from({ length: KEYS }, (_, i) => tlv.get(`ttl:${i}`)));
      expect(gets.filter((g) => g !== null)).toEqual([]);
      expect((await tlv.range({ prefix: 'ttl:' })).items).toEqual([]);
      const httpRange = (await (await fetch(`http://127.0.0.1:${e2e.cfg.httpPort}/v1/kv?prefix=ttl:`)).json()) as { kvs: unknown[] };
      expect(httpRange.kvs).toEqual([]);
      expect((await fetch(`http://127.0.0.1:${e2e.cfg.httpPort}/v1/kv/ttl:${KEYS - 1}`)).status).toBe(404);
      const goneAtMs = await deleted;
      expect(await c.send(encodeCommand(['DBSIZE']), 1)).toEqual([{ type: 'integer', value: 1 }]);
      process.stdout.write(`ttl e2e: ${KEYS} keys deleted on every storage node and reported ${goneAtMs - t0 - TTL_MS} ms after the last one expired\n`);
    } finally {
      c.socket.destroy();
      await tlv.close();
    }
  });

  it('EXPIRE then the key is gone; PERSIST keeps a key; TTL / PTTL / EXPIRETIME read the expiry back (and HTTP GET its Cairn-Expires-At); SET KEEPTTL on an expired key makes a key without expiry', async () => {
    const c = await RespSocketClient.connect(e2e.cfg.respPort);
    const one = async (...args: string[]) => (await c.send(encodeCommand(args), 1))[0];
    const int = (value: number) => ({ type: 'integer', value });
    try {
      expect(await one('TTL', 'e:missing')).toEqual(int(-2));
      expect(await one('SET', 'e:gone', 'v')).toEqual({ type: 'simple', value: 'OK' });
      expect(await one('SET', 'e:kept', 'v', 'EX', '1')).toEqual({ type: 'simple', value: 'OK' });
      expect(await one('TTL', 'e:gone')).toEqual(int(-1));
      const t0 = Date.now();
      expect(await one('PEXPIRE', 'e:gone', '600')).toEqual(int(1));
      expect(await one('EXPIRE', 'e:gone', '100', 'NX')).toEqual(int(0));
      const pttl = await one('PTTL', 'e:gone');
      expect(pttl.type === 'integer' && pttl.value > 0 && pttl.value <= 600).toBe(true);
      const at = await one('PEXPIRETIME', 'e:gone');
      expect(at.type === 'integer' && at.value >= t0 + 600 - 1000 && at.value <= Date.now() + 600).toBe(true);
      const res = await fetch(`http://127.0.0.1:${e2e.cfg.httpPort}/v1/kv/e:gone`);
      expect(res.headers.get('cairn-expires-at')).toBe(String((at as { value: number }).value));
      expect(await one('PERSIST', 'e:kept')).toEqual(int(1));
      expect(await one('TTL', 'e:kept')).toEqual(int(-1));
      // Past both former expiries: the EXPIREd key is gone on every read, the PERSISTed one stays.
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + 1000 - Date.now())));
      expect(await one('GET', 'e:gone')).toEqual({ type: 'bulk', value: null });
      expect(await one('TTL', 'e:gone')).toEqual(int(-2));
      expect(await one('EXPIRE', 'e:gone', '10')).toEqual(int(0));
      expect(await one('GET', 'e:kept')).toEqual({ type: 'bulk', value: Buffer.from('v') });
      expect((await fetch(`http://127.0.0.1:${e2e.cfg.httpPort}/v1/kv/e:gone`)).status).toBe(404);
      // SET KEEPTTL on the expired key (its delete may still be pending): a new key without expiry, which the pending delete must not take.
      expect(await one('SET', 'e:gone', 'again', 'KEEPTTL')).toEqual({ type: 'simple', value: 'OK' });
      expect(await one('TTL', 'e:gone')).toEqual(int(-1));
      await new Promise((r) => setTimeout(r, 600));
      expect(await one('GET', 'e:gone')).toEqual({ type: 'bulk', value: Buffer.from('again') });
    } finally {
      c.socket.destroy();
    }
  });

  it('inside MULTI/EXEC, INCR keeps a key\'s TTL and SET clears it, as in Redis', async () => {
    const c = await RespSocketClient.connect(e2e.cfg.respPort);
    const one = async (...args: string[]) => (await c.send(encodeCommand(args), 1))[0];
    try {
      for (const k of ['x:n', 'x:s']) expect(await one('SET', k, '5', 'EX', '100')).toEqual({ type: 'simple', value: 'OK' });
      const [multi, incr, set, exec] = await c.send(Buffer.concat([encodeCommand(['MULTI']), encodeCommand(['INCR', 'x:n']), encodeCommand(['SET', 'x:s', '1']), encodeCommand(['EXEC'])]), 4);
      expect([multi, incr, set]).toEqual([{ type: 'simple', value: 'OK' }, { type: 'simple', value: 'QUEUED' }, { type: 'simple', value: 'QUEUED' }]);
      expect(exec).toEqual({ type: 'array', value: [{ type: 'integer', value: 6 }, { type: 'simple', value: 'OK' }] });
      const ttl = await one('TTL', 'x:n');
      expect(ttl.type === 'integer' && ttl.value > 0 && ttl.value <= 100).toBe(true);
      expect(await one('TTL', 'x:s')).toEqual({ type: 'integer', value: -1 });
    } finally {
      c.socket.destroy();
    }
  });
});
