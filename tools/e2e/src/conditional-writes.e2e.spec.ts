import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { CairnClient } from '@cairn/client';
import { Status } from '@cairn/protocol';
import { RespSocketClient, encodeCommand } from '@cairn/resp';
import { useBusCluster } from './bus-cluster.spec-helpers';
import { runCli } from './fixtures';

/**
 * SET NX / XX on real processes: the condition travels in the replicated command and every
 * storage node evaluates it at apply time, so of many clients racing SET NX on one key exactly one
 * wins, and every storage node (also one rebuilt from the Raft log) holds the winner's value.
 */
describe('conditional writes end to end', () => {
  const e2e = useBusCluster('e2e-conditional');

  it('many clients race SET NX on one key: exactly one wins, and every storage node returns its value, also after a rebuild from the log', async () => {
    const racers = 24;
    const clients = await Promise.all(Array.from({ length: racers }, () => CairnClient.connect({ host: '127.0.0.1', port: e2e.cfg.gatewayPort })));
    try {
      const results = await Promise.all(clients.map((c, i) => c.set('lock', `owner-${i}`, { ifAbsent: true })));
      const winners = results.flatMap((r, i) => (r.applied ? [{ i, revision: r.revision }] : []));
      expect(winners).toHaveLength(1);
      const winner = winners[0];
      // every loser's condition was evaluated after the winner's write, in log order
      for (const r of results) if (!r.applied) expect(r.revision).toBeGreaterThan(winner.revision);
      const last = Math.max(...results.map((r) => r.revision));
      for (const node of e2e.cluster.ids('storage')) {
        expect(await e2e.readAt(node, 'lock', last)).toEqual({ status: Status.Ok, revision: winner.revision, value: `owner-${winner.i}` });
      }
      expect((await clients[0].get('lock'))?.value.toString()).toBe(`owner-${winner.i}`);

      // XX on the held lock applies; on a missing key it does not
      const xx = await clients[1].set('lock', 'renewed', { ifPresent: true });
      expect(xx.applied).toBe(true);
      expect(await clients[2].set('no-such-key', 'v', { ifPresent: true })).toMatchObject({ applied: false });

      // s1 loses its data and is rebuilt from the Raft log: it re-evaluates every condition in log order
      await e2e.cluster.kill('s1', 'SIGKILL');
      rmSync(join(e2e.cluster.config.dataDir, 's1'), { recursive: true, force: true });
      await e2e.cluster.restart('s1');
      expect(await e2e.readAt('s1', 'lock', xx.revision)).toEqual({ status: Status.Ok, revision: xx.revision, value: 'renewed' });
      expect(await e2e.readAt('s1', 'no-such-key', xx.revision + 1)).toMatchObject({ status: Status.NotFound });
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  it('the RESP, HTTP and CLI doors: SET NX/XX, SETNX, PUT ?if=, put --nx', async () => {
    const r = await RespSocketClient.connect(e2e.cfg.respPort);
    expect(
      await r.send(
        Buffer.concat([
          encodeCommand(['SET', 'door', 'resp', 'NX']),
          encodeCommand(['SET', 'door', 'again', 'NX']),
          encodeCommand(['SETNX', 'door', 'again']),
          encodeCommand(['SET', 'door-missing', 'v', 'XX']),
          encodeCommand(['GET', 'door']),
        ]),
        5,
      ),
    ).toEqual([
      { type: 'simple', value: 'OK' },
      { type: 'bulk', value: null },
      { type: 'integer', value: 0 },
      { type: 'bulk', value: null },
      { type: 'bulk', value: Buffer.from('resp') },
    ]);
    await r.send(encodeCommand(['QUIT']), 1);

    const base = `http://127.0.0.1:${e2e.cfg.httpPort}/v1/kv`;
    expect((await fetch(`${base}/door?if=absent`, { method: 'PUT', body: 'http' })).status).toBe(412);
    expect((await fetch(`${base}/door?if=present`, { method: 'PUT', body: 'http' })).status).toBe(200);
    expect((await fetch(`${base}/door-http?if=absent`, { method: 'PUT', body: 'new' })).status).toBe(200);

    const gw = ['--gateway', `127.0.0.1:${e2e.cfg.gatewayPort}`];
    expect(await runCli([...gw, 'put', '--nx', 'door', 'cli'])).toMatchObject({ code: 6 });
    const ok = await runCli([...gw, 'put', '--xx', 'door', 'cli']);
    expect(ok.code).toBe(0);
    expect(await runCli([...gw, 'get', 'door'])).toMatchObject({ code: 0, stdout: 'cli' });
  });
});
