import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { BackupReader, BitcaskEngine, EngineOp, encodeSnapshotChunk, type SnapshotReader } from '@cairn/engine';
import { Status, type SnapshotBeginReply } from '@cairn/protocol';
import { realClock } from '@cairn/world';
import { ClusterView } from '../cluster/cluster-view';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import type { ReadPath } from '../paths/read-path';
import type { WritePath } from '../paths/write-path';
import { ByteBudget } from '../server/flow';
import { HttpApi } from './http-api';
import { SnapshotUnavailableError, type SnapshotSource } from './snapshot.controller';

type Source = Pick<SnapshotSource, 'begin' | 'chunk' | 'end'>;

/**
 * A SnapshotSource over a real engine snapshot (what a storage node serves over NATS), recording
 * the gateway's budget at each chunk request and resolving `ended` when the transfer is released.
 */
function engineSource(reader: SnapshotReader, budget: ByteBudget) {
  const seen = { budgetAtChunk: [] as number[], chunks: 0 };
  let endedResolve: () => void = () => undefined;
  const ended = new Promise<void>((r) => (endedResolve = r));
  const source: Source = {
    begin: async () => ({
      node: 's1',
      reply: { status: Status.Ok, message: '', transferId: 't1', appliedIndex: reader.snapshot.appliedIndex, chunkBytesMax: reader.chunkBytesMax, manifest: reader.manifestBytes, sessionBytes: 0, sessionCrc32: 0 } satisfies SnapshotBeginReply,
    }),
    chunk: async (_node, _t, file, offset) => {
      seen.budgetAtChunk.push(budget.used());
      seen.chunks++;
      return encodeSnapshotChunk(await reader.readChunk(file, offset));
    },
    end: () => endedResolve(),
  };
  return { source, seen, ended };
}

async function startApi(snapshots: Source, budget: ByteBudget): Promise<{ api: HttpApi; port: number }> {
  const view = new ClusterView(() => 1_000_000);
  const paths = { reads: {} as ReadPath, writes: {} as WritePath, limits: { keyBytesMax: 64, valueBytesMax: 1024 } };
  const api = new HttpApi({ gatewayId: 'g1', paths, view, metrics: new GatewayMetrics(view), snapshots, budget });
  await api.listen('127.0.0.1', 0);
  return { api, port: api.port() };
}

function get(port: number, p: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => http.get({ host: '127.0.0.1', port, path: p }, resolve).on('error', reject));
}

describe('GET /v1/snapshot', () => {
  const CHUNK_BYTES = 64 * 1024;
  let dir: string;
  let engine: BitcaskEngine;
  let reader: SnapshotReader;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-'));
    engine = await BitcaskEngine.open({ dir, clock: realClock, autoMerge: false, segmentBytesMax: 1024 * 1024 });
    // ~3 MiB of values: dozens of chunks, more than a loopback socket buffers for a client that does not read.
    await engine.apply(Array.from({ length: 1500 }, (_, i) => ({ index: i + 1, op: EngineOp.Set, key: Buffer.from(`key-${i}`), value: Buffer.alloc(2000, i % 251) })));
    const snap = await engine.createSnapshot();
    reader = engine.openSnapshotReader(snap.appliedIndex, CHUNK_BYTES);
  });
  afterAll(async () => {
    await reader.close();
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('streams a whole backup file that checks out, holding at most one chunk in the budget, and releases the transfer', async () => {
    const budget = new ByteBudget(64 * 1024 * 1024);
    const { source, seen, ended } = engineSource(reader, budget);
    const { api, port } = await startApi(source, budget);
    try {
      const res = await get(port, '/v1/snapshot');
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-cairn-snapshot-revision']).toBe('1500');
      const r = new BackupReader();
      const kinds: string[] = [];
      for await (const data of res as AsyncIterable<Buffer>) for (const e of r.push(data)) kinds.push(e.kind);
      r.finish();
      expect(kinds[0]).toBe('meta');
      expect(kinds[kinds.length - 1]).toBe('end');
      expect(seen.chunks).toBeGreaterThan(40);
      await ended;
      // Each chunk request finds at most the previous record still held (plus a GET's read estimate).
      expect(Math.max(...seen.budgetAtChunk)).toBeLessThanOrEqual(CHUNK_BYTES + 1024 + budget.readEstimate());
      expect(budget.used()).toBe(0);
    } finally {
      await api.close();
    }
  });

  it('releases the transfer and the budget when the client goes away mid-stream', async () => {
    const budget = new ByteBudget(64 * 1024 * 1024);
    const { source, seen, ended } = engineSource(reader, budget);
    const { api, port } = await startApi(source, budget);
    try {
      const res = await get(port, '/v1/snapshot');
      await new Promise<void>((resolve) => res.once('data', () => resolve()));
      res.socket.destroy();
      await ended;
      expect(seen.chunks).toBeGreaterThan(0);
      expect(budget.used()).toBe(0);
    } finally {
      await api.close();
    }
  });

  it('answers 503 UNAVAILABLE when no storage node can start a snapshot', async () => {
    const budget = new ByteBudget(1024);
    const source: Source = {
      begin: () => Promise.reject(new SnapshotUnavailableError('no live storage node')),
      chunk: () => Promise.reject(new Error('not reached')),
      end: () => undefined,
    };
    const { api, port } = await startApi(source, budget);
    try {
      const res = await get(port, '/v1/snapshot?node=s9');
      let body = '';
      for await (const c of res) body += String(c);
      expect(res.statusCode).toBe(503);
      expect(JSON.parse(body)).toEqual({ error: 'UNAVAILABLE', message: 'no live storage node' });
      const bad = await get(port, '/v1/snapshot?node=../etc');
      expect(bad.statusCode).toBe(400);
      bad.resume();
    } finally {
      await api.close();
    }
  });
});
