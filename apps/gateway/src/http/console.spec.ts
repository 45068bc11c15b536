import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { Status } from '@cairn/protocol';
import { SIM_EPOCH_MS, SimScheduler } from '@cairn/world';
import { ClusterView } from '../cluster/cluster-view';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import type { KvPaths } from '../paths/kv-session';
import { ByteBudget } from '../server/flow';
import { CONSOLE_FILES, ConsoleAssets } from './console-assets';
import { ConsoleStats, histogramQuantile } from './console-stats';
import { HttpApi } from './http-api';

describe('histogramQuantile (Prometheus histogram_quantile)', () => {
  const bounds = [1, 2, 4];

  it('is null for an empty histogram', () => {
    expect(histogramQuantile(0.5, bounds, [0, 0, 0, 0])).toBeNull();
  });

  it('interpolates linearly within the bucket the rank falls in, the first bucket starting at 0', () => {
    expect(histogramQuantile(0.5, bounds, [0, 10, 10, 10])).toBe(1.5);
    expect(histogramQuantile(0.5, bounds, [10, 10, 10, 10])).toBe(0.5);
    expect(histogramQuantile(0.99, bounds, [50, 50, 100, 100])).toBeCloseTo(3.96, 10);
  });

  it('answers the highest bound for a rank in +Inf', () => {
    expect(histogramQuantile(0.99, bounds, [0, 0, 0, 10])).toBe(4);
  });
});

describe('ConsoleStats', () => {
  it('turns two readings of the request metrics into ops/s, failures/s and p50/p99 per door', async () => {
    const metrics = new GatewayMetrics(new ClusterView(() => 0));
    const stats = new ConsoleStats(metrics.registry);
    const http = metrics.observer('http');
    http.observe('get', Status.Ok, 0.003);
    await stats.sample(1_000); // first reading: no sample yet
    expect(stats.columns().t).toEqual([]);
    for (let i = 0; i < 99; i++) http.observe('get', Status.Ok, 0.002);
    http.observe('set', Status.Unavailable, 2);
    metrics.observer('tlv').observe('get', Status.NotFound, 0.0002);
    await stats.sample(3_000);
    const c = stats.columns();
    expect(c.t).toEqual([3]);
    expect(c.doors.http.requests).toEqual([100]);
    expect(c.doors.http.ops).toEqual([50]);
    expect(c.doors.http.failures).toEqual([0.5]);
    // 99 of 100 in (1, 2.5] ms, one in (1, 2.5] s.
    expect(c.doors.http.p50Ms[0]).toBeGreaterThan(1);
    expect(c.doors.http.p50Ms[0]).toBeLessThanOrEqual(2.5);
    expect(c.doors.http.p99Ms[0]).toBeLessThanOrEqual(2.5);
    expect(c.doors.tlv.ops).toEqual([0.5]);
    expect(c.doors.tlv.failures).toEqual([0]); // NOT_FOUND is an answer, not a failure
    expect(c.doors.resp).toEqual({ requests: [0], ops: [0], failures: [0], p50Ms: [null], p99Ms: [null] });
  });

  it('samples at start and every intervalMs on the clock it is given (virtual here), until stopped', async () => {
    const metrics = new GatewayMetrics(new ClusterView(() => 0));
    const sched = new SimScheduler(1);
    const stats = new ConsoleStats(metrics.registry, 10, sched.incarnation('g1').clock);
    const settled = () => new Promise((resolve) => setImmediate(resolve)); // a reading awaits the registry
    stats.start(2000);
    await settled();
    metrics.observer('http').observe('get', Status.Ok, 0.002);
    sched.step();
    await settled();
    sched.step();
    await settled();
    expect(stats.columns(2000).t).toEqual([(SIM_EPOCH_MS + 2000) / 1000, (SIM_EPOCH_MS + 4000) / 1000]);
    expect(stats.columns(2000).doors.http.requests).toEqual([1, 0]);
    stats.stop();
    expect(sched.nextAtMs()).toBe(Infinity);
  });

  it('keeps at most samplesMax samples, the newest', async () => {
    const metrics = new GatewayMetrics(new ClusterView(() => 0));
    const stats = new ConsoleStats(metrics.registry, 3);
    for (let i = 0; i <= 5; i++) await stats.sample(i * 1000);
    expect(stats.columns().t).toEqual([3, 4, 5]);
    expect(stats.columns().samplesMax).toBe(3);
  });
});

describe('ConsoleAssets', () => {
  it('is off, saying why, when a file is missing or the files are over the bound', () => {
    const empty = mkdtempSync(join(tmpdir(), 'cairn-ui-'));
    const missing = new ConsoleAssets(empty);
    expect(missing.error?.code).toBe('CONSOLE_ASSETS');
    expect(missing.error?.message).toMatch(/index\.html/);
    expect(missing.get('')).toBeUndefined();
    for (const f of CONSOLE_FILES) writeFileSync(join(empty, f), f === 'index.html' ? '<!--vendor-->' : '// x');
    expect(new ConsoleAssets(empty).error).toBeNull();
    const small = new ConsoleAssets(empty, 1000);
    expect(small.error?.message).toMatch(/bytes; the bound is 1000/);
    expect(small.bytes()).toBe(0);
  });
});

/** A raw GET (fetch would normalise `..` out of the path). */
function rawGet(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the console over HTTP', () => {
  let api: HttpApi;
  let port: number;
  let budget: ByteBudget;
  let metrics: GatewayMetrics;

  beforeAll(async () => {
    const view = new ClusterView(() => 0);
    metrics = new GatewayMetrics(view);
    budget = new ByteBudget(1024);
    const never = () => Promise.reject(new Error('no KV in this test'));
    const paths = { reads: { get: never, range: never }, readIndex: { readIndex: never }, writes: { submit: never }, limits: { keyBytesMax: 64, valueBytesMax: 1024 } } satisfies KvPaths;
    api = new HttpApi({ gatewayId: 'g7', paths, view, metrics, budget });
    await api.listen('127.0.0.1', 0);
    port = api.port();
  });

  afterAll(() => api.close());

  it('redirects /ui to /ui/ and serves the page with its import map allowed by the CSP hash', async () => {
    const root = await rawGet(port, '/ui');
    expect(root.status).toBe(301);
    expect(root.headers.location).toBe('/ui/');
    const page = await rawGet(port, '/ui/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    const map = /<script type="importmap">(.*?)<\/script>/.exec(page.body)?.[1] as string;
    const imports = (JSON.parse(map) as { imports: Record<string, string> }).imports;
    expect(Object.keys(imports).sort()).toEqual(['htm', 'preact', 'preact/hooks', 'uplot']);
    const hash = createHash('sha256').update(map).digest('base64');
    expect(page.headers['content-security-policy']).toContain(`'sha256-${hash}'`);
    expect(page.body).toMatch(/<link rel="stylesheet" href="\/ui\/vendor\/uplot@[0-9.]+\/uPlot\.min\.css">/);

    const preact = await rawGet(port, imports.preact);
    expect(preact.status).toBe(200);
    expect(preact.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(preact.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const app = await rawGet(port, '/ui/app.js');
    expect(app.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect((await rawGet(port, '/ui/console.css')).headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('answers 304 to a matching If-None-Match, and HEAD without a body', async () => {
    const first = await rawGet(port, '/ui/app.js');
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{22}"$/);
    const again = await rawGet(port, '/ui/app.js', { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
    const head = await rawGet(port, '/ui/app.js', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(Buffer.byteLength(first.body));
    expect(head.body).toBe('');
  });

  it('serves only the files of its table: no traversal, no listing', async () => {
    for (const path of ['/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/..%2fpackage.json', '/ui/vendor/', '/ui/vendor', '/ui/nope.js', '/ui/app.js/', '/ui//app.js', '/ui/%2fetc%2fpasswd']) {
      const r = await rawGet(port, path);
      expect([path, r.status]).toEqual([path, 404]);
      expect(JSON.parse(r.body)).toMatchObject({ error: 'NOT_FOUND' });
    }
  });

  it('stays answerable while the KV byte budget is exhausted, and serves the stats as columns', async () => {
    budget.take(4096);
    try {
      expect((await rawGet(port, '/ui/')).status).toBe(200);
      metrics.observer('resp').observe('get', Status.Ok, 0.001);
      const r = await rawGet(port, '/v1/cluster/stats');
      expect(r.status).toBe(200);
      const s = JSON.parse(r.body) as { gateway: { id: string; connections: Record<string, number>; rssBytes: number }; intervalMs: number; samplesMax: number; t: number[]; doors: Record<string, { ops: number[] }> };
      expect(s.gateway.id).toBe('g7');
      expect(s.gateway.connections.http).toBeGreaterThanOrEqual(1);
      expect(s.gateway.rssBytes).toBeGreaterThan(0);
      expect(s.intervalMs).toBe(1000);
      expect(s.samplesMax).toBe(300);
      expect(Object.keys(s.doors).sort()).toEqual(['http', 'resp', 'tlv']);
      for (const d of Object.values(s.doors)) expect(d.ops).toHaveLength(s.t.length);
    } finally {
      budget.give(4096);
    }
  });
});
