import { CairnClient } from '@cairn/client';
import { useBusCluster } from './bus-cluster.spec-helpers';
import { pollUntil } from './fixtures';

/**
 * The gateway's HTTP door on real processes (docs/http.md): binary values round-trip through HTTP
 * and cross over to the binary protocol and back, probes and /metrics answer.
 */
describe('HTTP API end to end', () => {
  let base: string;
  let client: CairnClient;
  const e2e = useBusCluster('e2e-http', {}, { beforeStop: () => client?.close() });

  beforeAll(async () => {
    base = `http://127.0.0.1:${e2e.cfg.httpPort}`;
    client = await CairnClient.connect({ host: '127.0.0.1', port: e2e.cfg.gatewayPort });
    // The HTTP listener opens right after the TCP one the launcher waits for: wait for readiness.
    let status = 0;
    await pollUntil('/readyz 200', async () => ((status = await fetch(`${base}/readyz`).then((r) => r.status, () => 0)) === 200 ? true : null), { everyMs: 50, last: () => String(status) });
  });

  const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const pct = (key: Buffer) => [...key].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

  it('round-trips every byte value through HTTP and across the binary protocol both ways', async () => {
    const key = Buffer.from([0x00, 0x2f, 0xff, 0x25, 0x41]);
    const put = await fetch(`${base}/v1/kv/${pct(key)}`, { method: 'PUT', body: ALL_BYTES });
    expect(put.status).toBe(200);
    const revision = Number(put.headers.get('x-cairn-revision'));
    expect(revision).toBeGreaterThan(0);
    const get = await fetch(`${base}/v1/kv/${pct(key)}`);
    expect(get.status).toBe(200);
    expect(Buffer.from(await get.arrayBuffer()).equals(ALL_BYTES)).toBe(true);
    expect(await client.get(key)).toEqual({ value: ALL_BYTES, revision, createRevision: revision, version: 1 });

    const w = await client.set('from-tlv', Buffer.from([9, 8, 7]));
    const back = await fetch(`${base}/v1/kv/from-tlv`);
    expect(Buffer.from(await back.arrayBuffer())).toEqual(Buffer.from([9, 8, 7]));
    expect(Number(back.headers.get('x-cairn-revision'))).toBe(w.revision);

    const del = await fetch(`${base}/v1/kv/${pct(key)}`, { method: 'DELETE' });
    expect(Number(del.headers.get('x-cairn-revision'))).toBeGreaterThan(revision);
    expect((await fetch(`${base}/v1/kv/${pct(key)}`)).status).toBe(404);
    expect(await client.get(key)).toBeNull();
    const big = await fetch(`${base}/v1/kv/big`, { method: 'PUT', body: Buffer.alloc(e2e.cluster.config.gateway.valueBytesMax + 1) });
    expect(big.status).toBe(413);
  });

  it('reports the cluster and serves Prometheus metrics for both doors', async () => {
    const view = (await (await fetch(`${base}/v1/cluster`)).json()) as { leaderId: string; replicas: { role: string }[]; storage: unknown[] };
    expect(view.replicas.filter((r) => r.role === 'leader')).toHaveLength(1);
    expect(view.storage).toHaveLength(2);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/^# TYPE cairn_gateway_requests_total counter$/m);
    expect(text).toMatch(/^cairn_gateway_requests_total\{door="http",op="set",status="OK"\} [1-9]/m);
    expect(text).toMatch(/^cairn_gateway_requests_total\{door="tlv",op="get",status="OK"\} [1-9]/m);
    expect(text).toMatch(/^cairn_leader_known 1$/m);
    expect(text).toMatch(/^cairn_storage_applied_index\{node="s1"\} [1-9]/m);
  });
});
