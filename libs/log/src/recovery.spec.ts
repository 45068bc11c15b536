import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LogCorruptionError, SegmentedLog, type RecordPosition } from './index';
import { FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES, segmentFileName } from './format';

const rec = (i: number): Buffer => Buffer.from(`record-${i}-payload`);

/** Writes `count` records (one append each, so each is durable) and closes the log. */
async function writeLog(dir: string, count: number, segmentBytesMax = 1 << 20): Promise<RecordPosition[]> {
  const log = await SegmentedLog.open({ dir, segmentBytesMax });
  const positions: RecordPosition[] = [];
  for (let i = 1; i <= count; i++) positions.push(...(await log.append([rec(i)])));
  await log.close();
  return positions;
}

function patch(file: string, offset: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, bytes, 0, bytes.length, offset);
  fs.closeSync(fd);
}

function flip(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, offset);
  b[0] ^= 0x5a;
  fs.writeSync(fd, b, 0, 1, offset);
  fs.closeSync(fd);
}

async function openError(dir: string, recordBytesMax?: number): Promise<LogCorruptionError> {
  const err = await SegmentedLog.open({ dir, segmentBytesMax: 200, recordBytesMax }).then(
    async (l) => {
      await l.close();
      return null;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LogCorruptionError);
  return err as LogCorruptionError;
}

describe('SegmentedLog recovery', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(os.tmpdir() + '/cairn-');
    file = path.join(dir, segmentFileName(1));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Opens the damaged log, checks the torn tail report, then that appends and a reopen are clean. */
  async function expectTorn(lastIndex: number, tornOffset: number, bytesDropped: number, reason: RegExp): Promise<void> {
    const log = await SegmentedLog.open({ dir });
    expect(log.lastIndex()).toBe(lastIndex);
    expect(log.recovery.tornTail).toEqual({ segmentPath: file, offset: tornOffset, bytesDropped, reason: expect.stringMatching(reason) });
    expect(fs.statSync(file).size).toBe(tornOffset);
    for (let i = 1; i <= lastIndex; i++) expect(log.read(i)).toEqual(rec(i));
    await log.append([Buffer.from('after-recovery')]);
    await log.close();
    const again = await SegmentedLog.open({ dir });
    expect(again.recovery.tornTail).toBeNull();
    expect(again.lastIndex()).toBe(lastIndex + 1);
    expect(again.read(lastIndex + 1)).toEqual(Buffer.from('after-recovery'));
    await again.close();
  }

  it('truncates a record cut mid-payload', async () => {
    const pos = await writeLog(dir, 5);
    const size = fs.statSync(file).size;
    fs.truncateSync(file, size - 3);
    await expectTorn(4, pos[4].offset, pos[4].sizeBytes - 3, /incomplete record payload/);
  });

  it('truncates a record cut mid-header', async () => {
    const pos = await writeLog(dir, 5);
    fs.truncateSync(file, pos[4].offset + 5);
    await expectTorn(4, pos[4].offset, 5, /incomplete record header/);
  });

  it('truncates a zero-filled tail', async () => {
    await writeLog(dir, 5);
    const size = fs.statSync(file).size;
    fs.appendFileSync(file, Buffer.alloc(4096));
    await expectTorn(5, size, 4096, /zero-filled tail/);
  });

  it('truncates a last record with a flipped byte (CRC mismatch at EOF)', async () => {
    const pos = await writeLog(dir, 5);
    flip(file, pos[4].offset + FRAME_HEADER_BYTES + 2);
    await expectTorn(4, pos[4].offset, pos[4].sizeBytes, /CRC32 mismatch/);
  });

  it('a bad record with valid data after it is corruption, with path and offset', async () => {
    const pos = await writeLog(dir, 5);
    flip(file, pos[2].offset + FRAME_HEADER_BYTES + 1);
    const err = await openError(dir);
    expect(err).toMatchObject({ code: 'LOG_CORRUPTION', segmentPath: file, offset: pos[2].offset });
    expect(err.reason).toMatch(/CRC32 mismatch/);
    expect(err.message).toContain(file);
    expect(fs.statSync(file).size).toBe(pos[4].offset + pos[4].sizeBytes); // nothing truncated
  });

  it('a record length above recordBytesMax is corruption, not a torn tail', async () => {
    const pos = await writeLog(dir, 3);
    const big = Buffer.alloc(4);
    big.writeUInt32BE(1 << 30);
    patch(file, pos[2].offset, big);
    const err = await openError(dir);
    expect(err).toMatchObject({ offset: pos[2].offset, reason: expect.stringMatching(/recordBytesMax/) });
  });

  it('any bad record in a non-last segment is corruption, even its last one', async () => {
    const pos = await writeLog(dir, 12, 200);
    const firstSegLast = pos.filter((p) => p.segmentId === 1).at(-1)!;
    expect(pos.at(-1)!.segmentId).not.toBe(1);
    flip(file, firstSegLast.offset + FRAME_HEADER_BYTES);
    const err = await openError(dir);
    expect(err).toMatchObject({ segmentPath: file, offset: firstSegLast.offset, reason: expect.stringMatching(/non-last segment/) });
  });

  it('verifySealedSegments: false skips the CRC pass over sealed segments at open; reads still check and name path and offset', async () => {
    const pos = await writeLog(dir, 12, 200);
    const firstSegLast = pos.filter((p) => p.segmentId === 1).at(-1)!;
    flip(file, firstSegLast.offset + FRAME_HEADER_BYTES);
    const log = await SegmentedLog.open({ dir, segmentBytesMax: 200, verifySealedSegments: false });
    try {
      expect(log.lastIndex()).toBe(12);
      expect(log.read(1)).toEqual(rec(1));
      expect(() => log.read(firstSegLast.index)).toThrow(LogCorruptionError);
      expect(() => log.readAt(firstSegLast.segmentId, firstSegLast.offset)).toThrow(expect.objectContaining({ segmentPath: file, offset: firstSegLast.offset }));
    } finally {
      await log.close();
    }
    // The length walk still finds a torn sealed segment, and the last segment is always fully checked.
    fs.truncateSync(file, fs.statSync(file).size - 2);
    await expect(SegmentedLog.open({ dir, segmentBytesMax: 200, verifySealedSegments: false })).rejects.toThrow(LogCorruptionError);
  });

  it('a torn non-last segment is corruption', async () => {
    await writeLog(dir, 12, 200);
    fs.truncateSync(file, fs.statSync(file).size - 2);
    await openError(dir);
  });

  it('a gap in segment first indexes is corruption', async () => {
    const pos = await writeLog(dir, 20, 200);
    const ids = [...new Set(pos.map((p) => p.segmentId))];
    expect(ids.length).toBeGreaterThan(2);
    fs.rmSync(path.join(dir, segmentFileName(ids[1])));
    const err = await openError(dir);
    expect(err).toMatchObject({ segmentPath: path.join(dir, segmentFileName(ids[2])), offset: 0, reason: expect.stringMatching(/gap/) });
  });

  it('a foreign or garbled segment header is corruption', async () => {
    await writeLog(dir, 2);
    patch(file, 0, Buffer.from('NOTALOG!'));
    expect(await openError(dir)).toMatchObject({ segmentPath: file, offset: 0, reason: expect.stringMatching(/magic/) });
    patch(file, 0, Buffer.from('CAIRNLOG'));
    flip(file, 15); // first index byte: header CRC no longer matches
    expect(await openError(dir)).toMatchObject({ offset: 0, reason: expect.stringMatching(/header CRC32/) });
  });

  it('a header whose first index disagrees with the file name is corruption', async () => {
    await writeLog(dir, 2);
    fs.renameSync(file, path.join(dir, segmentFileName(5)));
    expect(await openError(dir)).toMatchObject({ offset: 0, reason: expect.stringMatching(/does not match/) });
  });

  it('removes a segment left half-created (.seg.tmp) and ignores other files', async () => {
    await writeLog(dir, 2);
    fs.writeFileSync(path.join(dir, segmentFileName(3).replace('.seg', '.seg.tmp')), Buffer.alloc(7));
    fs.writeFileSync(path.join(dir, 'README'), 'not a segment');
    const log = await SegmentedLog.open({ dir });
    expect(log.lastIndex()).toBe(2);
    expect(log.recovery).toEqual({ segmentsScanned: 1, recordsRecovered: 2, tornTail: null });
    await log.close();
    expect(fs.readdirSync(dir).sort()).toEqual([segmentFileName(1), 'README']);
  });

  it('an empty last segment (header only) is a valid empty tail', async () => {
    const log = await SegmentedLog.open({ dir, firstIndex: 3 });
    await log.close();
    expect(fs.statSync(path.join(dir, segmentFileName(3))).size).toBe(SEGMENT_HEADER_BYTES);
    const again = await SegmentedLog.open({ dir });
    expect([again.firstIndex(), again.lastIndex()]).toEqual([3, 2]);
    await again.close();
  });
});
