/**
 * On-disk format of `@cairn/log` segments (also documented in docs/log.md).
 *
 * A log is a directory of segment files named `<first index, 20-digit zero-padded>.seg`, e.g.
 * `00000000000000000001.seg`. Consecutive segments are contiguous: a segment's first index is
 * the previous segment's first index plus its record count.
 *
 * Segment header (24 bytes, big-endian):
 * ```
 * offset size field
 *      0    8 magic "CAIRNLOG"              43 41 49 52 4e 4c 4f 47
 *      8    4 format version (u32) = 1      00 00 00 01
 *     12    8 first index (u64)             00 00 00 00 00 00 00 01
 *     20    4 CRC32 of bytes 0..19          e5 96 3c 0b
 * ```
 * Record frame, repeated up to the end of the file (8 bytes + payload):
 * ```
 *      0    4 payload length (u32)          00 00 00 05
 *      4    4 CRC32 (zlib.crc32 over the 4 length bytes, then the payload)  46 f6 d4 86
 *      8    n payload                       68 65 6c 6c 6f ("hello")
 * ```
 * A zero length with a zero CRC is never a valid frame (CRC32 of `00 00 00 00` is 2144df1c), so a
 * zero-filled tail is recognisable.
 */
import { crc32 } from 'node:zlib';

export const SEGMENT_MAGIC = Buffer.from('CAIRNLOG', 'latin1');
export const SEGMENT_FORMAT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 24;
export const FRAME_HEADER_BYTES = 8;
export const SEGMENT_FILE_SUFFIX = '.seg';
/** A segment being created is written under this suffix, fsynced, then renamed into place. */
export const SEGMENT_TMP_SUFFIX = '.seg.tmp';
const SEGMENT_NAME_RE = /^(\d{20})\.seg$/;

/** `00000000000000000001.seg` for first index 1. */
export function segmentFileName(firstIndex: number): string {
  return String(firstIndex).padStart(20, '0') + SEGMENT_FILE_SUFFIX;
}

/** The first index named by a segment file name, or null when the name is not a segment's. */
export function parseSegmentFileName(name: string): number | null {
  const m = SEGMENT_NAME_RE.exec(name);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : null;
}

export function writeU64(buf: Buffer, value: number, offset: number): void {
  buf.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset);
  buf.writeUInt32BE(value >>> 0, offset + 4);
}

/** Reads a u64 as a number; values above 2^53 come back unsafe, which callers reject. */
export function readU64(buf: Buffer, offset: number): number {
  return buf.readUInt32BE(offset) * 0x1_0000_0000 + buf.readUInt32BE(offset + 4);
}

export function encodeSegmentHeader(firstIndex: number): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(buf, 0);
  buf.writeUInt32BE(SEGMENT_FORMAT_VERSION, 8);
  writeU64(buf, firstIndex, 12);
  buf.writeUInt32BE(crc32(buf.subarray(0, 20)), 20);
  return buf;
}

/** Returns the first index stored in a segment header, or a reason string when it is not one. */
export function decodeSegmentHeader(buf: Buffer): { firstIndex: number } | { error: string } {
  if (buf.length < SEGMENT_HEADER_BYTES) return { error: `segment header truncated (${buf.length} of ${SEGMENT_HEADER_BYTES} bytes)` };
  if (!buf.subarray(0, 8).equals(SEGMENT_MAGIC)) return { error: 'bad segment magic (not a cairn log segment)' };
  if (buf.readUInt32BE(20) !== crc32(buf.subarray(0, 20))) return { error: 'segment header CRC32 mismatch' };
  const version = buf.readUInt32BE(8);
  if (version !== SEGMENT_FORMAT_VERSION) return { error: `unsupported segment format version ${version}` };
  const firstIndex = readU64(buf, 12);
  if (!Number.isSafeInteger(firstIndex)) return { error: `segment first index ${firstIndex} above 2^53` };
  return { firstIndex };
}

/** CRC32 of a frame: over the 4 big-endian length bytes, then the payload. */
export function frameCrc(lengthBytes: Uint8Array, payload: Uint8Array): number {
  return crc32(payload, crc32(lengthBytes));
}

/** A complete frame (header + a copy of the payload), ready to be written. */
export function encodeFrame(payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.set(payload, FRAME_HEADER_BYTES);
  frame.writeUInt32BE(frameCrc(frame.subarray(0, 4), frame.subarray(FRAME_HEADER_BYTES)), 4);
  return frame;
}
