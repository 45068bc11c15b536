import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { Status, type Command } from '@cairn/protocol';
import { ClusterView } from '../cluster/cluster-view';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import type { KvPaths } from '../paths/kv-session';
import type { ReadResult } from '../paths/read-path';
import type { WriteResult } from '../paths/write-path';
import { HttpApi } from './http-api';
import type { HttpLimits } from './http-limits';
import { percentDecode } from './kv-key';
import { ByteBudget, type ReadReservation } from '../server/flow';
import { memoryKv } from '../paths/testing';

/** An in-memory store behind fake read/write paths, with a switch that makes both answer a given status. */
function fakeStore() {
  const kv = memoryKv();
  const data = kv.data;
  const state = { failWith: null as Status | null, reads: [] as { key: Buffer; minIndex: number; reservation?: ReadReservation }[], hold: null as Promise<void> | null, onRead: null as (() => void) | null };
  /** Resolves once `n` reads reached the read path (an event, not a poll). */
  const readsReached = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (state.reads.length >= n) resolve();
      };
      state.onRead = check;
      check();
    });
  const writes = {
    submit: async (c: Command): Promise<WriteResult> => {
      if (state.failWith !== null) return { status: state.failWith, revision: 0, message: 'no leader' };
      return kv.submit(c);
    },
  } satisfies KvPaths['writes'];
  const reads = {
    get: async (key: Uint8Array, minIndex: number, reservation?: ReadReservation): Promise<ReadResult> => {
      state.reads.push({ key: Buffer.from(key), minIndex, reservation });
      state.onRead?.();
      if (state.hold) await state.hold;
      if (state.failWith !== null) return { status: state.failWith, revision: 0, value: new Uint8Array(0), message: 'no storage node' };
      return kv.get(key);
    },
  } satisfies KvPaths['reads'];
  const readIndex = { readIndex: async () => ({ ok: true, index: 41 }) } satisfies KvPaths['readIndex'];
  return { data, state, writes, reads, readIndex, readsReached };
}

async function startApi(limits?: HttpLimits, budget?: ByteBudget) {
  let nowMs = 1_000_000;
  const view = new ClusterView(() => nowMs);
  const metrics = new GatewayMetrics(view);
  const store = fakeStore();
  const api = new HttpApi({ gatewayId: 'g1', paths: { reads: store.reads, readIndex: store.readIndex, writes: store.writes, limits: { keyBytesMax: 64, valueBytesMax: 1024 } }, view, metrics, limits, budget });
  await api.listen('127.0.0.1', 0);
  const base = `http://127.0.0.1:${api.port()}`;
  return { api, base, view, metrics, store, advance: (ms: number) => (nowMs += ms), releaseHeld: null as (() => void) | null };
}

type Api = Awaited<ReturnType<typeof startApi>>;
let s: Api;
beforeEach(async () => {
  s = await startApi();
});
/** APIs a test started besides `s`: closed after it even when it failed while waiting, so a red test never holds jest open. */
const extra: Api[] = [];
afterEach(async () => {
  await s.api.close();
  for (const a of extra.splice(0)) {
    a.store.state.hold = null;
    a.releaseHeld?.();
    await a.api.close();
  }
});

/** Registers an API for closing in afterEach. */
function track(a: Api): Api {
  extra.push(a);
  return a;
}

const LIMITS: HttpLimits = { connectionsMax: 10_000, headerBytesMax: 16 * 1024, frameDeadlineMs: 30_000, idleTimeoutMs: 300_000, closeTimeoutMs: 2_000, inflightPerConnectionMax: 1024, connectionReplyBytesMax: 1024 * 1024 };

const errorOf = async (r: Response) => (await r.json()) as { error: string; message: string };
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
/** Percent-encodes every byte, so any byte string is a valid path segment. */
const encodeKey = (key: Buffer) => [...key].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

describe('HTTP API: /v1/kv', () => {
  it('round-trips binary values under binary keys (bytes 0x00-0xff) with revisions', async () => {
    const key = ALL_BYTES.subarray(0, 64);
    const put = await fetch(`${s.base}/v1/kv/${encodeKey(key)}`, { method: 'PUT', body: ALL_BYTES, headers: { 'Content-Type': 'application/json' } });
    expect(put.status).toBe(200);
    expect(put.headers.get('x-cairn-revision')).toBe('1');
    expect(await put.json()).toEqual({ revision: 1 });
    const get = await fetch(`${s.base}/v1/kv/${encodeKey(key)}`);
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe('application/octet-stream');
    expect(get.headers.get('x-cairn-revision')).toBe('1');
    expect(Buffer.from(await get.arrayBuffer()).equals(ALL_BYTES)).toBe(true);
    // A key with non-UTF-8 bytes, '/', '%' and '?' is reachable; the second half of the byte range too.
    const key2 = ALL_BYTES.subarray(192);
    expect((await fetch(`${s.base}/v1/kv/${encodeKey(key2)}`, { method: 'PUT', body: 'v' })).status).toBe(200);
    expect([...s.store.data.keys()]).toEqual([key.toString('hex'), key2.toString('hex')]);
    // Plain UTF-8 keys arrive as their UTF-8 bytes.
    await fetch(`${s.base}/v1/kv/${encodeURIComponent('clé/1')}`, { method: 'PUT', body: 'x' });
    expect(s.store.data.has(Buffer.from('clé/1').toString('hex'))).toBe(true);
  });

  it('answers 404 for a missing key, DELETE with its revision, and an empty body as an empty value', async () => {
    const missing = await fetch(`${s.base}/v1/kv/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'NOT_FOUND', message: 'no such key' });
    expect((await fetch(`${s.base}/v1/kv/k`, { method: 'PUT' })).status).toBe(200);
    const empty = await fetch(`${s.base}/v1/kv/k`);
    expect(empty.status).toBe(200);
    expect((await empty.arrayBuffer()).byteLength).toBe(0);
    const del = await fetch(`${s.base}/v1/kv/k`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(del.headers.get('x-cairn-revision')).toBe('2');
    expect((await fetch(`${s.base}/v1/kv/k`)).status).toBe(404);
  });

  it('answers 413 TOO_LARGE for a value or key over the limits, before the write path', async () => {
    const big = await fetch(`${s.base}/v1/kv/k`, { method: 'PUT', body: Buffer.alloc(1025) });
    expect(big.status).toBe(413);
    expect(await big.json()).toEqual({ error: 'TOO_LARGE', message: 'value is 1025 bytes; valueBytesMax is 1024' });
    expect((await fetch(`${s.base}/v1/kv/k`, { method: 'PUT', body: Buffer.alloc(1024) })).status).toBe(200);
    const longKey = await fetch(`${s.base}/v1/kv/${'k'.repeat(65)}`, { method: 'PUT', body: 'v' });
    expect(longKey.status).toBe(413);
    expect((await errorOf(longKey)).error).toBe('TOO_LARGE');
    expect(s.store.data.size).toBe(1);
  });

  it('maps UNAVAILABLE to 503 with Retry-After and ERROR to 500', async () => {
    s.store.state.failWith = Status.Unavailable;
    const put = await fetch(`${s.base}/v1/kv/k`, { method: 'PUT', body: 'v' });
    expect(put.status).toBe(503);
    expect(put.headers.get('retry-after')).toBe('1');
    expect(await put.json()).toEqual({ error: 'UNAVAILABLE', message: 'no leader' });
    expect((await fetch(`${s.base}/v1/kv/k`)).status).toBe(503);
    s.store.state.failWith = Status.Error;
    const err = await fetch(`${s.base}/v1/kv/k`, { method: 'DELETE' });
    expect(err.status).toBe(500);
    expect((await errorOf(err)).error).toBe('ERROR');
    expect(err.headers.get('retry-after')).toBeNull();
  });

  it('validates query and headers: 400 BAD_REQUEST with the constraint messages', async () => {
    const bad = await fetch(`${s.base}/v1/kv/k?stale=maybe`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'BAD_REQUEST', message: 'stale must be true or false' });
    const unknown = await fetch(`${s.base}/v1/kv/k?colour=red`);
    expect(unknown.status).toBe(400);
    expect((await errorOf(unknown)).message).toMatch(/property colour should not exist/);
    expect((await fetch(`${s.base}/v1/kv/%zz`)).status).toBe(400);
    expect((await fetch(`${s.base}/v1/kv/`)).status).toBe(400); // empty key
    const route = await fetch(`${s.base}/v2/nothing`);
    expect(route.status).toBe(404);
    expect((await errorOf(route)).error).toBe('NOT_FOUND');
    expect(s.store.state.reads).toHaveLength(0);
  });

  it('GET sends the key metadata as headers: Cairn-Mod-Revision, Cairn-Create-Revision, Cairn-Version', async () => {
    await fetch(`${s.base}/v1/kv/m`, { method: 'PUT', body: 'one' });
    await fetch(`${s.base}/v1/kv/m`, { method: 'PUT', body: 'two' });
    const res = await fetch(`${s.base}/v1/kv/m`);
    expect(await res.text()).toBe('two');
    expect([res.headers.get('x-cairn-revision'), res.headers.get('cairn-mod-revision'), res.headers.get('cairn-create-revision'), res.headers.get('cairn-version')]).toEqual(['2', '2', '1', '2']);
  });

  it('reads are linearizable (at the read index) unless stale=true', async () => {
    await fetch(`${s.base}/v1/kv/k`);
    await fetch(`${s.base}/v1/kv/k?stale=true`);
    await fetch(`${s.base}/v1/kv/k?stale=false`);
    expect(s.store.state.reads.map((r) => r.minIndex)).toEqual([41, 0, 41]);
  });
});

/** Sends raw bytes to the API and collects what comes back until the server closes (or `until` matches). */
async function rawHttp(port: number, bytes: string, until?: RegExp): Promise<{ text: string; closed: boolean; socket: Socket }> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let text = '';
  let closed = false;
  socket.on('error', () => undefined);
  const done = new Promise<void>((resolve) => {
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (until?.test(text)) resolve();
    });
    socket.on('close', () => {
      closed = true;
      resolve();
    });
  });
  socket.write(bytes);
  await done;
  return { text, closed, socket };
}

describe('HTTP API: limits and request forms', () => {
  it('an absolute-form request target (as sent to a proxy) is served like its origin form', async () => {
    expect((await fetch(`${s.base}/v1/kv/k`, { method: 'PUT', body: 'v' })).status).toBe(200);
    const port = s.api.port();
    const r = await rawHttp(port, `GET http://x/v1/kv/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(r.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(r.text.endsWith('\r\n\r\nv')).toBe(true);
    const missing = await rawHttp(port, `GET http://x:8380/v1/kv/nope?stale=true HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(missing.text).toMatch(/^HTTP\/1\.1 404 /);
  });

  it('a PUT whose Content-Length is over valueBytesMax gets 413 from its headers, before any body byte, and the connection closes', async () => {
    const r = await rawHttp(s.api.port(), `PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n`);
    // No body byte was sent: the answer and the close came from the headers alone.
    expect(r.closed).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(r.text).toMatch(/connection: close/i);
    expect(r.text).toContain('{"error":"TOO_LARGE","message":"value is 2000 bytes; valueBytesMax is 1024"}');
    // Expect: 100-continue: refused without a 100, so the client never sends the body.
    const c = await rawHttp(s.api.port(), `PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n`);
    expect(c.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(c.text).not.toMatch(/100 Continue/);
    // Within the limit, the 100 comes and the body is read.
    const ok = await rawHttp(s.api.port(), `PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n`, /100 Continue\r\n\r\n/);
    ok.socket.write('v');
    await new Promise<void>((resolve) => ok.socket.on('data', (d: Buffer) => (d.toString().includes('"revision"') ? resolve() : undefined)));
    ok.socket.destroy();
    expect(s.store.data.size).toBe(1);
  });

  it('an oversize or malformed body on POST /v1/cluster/members is 413 / 400, not 500', async () => {
    const big = await fetch(`${s.base}/v1/cluster/members`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'c4', pad: 'x'.repeat(5000) }) });
    expect(big.status).toBe(413);
    expect((await errorOf(big)).error).toBe('TOO_LARGE');
    // Chunked (no Content-Length): refused as soon as the parser crosses the limit.
    const chunked = await rawHttp(s.api.port(), `POST /v1/cluster/members HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1388\r\n${'x'.repeat(5000)}\r\n0\r\n\r\n`);
    expect(chunked.text).toMatch(/^HTTP\/1\.1 413 /);
    const bad = await fetch(`${s.base}/v1/cluster/members`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":' });
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).error).toBe('BAD_REQUEST');
  });

  it('a request on a connection over connectionsMax is answered 503 with Connection: close', async () => {
    const capped = await startApi({ ...LIMITS, connectionsMax: 1, frameDeadlineMs: 60_000, idleTimeoutMs: 60_000, closeTimeoutMs: 60_000 });
    try {
      const first = connect(capped.api.port(), '127.0.0.1');
      await once(first, 'connect');
      const second = await rawHttp(capped.api.port(), `GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`);
      expect(second.text).toMatch(/^HTTP\/1\.1 503 /);
      expect(second.text).toMatch(/connection: close/i);
      expect(second.text).toContain('too many connections');
      expect(second.closed).toBe(true);
      // The connection within the cap is served.
      let text = '';
      first.on('data', (d: Buffer) => (text += d.toString('latin1')));
      const closed = once(first, 'close');
      first.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      await closed;
      expect(text).toMatch(/^HTTP\/1\.1 200 /);
    } finally {
      await capped.api.close();
    }
  });

  it('a slow sender is answered 408 and closed at frameDeadlineMs; a keep-alive connection between requests is not', async () => {
    const api = await startApi({ ...LIMITS, connectionsMax: 100, frameDeadlineMs: 50, idleTimeoutMs: 60_000, closeTimeoutMs: 60_000 });
    try {
      const port = api.api.port();
      // Keep-alive: one whole request, answered; the connection then waits between requests.
      const kept = await rawHttp(port, `GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`, /\{"status":"ok"\}/);
      // A slow sender: half a request, never the rest (its close proves the deadline fired).
      const slow = await rawHttp(port, `PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc`);
      expect(slow.text).toMatch(/^HTTP\/1\.1 408 /);
      expect(slow.closed).toBe(true);
      // The keep-alive connection, idle for longer than that, still answers.
      let text = '';
      kept.socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      const closed = once(kept.socket, 'close');
      kept.socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      await closed;
      expect(text).toMatch(/^HTTP\/1\.1 200 /);
    } finally {
      await api.api.close();
    }
  });

  it('pipelined requests beyond inflightPerConnectionMax are answered 503 unrun, in order after those in flight', async () => {
    const api = track(await startApi({ ...LIMITS, inflightPerConnectionMax: 4 }));
    api.store.state.hold = new Promise<void>((r) => (api.releaseHeld = r));
    await fetch(`${api.base}/v1/kv/k`, { method: 'PUT', body: 'v' });
    const socket = connect(api.api.port(), '127.0.0.1');
    await once(socket, 'connect');
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.write('GET /v1/kv/k HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(9) + 'GET /v1/kv/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const closed = once(socket, 'close');
    // Only the first 4 reached the read path; the others were refused without a read.
    await api.store.readsReached(4);
    api.releaseHeld?.();
    await closed;
    const codes = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    expect(codes).toEqual([200, 200, 200, 200, 503, 503, 503, 503, 503, 503]);
    expect(api.store.state.reads).toHaveLength(4);
    expect(text).toContain('httpInflightPerConnectionMax');
  });

  it('a connection pipelining past 4 × inflightPerConnectionMax refusals it has not read is closed', async () => {
    const api = track(await startApi({ ...LIMITS, inflightPerConnectionMax: 2 }));
    api.store.state.hold = new Promise<void>((r) => (api.releaseHeld = r));
    const socket = connect(api.api.port(), '127.0.0.1');
    await once(socket, 'connect');
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    const closed = once(socket, 'close');
    // 2 in flight (held), 8 refused and waiting behind them, the 11th closes the connection.
    socket.write('GET /v1/kv/k HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(12));
    await closed;
    api.releaseHeld?.();
    expect(api.store.state.reads).toHaveLength(2);
    expect(text).toBe('');
  });

  it('a connection that dies with pipelined requests in flight releases every reservation', async () => {
    const budget = new ByteBudget(64 * 1024 * 1024);
    const api = track(await startApi(LIMITS, budget));
    api.store.state.hold = new Promise<void>((r) => (api.releaseHeld = r));
    const socket = connect(api.api.port(), '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET /v1/kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc'.repeat(8));
    await api.store.readsReached(8);
    expect(budget.used()).toBeGreaterThan(0);
    const closed = once(socket, 'close');
    socket.destroy();
    await closed;
    api.releaseHeld?.();
    // The responses queued behind the first never finish: they are released with the socket.
    // Each wait is for a release event (ByteBudget.whenUnder), not a timer.
    while (budget.used() > 0) await new Promise<void>((r) => budget.whenUnder(r));
    expect(budget.used()).toBe(0);
  });

  it('a GET hands its reservation to the read (read flow control): it grows with a larger value and is released with the response', async () => {
    const budget = new ByteBudget(64 * 1024 * 1024);
    budget.observeValue(100); // reads reserve 100 bytes
    const api = track(await startApi(LIMITS, budget));
    api.store.data.set(Buffer.from('k').toString('hex'), { value: Buffer.alloc(5000, 1), revision: 3, createRevision: 3, version: 1 });
    api.store.state.hold = new Promise<void>((r) => (api.releaseHeld = r));
    const answer = fetch(`${api.base}/v1/kv/k`);
    await api.store.readsReached(1);
    const r = api.store.state.reads[0].reservation!;
    expect([r.bytes, budget.used()]).toEqual([100, 100]);
    r.grow(4900); // as the read path does for a withheld value
    expect([r.bytes, budget.used()]).toEqual([5000, 5000]);
    api.releaseHeld?.();
    const res = await answer;
    expect(Buffer.from(await res.arrayBuffer()).length).toBe(5000);
    while (budget.used() > 0) await new Promise<void>((resolve) => budget.whenUnder(resolve));
    expect(budget.used()).toBe(0);
  });

  it('a /v1/kv request while the gateway holds pendingBytesMax is answered 503; probes still answer', async () => {
    const budget = new ByteBudget(1024 * 1024);
    const api = track(await startApi(LIMITS, budget));
    budget.take(2 * 1024 * 1024); // other connections hold more than the bound
    const r = await fetch(`${api.base}/v1/kv/k`);
    expect(r.status).toBe(503);
    expect((await errorOf(r)).message).toContain('pendingBytesMax');
    expect((await fetch(`${api.base}/healthz`)).status).toBe(200);
    budget.give(2 * 1024 * 1024);
    expect((await fetch(`${api.base}/v1/kv/k`)).status).toBe(404);
    expect(budget.used()).toBe(0); // every reservation released
  });

  it('headers over httpHeaderBytesMax are refused (431) and the connection closed', async () => {
    const r = await rawHttp(s.api.port(), `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(20 * 1024)}\r\n\r\n`);
    expect(r.text).toMatch(/^HTTP\/1\.1 431 /);
    expect(r.closed).toBe(true);
  });
});

describe('HTTP API: cluster, probes, metrics', () => {
  const leaderStatus = (term: number) => ({ kind: 'consensus' as const, id: 'c1', role: 'leader' as const, term, leaderId: 'c1', commitIndex: 9, lastIndex: 10, appliedIndex: 9, logBytes: 4096, atMs: 0 });
  const storageStatus = { kind: 'storage' as const, id: 's1', appliedIndex: 8, knownCommitIndex: 9, keys: 3, dataBytes: 777, atMs: 0 };

  it('/readyz is 503 until a live leader and a live storage node are known, and again when their heartbeats go stale', async () => {
    const notReady = await fetch(`${s.base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(notReady.headers.get('retry-after')).toBe('1');
    expect(await notReady.json()).toEqual({ error: 'UNAVAILABLE', message: 'no live leader known; no live storage node' });
    s.view.onConsensusStatus(leaderStatus(2));
    expect((await errorOf(await fetch(`${s.base}/readyz`))).message).toBe('no live storage node');
    s.view.onStorageStatus(storageStatus);
    const ready = await fetch(`${s.base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', leaderId: 'c1', storageLive: 1 });
    s.advance(5000);
    expect((await fetch(`${s.base}/readyz`)).status).toBe(503);
    expect((await fetch(`${s.base}/healthz`)).status).toBe(200);
  });

  it('/v1/cluster reports replicas, members and storage nodes from the status heartbeats', async () => {
    const conf = { voters: ['c1', 'c2', 'c3'], learners: ['c4'], storage: ['s1'] };
    s.view.onConsensusStatus({ ...leaderStatus(3), conf, confIndex: 7 });
    s.view.onStorageStatus(storageStatus);
    const body = await (await fetch(`${s.base}/v1/cluster`)).json();
    expect(body).toEqual({
      gateway: 'g1',
      leaderId: 'c1',
      leaderLive: true,
      term: 3,
      replicas: [{ id: 'c1', role: 'leader', term: 3, commitIndex: 9, lastIndex: 10, appliedIndex: 9, logBytes: 4096, ageMs: 0, live: true }],
      members: { ...conf, confIndex: 7, committed: true },
      storage: [{ id: 's1', appliedIndex: 8, knownCommitIndex: 9, keys: 3, dataBytes: 777, ageMs: 0, live: true }],
    });
  });

  it('/v1/cluster/members lists the configuration (503 before any heartbeat) and validates changes', async () => {
    expect((await fetch(`${s.base}/v1/cluster/members`)).status).toBe(503);
    const conf = { voters: ['c1', 'c2', 'c3'], learners: [], storage: ['s1'] };
    s.view.onConsensusStatus({ ...leaderStatus(3), conf, confIndex: 12 });
    expect(await (await fetch(`${s.base}/v1/cluster/members`)).json()).toEqual({ ...conf, confIndex: 12, committed: false });
    const post = (body: unknown) => fetch(`${s.base}/v1/cluster/members`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const bad = await post({ id: 'no spaces allowed' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/id must be/);
    expect((await post({ id: 'c4', kind: 'witness' })).status).toBe(400);
    expect((await fetch(`${s.base}/v1/cluster/members/c%2F1`, { method: 'DELETE' })).status).toBe(400);
    // No membership client wired in this harness (no NATS): a well-formed change is 503, not 500.
    expect((await post({ id: 'c4' })).status).toBe(503);
  });

  it('/metrics is Prometheus text: # TYPE lines, request counters per door/op/status, histograms, cluster gauges', async () => {
    s.view.onConsensusStatus(leaderStatus(4));
    s.view.onStorageStatus(storageStatus);
    s.metrics.observer('tlv').observe('get', Status.Ok, 0.0003);
    await fetch(`${s.base}/v1/kv/k`, { method: 'PUT', body: 'v' });
    await fetch(`${s.base}/v1/kv/k`);
    await fetch(`${s.base}/v1/kv/missing`);
    await fetch(`${s.base}/v1/kv/k`, { method: 'PUT', body: Buffer.alloc(2000) });
    const res = await fetch(`${s.base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const samples = parsePrometheus(await res.text());
    expect(samples.types).toMatchObject({
      cairn_gateway_requests_total: 'counter',
      cairn_gateway_request_duration_seconds: 'histogram',
      cairn_gateway_connections: 'gauge',
      cairn_raft_term: 'gauge',
      cairn_leader_known: 'gauge',
      cairn_storage_applied_index: 'gauge',
    });
    const expected: [string, number][] = [
      ['cairn_gateway_requests_total{door="http",op="set",status="OK"}', 1],
      ['cairn_gateway_requests_total{door="http",op="get",status="OK"}', 1],
      ['cairn_gateway_requests_total{door="http",op="get",status="NOT_FOUND"}', 1],
      ['cairn_gateway_requests_total{door="http",op="set",status="TOO_LARGE"}', 1],
      ['cairn_gateway_requests_total{door="tlv",op="get",status="OK"}', 1],
      ['cairn_gateway_request_duration_seconds_bucket{door="tlv",op="get",le="0.00025"}', 0],
      ['cairn_gateway_request_duration_seconds_bucket{door="tlv",op="get",le="0.0005"}', 1],
      ['cairn_gateway_request_duration_seconds_count{door="http",op="get"}', 2],
      ['cairn_raft_term{}', 4],
      ['cairn_leader_known{}', 1],
      ['cairn_raft_commit_index{replica="c1"}', 9],
      ['cairn_raft_last_index{replica="c1"}', 10],
      ['cairn_raft_log_bytes{replica="c1"}', 4096],
      ['cairn_storage_applied_index{node="s1"}', 8],
      ['cairn_storage_keys{node="s1"}', 3],
      ['cairn_storage_data_bytes{node="s1"}', 777],
    ];
    expect(expected.map(([k]) => [k, samples.values.get(k)])).toEqual(expected);
    expect(samples.values.get('cairn_gateway_connections{door="http"}')).toBeGreaterThanOrEqual(1);
    s.advance(5000);
    expect(parsePrometheus(await (await fetch(`${s.base}/metrics`)).text()).values.get('cairn_leader_known{}')).toBe(0);
  });
});

describe('percentDecode', () => {
  it('decodes %XX to bytes, other characters to UTF-8, and rejects malformed escapes', () => {
    expect(percentDecode('%00%ff%2F%25a')).toEqual(Buffer.from([0, 0xff, 0x2f, 0x25, 0x61]));
    expect(percentDecode('é😀')).toEqual(Buffer.from('é😀'));
    expect(percentDecode('a%é')).toBeNull();
    expect(percentDecode('%')).toBeNull();
    expect(percentDecode('%4')).toBeNull();
  });
});

/**
 * A strict reader of the Prometheus text format (0.0.4): every line is a comment, blank, or
 * `name{label="value",...} number`; every sample's family has a # TYPE line before it.
 * Returns the types and the samples keyed `name{labels}`.
 */
function parsePrometheus(text: string): { types: Record<string, string>; values: Map<string, number> } {
  const types: Record<string, string> = {};
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ')) continue;
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (t) {
      types[t[1]] = t[2];
      continue;
    }
    // NaN in any case, as Prometheus reads it (Go's ParseFloat): prom-client writes `Nan` (e.g. an event-loop lag not yet sampled).
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? (-?[0-9.e+-]+|[Nn][Aa][Nn]|[+-]Inf)$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    const family = m[1].replace(/_(bucket|sum|count)$/, '');
    if (!types[m[1]] && !types[family]) throw new Error(`sample before its # TYPE line: ${line}`);
    values.set(`${m[1]}{${(m[2] ?? '').replace(/,$/, '')}}`, Number(m[3]));
  }
  return { types, values };
}
