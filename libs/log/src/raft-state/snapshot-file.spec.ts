import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SnapshotFile, SnapshotFileCorruptionError } from './snapshot-file';

describe('SnapshotFile', () => {
  const snap = { index: 123_456, term: 7, conf: { voters: ['c2', 'c3', 'c4'], learners: ['c5'], storage: ['s1', 's2'] } };

  it('round-trips the snapshot and reads null when none was written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-snapfile-'));
    const f = new SnapshotFile(dir);
    expect(f.read()).toBeNull();
    await f.write(snap);
    expect(f.read()).toEqual(snap);
    await f.write({ ...snap, index: 200_000, term: 8 });
    expect(new SnapshotFile(dir).read()).toMatchObject({ index: 200_000, term: 8 });
  });

  it('rejects a flipped byte anywhere and a truncated file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-snapfile-'));
    const f = new SnapshotFile(dir);
    await f.write(snap);
    const path = join(dir, 'raft-snapshot');
    const good = readFileSync(path);
    for (const at of [0, 4, 6, 9, 20, good.length - 1]) {
      const bad = Buffer.from(good);
      bad[at] ^= 0x40;
      writeFileSync(path, bad);
      expect(() => f.read()).toThrow(SnapshotFileCorruptionError);
    }
    writeFileSync(path, good.subarray(0, good.length - 3));
    expect(() => f.read()).toThrow(/checksum mismatch|bad configuration length/);
  });
});
