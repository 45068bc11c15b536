/**
 * The merge manifest `merge.manifest`: the commit point of a merge. It lists the merged data files
 * in use and `upto`, the first revision NOT covered by them (data files of the log whose records
 * all lie below `upto` are superseded). Replaced atomically (tmp + fsync + rename + dir fsync).
 * Layout, big-endian:
 * ```
 * 24-byte header  "CAIRNMAN" | u32 version 1 | u64 generation (merges committed) | u32 CRC32
 * one @cairn/log frame (u32 length | u32 CRC32 | payload), payload:
 *   u64 upto | u64 nextFileNumber | u32 fileCount | fileCount × (u64 n | u64 dataBytes)
 * ```
 * A missing manifest means no merge ever committed: no merged file is in use.
 */
import * as nodePath from 'node:path';
import { FILE_HEADER_BYTES, LogCorruptionError, decodeFileHeader, decodeFrame, encodeFileHeader, encodeFrame, readU64, writeFileAtomic, writeU64, nodeDisk, type Disk } from '@cairn/log';

export const MANIFEST_FILE_NAME = 'merge.manifest';
const MANIFEST_MAGIC = Buffer.from('CAIRNMAN', 'latin1');
const MANIFEST_VERSION = 1;

export interface MergeManifest {
  generation: number;
  /** First revision not covered by the merged files (= first index of the oldest data file still in use). */
  upto: number;
  /** Number for the next merged file (numbers are never reused). */
  nextFileNumber: number;
  files: { n: number; dataBytes: number }[];
}

export function encodeManifest(m: MergeManifest): Buffer {
  const payload = Buffer.alloc(20 + 16 * m.files.length);
  writeU64(payload, m.upto, 0);
  writeU64(payload, m.nextFileNumber, 8);
  payload.writeUInt32BE(m.files.length, 16);
  m.files.forEach((f, i) => {
    writeU64(payload, f.n, 20 + 16 * i);
    writeU64(payload, f.dataBytes, 28 + 16 * i);
  });
  return Buffer.concat([encodeFileHeader(MANIFEST_MAGIC, MANIFEST_VERSION, m.generation), encodeFrame(payload)]);
}

/**
 * Reads `merge.manifest` in `dir`; null when there is none.
 * @throws LogCorruptionError when it exists but does not decode (it is replaced atomically, so
 *   that is damage, and which files hold the data would be unknown).
 */
export function readManifest(dir: string, disk: Disk = nodeDisk): MergeManifest | null {
  const path = nodePath.join(dir, MANIFEST_FILE_NAME);
  let data: Buffer;
  try {
    data = disk.readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const h = decodeFileHeader(data, MANIFEST_MAGIC, MANIFEST_VERSION, 'merge manifest');
  if ('error' in h) throw new LogCorruptionError(path, 0, h.error);
  const f = decodeFrame(data, FILE_HEADER_BYTES, 1 << 30);
  if ('error' in f) throw new LogCorruptionError(path, FILE_HEADER_BYTES, f.error);
  const p = f.payload;
  const count = p.length >= 20 ? p.readUInt32BE(16) : -1;
  if (f.end !== data.length || p.length !== 20 + 16 * count) throw new LogCorruptionError(path, FILE_HEADER_BYTES, 'merge manifest payload does not match its file count');
  const files = [];
  for (let i = 0; i < count; i++) files.push({ n: readU64(p, 20 + 16 * i), dataBytes: readU64(p, 28 + 16 * i) });
  return { generation: h.id, upto: readU64(p, 0), nextFileNumber: readU64(p, 8), files };
}

/** Commits `m` atomically (the merge's commit point). */
export function writeManifest(dir: string, m: MergeManifest, disk: Disk = nodeDisk): Promise<void> {
  return writeFileAtomic(nodePath.join(dir, MANIFEST_FILE_NAME), encodeManifest(m), disk);
}
