import { execFile } from 'node:child_process';
import { RespSocketClient, encodeCommand, type RespValue } from '@cairn/resp';
import { useBusCluster } from './bus-cluster.spec-helpers';

const INCREMENTS = Number(process.env.CAIRN_RESP_TXN_INCREMENTS ?? 10);

const text = (v: RespValue): string | null => (v.type === 'bulk' ? (v.value === null ? null : v.value.toString()) : null);
const one = async (c: RespSocketClient, ...args: string[]) => (await c.send(encodeCommand(args), 1))[0];

/** Redis transactions on the RESP door of real processes (issue 11; docs/resp.md "Transactions"). */
describe('RESP transactions end to end', () => {
  let clients: RespSocketClient[] = [];
  const e2e = useBusCluster('e2e-resp-txn', {}, { beforeStop: () => clients.forEach((c) => c.socket.destroy()) });

  beforeAll(async () => {
    clients = await Promise.all(Array.from({ length: 8 }, () => RespSocketClient.connect(e2e.cfg.respPort)));
  });

  it(`a WATCH/GET/MULTI/SET/EXEC optimistic counter: 8 clients x ${INCREMENTS} increments end at the exact sum`, async () => {
    let aborted = 0;
    await Promise.all(
      clients.map(async (c) => {
        for (let i = 0; i < INCREMENTS; i++) {
          for (;;) {
            expect(await one(c, 'WATCH', 'counter')).toEqual({ type: 'simple', value: 'OK' });
            const v = Number(text(await one(c, 'GET', 'counter')) ?? '0');
            const replies = await c.send(Buffer.concat([encodeCommand(['MULTI']), encodeCommand(['SET', 'counter', String(v + 1)]), encodeCommand(['EXEC'])]), 3);
            expect(replies.slice(0, 2)).toEqual([
              { type: 'simple', value: 'OK' },
              { type: 'simple', value: 'QUEUED' },
            ]);
            if (replies[2].type === 'array' && replies[2].value !== null) break;
            expect(replies[2]).toEqual({ type: 'array', value: null }); // a watched key changed: *-1
            aborted++;
          }
        }
      }),
    );
    expect(text(await one(clients[0], 'GET', 'counter'))).toBe(String(8 * INCREMENTS));
    process.stderr.write(`resp-txn e2e: ${8 * INCREMENTS} optimistic increments, ${aborted} EXECs answered *-1\n`);
  });

  it('INCR inside MULTI without WATCH never loses an update; MSETNX is all or nothing', async () => {
    await Promise.all(
      clients.map(async (c) => {
        for (let i = 0; i < INCREMENTS; i++) {
          const r = await c.send(Buffer.concat([encodeCommand(['MULTI']), encodeCommand(['INCR', 'n']), encodeCommand(['INCRBY', 'n', '2']), encodeCommand(['EXEC'])]), 4);
          const exec = r[3];
          if (exec.type !== 'array' || exec.value === null) throw new Error(`EXEC answered ${JSON.stringify(exec)}`);
          const [a, b] = exec.value.map((x) => (x.type === 'integer' ? x.value : NaN));
          expect(b).toBe(a + 2); // both at one revision: no other client's increment between them
        }
      }),
    );
    expect(text(await one(clients[0], 'GET', 'n'))).toBe(String(8 * INCREMENTS * 3));

    // 8 clients race MSETNX on the same three keys: exactly one sets them, all three to its value
    const won = await Promise.all(clients.map((c, id) => one(c, 'MSETNX', 'm:a', `c${id}`, 'm:b', `c${id}`, 'm:c', `c${id}`)));
    const winners = won.flatMap((r, id) => (r.type === 'integer' && r.value === 1 ? [id] : []));
    expect(winners).toHaveLength(1);
    expect(won.filter((r) => r.type === 'integer' && r.value === 0)).toHaveLength(7);
    expect((await clients[0].send(encodeCommand(['MGET', 'm:a', 'm:b', 'm:c']), 1))[0]).toEqual({ type: 'array', value: Array(3).fill({ type: 'bulk', value: Buffer.from(`c${winners[0]}`) }) });
    // one existing key: nothing set
    expect(await one(clients[1], 'MSETNX', 'fresh:1', 'x', 'm:b', 'y')).toEqual({ type: 'integer', value: 0 });
    expect(await one(clients[1], 'EXISTS', 'fresh:1')).toEqual({ type: 'integer', value: 0 });
    // GETSET, GETDEL, SET ... GET on the real store
    expect(await one(clients[2], 'GETSET', 'gs', 'a')).toEqual({ type: 'bulk', value: null });
    expect(text(await one(clients[2], 'SET', 'gs', 'b', 'GET', 'EX', '100'))).toBe('a');
    expect(text(await one(clients[2], 'GETDEL', 'gs'))).toBe('b');
    expect(await one(clients[2], 'GET', 'gs')).toEqual({ type: 'bulk', value: null });
  });

  it('redis-cli runs a MULTI/EXEC (skipped without redis-cli)', async () => {
    const out = await new Promise<string | null>((resolve) => {
      const p = execFile('redis-cli', ['-p', String(e2e.cfg.respPort)], { timeout: 10_000 }, (e, stdout) => resolve(e && (e as { code?: unknown }).code === 'ENOENT' ? null : stdout));
      p.stdin?.end('MULTI\nINCR cli\nINCR cli\nEXEC\nWATCH cli\nSET cli 7\nMULTI\nGET cli\nEXEC\n');
    });
    if (out === null) {
      process.stderr.write('resp-txn e2e: redis-cli is not installed; the redis-cli check is skipped\n');
      return;
    }
    expect(out).toBe('OK\nQUEUED\nQUEUED\n1\n2\nOK\nOK\nOK\nQUEUED\n\n');
  });
});
