/**
 * Open-time scan of one segment file: validates the header and every record frame, builds the
 * offset table, and classifies a bad tail of the LAST segment as torn (a crash mid-append) or
 * anything else as corruption. See docs/log.md "Recovery".
 */
import { LogCorruptionError } from './errors';
import { FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES, decodeSegmentHeader, frameCrc } from './format';
import { OffsetTable } from './offset-table';

export interface TornTail {
  segmentPath: string;
  /** Byte offset of the first dropped byte (the start of the torn record frame). */
  offset: number;
  bytesDropped: number;
  reason: string;
}

export interface SegmentScan {
  firstIndex: number;
  offsets: OffsetTable;
  /** Valid bytes: where the file is cut when `torn` is set. */
  validBytes: number;
  torn: TornTail | null;
}

function allZero(data: Buffer, from: number): boolean {
  for (let i = from; i < data.length; i++) if (data[i] !== 0) return false;
  return true;
}

/**
 * Scans the bytes of one segment file.
 * @param expectedFirstIndex the first index the file name (and the previous segment) imply.
 * @param isLast only the last segment may have a torn tail.
 * @param verifyCrc false: walk the frames by their lengths only (a sealed segment whose records are
 *   checked when read, SegmentedLogOptions.verifySealedSegments); the last segment is always checked.
 * @throws LogCorruptionError naming `path` and the byte offset of the bad header or frame.
 */
export function scanSegment(path: string, data: Buffer, expectedFirstIndex: number, isLast: boolean, recordBytesMax: number, verifyCrc = true): SegmentScan {
  const header = decodeSegmentHeader(data.subarray(0, SEGMENT_HEADER_BYTES));
  if ('error' in header) throw new LogCorruptionError(path, 0, header.error);
  if (header.firstIndex !== expectedFirstIndex) {
    throw new LogCorruptionError(path, 0, `segment header first index ${header.firstIndex} does not match expected ${expectedFirstIndex}`);
  }
  const offsets = new OffsetTable(SEGMENT_HEADER_BYTES, 1024);
  const size = data.length;
  let pos = SEGMENT_HEADER_BYTES;
  // Classifies the bad frame at `pos`: `tornIf` says whether, in the last segment, it looks like
  // an interrupted append rather than damage with valid data after it.
  const bad = (reason: string, tornIf: boolean): SegmentScan => {
    if (!isLast || !tornIf) {
      const where = isLast ? 'with data after it' : 'in a non-last segment';
      throw new LogCorruptionError(path, pos, `${reason} ${where}`);
    }
    return { firstIndex: header.firstIndex, offsets, validBytes: pos, torn: { segmentPath: path, offset: pos, bytesDropped: size - pos, reason } };
  };
  while (pos < size) {
    if (size - pos < FRAME_HEADER_BYTES) return bad('incomplete record header at end of file', true);
    const len = data.readUInt32BE(pos);
    const crc = data.readUInt32BE(pos + 4);
    if (len === 0 && crc === 0) return bad('zero-filled tail', allZero(data, pos));
    if (len > recordBytesMax) return bad(`record length ${len} exceeds recordBytesMax ${recordBytesMax}`, false);
    const end = pos + FRAME_HEADER_BYTES + len;
    if (end > size) return bad('incomplete record payload at end of file', true);
    if ((verifyCrc || isLast) && frameCrc(data.subarray(pos, pos + 4), data.subarray(pos + FRAME_HEADER_BYTES, end)) !== crc) {
      // A CRC mismatch is torn only when nothing but zeros (an unwritten, pre-extended tail) follows.
      return bad('record CRC32 mismatch', allZero(data, end));
    }
    offsets.push(end - pos);
    pos = end;
  }
  return { firstIndex: header.firstIndex, offsets, validBytes: size, torn: null };
}
