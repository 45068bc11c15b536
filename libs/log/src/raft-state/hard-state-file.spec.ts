import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HardStateCorruptionError, HardStateFile } from './hard-state-file';

describe('HardStateFile', () => {
  it('returns null when never written, then round-trips term, vote and commit', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-hs-'));
    const f = new HardStateFile(dir);
    expect(f.read()).toBeNull();
    f.write({ term: 7, vote: 'c2', commit: 41 });
    expect(new HardStateFile(dir).read()).toEqual({ term: 7, vote: 'c2', commit: 41 });
    f.write({ term: 2 ** 40, vote: null, commit: 0 });
    expect(f.read()).toEqual({ term: 2 ** 40, vote: null, commit: 0 });
  });

  it('refuses a file with a flipped byte', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-hs-'));
    const f = new HardStateFile(dir);
    f.write({ term: 3, vote: 'c1', commit: 9 });
    const buf = readFileSync(join(dir, 'hardstate'));
    buf[12] ^= 0xff;
    writeFileSync(join(dir, 'hardstate'), buf);
    expect(() => f.read()).toThrow(HardStateCorruptionError);
  });
});
