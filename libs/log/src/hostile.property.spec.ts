import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { FRAME_HEADER_BYTES, LogCorruptionError, SEGMENT_FORMAT_VERSION, SEGMENT_MAGIC, SegmentedLog, decodeFileHeader, decodeFrame, encodeFileHeader, encodeFrame } from './index';
import { scanSegment } from './recovery';

/**
 * Hostile bytes for the log's record decoding (issue 9): frames and segment files with bytes
 * overwritten, inserted or cut, length fields up to 2^32-1 included. decodeFrame / decodeFileHeader
 * never throw (they return a reason); a segment scan and SegmentedLog.open throw LogCorruptionError
 * only; whatever a damaged log still returns is what was appended at that index.
 */

const hostileWord = fc.constantFrom(0, 1, 0xff, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff);

type Mutation = { kind: 'set'; at: number; value: number } | { kind: 'u32'; at: number; value: number } | { kind: 'truncate'; at: number } | { kind: 'insert'; at: number; data: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat({ max: 255 }) }),
  fc.record({ kind: fc.constant('u32' as const), at: fc.nat(), value: fc.oneof(hostileWord, fc.nat({ max: 0xffff_ffff })) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), data: fc.uint8Array({ minLength: 1, maxLength: 12 }) }),
);

function mutate(b: Buffer, ms: Mutation[]): Buffer {
  let out = Buffer.from(b);
  for (const m of ms) {
    const at = m.at % (out.length + 1);
    if (m.kind === 'set' && out.length > 0) out[at % out.length] = m.value;
    else if (m.kind === 'u32' && out.length >= 4) out.writeUInt32BE(m.value >>> 0, Math.min(at, out.length - 4));
    else if (m.kind === 'truncate') out = out.subarray(0, at);
    else if (m.kind === 'insert') out = Buffer.concat([out.subarray(0, at), m.data, out.subarray(at)]);
  }
  return out;
}

const payloads = fc.array(
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
  { minLength: 1, maxLength: 12 },
);
const RECORD_BYTES_MAX = 64;

describe('log record decoding on hostile bytes (fast-check)', () => {
  it('decodeFrame never throws; what it accepts is a whole frame within recordBytesMax', () => {
    fc.assert(
      fc.property(payloads, fc.array(mutation, { maxLength: 4 }), fc.nat({ max: 8 }), (ps, ms, skip) => {
        const buf = mutate(Buffer.concat(ps.map(encodeFrame)), ms);
        let offset = Math.min(skip, buf.length);
        for (;;) {
          const r = decodeFrame(buf, offset, RECORD_BYTES_MAX);
          if ('error' in r) break;
          expect(r.payload.length).toBeLessThanOrEqual(RECORD_BYTES_MAX);
          expect(r.end).toBe(offset + FRAME_HEADER_BYTES + r.payload.length);
          expect(r.end).toBeLessThanOrEqual(buf.length);
          offset = r.end;
        }
      }),
      { numRuns: 500 },
    );
  });

  it('decodeFileHeader never throws on random or mutated headers', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.array(mutation, { maxLength: 3 }), fc.uint8Array({ maxLength: 30 }), fc.boolean(), (id, ms, noise, random) => {
        const buf = random ? Buffer.from(noise) : mutate(encodeFileHeader(SEGMENT_MAGIC, SEGMENT_FORMAT_VERSION, id), ms);
        const h = decodeFileHeader(buf, SEGMENT_MAGIC, SEGMENT_FORMAT_VERSION, 'segment');
        if ('id' in h) expect(Number.isSafeInteger(h.id)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('a segment scan of mutated bytes returns within the file or throws LogCorruptionError', () => {
    fc.assert(
      fc.property(payloads, fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), fc.boolean(), (ps, ms, isLast, verifyCrc) => {
        const data = mutate(Buffer.concat([encodeFileHeader(SEGMENT_MAGIC, SEGMENT_FORMAT_VERSION, 1), ...ps.map(encodeFrame)]), ms);
        try {
          const scan = scanSegment('/x/00000000000000000001.seg', data, 1, isLast, RECORD_BYTES_MAX, verifyCrc);
          expect(scan.validBytes).toBeLessThanOrEqual(data.length);
        } catch (e) {
          expect(e).toBeInstanceOf(LogCorruptionError);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('SegmentedLog.open of damaged segment files throws LogCorruptionError or serves only what was appended', async () => {
    await fc.assert(
      fc.asyncProperty(payloads, fc.array(fc.tuple(fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 3 })), { minLength: 1, maxLength: 2 }), fc.boolean(), async (ps, damage, verifySealedSegments) => {
        const dir = fs.mkdtempSync(os.tmpdir() + '/cairn-');
        try {
          const options = { dir, fsyncPolicy: 'always' as const, segmentBytesMax: 120, recordBytesMax: RECORD_BYTES_MAX, verifySealedSegments };
          const log = await SegmentedLog.open(options);
          await log.append(ps);
          await log.close();
          const files = fs.readdirSync(dir).filter((f) => f.endsWith('.seg'));
          for (const [which, ms] of damage) {
            const file = path.join(dir, files[which % files.length]);
            fs.writeFileSync(file, mutate(fs.readFileSync(file), ms));
          }
          let reopened: SegmentedLog;
          try {
            reopened = await SegmentedLog.open(options);
          } catch (e) {
            expect(e).toBeInstanceOf(LogCorruptionError);
            return;
          }
          try {
            expect(reopened.lastIndex()).toBeLessThanOrEqual(ps.length);
            for (let i = reopened.firstIndex(); i <= reopened.lastIndex(); i++) {
              try {
                expect(reopened.read(i)).toEqual(ps[i - 1]);
              } catch (e) {
                expect(e).toBeInstanceOf(LogCorruptionError);
              }
            }
          } finally {
            await reopened.close();
          }
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 60 },
    );
  });
});
