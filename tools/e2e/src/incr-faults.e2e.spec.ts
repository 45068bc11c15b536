import { faultRetryingPool, useTwoGatewayCluster } from './bus-cluster.spec-helpers';
import { twoFaultSchedule } from './fixtures';

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
  const e2e = useTwoGatewayCluster('incrfaults', STORAGE);

  it(`${CLIENTS} clients × ${PER_CLIENT} INCR: final value ${CLIENTS * PER_CLIENT}, every acknowledged value distinct`, async () => {
    const total = CLIENTS * PER_CLIENT;
    const { cluster, ports } = e2e;
    const pools = await Promise.all(Array.from({ length: CLIENTS }, () => faultRetryingPool(ports)));
    const values: bigint[] = [];
    let retriesBefore = 0;
    const schedule = twoFaultSchedule({ cluster, pools, gateways: ports.length, storage: STORAGE, total, inflightWanted: () => CLIENTS, beforeGatewayKill: () => (retriesBefore = pools.reduce((n, p) => n + p.stats().retries, 0)) });
    const onAck = () => schedule.progress(values.length);
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
      await schedule.finished();
      const { faults, victimHeld } = schedule;
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
