import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChecksummedFile } from './checksummed-file';

describe('ChecksummedFile.writeSlices', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cairn-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const file = () => new ChecksummedFile(join(dir, 'f'), 0x54455354, 1, (m) => new Error(`corrupt: ${m}`));

  it('writes the body given in slices, byte for byte what write() gives for the whole body', async () => {
    const body = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
    const f = file();
    f.write(body);
    const whole = readFileSync(join(dir, 'f'));
    async function* slices() {
      for (let at = 0; at < body.length; at += 1234) yield body.subarray(at, at + 1234);
    }
    expect(await f.writeSlices(slices())).toBe(true);
    expect(readFileSync(join(dir, 'f')).equals(whole)).toBe(true);
    expect(f.read(0)!.equals(body)).toBe(true);
  });

  it('cancelled after a slice: the previous file stays whole (the tmp file is garbage)', async () => {
    const f = file();
    f.write(Buffer.from('old'));
    let n = 0;
    expect(await f.writeSlices([Buffer.from('new-1'), Buffer.from('new-2')], () => ++n >= 1)).toBe(false);
    expect(f.read(0)!.toString()).toBe('old');
    expect(readdirSync(dir).sort()).toEqual(['f', 'f.tmp']);
  });
});
