import { createLogger } from '@cairn/logging';
import { Status } from '@cairn/protocol';
import { ClusterView } from '../cluster/cluster-view';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import type { KvPaths } from '../paths/kv-session';
import { HttpApi } from './http-api';
import { REQUEST_ID_BYTES_MAX } from './request-id';

type Line = Record<string, unknown>;

/** A real HttpApi on a real port whose log lines are collected; GET of key `boom` throws inside the read path (a bug: 500). */
async function startApi(level: string) {
  const lines: Line[] = [];
  let onLine = () => {};
  const log = createLogger('gateway:g1', level, {
    write: (l: string) => {
      lines.push(JSON.parse(l) as Line);
      onLine();
    },
  });
  /** The request lines, once there are `n` (a response can reach the client before its server-side 'finish'). */
  const requestLines = (n: number) =>
    new Promise<Line[]>((resolve) => {
      onLine = () => {
        const r = lines.filter((l) => l.msg === 'http request');
        if (r.length >= n) resolve(r);
      };
      onLine();
    });
  const paths: KvPaths = {
    reads: {
      get: async (key) => {
        if (Buffer.from(key).toString() === 'boom') throw new Error('read path bug');
        return { status: Status.NotFound, revision: 0, value: new Uint8Array(0), message: '' };
      },
    },
    writes: { submit: async () => ({ status: Status.Ok, revision: 1, message: '' }) },
    limits: { keyBytesMax: 64, valueBytesMax: 1024 },
  };
  const view = new ClusterView(() => 0);
  const api = new HttpApi({ gatewayId: 'g1', paths, view, metrics: new GatewayMetrics(view), log });
  await api.listen('127.0.0.1', 0);
  return { api, lines, requestLines, base: `http://127.0.0.1:${api.port()}` };
}

describe('HTTP request ids', () => {
  let s: Awaited<ReturnType<typeof startApi>> | null = null;
  afterEach(async () => {
    await s?.api.close();
    s = null;
  });

  it('names each request, echoes the id and logs it on the request line (debug)', async () => {
    s = await startApi('debug');
    const a = await fetch(`${s.base}/v1/kv/k1`);
    const b = await fetch(`${s.base}/v1/kv/k2`);
    expect([a.status, b.status]).toEqual([404, 404]);
    expect([a.headers.get('x-request-id'), b.headers.get('x-request-id')]).toEqual(['g1-1', 'g1-2']);
    expect(await s.requestLines(2)).toEqual([
      expect.objectContaining({ level: 'debug', reqId: 'g1-1', method: 'GET', path: '/v1/kv/k1', status: 404 }),
      expect.objectContaining({ level: 'debug', reqId: 'g1-2', method: 'GET', path: '/v1/kv/k2', status: 404 }),
    ]);
  });

  it("keeps a client's valid X-Request-Id and replaces an invalid one", async () => {
    s = await startApi('debug');
    const kept = await fetch(`${s.base}/healthz`, { headers: { 'X-Request-Id': 'trace-7f.3:a_b' } });
    const tooLong = await fetch(`${s.base}/healthz`, { headers: { 'X-Request-Id': 'x'.repeat(REQUEST_ID_BYTES_MAX + 1) } });
    const badChars = await fetch(`${s.base}/healthz`, { headers: { 'X-Request-Id': 'a b' } });
    expect([kept, tooLong, badChars].map((r) => r.headers.get('x-request-id'))).toEqual(['trace-7f.3:a_b', 'g1-1', 'g1-2']);
    expect((await s.requestLines(3)).map((l) => l.reqId)).toEqual(['trace-7f.3:a_b', 'g1-1', 'g1-2']);
  });

  it('logs an unexpected failure at error with the id the client got; at info, nothing else per request', async () => {
    s = await startApi('info');
    const ok = await fetch(`${s.base}/v1/kv/k1`);
    const boom = await fetch(`${s.base}/v1/kv/boom`);
    expect([ok.status, boom.status]).toEqual([404, 500]);
    expect(s.lines).toEqual([expect.objectContaining({ level: 'error', reqId: boom.headers.get('x-request-id'), msg: 'http request failed', process: 'gateway:g1' })]);
    expect((s.lines[0].err as { message: string }).message).toBe('read path bug');
  });
});
