import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { BitcaskEngine, EngineOp, INSTALL_STAGING_DIR_NAME, SnapshotCorruptionError } from '@cairn/engine';
import {
  ApplyOutcome,
  SnapshotPart,
  Status,
  decodeSnapshotBeginReply,
  decodeSnapshotChunkReply,
  decodeSnapshotChunkRequest,
  encodeSnapshotBeginRequest,
  encodeSnapshotChunkReply,
  encodeSnapshotChunkRequest,
  peekMessageType,
  SNAPSHOT_CHUNK_REQUEST_TYPE,
} from '@cairn/protocol';
import { SessionStore } from './session-store';
import { SessionTable } from './session-table';
import { SnapshotServer, type NodeSnapshot } from './snapshot-server';
import { BootstrapLoop, BootstrapStoppedError, SnapshotFetchError, fetchSnapshot, type FetchedSnapshot, type SnapshotRequest } from './snapshot-bootstrap';
import { VirtualClock } from '@cairn/log/testing';
import { realClock } from '@cairn/world';

const tmp = () => fs.mkdtempSync(os.tmpdir() + '/cairn-');
const quiet = { info: () => undefined, warn: () => undefined };
const S1 = 0xfeedface_cafef00dn;

/** A peer: an engine with `keys` keys written at indexes 1..keys, a session table at the same index, and its snapshot server. */
async function peer(keys: number, opts: { chunkBytesMax?: number; transfersMax?: number; idleTimeoutMs?: number; now?: () => number } = {}) {
  const dir = tmp();
  const engine = await BitcaskEngine.open({ clock: realClock, dir: join(dir, 'engine'), segmentBytesMax: 64 * 1024 });
  const entries = Array.from({ length: keys }, (_, i) => ({ index: i + 1, op: EngineOp.Set, key: Buffer.from(`key-${i}`), value: Buffer.from(`value-${i}-`.repeat(5)) }));
  await engine.apply(entries);
  const table = new SessionTable();
  table.apply(keys, { sessionId: S1, seq: 1, firstPendingSeq: 0 }, () => ({ outcome: ApplyOutcome.Applied, revision: keys }));
  let takes = 0;
  const server = new SnapshotServer({
    unavailable: () => null,
    take: async (): Promise<NodeSnapshot> => {
      takes++;
      const sessions = table.encode();
      return { snapshot: await engine.createSnapshot(), sessions };
    },
    openReader: (index, chunkBytesMax) => engine.openSnapshotReader(index, chunkBytesMax),
    transfersMax: opts.transfersMax ?? 4,
    idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
    chunkBytesMax: opts.chunkBytesMax ?? 4096,
    now: opts.now,
  });
  return { dir, engine, table, server, takes: () => takes };
}

describe('snapshot transfer between storage nodes', () => {
  it('fetches a peer snapshot chunk by chunk, installs it with its session table, and reopens at its applied index', async () => {
    const p = await peer(2000);
    const target = tmp();
    const engineDir = join(target, 'engine');
    // The duration is read from the injected clock: virtual here, each request taking 10 ms of it.
    const clock = new VirtualClock(1_000);
    let requests = 0;
    const request: SnapshotRequest = (_peer, data) => {
      requests++;
      clock.advance(10);
      return p.server.handle(data);
    };
    const f = await fetchSnapshot({ request, peer: 'p', requesterId: 's2', minAppliedIndex: 1500, engineDir, timeoutMs: 1000, clock });
    expect(requests).toBeGreaterThan(10);
    expect(f.durationMs).toBe(10 * requests);
    expect(f.appliedIndex).toBe(2000);
    expect(f.chunks).toBeGreaterThan(10); // 4 KiB chunks
    expect(p.server.size()).toBe(0); // End released it
    await SessionStore.stageInstall(join(target, 'sessions'), f.appliedIndex, f.sessions);
    await f.installer.finish();
    const engine = await BitcaskEngine.open({ clock: realClock, dir: engineDir });
    const store = await SessionStore.open({ dir: join(target, 'sessions'), fsync: true, appliedIndex: engine.appliedIndex() });
    expect(engine.appliedIndex()).toBe(2000);
    expect(engine.stats().keys).toBe(2000);
    expect(engine.get(Buffer.from('key-1999'))?.value.toString()).toBe('value-1999-'.repeat(5));
    expect(store.table.result(S1, 1)).toEqual({ outcome: ApplyOutcome.Applied, revision: 2000 });
    expect(fs.existsSync(join(target, 'sessions', 'sessions.install'))).toBe(false);
    await store.close();
    await engine.close();
    await p.engine.close();
  });

  it('a corrupted chunk kills the fetch, deletes the staging directory and leaves the old store as it was', async () => {
    const p = await peer(500);
    const target = tmp();
    const engineDir = join(target, 'engine');
    const old = await BitcaskEngine.open({ clock: realClock, dir: engineDir });
    await old.apply([{ index: 1, op: EngineOp.Set, key: Buffer.from('old'), value: Buffer.from('v') }]);
    await old.close();
    let n = 0;
    const request: SnapshotRequest = async (_peer, data) => {
      const reply = await p.server.handle(data);
      if ((peekMessageType(data) as number) === SNAPSHOT_CHUNK_REQUEST_TYPE && decodeSnapshotChunkRequest(data).part === SnapshotPart.Engine && ++n === 3) {
        const r = decodeSnapshotChunkReply(reply);
        const bad = Buffer.from(r.data);
        bad[40] ^= 0xff; // a byte of the file data
        return encodeSnapshotChunkReply({ ...r, data: bad });
      }
      return reply;
    };
    await expect(fetchSnapshot({ request, peer: 'p', requesterId: 's2', minAppliedIndex: 0, engineDir, timeoutMs: 1000, clock: realClock })).rejects.toThrow(SnapshotCorruptionError);
    expect(fs.existsSync(join(engineDir, INSTALL_STAGING_DIR_NAME))).toBe(false);
    const again = await BitcaskEngine.open({ clock: realClock, dir: engineDir });
    expect(again.appliedIndex()).toBe(1);
    expect(again.get(Buffer.from('old'))?.value.toString()).toBe('v');
    await again.close();
    await p.engine.close();
  });

  it('a staged session table whose install never committed is discarded at open', async () => {
    const dir = tmp();
    const t = new SessionTable();
    t.apply(9, { sessionId: 5n, seq: 1, firstPendingSeq: 0 }, () => ({ outcome: ApplyOutcome.Applied, revision: 9 }));
    await SessionStore.stageInstall(dir, 9, t.encode());
    const warnings: string[] = [];
    const store = await SessionStore.open({ dir, fsync: true, appliedIndex: 3, onWarning: (m) => warnings.push(m) });
    expect(store.table.result(5n, 1)).toBeNull();
    expect(warnings.join()).toMatch(/not committed/);
    expect(fs.existsSync(join(dir, 'sessions.install'))).toBe(false);
    await store.close();
    await expect(SessionStore.stageInstall(dir, 9, Buffer.from([1, 2, 3]))).rejects.toThrow(/snapshot session table/);
  });
});

describe('SnapshotServer bounds', () => {
  it('answers UNAVAILABLE beyond transfersMax, expires idle transfers (releasing their slot), and NOT_FOUND for an expired one', async () => {
    let now = 1_000;
    const p = await peer(10, { transfersMax: 2, idleTimeoutMs: 500, now: () => now });
    const begin = async () => decodeSnapshotBeginReply(await p.server.handle(encodeSnapshotBeginRequest({ requesterId: 'x', minAppliedIndex: 0 })));
    const a = await begin();
    const b = await begin();
    expect([a.status, b.status]).toEqual([Status.Ok, Status.Ok]);
    expect(p.takes()).toBe(2);
    const c = await begin();
    expect(c.status).toBe(Status.Unavailable);
    expect(c.message).toMatch(/snapshotTransfersMax/);
    now += 500;
    p.server.sweep();
    expect(p.server.size()).toBe(0);
    const chunk = decodeSnapshotChunkReply(await p.server.handle(encodeSnapshotChunkRequest({ transferId: a.transferId, part: SnapshotPart.Engine, file: 'x', offset: 0 })));
    expect(chunk.status).toBe(Status.NotFound);
    expect((await begin()).status).toBe(Status.Ok);
    const tooNew = decodeSnapshotBeginReply(await p.server.handle(encodeSnapshotBeginRequest({ requesterId: 'x', minAppliedIndex: 11 })));
    expect(tooNew.status).toBe(Status.Unavailable);
    p.server.closeAll();
    await p.engine.close();
  });
});

describe('BootstrapLoop', () => {
  const fetched = (peer: string, appliedIndex: number) => ({ peer, appliedIndex }) as FetchedSnapshot;

  it('picks the live peer with the highest applied index, and after a failure starts over with another one after a growing backoff', async () => {
    const tried: string[] = [];
    const waits: number[] = [];
    const installed: FetchedSnapshot[] = [];
    const loop = new BootstrapLoop({
      peers: () => [
        { id: 's1', appliedIndex: 900 },
        { id: 's3', appliedIndex: 1000 },
        { id: 's4', appliedIndex: 50 }, // behind what the node needs
      ],
      fetch: async (peer) => {
        tried.push(peer);
        if (peer === 's3') throw new SnapshotFetchError(peer, 'request failed: timeout');
        return fetched(peer, 900);
      },
      install: async (f) => void installed.push(f),
      backoffMs: 100,
      wait: async (ms) => void waits.push(ms),
      stopped: () => false,
      log: quiet,
    });
    const f = await loop.run(100);
    expect(tried).toEqual(['s3', 's1']);
    expect(waits).toEqual([100]);
    expect(installed).toEqual([f]);
    expect(f.peer).toBe('s1');
  });

  it('waits while no live peer qualifies, retries a peer that failed in an earlier round, and stops when the node stops', async () => {
    let round = 0;
    const waits: number[] = [];
    let stopped = false;
    const loop = new BootstrapLoop({
      peers: () => (round < 2 ? [] : [{ id: 's1', appliedIndex: 10 }]),
      fetch: async (peer) => {
        round++;
        if (round < 4) throw new Error('peer died');
        return fetched(peer, 10);
      },
      install: async () => undefined,
      backoffMs: 10,
      wait: async (ms) => {
        waits.push(ms);
        round++;
      },
      stopped: () => stopped,
      log: quiet,
    });
    const f = await loop.run(5);
    expect(f.peer).toBe('s1');
    expect(waits.every((w, i) => i === 0 || w >= waits[i - 1])).toBe(true);
    expect(Math.max(...waits)).toBeLessThanOrEqual(100);
    stopped = true;
    await expect(loop.run(5)).rejects.toThrow(BootstrapStoppedError);
    expect(BootstrapLoop.pickPeer([{ id: 'b', appliedIndex: 5 }, { id: 'a', appliedIndex: 5 }], 0, new Set())).toEqual({ id: 'a', appliedIndex: 5 });
    expect(BootstrapLoop.pickPeer([{ id: 'a', appliedIndex: 5 }], 0, new Set(['a']))).toBeNull();
  });
});
