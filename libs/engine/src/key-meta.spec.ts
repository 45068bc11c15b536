import * as fs from 'node:fs';
import * as path from 'node:path';
import { SegmentedLog, encodeFileHeader, encodeFrame, writeU64 } from '@cairn/log';
import { BitcaskEngine, EngineOp, RECORD_OP_SET_META, decodeRecord, encodeRecord, installSnapshot, logHintFileName, type EngineEntry } from './index';
import { expectHistoryFromHints, testClock, useTempEngines } from './engine-model.spec-helpers';

const b = (s: string): Buffer => Buffer.from(s);
const set = (index: number, key: string, value = `v${index}`): EngineEntry => ({ index, op: EngineOp.Set, key: b(key), value: b(value) });
const del = (index: number, key: string): EngineEntry => ({ index, op: EngineOp.Delete, key: b(key), value: Buffer.alloc(0) });
const meta = (e: BitcaskEngine, key: string) => {
  const got = e.get(b(key));
  return got && { mod: got.revision, create: got.createRevision, version: got.version };
};

/**
 * Per-key metadata as etcd's mvcc keeps it (create revision, mod revision, version): computed at
 * apply, stored in format-2 records and version-2 hint files, so every way the keydir is rebuilt
 * (log scan, log hint files, merged files with and without hint files, snapshot install) keeps it.
 */
describe('per-key metadata (create revision, mod revision, version)', () => {
  const engines = useTempEngines({ segmentBytesMax: 4096 });
  const { tempDir, open } = engines;

  /** 1: a created, 2: b created, 3: a again, 4: a deleted, 5: a re-created, 6+7: b twice in one batch, then filler. */
  const history = async (e: BitcaskEngine): Promise<void> => {
    await e.apply([set(1, 'a'), set(2, 'b'), set(3, 'a')]);
    await e.apply([del(4, 'a'), set(5, 'a'), set(6, 'b'), set(7, 'b')]);
    const filler: EngineEntry[] = [];
    for (let i = 8; i <= 400; i++) filler.push(set(i, `f${i % 50}`, 'x'.repeat(40)));
    await e.apply(filler);
  };
  const expectHistory = (e: BitcaskEngine): void => {
    expect(meta(e, 'a')).toEqual({ mod: 5, create: 5, version: 1 }); // the delete reset it
    expect(meta(e, 'b')).toEqual({ mod: 7, create: 2, version: 3 });
    expect(meta(e, 'f8')).toEqual({ mod: 358, create: 8, version: 8 });
    expect(e.get(b('never'))).toBeNull();
  };

  it('follows etcd: a create sets create revision and version 1, each write adds 1, a delete resets; also within one batch', async () => {
    const e = await open(tempDir());
    await history(e);
    expectHistory(e);
  });

  it('survives reopen from log scans, log hint files, merged files (hint files and scans) and a snapshot install', async () => {
    const dir = tempDir();
    await expectHistoryFromHints(engines, dir, history, expectHistory);
    const scanned = await open(dir, { logHints: false });
    for (const name of fs.readdirSync(dir)) if (/^\d{20}\.hint$/.test(name)) fs.rmSync(path.join(dir, name));
    await scanned.close();
    const noHints = await open(dir, { logHints: false });
    expect(noHints.openReport.logHintFilesLoaded).toBe(0);
    expectHistory(noHints);
    await noHints.merge();
    expectHistory(noHints);
    await noHints.apply([set(401, 'b'), del(402, 'f9'), set(403, 'f9')]);
    expect(meta(noHints, 'b')).toEqual({ mod: 401, create: 2, version: 4 }); // from a merged copy's metadata
    const snap = await noHints.createSnapshot();
    const reader = noHints.openSnapshotReader(snap.appliedIndex);
    const target = tempDir();
    await installSnapshot(target, snap.manifestBytes, reader.chunks(), { clock: testClock });
    await reader.close();
    await noHints.close();
    for (const d of [dir, target]) {
      const r = await open(d, { logHints: false });
      expect(r.openReport.hintFilesLoaded).toBeGreaterThan(0);
      expect(meta(r, 'b')).toEqual({ mod: 401, create: 2, version: 4 });
      expect(meta(r, 'f9')).toEqual({ mod: 403, create: 403, version: 1 });
      expect(meta(r, 'a')).toEqual({ mod: 5, create: 5, version: 1 });
      await r.close();
    }
    for (const name of fs.readdirSync(dir)) if (name.startsWith('merged-') && name.endsWith('.hint')) fs.rmSync(path.join(dir, name));
    const mergedScanned = await open(dir, { logHints: false });
    expect(mergedScanned.openReport.mergedFilesScanned).toBeGreaterThan(0);
    expect(meta(mergedScanned, 'b')).toEqual({ mod: 401, create: 2, version: 4 });
  });

  it('documented record layout: op byte 3 carries u64 createRevision | u64 version after the sizes', () => {
    const rec = encodeRecord(EngineOp.Set, 1_700_000_000_000, 7, b('k'), b('v1'), { createRevision: 5, version: 2 });
    expect(rec.toString('hex')).toBe('03' + '0000018bcfe56800' + '0000000000000007' + '00000001' + '00000002' + '0000000000000005' + '0000000000000002' + '6b' + '7631');
    expect(rec[0]).toBe(RECORD_OP_SET_META);
    expect(decodeRecord(rec)).toEqual({ op: EngineOp.Set, timestampMs: 1_700_000_000_000, revision: 7, createRevision: 5, version: 2, key: b('k'), value: b('v1') });
    const bad = Buffer.from(rec);
    writeU64(bad, 8, 25); // created after its own write
    expect(decodeRecord(bad)).toEqual({ error: expect.stringMatching(/metadata/) });
  });

  it('still reads format 1: records without metadata and version-1 hint files (created at their revision, version 1), and continues from there', async () => {
    const dir = tempDir();
    const log = await SegmentedLog.open({ dir, segmentBytesMax: 256 });
    const payloads = [encodeRecord(EngineOp.Set, 0, 1, b('old'), b('one')), encodeRecord(EngineOp.Set, 0, 2, b('old'), b('two')), encodeRecord(EngineOp.Set, 0, 3, b('other'), b('x'))];
    for (let i = 4; i <= 12; i++) payloads.push(encodeRecord(EngineOp.Set, 0, i, b(`k${i}`), b('y'.repeat(60))));
    await log.append(payloads);
    const sealed = log.segments()[0];
    // A version-1 log hint file for the first sealed file (25-byte entries, no metadata).
    const entries: Buffer[] = [Buffer.from([1])];
    for (let i = sealed.firstIndex; i <= sealed.lastIndex; i++) {
      const p = log.position(i);
      const rec = decodeRecord(payloads[i - 1]) as { key: Buffer };
      const entry = Buffer.alloc(25 + rec.key.length);
      entry[0] = EngineOp.Set;
      writeU64(entry, i, 1);
      writeU64(entry, p.offset, 9);
      entry.writeUInt32BE(p.sizeBytes, 17);
      entry.writeUInt32BE(rec.key.length, 21);
      rec.key.copy(entry, 25);
      entries.push(entry);
    }
    const footer = Buffer.alloc(17);
    footer[0] = 2;
    writeU64(footer, sealed.lastIndex - sealed.firstIndex + 1, 1);
    writeU64(footer, sealed.sizeBytes, 9);
    await log.close();
    const hintFile = Buffer.concat([encodeFileHeader(Buffer.from('CAIRNHNT', 'latin1'), 1, sealed.segmentId), encodeFrame(Buffer.concat(entries)), encodeFrame(footer)]);
    fs.writeFileSync(path.join(dir, logHintFileName(sealed.segmentId)), hintFile);
    const e = await open(dir, { segmentBytesMax: 256, logHints: false });
    expect(e.openReport.logHintFilesLoaded).toBe(1);
    expect(e.openReport.warnings).toEqual([]);
    expect(meta(e, 'old')).toEqual({ mod: 2, create: 2, version: 1 }); // what the record alone says
    expect(meta(e, 'other')).toEqual({ mod: 3, create: 3, version: 1 });
    await e.apply([set(13, 'old'), set(14, 'new')]);
    expect(meta(e, 'old')).toEqual({ mod: 13, create: 2, version: 2 });
    expect(meta(e, 'new')).toEqual({ mod: 14, create: 14, version: 1 });
  });
});
