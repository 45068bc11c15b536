import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BitcaskEngine, EngineOp, decodeSnapshotChunk, encodeSnapshotChunk, type BatchMutation, type EngineEntry } from '@cairn/engine';
import { frameCrc } from '@cairn/log';
import { ByteWriter, encodeKeyMeta, keyMetaRecordKey, leaseRecordKey, reservedRecords } from '@cairn/protocol';
import { realClock } from '@cairn/world';
import { UsageError } from './exit-codes';
import { ReservedRecordScan, type LeaseBounds } from './reserved-scan';

const BOUNDS: LeaseBounds = { leasesMax: 100, ttlKeysMax: 100 };
const ttl = (ms: number) => new ByteWriter(8).u64(ms).finish();
const set = (key: Buffer, value: Buffer): BatchMutation => ({ op: EngineOp.Set, key, value });
const del = (key: Buffer): BatchMutation => ({ op: EngineOp.Delete, key, value: Buffer.alloc(0) });
const meta = (key: string, leaseId: number, expiresAtMs: number) => set(keyMetaRecordKey(Buffer.from(key)), encodeKeyMeta({ leaseId, expiresAtMs }));

/**
 * Entries with every record shape a storage node writes: plain Sets and Deletes, batch records
 * (a txn's writes with their lease/expiry records; one writing the same reserved key twice, whose
 * last write wins), Noops, a value larger than a chunk, and leases granted, renewed and revoked.
 */
function history(): EngineEntry[] {
  const muts: (BatchMutation | BatchMutation[] | null)[] = [
    set(leaseRecordKey(7), ttl(2000)),
    set(leaseRecordKey(9), ttl(1000)),
    [set(Buffer.from('a'), Buffer.from('1')), meta('a', 7, 0)],
    [set(Buffer.from('b'), Buffer.from('2')), meta('b', 0, 5_000), meta('b', 0, 6_000)],
    null,
    set(Buffer.from('big'), Buffer.alloc(5000, 0x61)),
    [set(Buffer.from('c'), Buffer.from('3')), meta('c', 0, 99)],
    [del(Buffer.from('c')), del(keyMetaRecordKey(Buffer.from('c')))],
    ...Array.from({ length: 60 }, (_, i) => set(Buffer.from(`k${i % 20}`), Buffer.from(`v${i}`))),
    set(leaseRecordKey(2 ** 53 - 1), ttl(5000)),
    [meta('d', 0, 2 ** 52), set(Buffer.from('d'), Buffer.from('4'))],
    del(leaseRecordKey(9)),
    set(leaseRecordKey(7), ttl(3000)),
  ];
  return muts.map((m, i): EngineEntry => {
    const index = i + 1;
    if (m === null) return { index, op: EngineOp.Noop, key: Buffer.alloc(0), value: Buffer.alloc(0) };
    if (Array.isArray(m)) return { index, op: EngineOp.Batch, key: Buffer.alloc(0), value: Buffer.alloc(0), mutations: m };
    return { index, ...m };
  });
}

/** The lease table as the engine itself gives it (open, then range reads of the reserved keyspace): what the scan must equal. */
function fromEngine(e: BitcaskEngine, index: number, bounds: LeaseBounds) {
  const state = { index, gapThrough: 0, leases: [] as { leaseId: number; ttlMs: number }[], keys: [] as { key: Buffer; expiresAtMs: number }[] };
  for (const { record } of reservedRecords((q) => e.range(q))) {
    if (record.kind === 'lease') state.leases.push({ leaseId: record.leaseId, ttlMs: record.ttlMs });
    else if (record.meta.expiresAtMs > 0 && state.keys.length < bounds.ttlKeysMax) state.keys.push({ key: record.key, expiresAtMs: record.meta.expiresAtMs });
  }
  return state;
}

/** The chunk messages of a snapshot of `e`, `chunkBytes` a chunk (small: frames and headers split across chunks). */
async function chunksOf(e: BitcaskEngine, chunkBytes: number): Promise<{ index: number; messages: Buffer[] }> {
  const snap = await e.createSnapshot({ termAt: () => 1 });
  const reader = e.openSnapshotReader(snap.appliedIndex, chunkBytes);
  const messages: Buffer[] = [];
  for await (const c of reader.chunks()) messages.push(encodeSnapshotChunk(c));
  await reader.close();
  return { index: snap.appliedIndex, messages };
}

describe('ReservedRecordScan (the lease table of a backup, read while it is restored)', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['log files only', false],
    ['merged files and log files', true],
  ])('gives what an open of the store gives: %s, any chunk size', async (_name, merged) => {
    const e = await BitcaskEngine.open({ dir, clock: realClock, autoMerge: false, segmentBytesMax: 2048 });
    const entries = history();
    const half = merged ? 40 : entries.length;
    await e.apply(entries.slice(0, half));
    if (merged) {
      await e.merge();
      await e.apply(entries.slice(half));
    }
    const want = fromEngine(e, entries.length, BOUNDS);
    expect(want.leases).toEqual([{ leaseId: 7, ttlMs: 3000 }, { leaseId: 2 ** 53 - 1, ttlMs: 5000 }]);
    expect(want.keys).toEqual([{ key: Buffer.from('b'), expiresAtMs: 6_000 }, { key: Buffer.from('d'), expiresAtMs: 2 ** 52 }]);
    for (const chunkBytes of [7, 100, 4096, 1 << 20]) {
      const { index, messages } = await chunksOf(e, chunkBytes);
      const files = new Set(messages.map((m) => decodeSnapshotChunk(m).file));
      expect([...files].some((f) => f.startsWith('merged-'))).toBe(merged);
      expect([...files].filter((f) => f.endsWith('.seg')).length).toBeGreaterThan(1);
      const scan = new ReservedRecordScan();
      for (const m of messages) scan.push(m);
      scan.finish();
      expect(scan.leaseState(index, BOUNDS)).toEqual(want);
    }
    // The bounds: more leases than leasesMax is refused; key expiries beyond ttlKeysMax are left out, in key order.
    const { index, messages } = await chunksOf(e, 4096);
    const scan = new ReservedRecordScan();
    for (const m of messages) scan.push(m);
    scan.finish();
    expect(() => scan.leaseState(index, { leasesMax: 1, ttlKeysMax: 10 })).toThrow(UsageError);
    expect(scan.leaseState(index, { leasesMax: 2, ttlKeysMax: 1 }).keys).toEqual(want.keys.slice(0, 1));
    await e.close();
  });

  it('refuses a data file cut inside a record, and a record that does not decode', async () => {
    const e = await BitcaskEngine.open({ dir, clock: realClock, autoMerge: false });
    await e.apply(history());
    const { messages } = await chunksOf(e, 1 << 20);
    await e.close();
    expect(messages).toHaveLength(1);
    const whole = messages[0];
    // The same chunk, its last 3 bytes gone (chunk CRC recomputed: only the record layout is wrong).
    const cut = new ReservedRecordScan();
    const c = decodeSnapshotChunk(whole);
    cut.push(encodeSnapshotChunk({ ...c, bytes: c.bytes.subarray(0, c.bytes.length - 3) }));
    expect(() => cut.finish()).toThrow(/bytes after the last whole record/);
    // A record's op byte changed and its frame CRC fixed: a frame that checks, a record that does not decode.
    const bad = Buffer.from(c.bytes);
    const at = 24;
    bad[at + 8] = 0x7f;
    const len = bad.readUInt32BE(at);
    bad.writeUInt32BE(frameCrc(bad.subarray(at, at + 4), bad.subarray(at + 8, at + 8 + len)), at + 4);
    expect(() => new ReservedRecordScan().push(encodeSnapshotChunk({ ...c, bytes: bad }))).toThrow(/unknown data record op 127/);
  });
});
