import { CairnPool, type CairnError } from '@cairn/client';
import { useTwoGatewayCluster } from './bus-cluster.spec-helpers';

/**
 * The client library against a real cluster with two gateways: one gateway is SIGKILLed in the
 * middle of a run. Reads fail over to the other gateway and all succeed; a write either succeeds
 * or fails with a typed error (never re-sent blindly), and every acknowledged write reads back.
 */
describe('CairnPool failover on a real cluster', () => {
  const e2e = useTwoGatewayCluster('pool', ['s1']);

  it('keeps serving when a gateway is SIGKILLed mid-run', async () => {
    const downs: string[] = [];
    const pool = await CairnPool.connect({
      gateways: e2e.ports.map((port) => ({ host: '127.0.0.1', port })),
      connectionsPerGateway: 2,
      requestTimeoutMs: 10_000,
      onGatewayStateChange: (g, up) => {
        if (!up) downs.push(`${g.host}:${g.port}`);
      },
    });
    try {
      const acked = new Map<string, string>();
      const writeErrors: string[] = [];
      const ROUNDS = 60;
      for (let round = 0; round < ROUNDS; round++) {
        if (round === ROUNDS / 2) await e2e.cluster.kill('g1', 'SIGKILL');
        // A write that failed after it was sent may or may not have been applied.
        const maybe = new Map<string, string>();
        const ops = Array.from({ length: 20 }, async (_, i) => {
          const key = `k${i}`;
          const value = `r${round}-${i}`;
          try {
            await pool.set(key, value);
            acked.set(key, value);
          } catch (e) {
            writeErrors.push((e as CairnError).code);
            maybe.set(key, value);
          }
        });
        await Promise.all(ops);
        // Reads are idempotent: every one must succeed, failing over when its gateway died.
        const reads = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.get(`k${i}`)));
        reads.forEach((r, i) => {
          const want = [acked.get(`k${i}`), maybe.get(`k${i}`)].filter((v) => v !== undefined);
          if (want.length) expect(want).toContain(r?.value.toString());
        });
      }
      expect(downs).toContain(`127.0.0.1:${e2e.ports[0]}`);
      // Writes that failed did so with typed, documented codes (no silent loss, no blind re-send).
      for (const code of writeErrors) expect(['CONNECTION_CLOSED', 'TIMEOUT', 'UNAVAILABLE']).toContain(code);
      expect(acked.size).toBe(20);
    } finally {
      await pool.close();
    }
  });
});
