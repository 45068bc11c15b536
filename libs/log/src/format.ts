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
/** Size of every `encodeFileHeader` header (the segment header is one). */
export const FILE_HEADER_BYTES = 24;
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

/**
 * A 24-byte file header `magic (8) | version u32 | id u64 | CRC32 of bytes 0..19`, big-endian: the
 * segment header's layout, shared with other files that carry CRC-framed records (the engine's
 * merged data files and hint files use their own magic).
 */
export function encodeFileHeader(magic: Buffer, version: number, id: number): Buffer {
  if (magic.length !== 8) throw new RangeError(`FileHeaderMagicIs8Bytes: got ${magic.length}`);
  const buf = Buffer.alloc(FILE_HEADER_BYTES);
  magic.copy(buf, 0);
  buf.writeUInt32BE(version, 8);
  writeU64(buf, id, 12);
  buf.writeUInt32BE(crc32(buf.subarray(0, 20)), 20);
  return buf;
}

/** Returns the id stored in a header written by `encodeFileHeader`, or a reason string when it is not one of `magic` / `version`. */
export function decodeFileHeader(buf: Buffer, magic: Buffer, version: number, what: string): { id: number } | { error: string } {
  if (buf.length < FILE_HEADER_BYTES) return { error: `${what} header truncated (${buf.length} of ${FILE_HEADER_BYTES} bytes)` };
  if (!buf.subarray(0, 8).equals(magic)) return { error: `bad ${what} magic (not a ${magic.toString('latin1')} file)` };
  if (buf.readUInt32BE(20) !== crc32(buf.subarray(0, 20))) return { error: `${what} header CRC32 mismatch` };
  const got = buf.readUInt32BE(8);
  if (got !== version) return { error: `unsupported ${what} format version ${got}` };
  const id = readU64(buf, 12);
  if (!Number.isSafeInteger(id)) return { error: `${what} header id ${id} above 2^53` };
  return { id };
}

export function encodeSegmentHeader(firstIndex: number): Buffer {
  return encodeFileHeader(SEGMENT_MAGIC, SEGMENT_FORMAT_VERSION, firstIndex);
}

/** Returns the first index stored in a segment header, or a reason string when it is not one. */
export function decodeSegmentHeader(buf: Buffer): { firstIndex: number } | { error: string } {
  const h = decodeFileHeader(buf, SEGMENT_MAGIC, SEGMENT_FORMAT_VERSION, 'segment');
  return 'error' in h ? h : { firstIndex: h.id };
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

/**
 * Decodes the complete frame starting at `offset` of `buf` (`u32 length | u32 CRC32 | payload`):
 * the payload (a view into `buf`) and the offset just past the frame, or why it is not a valid
 * frame (incomplete, length above `recordBytesMax`, CRC32 mismatch). Never throws.
 */
export function decodeFrame(buf: Buffer, offset: number, recordBytesMax: number): { payload: Buffer; end: number } | { error: string } {
  if (buf.length - offset < FRAME_HEADER_BYTES) return { error: 'incomplete record header' };
  const len = buf.readUInt32BE(offset);
  if (len > recordBytesMax) return { error: `record length ${len} exceeds recordBytesMax ${recordBytesMax}` };
  const end = offset + FRAME_HEADER_BYTES + len;
  if (end > buf.length) return { error: 'incomplete record payload' };
  const payload = buf.subarray(offset + FRAME_HEADER_BYTES, end);
  if (frameCrc(buf.subarray(offset, offset + 4), payload) !== buf.readUInt32BE(offset + 4)) return { error: 'record CRC32 mismatch' };
  return { payload, end };
}
