import { SIM_EPOCH_MS, SimScheduler } from '@cairn/world';
import { ClusterView } from '../cluster/cluster-view';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { fakeStore } from '../resp/testing';
import { HttpApi } from './http-api';

describe('PUT/DELETE /v1/kv/:key?if=absent|present|revision:N (conditional writes)', () => {
  let api: HttpApi;
  let base: string;
  let store: ReturnType<typeof fakeStore>;
  beforeEach(async () => {
    const view = new ClusterView();
    store = fakeStore();
    api = new HttpApi({ gatewayId: 'g1', paths: { ...store.paths, limits: { keyBytesMax: 64, valueBytesMax: 1024 } }, view, metrics: new GatewayMetrics(view) });
    await api.listen('127.0.0.1', 0);
    base = `http://127.0.0.1:${api.port()}`;
  });
  afterEach(() => api.close());

  const put = (key: string, body: string, cond?: string) => fetch(`${base}/v1/kv/${key}${cond ? `?if=${cond}` : ''}`, { method: 'PUT', body });

  it('applies if=absent only to a missing key and if=present only to an existing one; 412 otherwise', async () => {
    const xx = await put('lock', 'a', 'present');
    expect(xx.status).toBe(412);
    expect(await xx.json()).toEqual({ error: 'CONDITION_FAILED', message: 'the key does not exist (if=present)' });
    expect(xx.headers.get('x-cairn-revision')).toBe('1');
    const nx = await put('lock', 'a', 'absent');
    expect(nx.status).toBe(200);
    expect(await nx.json()).toEqual({ revision: 2 });
    const nx2 = await put('lock', 'b', 'absent');
    expect(nx2.status).toBe(412);
    expect(((await nx2.json()) as { message: string }).message).toBe('the key exists (if=absent)');
    expect((await put('lock', 'c', 'present')).status).toBe(200);
    expect(store.data.get('lock')?.value.toString()).toBe('c');
    const got = await fetch(`${base}/v1/kv/lock`);
    expect(await got.text()).toBe('c');
  });

  it('refuses any other value of if with 400', async () => {
    const r = await put('k', 'v', 'maybe');
    expect(r.status).toBe(400);
    expect(((await r.json()) as { message: string }).message).toMatch(/if must be absent, present or revision:N/);
    for (const bad of ['revision:', 'revision:-1', 'revision:1.5', 'revision:12345678901234567', 'revision:0x10']) expect((await put('k', 'v', bad)).status).toBe(400);
    const d = await fetch(`${base}/v1/kv/k?if=absent`, { method: 'DELETE' });
    expect(d.status).toBe(400);
    expect(((await d.json()) as { message: string }).message).toMatch(/if must be revision:N/);
    expect(store.data.size).toBe(0);
  });

  it('applies if=revision:N (compare-and-swap) only when the mod revision is N, 0 meaning missing, on PUT and DELETE; 412 otherwise', async () => {
    const created = await put('c', 'a', 'revision:0');
    expect(created.status).toBe(200);
    expect(await created.json()).toEqual({ revision: 1 });
    const stale = await put('c', 'b', 'revision:0');
    expect(stale.status).toBe(412);
    expect(await stale.json()).toEqual({ error: 'CONDITION_FAILED', message: "the key's mod revision is not 0 (if=revision:0)" });
    expect(stale.headers.get('x-cairn-revision')).toBe('2');
    expect((await put('c', 'b', 'revision:1')).status).toBe(200);
    expect(store.data.get('c')?.value.toString()).toBe('b');
    const delStale = await fetch(`${base}/v1/kv/c?if=revision:1`, { method: 'DELETE' });
    expect(delStale.status).toBe(412);
    expect(store.data.has('c')).toBe(true);
    const delOk = await fetch(`${base}/v1/kv/c?if=revision:3`, { method: 'DELETE' });
    expect(delOk.status).toBe(200);
    expect(store.data.has('c')).toBe(false);
  });

  it('?ttl= gives the key an absolute expiry of now + ttl (units ms, s, m, h; seconds by default); a bad ttl is 400; a PUT without it clears it', async () => {
    const before = Date.now();
    expect((await fetch(`${base}/v1/kv/t?ttl=30s&if=absent`, { method: 'PUT', body: 'v' })).status).toBe(200);
    const at = store.data.get('t')?.meta?.expiresAtMs ?? 0;
    expect(at).toBeGreaterThanOrEqual(before + 30_000);
    expect(at).toBeLessThanOrEqual(Date.now() + 30_000);
    expect((await fetch(`${base}/v1/kv/u?ttl=2`, { method: 'PUT', body: 'v' })).status).toBe(200);
    expect(store.data.get('u')?.meta?.expiresAtMs).toBeGreaterThanOrEqual(before + 2000);
    expect((await fetch(`${base}/v1/kv/u?ttl=1h`, { method: 'PUT', body: 'v' })).status).toBe(200);
    expect(store.data.get('u')?.meta?.expiresAtMs).toBeGreaterThanOrEqual(before + 3_600_000);
    for (const bad of ['0', '-1', '1.5s', '10d', 's', '1234567890123']) {
      const r = await fetch(`${base}/v1/kv/w?ttl=${bad}`, { method: 'PUT', body: 'v' });
      expect(r.status).toBe(400);
    }
    expect(store.data.has('w')).toBe(false);
    expect((await put('t', 'plain')).status).toBe(200);
    expect(store.data.get('t')?.meta).toBeUndefined();
  });

  it("?ttl= starts from the HTTP door's clock (virtual here: the expiry is exact)", async () => {
    const view = new ClusterView();
    const clock = new SimScheduler(1).incarnation('g1').clock;
    const onClock = new HttpApi({ gatewayId: 'g1', paths: { ...store.paths, limits: { keyBytesMax: 64, valueBytesMax: 1024 } }, view, metrics: new GatewayMetrics(view), clock });
    await onClock.listen('127.0.0.1', 0);
    try {
      expect((await fetch(`http://127.0.0.1:${onClock.port()}/v1/kv/v?ttl=1500ms`, { method: 'PUT', body: 'v' })).status).toBe(200);
      expect(store.data.get('v')?.meta?.expiresAtMs).toBe(SIM_EPOCH_MS + 1500);
    } finally {
      await onClock.close();
    }
  });
});
