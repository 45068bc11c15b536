import * as fs from 'node:fs';
import * as path from 'node:path';
import { BitcaskEngine, EngineEntryTooLargeError, EngineOp, RECORD_OP_BATCH, decodeRecord, encodeBatchRecord, type BatchMutation, type EngineEntry } from './index';
import { expectHistoryFromHints, useTempEngines } from './engine-model.spec-helpers';
import { lastMutationInBatch } from './record';

const b = (s: string): Buffer => Buffer.from(s);
const set = (index: number, key: string, value = `v${index}`): EngineEntry => ({ index, op: EngineOp.Set, key: b(key), value: b(value) });
const put = (key: string, value: string): BatchMutation => ({ op: EngineOp.Set, key: b(key), value: b(value) });
const del = (key: string): BatchMutation => ({ op: EngineOp.Delete, key: b(key), value: Buffer.alloc(0) });
const batch = (index: number, ...mutations: BatchMutation[]): EngineEntry => ({ index, op: EngineOp.Batch, key: Buffer.alloc(0), value: Buffer.alloc(0), mutations });
const state = (e: BitcaskEngine, key: string) => {
  const g = e.get(b(key));
  return g && { value: g.value.toString(), mod: g.revision, create: g.createRevision, version: g.version };
};

/**
 * Batch records: a transaction's mutations at one revision, in one record (atomic), each with the
 * same metadata update a single Set / Delete makes; every way the keydir is rebuilt keeps them.
 */
describe('batch records (several key mutations at one revision)', () => {
  const engines = useTempEngines({ segmentBytesMax: 4096 });
  const { tempDir, open } = engines;

  /** 1: a, 2: batch {a=A2, b=B2, c=C2}, 3: batch {del a, b=B3, b=B3bis}, 4: c, then filler so files seal. */
  const history = async (e: BitcaskEngine): Promise<void> => {
    await e.apply([set(1, 'a'), batch(2, put('a', 'A2'), put('b', 'B2'), put('c', 'C2'))]);
    await e.apply([batch(3, del('a'), put('b', 'B3'), put('b', 'B3bis')), set(4, 'c')]);
    const filler: EngineEntry[] = [];
    for (let i = 5; i <= 300; i++) filler.push(set(i, `f${i % 40}`, 'x'.repeat(40)));
    await e.apply(filler);
  };
  const expectHistory = (e: BitcaskEngine): void => {
    expect(state(e, 'a')).toBeNull();
    expect(state(e, 'b')).toEqual({ value: 'B3bis', mod: 3, create: 2, version: 3 });
    expect(state(e, 'c')).toEqual({ value: 'v4', mod: 4, create: 2, version: 2 });
    expect(e.range({ start: b('a'), end: b('d'), limit: 10, bytesMax: 1e6 }).items.map((i) => i.key.toString())).toEqual(['b', 'c']);
  };

  it('applies every mutation at the batch index with etcd metadata; a later mutation of the same key wins', async () => {
    const e = await open(tempDir());
    await history(e);
    expectHistory(e);
    // The dead-bytes correction of a shared record never leaves the count negative.
    expect(e.stats().deadBytes).toBeGreaterThanOrEqual(0);
  });

  it('survives reopen from log scans and log hint files, and a merge (copies as single records)', async () => {
    const dir = tempDir();
    await expectHistoryFromHints(engines, dir, history, expectHistory);
    for (const name of fs.readdirSync(dir)) if (/^\d{20}\.hint$/.test(name)) fs.rmSync(path.join(dir, name));
    const scanned = await open(dir, { logHints: false });
    expect(scanned.openReport.logHintFilesLoaded).toBe(0);
    expectHistory(scanned);
    const report = await scanned.merge();
    expect(report.recordsCopied).toBeGreaterThan(0);
    expectHistory(scanned);
    await scanned.apply([batch(301, put('b', 'B301'), del('c'))]);
    expect(state(scanned, 'b')).toEqual({ value: 'B301', mod: 301, create: 2, version: 4 });
    expect(state(scanned, 'c')).toBeNull();
    await scanned.close();
    const reopened = await open(dir, { logHints: false });
    expect(state(reopened, 'b')).toEqual({ value: 'B301', mod: 301, create: 2, version: 4 });
    expect(state(reopened, 'c')).toBeNull();
  });

  it('refuses an empty batch and one larger than the largest single record (nothing written)', async () => {
    const e = await open(tempDir(), { keyBytesMax: 16, valueBytesMax: 64 });
    await expect(e.apply([batch(1)])).rejects.toThrow(/at least one mutation/);
    await expect(e.apply([batch(1, put('a', 'x'.repeat(60)), put('b', 'y'.repeat(60)))])).rejects.toThrow(EngineEntryTooLargeError);
    expect(e.appliedIndex()).toBe(0);
  });

  it('documented layout: op 4, timestamp, revision, count, reserved, then sub-records', () => {
    const rec = encodeBatchRecord(1_700_000_000_000, 7, [put('k', 'v1'), del('d')], [{ createRevision: 5, version: 2 }, { createRevision: 0, version: 0 }]);
    expect(rec.toString('hex')).toBe(
      '04' + '0000018bcfe56800' + '0000000000000007' + '00000002' + '00000000' + ('03' + '00000001' + '00000002' + '0000000000000005' + '0000000000000002' + '6b' + '7631') + ('02' + '00000001' + '00000000' + '64'),
    );
    expect(rec[0]).toBe(RECORD_OP_BATCH);
    expect(decodeRecord(rec)).toEqual({
      op: EngineOp.Batch,
      timestampMs: 1_700_000_000_000,
      revision: 7,
      mutations: [
        { op: EngineOp.Set, key: b('k'), value: b('v1'), createRevision: 5, version: 2 },
        { op: EngineOp.Delete, key: b('d'), value: Buffer.alloc(0), createRevision: 0, version: 0 },
      ],
    });
    expect(decodeRecord(rec.subarray(0, rec.length - 1))).toEqual({ error: expect.stringMatching(/overrun|truncated|fill/) });
  });

  it("a keydir read takes one key's last mutation out of a batch record, refusing what decodeRecord refuses", () => {
    const muts = [put('ab', '1'), put('b', '2'), del('ab'), put('cb', '3'), put('ab', '4'), put('', 'empty')];
    const metas = muts.map((_, i) => ({ createRevision: 1 + i, version: 1 }));
    const rec = encodeBatchRecord(1_700_000_000_000, 9, muts, metas);
    const full = decodeRecord(rec);
    if (!('mutations' in full)) throw new Error('not a batch');
    for (const key of ['ab', 'b', 'cb', '']) {
      const last = full.mutations.map((m, i) => ({ m, i })).filter(({ m }) => m.key.equals(b(key))).pop()!;
      expect(lastMutationInBatch(rec, b(key))).toEqual({ ...last.m, timestampMs: 1_700_000_000_000, revision: 9 });
    }
    // 'ab' ends with the same byte as 'cb' and 'b': the last-byte filter must not match them.
    expect(lastMutationInBatch(rec, b('ab'))).toMatchObject({ op: EngineOp.Set, value: b('4'), createRevision: 5 });
    expect(lastMutationInBatch(rec, b('zz'))).toEqual({ op: EngineOp.Noop, timestampMs: 1_700_000_000_000, revision: 9, key: Buffer.alloc(0), value: Buffer.alloc(0), createRevision: 0, version: 0 });
    // Every cut and every flipped byte of the sub-records: the same verdict as the full decode.
    for (let cut = 25; cut < rec.length; cut++) expect(lastMutationInBatch(rec.subarray(0, cut), b('b'))).toEqual({ error: (decodeRecord(rec.subarray(0, cut)) as { error: string }).error });
    for (let at = 17; at < rec.length; at++) {
      const bad = Buffer.from(rec);
      bad[at] ^= 0xff;
      const want = decodeRecord(bad);
      if ('error' in want) expect(lastMutationInBatch(bad, b('b'))).toEqual(want);
    }
    expect(lastMutationInBatch(encodeRecordOfOneSet(), b('k'))).toEqual({ error: expect.stringMatching(/not a batch record/) });
  });
});

function encodeRecordOfOneSet(): Buffer {
  const r = Buffer.alloc(25);
  r[0] = EngineOp.Set;
  return r;
}
