import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SEGMENT_MAGIC, decodeFileHeader, decodeFrame, encodeFileHeader, encodeFrame, writeFileAtomic } from './index';

describe('format helpers shared with the engine', () => {
  it('decodeFrame reads the documented "hello" frame and rejects damage', () => {
    const frame = encodeFrame(Buffer.from('hello'));
    expect(frame.toString('hex')).toBe('00000005' + '46f6d486' + '68656c6c6f');
    const buf = Buffer.concat([Buffer.from([9, 9]), frame, Buffer.from([7])]);
    const ok = decodeFrame(buf, 2, 100);
    expect(ok).toEqual({ payload: Buffer.from('hello'), end: 2 + frame.length });
    expect(decodeFrame(buf, 2, 4)).toEqual({ error: expect.stringMatching(/exceeds recordBytesMax/) });
    expect(decodeFrame(frame.subarray(0, 10), 0, 100)).toEqual({ error: 'incomplete record payload' });
    expect(decodeFrame(frame.subarray(0, 7), 0, 100)).toEqual({ error: 'incomplete record header' });
    const bad = Buffer.from(frame);
    bad[9] ^= 1;
    expect(decodeFrame(bad, 0, 100)).toEqual({ error: 'record CRC32 mismatch' });
  });

  it('encodeFileHeader is the segment header layout; decodeFileHeader checks magic, CRC and version', () => {
    const h = encodeFileHeader(SEGMENT_MAGIC, 1, 1);
    expect(h.toString('hex')).toBe('434149524e4c4f47' + '00000001' + '0000000000000001' + 'e5963c0b');
    const magic = Buffer.from('CAIRNXYZ', 'latin1');
    const other = encodeFileHeader(magic, 3, 42);
    expect(decodeFileHeader(other, magic, 3, 'test file')).toEqual({ id: 42 });
    expect(decodeFileHeader(other, SEGMENT_MAGIC, 3, 'test file')).toEqual({ error: expect.stringMatching(/bad test file magic/) });
    expect(decodeFileHeader(other, magic, 1, 'test file')).toEqual({ error: 'unsupported test file format version 3' });
    other[13] ^= 1;
    expect(decodeFileHeader(other, magic, 3, 'test file')).toEqual({ error: 'test file header CRC32 mismatch' });
    expect(() => encodeFileHeader(Buffer.from('short'), 1, 1)).toThrow(/FileHeaderMagicIs8Bytes/);
  });

  it('writeFileAtomic replaces a file and leaves no tmp file', async () => {
    const dir = fs.mkdtempSync(os.tmpdir() + '/cairn-');
    try {
      const file = path.join(dir, 'state');
      await writeFileAtomic(file, Buffer.from('one'));
      await writeFileAtomic(file, Buffer.from('two'));
      expect(fs.readFileSync(file, 'utf8')).toBe('two');
      expect(fs.readdirSync(dir)).toEqual(['state']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
