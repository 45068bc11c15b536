import { CairnClient, LeaseLostError, LeaseNotFoundError, Status } from '@cairn/client';
import { useBusCluster } from './bus-cluster.spec-helpers';
import { pollUntil, runCli } from './fixtures';

const KEYS = 100;
const TTL_MS = 2000;

/**
 * Leases on real processes (issue 12; docs/leases.md "Doors"): grant, attach keys, keep alive at
 * the consensus leader (lease.<replica>) across a leader SIGKILL, expiry once the keep-alive stops,
 * revoke deleting every attached key at one revision.
 */
describe('leases end to end', () => {
  const e2e = useBusCluster('e2e-lease');

  it(`a ${TTL_MS} ms lease with ${KEYS} keys kept alive through a leader SIGKILL; its keys go once the keep-alive stops; a revoke deletes its keys`, async () => {
    const c = await CairnClient.connect({ host: '127.0.0.1', port: e2e.cfg.gatewayPort, requestTimeoutMs: 15_000 });
    try {
      const grant = await c.leaseGrant(TTL_MS);
      expect(grant).toMatchObject({ ttlMs: TTL_MS });
      expect(grant.leaseId).toBeGreaterThan(0);
      await expect(c.leaseGrant(TTL_MS, { id: grant.leaseId })).rejects.toMatchObject({ code: 'LEASE_EXISTS' });
      const keys = Array.from({ length: KEYS }, (_, i) => `lease/${i}`);
      await Promise.all(keys.map((k) => c.set(k, 'v', { lease: grant.leaseId })));
      await expect(c.set('lease/none', 'v', { lease: grant.leaseId + 1 })).rejects.toBeInstanceOf(LeaseNotFoundError);
      expect(await c.leases()).toContain(grant.leaseId);

      const keeper = c.keepAlive(grant.leaseId);
      await pollUntil('a first renewal', () => (keeper.renewals > 0 ? true : null));
      const ttl = await c.leaseTimeToLive(grant.leaseId, { keys: true });
      expect(ttl?.ttlMs).toBe(TTL_MS);
      expect(ttl!.remainingMs).toBeLessThanOrEqual(TTL_MS);
      expect(ttl!.keys.map((k) => k.toString()).sort()).toEqual([...keys].sort());
      expect(ttl!.more).toBe(false);

      // The leader holds the deadlines: kill it; the new one extends every lease on promotion and
      // takes the keep-alives from then on. Held for more than two TTLs after the kill.
      const leader = await e2e.cluster.leaderId();
      await e2e.cluster.kill(leader, 'SIGKILL');
      const killedAtMs = Date.now();
      const before = keeper.renewals;
      await pollUntil('renewals through the new leader for two TTLs', () => (keeper.renewals >= before + 3 && Date.now() - killedAtMs > 2 * TTL_MS ? true : null), { timeoutMs: 30_000 });
      const kept = await Promise.all(keys.map((k) => c.get(k)));
      expect(kept.filter((g) => g === null)).toEqual([]);

      keeper.stop();
      await keeper.closed;
      const stoppedAtMs = Date.now();
      await pollUntil('the lease expired', async () => ((await c.leaseTimeToLive(grant.leaseId)) === null ? true : null), { timeoutMs: TTL_MS + 10_000 });
      const gone = await Promise.all(keys.map((k) => c.get(k)));
      expect(gone.filter((g) => g !== null)).toEqual([]);
      process.stdout.write(`lease e2e: lease expired ${Date.now() - stoppedAtMs} ms after its keep-alive stopped (TTL ${TTL_MS} ms)\n`);

      // Revoke: every attached key goes at the revoke's revision, on every storage node.
      const r = await c.leaseGrant(60_000);
      const attached = await Promise.all(['rev/a', 'rev/b', 'rev/c'].map((k) => c.set(k, k, { lease: r.leaseId })));
      await c.set('rev/free', 'stays');
      const lost = c.keepAlive(r.leaseId, { intervalMs: 200 });
      const revoke = await c.leaseRevoke(r.leaseId);
      expect(revoke.revision).toBeGreaterThan(Math.max(...attached.map((a) => a.revision)));
      for (const node of e2e.cluster.ids('storage')) {
        for (const k of ['rev/a', 'rev/b', 'rev/c']) expect(await e2e.readAt(node, k, revoke.revision)).toMatchObject({ status: Status.NotFound });
        expect(await e2e.readAt(node, 'rev/free', revoke.revision)).toMatchObject({ status: Status.Ok, value: 'stays' });
      }
      // A watch from the revoke's revision sees the three deletes at that one revision, and nothing else.
      const deletes: { key: string; type: string; modRevision: number }[] = [];
      for await (const ev of c.watch({ prefix: 'rev/', startRevision: revoke.revision, signal: AbortSignal.timeout(15_000) })) {
        if (ev.type === 'progress') continue;
        deletes.push({ key: ev.key.toString(), type: ev.type, modRevision: ev.modRevision });
        if (deletes.length === 3) break;
      }
      expect(deletes.sort((a, b) => a.key.localeCompare(b.key))).toEqual(['rev/a', 'rev/b', 'rev/c'].map((key) => ({ key, type: 'delete', modRevision: revoke.revision })));
      await expect(c.leaseRevoke(r.leaseId)).rejects.toBeInstanceOf(LeaseNotFoundError);
      await expect(lost.closed).rejects.toBeInstanceOf(LeaseLostError);
    } finally {
      await c.close();
    }
  }, 90_000);

  it('the HTTP door: grant, PUT ?lease=, keep-alive, time to live, list, revoke (404 once gone)', async () => {
    const base = `http://127.0.0.1:${e2e.cfg.httpPort}`;
    const call = async (method: string, path: string, body?: string) => {
      const res = await fetch(base + path, { method, body });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };
    const grant = await call('POST', '/v1/lease?ttl=30s');
    expect(grant).toMatchObject({ status: 200, json: { ttl_ms: 30_000 } });
    const id = grant.json.id as number;
    expect((await call('PUT', `/v1/kv/http-lease?lease=${id}`, 'v')).status).toBe(200);
    expect(await call('POST', `/v1/lease/${id}/keepalive`)).toMatchObject({ status: 200, json: { id, ttl_ms: 30_000 } });
    const ttl = await call('GET', `/v1/lease/${id}?keys=true`);
    expect(ttl).toMatchObject({ status: 200, json: { id, ttl_ms: 30_000, keys: [Buffer.from('http-lease').toString('base64')], more: false } });
    expect(ttl.json.remaining_ms as number).toBeLessThanOrEqual(30_000);
    expect((await call('GET', '/v1/lease')).json.leases).toContain(id);
    expect((await call('POST', '/v1/lease?ttl=1s&id=' + id)).status).toBe(412);
    const revoke = await call('DELETE', `/v1/lease/${id}`);
    expect(revoke.status).toBe(200);
    expect((await fetch(`${base}/v1/kv/http-lease`)).status).toBe(404);
    expect(await call('GET', `/v1/lease/${id}`)).toMatchObject({ status: 404 });
    expect(await call('PUT', `/v1/kv/http-lease?lease=${id}`, 'v')).toMatchObject({ status: 404, json: { message: 'lease not found' } });
    expect((await call('POST', '/v1/lease/0/keepalive')).status).toBe(400);
  });

  it('the CLI: lease grant, put --lease --ttl, keepalive --once, revoke (the key gone)', async () => {
    // Five CLI processes (each a Node start, seconds on a loaded box); the rest is in apps/cli's spec.
    const gw = ['--gateway', `127.0.0.1:${e2e.cfg.gatewayPort}`];
    const grant = await runCli([...gw, 'lease', 'grant', '30s']);
    expect(grant).toMatchObject({ code: 0, stderr: '' });
    const id = grant.stdout.trim();
    expect(await runCli([...gw, 'put', '--lease', id, '--ttl', '60s', 'cli-lease', 'v'])).toMatchObject({ code: 0 });
    expect(await runCli([...gw, 'lease', 'keepalive', '--once', id])).toEqual({ code: 0, stdout: `lease ${id} keepalived with TTL(30s)\n`, stderr: '' });
    expect(await runCli([...gw, 'lease', 'revoke', id])).toMatchObject({ code: 0 });
    expect(await runCli([...gw, 'get', 'cli-lease'])).toMatchObject({ code: 1 });
  });
});
