import { CairnPool } from '@cairn/client';
import type { LocalCluster } from '@cairn/cluster';
import { pollUntil, startTwoGatewayCluster } from './fixtures';

/** Clients and increments per client: 32 × 200 in the test command; `CAIRN_INCR_PER_CLIENT=1000` gives the acceptance size of issue 11 (32,000; docs/reliability.md). */
const CLIENTS = 32;
const PER_CLIENT = Number(process.env.CAIRN_INCR_PER_CLIENT ?? 200);
const STORAGE = ['s1', 's2'];

/**
 * Exactly-once INCR through faults on real processes (issue 11): 32 CairnPools over two gateways
 * INCR one counter, each increment retried by the pool until acknowledged (the pool's INCR carries
 * its own session, so a copy re-sent through the other gateway applies at most once), while the
 * Raft leader is SIGKILLed and then a gateway is SIGKILLed holding committed increments it could
 * not answer yet. The final value is exactly CLIENTS × PER_CLIENT and the acknowledged new values
 * are exactly 1..CLIENTS × PER_CLIENT: none lost, none counted twice.
 */
describe('INCR exactly once through a leader SIGKILL and a gateway SIGKILL', () => {
  let cluster: LocalCluster;
  let ports: number[];

  beforeAll(async () => {
    ({ cluster, ports } = await startTwoGatewayCluster('incrfaults', STORAGE));
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it(`${CLIENTS} clients × ${PER_CLIENT} INCR: final value ${CLIENTS * PER_CLIENT}, every acknowledged value distinct`, async () => {
    const total = CLIENTS * PER_CLIENT;
    const pools = await Promise.all(
      Array.from({ length: CLIENTS }, () =>
        CairnPool.connect({
          gateways: ports.map((port) => ({ host: '127.0.0.1', port })),
          requestTimeoutMs: 60_000,
          attemptTimeoutMs: 12_000,
          attemptsMax: 1000,
          retryBudgetTokensMax: 1_000_000,
          backoffBaseMs: 20,
          backoffMaxMs: 500,
        }),
      ),
    );
    const values: bigint[] = [];
    const faults: string[] = [];
    let victimHeld = 0;
    let retriesBefore = 0;
    let faulting: Promise<void> = Promise.resolve();
    const onAck = () => {
      // Faults at a third and at two thirds of the run, while every client has increments in flight.
      if (values.length === Math.floor(total / 3)) {
        faulting = faulting.then(async () => {
          const leader = await cluster.leaderId();
          faults.push(leader);
          await cluster.kill(leader, 'SIGKILL');
        });
      } else if (values.length === Math.floor((2 * total) / 3)) {
        faulting = faulting.then(async () => {
          // Storage nodes frozen first: every client's next increment is proposed and committed
          // but cannot be answered (a gateway answers an INCR with the result a storage node
          // reports). The gateway holding most of them is SIGKILLed: it dies with committed
          // increments whose answers never left, so the clients' copies re-sent through the other
          // gateway are duplicates that must not apply again.
          const applied = Math.max(...cluster.statuses().storage.map((s) => s.appliedIndex));
          for (const id of STORAGE) process.kill(cluster.pid(id)!, 'SIGSTOP');
          const inflight = () => ports.map((_, i) => pools.reduce((n, p) => n + p.stats().gateways[i].inflight, 0));
          await pollUntil('every client with an increment in flight', () => (inflight().reduce((a, b) => a + b) === CLIENTS ? true : null), { everyMs: 20, last: () => inflight().join('/') });
          await pollUntil('an entry committed past the storage nodes', () => (cluster.statuses().consensus.some((c) => c.role === 'leader' && c.commitIndex > applied) ? true : null), { everyMs: 20 });
          await new Promise((r) => setTimeout(r, 300)); // fault pacing (the rest of the in-flight increments commit), not synchronisation
          const held = inflight();
          const victim = held.indexOf(Math.max(...held));
          faults.push(`g${victim + 1}`);
          victimHeld = held[victim];
          retriesBefore = pools.reduce((n, p) => n + p.stats().retries, 0);
          await cluster.kill(`g${victim + 1}`, 'SIGKILL');
          for (const id of STORAGE) process.kill(cluster.pid(id)!, 'SIGCONT');
        });
      }
    };
    try {
      await Promise.all(
        pools.map(async (pool) => {
          for (let i = 0; i < PER_CLIENT; i++) {
            const r = await pool.incr('counter');
            values.push(r.value);
            onAck();
          }
        }),
      );
      await faulting;
      expect(faults).toHaveLength(2);
      expect(faults[1]).toMatch(/^g[12]$/);
      // The killed gateway held increments, and each was re-sent through the other one.
      expect(victimHeld).toBeGreaterThanOrEqual(CLIENTS / 2);
      const retries = pools.reduce((n, p) => n + p.stats().retries, 0);
      expect(retries - retriesBefore).toBeGreaterThanOrEqual(victimHeld);
      const sorted = values.map(Number).sort((a, b) => a - b);
      expect(sorted).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      const final = await pools[0].get('counter');
      expect(final?.value.toString()).toBe(String(total));
      process.stderr.write(`incr-faults: ${total} increments, ${retries} pool retries (${victimHeld} in flight at the killed gateway), faults ${faults.join(', ')}\n`);
    } finally {
      await Promise.all(pools.map((p) => p.close()));
    }
  });
});
