import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { testClock } from './engine-model.spec-helpers';
import {
  BackupCorruptionError,
  BackupReader,
  BackupRecordKind,
  BackupTruncatedError,
  BitcaskEngine,
  EngineOp,
  encodeBackupEnd,
  encodeBackupHeader,
  encodeBackupMeta,
  encodeBackupRecord,
  encodeSnapshotChunk,
  installSnapshot,
  type BackupEvent,
} from './index';

/** A backup file of a real engine snapshot (several files: small segments), as the gateway writes it. */
async function backupOf(dir: string): Promise<{ file: Buffer; appliedIndex: number; keys: number }> {
  const e = await BitcaskEngine.open({ dir, clock: testClock, autoMerge: false, segmentBytesMax: 16 * 1024 });
  for (let i = 1; i <= 600; i += 100) {
    const entries = Array.from({ length: 100 }, (_, j) => ({ index: i + j, op: EngineOp.Set, key: Buffer.from(`key-${(i + j) % 250}`), value: Buffer.from(`value-${i + j}-${'x'.repeat((i + j) % 90)}`) }));
    await e.apply(entries);
  }
  const snap = await e.createSnapshot({ termAt: () => 3 });
  const reader = e.openSnapshotReader(snap.appliedIndex, 4096);
  const parts = [encodeBackupHeader(snap.appliedIndex), encodeBackupMeta({ node: 's1', gateway: 'g1', savedAtMs: 1, appliedIndex: snap.appliedIndex, term: snap.term }), encodeBackupRecord(BackupRecordKind.Manifest, reader.manifestBytes)];
  let chunks = 0;
  let bytes = 0;
  for await (const c of reader.chunks()) {
    parts.push(encodeBackupRecord(BackupRecordKind.Chunk, encodeSnapshotChunk(c)));
    chunks++;
    bytes += c.bytes.length;
  }
  parts.push(encodeBackupEnd({ chunks, bytes }));
  await reader.close();
  const keys = e.stats().keys;
  await e.close();
  return { file: Buffer.concat(parts), appliedIndex: snap.appliedIndex, keys };
}

/** Pushes `file` in pieces of `step` bytes and finishes. @throws what the reader throws */
function readAll(file: Buffer, step: number): BackupEvent[] {
  const r = new BackupReader();
  const out: BackupEvent[] = [];
  for (let at = 0; at < file.length; at += step) out.push(...r.push(file.subarray(at, at + step)));
  r.finish();
  return out;
}

describe('backup file format', () => {
  let dir: string;
  let backup: Awaited<ReturnType<typeof backupOf>>;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-'));
    backup = await backupOf(path.join(dir, 'source'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads back meta, manifest, every chunk and END in any split, and installs into an engine with the same keys', async () => {
    for (const step of [1, 7, 4096, backup.file.length]) {
      const events = readAll(backup.file, step);
      expect(events[0]).toMatchObject({ kind: 'meta', meta: { node: 's1', appliedIndex: backup.appliedIndex, term: 3 } });
      expect(events[1]).toMatchObject({ kind: 'manifest' });
      expect(events[events.length - 1]).toMatchObject({ kind: 'end' });
    }
    const events = readAll(backup.file, 65536);
    const manifest = events.find((e) => e.kind === 'manifest')!;
    expect(manifest.kind === 'manifest' && manifest.manifest.files.length).toBeGreaterThan(1);
    const target = path.join(dir, 'target');
    const chunks = events.flatMap((e) => (e.kind === 'chunk' ? [e.message] : []));
    await installSnapshot(target, manifest.kind === 'manifest' ? manifest.bytes : Buffer.alloc(0), chunks, { clock: testClock });
    const e = await BitcaskEngine.open({ dir: target, clock: testClock, autoMerge: false });
    expect(e.appliedIndex()).toBe(backup.appliedIndex);
    expect(e.stats().keys).toBe(backup.keys);
    expect(Buffer.from(e.get(Buffer.from('key-1'))!.value).toString()).toMatch(/^value-501-/);
    await e.close();
  });

  it('refuses any flipped byte with BackupCorruptionError (header, frame, manifest or chunk)', () => {
    const f = backup.file;
    for (const at of [0, 13, 30, 60, Math.floor(f.length / 3), Math.floor(f.length / 2), f.length - 20]) {
      const bad = Buffer.from(f);
      bad[at] ^= 0x5a;
      expect(() => readAll(bad, 4096)).toThrow(BackupCorruptionError);
    }
  });

  it('refuses a cut file with BackupTruncatedError, and bytes after END', () => {
    for (const n of [0, 10, 24, 100, Math.floor(backup.file.length / 2), backup.file.length - 1]) {
      expect(() => readAll(backup.file.subarray(0, n), 4096)).toThrow(BackupTruncatedError);
    }
    expect(() => readAll(Buffer.concat([backup.file, Buffer.from([0])]), 4096)).toThrow(BackupCorruptionError);
    expect(() => readAll(Buffer.concat([backup.file, encodeBackupEnd({ chunks: 0, bytes: 0 })]), 4096)).toThrow(/after the END record/);
  });

  it('refuses a record out of order and END totals that do not add up', () => {
    const header = encodeBackupHeader(5);
    expect(() => new BackupReader().push(Buffer.concat([header, encodeBackupEnd({ chunks: 0, bytes: 0 })]))).toThrow(/before the MANIFEST/);
    expect(() => new BackupReader().push(Buffer.concat([header, encodeBackupMeta({ node: 's1', gateway: 'g1', savedAtMs: 1, appliedIndex: 6, term: 0 })]))).toThrow(/does not describe a snapshot at 5/);
    expect(() => new BackupReader().push(Buffer.concat([Buffer.from('NOTABACKUPFILE-----------'), header]))).toThrow(/not a cairn snapshot save file/);
    // The real file with its END record swapped for one with other totals.
    const endless = readAll(backup.file, 65536);
    const end = endless[endless.length - 1];
    const endBytes = end.kind === 'end' ? encodeBackupEnd({ chunks: end.chunks, bytes: end.bytes }) : Buffer.alloc(0);
    const body = backup.file.subarray(0, backup.file.length - endBytes.length);
    expect(() => readAll(Buffer.concat([body, encodeBackupEnd({ chunks: 1, bytes: 1 })]), 4096)).toThrow(/END says 1 chunks/);
  });
});
