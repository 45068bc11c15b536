/**
 * Byte layouts of an engine snapshot (docs/engine.md "Snapshots"), all big-endian. Both are
 * self-checking so a storage node can send them as they are over NATS request/reply.
 *
 * **Snapshot manifest** (`snapshot.manifest`, the first message of a transfer):
 * ```
 * 24-byte header  "CAIRNSNP" | u32 version 1 | u64 appliedIndex | u32 CRC32 of bytes 0..19
 * one @cairn/log frame (u32 length | u32 CRC32 of the length bytes and payload | payload), payload:
 *   u64 term (0 = unknown) | u64 createdAtMs | u32 fileCount
 *   | fileCount × (u16 nameBytes | name (ASCII) | u64 sizeBytes | u32 CRC32 of the whole file)
 * ```
 * **Chunk message** (one per `chunkBytesMax` of a file, files in manifest order):
 * ```
 * offset size field
 *      0    4 magic "CSNK"
 *      4    1 version 1
 *      5    1 flags: bit 0 = last (the final chunk of the snapshot)
 *      6    8 appliedIndex of the snapshot (u64)
 *     14    8 offset of the bytes in the file (u64)
 *     22    4 n = byte count (u32, ≤ chunkBytesMax)
 *     26    2 f = file name bytes (u16)
 *     28    f file name (ASCII)
 *   28+f    n bytes
 * 28+f+n    4 CRC32 of bytes 0 .. 28+f+n-1
 * ```
 * File names are restricted to the engine's own (data, merged, hint and merge manifest files), so
 * a peer's manifest can never name a path outside the directory.
 */
import * as zlib from 'node:zlib';
import { FILE_HEADER_BYTES, decodeFileHeader, decodeFrame, encodeFileHeader, encodeFrame, readU64, writeU64 } from '@cairn/log';
import { SnapshotCorruptionError } from './errors';

export const SNAPSHOT_MANIFEST_FILE_NAME = 'snapshot.manifest';
const SNAPSHOT_MAGIC = Buffer.from('CAIRNSNP', 'latin1');
const SNAPSHOT_VERSION = 1;
const CHUNK_MAGIC = Buffer.from('CSNK', 'latin1');
const CHUNK_VERSION = 1;
const CHUNK_FLAG_LAST = 1;
/** Bytes of a chunk message besides the file name and the bytes. */
export const SNAPSHOT_CHUNK_OVERHEAD_BYTES = 32;
/** Bound of a manifest's file count (a 64 GiB store of 8 MiB files is ~16,000 data + hint files). */
const SNAPSHOT_FILES_MAX = 1_000_000;

/** The files a snapshot may hold: the engine's data files, merged data and hint files, and the merge manifest. */
const SNAPSHOT_FILE_NAME_RE = /^(\d{20}\.seg|merged-\d{20}\.(data|hint)|merge\.manifest)$/;

export function isSnapshotFileName(name: string): boolean {
  return SNAPSHOT_FILE_NAME_RE.test(name);
}

/** One file of a snapshot, as its manifest lists it. */
export interface SnapshotFile {
  /** File name inside the engine directory (e.g. `00000000000000000001.seg`). */
  name: string;
  sizeBytes: number;
  /** CRC32 (zlib) of the whole file. */
  crc32: number;
}

/** What a snapshot manifest says. */
export interface SnapshotManifest {
  /** The engine's applied index when the snapshot was taken: the store holds exactly the entries up to it. */
  appliedIndex: number;
  /** Raft term of the entry at `appliedIndex`, when the caller knew it (`createSnapshot({ termAt })`); 0 = unknown. */
  term: number;
  createdAtMs: number;
  /** In transfer order. */
  files: SnapshotFile[];
}

/** One piece of one snapshot file: `bytes` are bytes `offset .. offset + bytes.length` of `file`. */
export interface SnapshotChunk {
  appliedIndex: number;
  file: string;
  offset: number;
  bytes: Buffer;
  /** The final chunk of the whole snapshot. */
  last: boolean;
}

export function encodeSnapshotManifest(m: SnapshotManifest): Buffer {
  const names = m.files.map((f) => Buffer.from(f.name, 'latin1'));
  const payload = Buffer.alloc(20 + names.reduce((n, name) => n + 14 + name.length, 0));
  writeU64(payload, m.term, 0);
  writeU64(payload, m.createdAtMs, 8);
  payload.writeUInt32BE(m.files.length, 16);
  let at = 20;
  m.files.forEach((f, i) => {
    if (!isSnapshotFileName(f.name)) throw new Error(`SnapshotFileNameValid: ${JSON.stringify(f.name)}`);
    payload.writeUInt16BE(names[i].length, at);
    names[i].copy(payload, at + 2);
    at += 2 + names[i].length;
    writeU64(payload, f.sizeBytes, at);
    payload.writeUInt32BE(f.crc32 >>> 0, at + 8);
    at += 12;
  });
  return Buffer.concat([encodeFileHeader(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, m.appliedIndex), encodeFrame(payload)]);
}

/**
 * Decodes and validates a snapshot manifest (header CRC, frame CRC, field bounds, file names).
 * @throws SnapshotCorruptionError (file `snapshot.manifest`, the offset of the bad part).
 */
export function decodeSnapshotManifest(data: Uint8Array): SnapshotManifest {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const bad = (offset: number, reason: string): SnapshotCorruptionError => new SnapshotCorruptionError(SNAPSHOT_MANIFEST_FILE_NAME, offset, reason);
  const h = decodeFileHeader(buf, SNAPSHOT_MAGIC, SNAPSHOT_VERSION, 'snapshot manifest');
  if ('error' in h) throw bad(0, h.error);
  if (!Number.isSafeInteger(h.id)) throw bad(12, `applied index ${h.id} above 2^53`);
  const f = decodeFrame(buf, FILE_HEADER_BYTES, 1 << 30);
  if ('error' in f) throw bad(FILE_HEADER_BYTES, f.error);
  if (f.end !== buf.length) throw bad(f.end, `${buf.length - f.end} bytes after the manifest frame`);
  const p = f.payload;
  const base = FILE_HEADER_BYTES + 8; // offset of the payload in the manifest
  if (p.length < 20) throw bad(base, 'manifest payload shorter than 20 bytes');
  const count = p.readUInt32BE(16);
  if (count > SNAPSHOT_FILES_MAX) throw bad(base + 16, `file count ${count} above ${SNAPSHOT_FILES_MAX}`);
  const files: SnapshotFile[] = [];
  const seen = new Set<string>();
  let at = 20;
  for (let i = 0; i < count; i++) {
    if (at + 2 > p.length) throw bad(base + at, `file ${i} past the end of the manifest`);
    const nameBytes = p.readUInt16BE(at);
    if (at + 2 + nameBytes + 12 > p.length) throw bad(base + at, `file ${i} past the end of the manifest`);
    const name = p.toString('latin1', at + 2, at + 2 + nameBytes);
    if (!isSnapshotFileName(name) || seen.has(name)) throw bad(base + at, `file ${i}: ${JSON.stringify(name)} is not an engine file name or is listed twice`);
    seen.add(name);
    at += 2 + nameBytes;
    const sizeBytes = readU64(p, at);
    if (!Number.isSafeInteger(sizeBytes)) throw bad(base + at, `file ${name}: size above 2^53`);
    files.push({ name, sizeBytes, crc32: p.readUInt32BE(at + 8) });
    at += 12;
  }
  if (at !== p.length) throw bad(base + at, `${p.length - at} bytes after the file list`);
  const createdAtMs = readU64(p, 8);
  const term = readU64(p, 0);
  if (!Number.isSafeInteger(term) || !Number.isSafeInteger(createdAtMs)) throw bad(base, 'term or createdAtMs above 2^53');
  return { appliedIndex: h.id, term, createdAtMs, files };
}

/** Encodes one chunk message (layout above). */
export function encodeSnapshotChunk(c: SnapshotChunk): Buffer {
  const name = Buffer.from(c.file, 'latin1');
  const out = Buffer.allocUnsafe(SNAPSHOT_CHUNK_OVERHEAD_BYTES + name.length + c.bytes.length);
  CHUNK_MAGIC.copy(out, 0);
  out[4] = CHUNK_VERSION;
  out[5] = c.last ? CHUNK_FLAG_LAST : 0;
  writeU64(out, c.appliedIndex, 6);
  writeU64(out, c.offset, 14);
  out.writeUInt32BE(c.bytes.length, 22);
  out.writeUInt16BE(name.length, 26);
  name.copy(out, 28);
  out.set(c.bytes, 28 + name.length);
  const end = out.length - 4;
  out.writeUInt32BE(zlib.crc32(out.subarray(0, end)), end);
  return out;
}

/**
 * Decodes one chunk message (`bytes` is a view into `data`).
 * @throws SnapshotCorruptionError when the message is malformed or its CRC32 does not match
 *   (naming the file and offset the message claims when they are readable).
 */
export function decodeSnapshotChunk(data: Uint8Array): SnapshotChunk {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const claimed = (): { file: string; offset: number | null } => {
    if (buf.length < 28) return { file: '(chunk message)', offset: null };
    const nameBytes = buf.readUInt16BE(26);
    const offset = readU64(buf, 14);
    return { file: buf.length >= 28 + nameBytes ? buf.toString('latin1', 28, 28 + nameBytes) : '(chunk message)', offset: Number.isSafeInteger(offset) ? offset : null };
  };
  const bad = (reason: string): SnapshotCorruptionError => {
    const { file, offset } = claimed();
    return new SnapshotCorruptionError(file, offset, `chunk message: ${reason}`);
  };
  if (buf.length < SNAPSHOT_CHUNK_OVERHEAD_BYTES) throw bad(`${buf.length} bytes, shorter than its ${SNAPSHOT_CHUNK_OVERHEAD_BYTES}-byte frame`);
  const end = buf.length - 4;
  if (zlib.crc32(buf.subarray(0, end)) !== buf.readUInt32BE(end)) throw bad('CRC32 mismatch');
  if (!buf.subarray(0, 4).equals(CHUNK_MAGIC) || buf[4] !== CHUNK_VERSION) throw bad('bad magic or version');
  const nameBytes = buf.readUInt16BE(26);
  const n = buf.readUInt32BE(22);
  if (SNAPSHOT_CHUNK_OVERHEAD_BYTES + nameBytes + n !== buf.length) throw bad(`sizes (name ${nameBytes}, bytes ${n}) do not add up to its ${buf.length} bytes`);
  const appliedIndex = readU64(buf, 6);
  const offset = readU64(buf, 14);
  if (!Number.isSafeInteger(appliedIndex) || !Number.isSafeInteger(offset)) throw bad('applied index or offset above 2^53');
  if (buf[5] & ~CHUNK_FLAG_LAST) throw bad(`unknown flags ${buf[5]}`);
  return { appliedIndex, file: buf.toString('latin1', 28, 28 + nameBytes), offset, bytes: buf.subarray(28 + nameBytes, 28 + nameBytes + n), last: (buf[5] & CHUNK_FLAG_LAST) !== 0 };
}
