import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CairnClient } from '@cairn/client';
import {
  ApplyOutcome,
  CommandOp,
  Status,
  decodeOutcomeReply,
  decodeProposeReply,
  encodeOutcomeRequest,
  encodeProposeRequest,
  type Command,
} from '@cairn/protocol';
import { useBusCluster } from './bus-cluster.spec-helpers';

/**
 * Exactly-once application of a re-sent write (Raft thesis §6.3 client sessions) on real
 * processes: the same (session, seq) proposed twice, with another client's write to the key in
 * between, is applied once on every storage node, also across a storage-node restart and a
 * rebuild from the Raft log; its duplicate's outcome is the original's.
 */
describe('duplicate-safe writes end to end', () => {
  const e2e = useBusCluster('e2e-duplicates');

  /** Proposes the exact bytes of `commands` to the leader (as a gateway re-sending after a lost reply would); the index of the first. */
  async function propose(payload: Uint8Array): Promise<number> {
    for (;;) {
      const leader = await e2e.cluster.leaderId();
      const r = decodeProposeReply((await e2e.nc.request(e2e.subjects.propose(leader), payload, { timeout: 10_000 })).data);
      if (r.status === Status.Ok) return r.firstIndex;
      if (r.status !== Status.NotLeader) throw new Error(`proposal answered ${Status[r.status]}: ${r.message}`);
    }
  }
  const outcomeAt = async (node: string, index: number, sessionId: bigint, seq: number) => {
    const res = await e2e.nc.request(e2e.subjects.read(node), encodeOutcomeRequest({ queries: [{ index, session: { sessionId, seq } }] }), { timeout: 10_000 });
    return decodeOutcomeReply(res.data).results[0];
  };

  it('a re-sent write (same session and seq) is applied once on every storage node, across a restart and a rebuild from the log', async () => {
    const mine: Command = { op: CommandOp.Set, key: Buffer.from('k'), value: Buffer.from('mine'), session: { sessionId: 0x5e55_1011_0000_0001n, seq: 1, firstPendingSeq: 1 } };
    const theirs: Command = { op: CommandOp.Set, key: Buffer.from('k'), value: Buffer.from('theirs'), session: { sessionId: 0x5e55_1011_0000_0002n, seq: 1, firstPendingSeq: 1 } };
    const minePayload = encodeProposeRequest({ commands: [mine] });
    const first = await propose(minePayload);
    const other = await propose(encodeProposeRequest({ commands: [theirs] }));
    const resent = await propose(minePayload); // the reply to `first` was "lost": the same bytes again
    expect(resent).toBeGreaterThan(other);
    for (const node of e2e.cluster.ids('storage')) {
      expect(await e2e.readAt(node, 'k', resent)).toEqual({ status: Status.Ok, revision: other, value: 'theirs' });
      expect(await outcomeAt(node, resent, mine.session!.sessionId, 1)).toEqual({ outcome: ApplyOutcome.Applied, revision: first });
    }

    // s1 restarts (SIGKILL, data kept): its session table comes back with its applied index
    await e2e.cluster.kill('s1', 'SIGKILL');
    await e2e.cluster.restart('s1');
    expect(await outcomeAt('s1', resent, mine.session!.sessionId, 1)).toEqual({ outcome: ApplyOutcome.Applied, revision: first });
    const again = await propose(minePayload);
    expect(await e2e.readAt('s1', 'k', again)).toEqual({ status: Status.Ok, revision: other, value: 'theirs' });

    // s2 is rebuilt from the Raft log: it makes the same decisions
    await e2e.cluster.kill('s2', 'SIGKILL');
    rmSync(join(e2e.cluster.config.dataDir, 's2'), { recursive: true, force: true });
    await e2e.cluster.restart('s2');
    expect(await e2e.readAt('s2', 'k', again)).toEqual({ status: Status.Ok, revision: other, value: 'theirs' });
    expect(await outcomeAt('s2', again, mine.session!.sessionId, 1)).toEqual({ outcome: ApplyOutcome.Applied, revision: first });
  });

  it('the gateway re-sends writes whose outcome a paused leader made unknown, and answers each with its true outcome', async () => {
    const c = await CairnClient.connect({ host: '127.0.0.1', port: e2e.cfg.gatewayPort, requestTimeoutMs: 30_000 });
    const leader = await e2e.cluster.leaderId();
    try {
      // Paused, the leader takes the proposals but never answers: every write's outcome is unknown
      // to the gateway until it re-sends them to the leader the others elect.
      process.kill(e2e.cluster.pid(leader)!, 'SIGSTOP');
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => c.set(`load-${i % 10}`, `v${i}`)));
      // the last acknowledged write of each key is what every storage node holds
      const last = new Map<number, { i: number; revision: number }>();
      results.forEach((r, i) => {
        if ((last.get(i % 10)?.revision ?? 0) < r.revision) last.set(i % 10, { i, revision: r.revision });
      });
      const top = Math.max(...results.map((r) => r.revision));
      for (const node of e2e.cluster.ids('storage')) {
        for (const [k, w] of last) expect(await e2e.readAt(node, `load-${k}`, top)).toMatchObject({ status: Status.Ok, value: `v${w.i}`, revision: w.revision });
      }
    } finally {
      await c.close();
      await e2e.cluster.kill(leader, 'SIGKILL');
    }
    await e2e.cluster.kill('g1', 'SIGTERM'); // flushes its log
    expect(readFileSync(e2e.cluster.logPath('g1'), 'utf8')).toMatch(/re-sent writes committed; asking storage for their outcome/);
  });
});
