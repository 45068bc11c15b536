import { RespSocketClient, encodeCommand } from '@cairn/resp';
import { useBusCluster } from './bus-cluster.spec-helpers';

/**
 * Atomic read-modify-write on real processes (issue 11): INCR evaluated by every storage node at
 * apply time, and compare-and-swap on the mod revision (HTTP `PUT ?if=revision:N`) through a
 * leader SIGKILL. Neither may lose or double an update.
 */
describe('atomic counters and compare-and-swap end to end', () => {
  const e2e = useBusCluster('e2e-incr');

  it('16 RESP clients x 200 INCR on one key: final value 3200, and every reply a distinct value of 1..3200', async () => {
    const clientsN = 16;
    const perClient = 200;
    const clients = await Promise.all(Array.from({ length: clientsN }, () => RespSocketClient.connect(e2e.cfg.respPort)));
    try {
      const replies = await Promise.all(
        clients.map(async (c) => {
          const got: number[] = [];
          for (let i = 0; i < perClient; i++) {
            const [r] = await c.send(encodeCommand(['INCR', 'counter']), 1);
            if (r.type !== 'integer') throw new Error(`INCR answered ${JSON.stringify(r)}`);
            got.push(Number(r.value));
          }
          return got;
        }),
      );
      const all = replies.flat().sort((a, b) => a - b);
      expect(all).toEqual(Array.from({ length: clientsN * perClient }, (_, i) => i + 1));
      expect(await clients[0].send(encodeCommand(['GET', 'counter']), 1)).toEqual([{ type: 'bulk', value: Buffer.from(String(clientsN * perClient)) }]);
      expect(await clients[0].send(encodeCommand(['INCRBY', 'counter', '-3200']), 1)).toEqual([{ type: 'integer', value: 0 }]);
      await clients[0].send(encodeCommand(['SET', 'text', 'abc']), 1);
      expect(await clients[0].send(encodeCommand(['INCR', 'text']), 1)).toEqual([{ type: 'error', value: 'ERR value is not an integer or out of range' }]);
    } finally {
      await Promise.all(clients.map((c) => c.send(encodeCommand(['QUIT']), 1).catch(() => undefined)));
    }
  });

  it('8 HTTP clients do read-modify-write with if=revision:N retries on one key through a leader SIGKILL: the final count equals the acknowledged increments', async () => {
    const clientsN = 8;
    const perClient = 25;
    const url = `http://127.0.0.1:${e2e.cfg.httpPort}/v1/kv/cas-counter`;
    // Every value a client read: another client can only CAS over a value after reading it, so a
    // write whose outcome was unknown (503) applied iff its tag is current or was ever read.
    const seen = new Set<string>();
    let acknowledged = 0;
    let killed: string | null = null;
    let killing: Promise<void> | null = null;
    const pause = () => new Promise((r) => setTimeout(r, 20)); // retry pacing while there is no leader, not synchronisation

    async function read(): Promise<{ n: number; tag: string; revision: number }> {
      for (;;) {
        const r = await fetch(url).catch(() => null);
        if (r?.status === 404) return { n: 0, tag: '', revision: 0 };
        if (r?.status === 200) {
          const v = JSON.parse(await r.text()) as { n: number; tag: string };
          seen.add(v.tag);
          return { ...v, revision: Number(r.headers.get('cairn-mod-revision')) };
        }
        await r?.arrayBuffer();
        await pause();
      }
    }

    async function worker(id: number): Promise<number> {
      let mine = 0;
      for (let attempt = 0; mine < perClient; attempt++) {
        const cur = await read();
        const tag = `w${id}-${attempt}`;
        const r = await fetch(`${url}?if=revision:${cur.revision}`, { method: 'PUT', body: JSON.stringify({ n: cur.n + 1, tag }) }).catch(() => null);
        const status = r?.status ?? 0;
        await r?.arrayBuffer();
        let applied = status === 200;
        if (status !== 200 && status !== 412) {
          // outcome unknown: decide from a linearizable read and what was ever read
          const now = await read();
          applied = now.tag === tag || seen.has(tag);
        }
        if (!applied) continue;
        mine++;
        acknowledged++;
        if (acknowledged === 50 && !killing) {
          killing = (async () => {
            killed = await e2e.cluster.leaderId();
            await e2e.cluster.kill(killed, 'SIGKILL');
          })();
        }
      }
      return mine;
    }

    const done = await Promise.all(Array.from({ length: clientsN }, (_, i) => worker(i)));
    await killing;
    expect(killed).not.toBeNull();
    expect(done).toEqual(Array(clientsN).fill(perClient));
    const final = await read();
    expect(final.n).toBe(clientsN * perClient);
    expect(acknowledged).toBe(clientsN * perClient);
    await e2e.cluster.restart(killed!);

    // a stale compare and a DELETE on the current revision
    const stale = await fetch(`${url}?if=revision:${final.revision - 1}`, { method: 'PUT', body: 'x' });
    expect(stale.status).toBe(412);
    expect((await fetch(`${url}?if=revision:${final.revision}`, { method: 'DELETE' })).status).toBe(200);
    expect((await fetch(url)).status).toBe(404);
  });
});
