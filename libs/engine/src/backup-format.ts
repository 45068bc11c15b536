/**
 * The backup file of `cairn snapshot save` (docs/operations.md "Backup and restore"): one storage
 * node's engine snapshot at one applied index, as the gateway streams it (`GET /v1/snapshot`),
 * self-describing and checked end to end. All big-endian.
 * ```
 * 24-byte header  "CAIRNBAK" | u32 version 1 | u64 appliedIndex | u32 CRC32 of bytes 0..19
 * records, each one @cairn/log frame: u32 length | u32 CRC32 (length bytes and payload) | payload,
 * payload = u8 kind | body:
 *   1 META      UTF-8 JSON: { node, gateway, savedAtMs, appliedIndex, term }       (first)
 *   2 MANIFEST  the engine snapshot manifest (snapshot-format.ts, its own CRCs)    (second)
 *   3 CHUNK     one engine chunk message (snapshot-format.ts, its own CRC32), in manifest order,
 *               every file at least one (an empty file: one empty chunk)
 *   4 END       UTF-8 JSON: { chunks, bytes } (engine chunks and file bytes before it) (last)
 * ```
 * A reader checks every frame CRC, the manifest, every chunk's CRC, place and `last` flag, every
 * file's size and CRC32 against the manifest, and the END totals; nothing may follow END. A file
 * cut short has no END (`BackupTruncatedError`); any other damage is a `BackupCorruptionError`.
 */
import * as zlib from 'node:zlib';
import { FILE_HEADER_BYTES, FRAME_HEADER_BYTES, decodeFileHeader, decodeFrame, encodeFileHeader, encodeFrame } from '@cairn/log';
import { SNAPSHOT_CHUNK_OVERHEAD_BYTES, decodeSnapshotChunk, decodeSnapshotManifest, type SnapshotManifest } from './snapshot-format';
import { CodedError } from '@cairn/protocol';

const BACKUP_MAGIC = Buffer.from('CAIRNBAK', 'latin1');
const BACKUP_VERSION = 1;
export const BACKUP_HEADER_BYTES = FILE_HEADER_BYTES;
/** Largest record payload a reader accepts: a chunk of 1 MiB of file bytes plus its framing (the protocol's SNAPSHOT_CHUNK_BYTES_MAX is ≤ 1 MiB), or a manifest of ~70,000 files. */
export const BACKUP_RECORD_BYTES_MAX = 4 * 1024 * 1024;

export enum BackupRecordKind {
  Meta = 1,
  Manifest = 2,
  Chunk = 3,
  End = 4,
}

/** What the META record says. */
export interface BackupMeta {
  /** Storage node the snapshot came from. */
  node: string;
  /** Gateway that streamed it. */
  gateway: string;
  /** Wall clock of the gateway when the stream began, ms since the epoch. */
  savedAtMs: number;
  /** The snapshot's applied index (= the header's): the store holds exactly the writes up to this revision. */
  appliedIndex: number;
  /** Raft term of the entry at `appliedIndex` (0 = unknown). */
  term: number;
}

/** Thrown for a damaged backup file: bad magic or version, a CRC32 mismatch, a record out of order, sizes that do not add up. */
export class BackupCorruptionError extends CodedError {
  readonly code = 'BACKUP_CORRUPT';
  constructor(
    /** Byte offset in the backup file of the bad part. */
    readonly offset: number,
    reason: string,
  ) {
    super(`corrupt backup at byte ${offset}: ${reason}`);
  }
}

/** Thrown when the backup file ends before its END record (an interrupted save or a cut copy). */
export class BackupTruncatedError extends CodedError {
  readonly code = 'BACKUP_TRUNCATED';
  constructor(
    readonly sizeBytes: number,
    reason: string,
  ) {
    super(`truncated backup (${sizeBytes} bytes): ${reason}`);
  }
}

/** The 24-byte file header. */
export function encodeBackupHeader(appliedIndex: number): Buffer {
  return encodeFileHeader(BACKUP_MAGIC, BACKUP_VERSION, appliedIndex);
}

/** One record (a frame whose payload is `kind | body`). */
export function encodeBackupRecord(kind: BackupRecordKind, body: Uint8Array): Buffer {
  const payload = Buffer.allocUnsafe(1 + body.length);
  payload[0] = kind;
  payload.set(body, 1);
  return encodeFrame(payload);
}

export function encodeBackupMeta(m: BackupMeta): Buffer {
  return encodeBackupRecord(BackupRecordKind.Meta, Buffer.from(JSON.stringify(m), 'utf8'));
}

export function encodeBackupEnd(totals: { chunks: number; bytes: number }): Buffer {
  return encodeBackupRecord(BackupRecordKind.End, Buffer.from(JSON.stringify(totals), 'utf8'));
}

/** What `BackupReader` hands out, in file order. */
export type BackupEvent =
  | { kind: 'meta'; meta: BackupMeta }
  | { kind: 'manifest'; manifest: SnapshotManifest; bytes: Buffer }
  /** `message` is the engine chunk message as `SnapshotInstaller.write` takes it. */
  | { kind: 'chunk'; message: Buffer; file: string; offset: number; bytes: number }
  | { kind: 'end'; chunks: number; bytes: number };

/**
 * Streaming reader and checker of a backup file: `push` bytes as they come (any split), get the
 * records checked so far; `finish` at the end of input. Holds at most one record plus the bytes
 * of one `push` (records are bounded by BACKUP_RECORD_BYTES_MAX).
 */
export class BackupReader {
  private pending: Buffer = Buffer.alloc(0);
  /** File offset of `pending[0]`. */
  private base = 0;
  private appliedIndex = -1;
  private meta: BackupMeta | null = null;
  private manifest: SnapshotManifest | null = null;
  private fileIndex = 0;
  private fileOffset = 0;
  private fileCrc = 0;
  private chunks = 0;
  private bytes = 0;
  private ended = false;

  /** @throws BackupCorruptionError */
  push(data: Uint8Array): BackupEvent[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, data]) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const out: BackupEvent[] = [];
    if (this.appliedIndex < 0) {
      if (this.pending.length < BACKUP_HEADER_BYTES) return out;
      const h = decodeFileHeader(this.pending, BACKUP_MAGIC, BACKUP_VERSION, 'backup');
      if ('error' in h) throw new BackupCorruptionError(0, `${h.error} (not a cairn snapshot save file?)`);
      this.appliedIndex = h.id;
      this.consume(BACKUP_HEADER_BYTES);
    }
    while (this.pending.length >= FRAME_HEADER_BYTES) {
      if (this.ended) throw new BackupCorruptionError(this.base, 'bytes after the END record');
      const len = this.pending.readUInt32BE(0);
      if (len > BACKUP_RECORD_BYTES_MAX || len < 1) throw new BackupCorruptionError(this.base, `record length ${len} outside 1..${BACKUP_RECORD_BYTES_MAX}`);
      if (this.pending.length < FRAME_HEADER_BYTES + len) break;
      const f = decodeFrame(this.pending, 0, BACKUP_RECORD_BYTES_MAX);
      if ('error' in f) throw new BackupCorruptionError(this.base, f.error);
      out.push(this.record(f.payload));
      this.consume(f.end);
    }
    if (this.ended && this.pending.length) throw new BackupCorruptionError(this.base, 'bytes after the END record');
    return out;
  }

  /** Checks the input ended where a backup ends. @throws BackupTruncatedError */
  finish(): void {
    if (!this.ended) {
      const what = this.appliedIndex < 0 ? 'no header' : !this.manifest ? 'no manifest' : `no END record (file ${this.fileIndex + 1} of ${this.manifest.files.length} at byte ${this.fileOffset})`;
      throw new BackupTruncatedError(this.base + this.pending.length, what);
    }
  }

  private consume(n: number): void {
    this.pending = this.pending.subarray(n);
    this.base += n;
  }

  private bad(reason: string): BackupCorruptionError {
    return new BackupCorruptionError(this.base, reason);
  }

  private record(payload: Buffer): BackupEvent {
    const body = payload.subarray(1);
    switch (payload[0]) {
      case BackupRecordKind.Meta:
        return this.onMeta(body);
      case BackupRecordKind.Manifest:
        return this.onManifest(body);
      case BackupRecordKind.Chunk:
        return this.onChunk(body);
      case BackupRecordKind.End:
        return this.onEnd(body);
      default:
        throw this.bad(`unknown record kind ${payload[0]}`);
    }
  }

  private json(body: Buffer): Record<string, unknown> {
    try {
      const v = JSON.parse(body.toString('utf8')) as unknown;
      if (v && typeof v === 'object') return v as Record<string, unknown>;
    } catch {
      /* answered below */
    }
    throw this.bad('record body is not a JSON object');
  }

  private onMeta(body: Buffer): BackupEvent {
    if (this.meta) throw this.bad('a second META record');
    const m = this.json(body);
    if (typeof m.node !== 'string' || typeof m.gateway !== 'string' || !Number.isSafeInteger(m.savedAtMs) || m.appliedIndex !== this.appliedIndex || !Number.isSafeInteger(m.term)) {
      throw this.bad(`META record does not describe a snapshot at ${this.appliedIndex}: ${body.toString('utf8').slice(0, 200)}`);
    }
    this.meta = { node: String(m.node), gateway: String(m.gateway), savedAtMs: Number(m.savedAtMs), appliedIndex: this.appliedIndex, term: Number(m.term) };
    return { kind: 'meta', meta: this.meta };
  }

  private onManifest(body: Buffer): BackupEvent {
    if (!this.meta || this.manifest) throw this.bad('MANIFEST record not right after META');
    let m: SnapshotManifest;
    try {
      m = decodeSnapshotManifest(body);
    } catch (e) {
      throw this.bad(`manifest: ${(e as Error).message}`);
    }
    if (m.appliedIndex !== this.appliedIndex) throw this.bad(`manifest at index ${m.appliedIndex}, the header says ${this.appliedIndex}`);
    this.manifest = m;
    return { kind: 'manifest', manifest: m, bytes: Buffer.from(body) };
  }

  private onChunk(body: Buffer): BackupEvent {
    const m = this.manifest;
    if (!m) throw this.bad('CHUNK record before the MANIFEST');
    let c;
    try {
      c = decodeSnapshotChunk(body);
    } catch (e) {
      throw this.bad((e as Error).message);
    }
    const f = m.files[this.fileIndex];
    if (!f || c.appliedIndex !== m.appliedIndex || c.file !== f.name || c.offset !== this.fileOffset) throw this.bad(`chunk ${c.file}@${c.offset} out of order (expected ${f ? `${f.name}@${this.fileOffset}` : 'END'})`);
    if (c.offset + c.bytes.length > f.sizeBytes || (c.bytes.length === 0 && f.sizeBytes > 0)) throw this.bad(`chunk ${c.file}@${c.offset} of ${c.bytes.length} bytes does not fit the file's ${f.sizeBytes}`);
    this.fileCrc = zlib.crc32(c.bytes, this.fileCrc);
    this.fileOffset += c.bytes.length;
    this.chunks++;
    this.bytes += c.bytes.length;
    const completes = this.fileOffset === f.sizeBytes;
    if (c.last !== (completes && this.fileIndex === m.files.length - 1)) throw this.bad(`chunk ${c.file}@${c.offset}: wrong last flag`);
    if (completes) {
      if (this.fileCrc !== f.crc32) throw this.bad(`file ${f.name}: CRC32 ${this.fileCrc.toString(16)}, the manifest says ${f.crc32.toString(16)}`);
      this.fileIndex++;
      this.fileOffset = 0;
      this.fileCrc = 0;
    }
    return { kind: 'chunk', message: Buffer.from(body), file: c.file, offset: c.offset, bytes: c.bytes.length };
  }

  private onEnd(body: Buffer): BackupEvent {
    const m = this.manifest;
    if (!m || this.fileIndex < m.files.length) throw this.bad(m ? `END record before the last chunk (file ${m.files[this.fileIndex].name} at byte ${this.fileOffset})` : 'END record before the MANIFEST');
    const t = this.json(body);
    if (t.chunks !== this.chunks || t.bytes !== this.bytes) throw this.bad(`END says ${String(t.chunks)} chunks / ${String(t.bytes)} bytes, the file has ${this.chunks} / ${this.bytes}`);
    this.ended = true;
    return { kind: 'end', chunks: this.chunks, bytes: this.bytes };
  }
}

/** Bytes a backup record adds around a chunk message's file bytes (frame, kind, chunk framing without the name). */
export const BACKUP_CHUNK_OVERHEAD_BYTES = FRAME_HEADER_BYTES + 1 + SNAPSHOT_CHUNK_OVERHEAD_BYTES;
