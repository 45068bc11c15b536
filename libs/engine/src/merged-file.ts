/**
 * Merged data files and their hint files (Bitcask §"merge"), written by a merge next to the log's
 * segments. Byte layouts (docs/engine.md "Files"), all big-endian, all records framed with the
 * `@cairn/log` frame `u32 length | u32 CRC32(length bytes, payload) | payload`:
 *
 * `merged-<n, 20 digits>.data`: 24-byte header `CAIRNMDF | u32 version 1 | u64 n | u32 CRC32`,
 * then one frame per copied data record (payload = the data record of `record.ts`, unchanged).
 *
 * `merged-<n>.hint`: 24-byte header `CAIRNHNT | u32 version 2 | u64 n | u32 CRC32`, then frames:
 * ```
 * entries frame payload: u8 tag 1, then entries until the end of the payload:
 *   u8 op (1 Set, 2 Delete) | u64 revision | u64 offset of the record frame in the data file
 *   | u32 frame sizeBytes | u32 keySize | u64 createRevision | u64 version (0 for Delete) | key
 *   (version 1 files, still read: no createRevision / version; a Set counts as created at its revision, version 1)
 * footer frame payload (last frame): u8 tag 2 | u64 entry count | u64 data file size in bytes
 * ```
 * A hint file is used only when every frame checks, the footer is last and its count and data
 * file size match; otherwise open scans the data file instead.
 *
 * `<first index, 20 digits>.hint`: the same layout for a sealed log data file (header id = the
 * file's first index; Set and Delete records only, no-ops are not listed), written in the
 * background once the file is sealed (`BitcaskEngine`), so open need not scan it.
 */
import * as nodePath from 'node:path';
import { FILE_HEADER_BYTES, FRAME_HEADER_BYTES, LogCorruptionError, decodeFileHeader, decodeFrame, encodeFileHeader, encodeFrame, readU64, writeU64, nodeDisk, type Disk, type DiskFile } from '@cairn/log';
import { EngineOp, type KeyMeta } from './record';

export const MERGED_DATA_MAGIC = Buffer.from('CAIRNMDF', 'latin1');
export const HINT_MAGIC = Buffer.from('CAIRNHNT', 'latin1');
export const MERGED_FORMAT_VERSION = 1;
/** Hint file format written; version 1 (no per-key metadata) is still read. */
export const HINT_FORMAT_VERSION = 2;
const HINT_TAG_ENTRIES = 1;
const HINT_TAG_FOOTER = 2;
/** Entry header bytes of a version-2 hint file (version 1: `HINT_V1_ENTRY_HEADER_BYTES`). */
export const HINT_ENTRY_HEADER_BYTES = 41;
const HINT_V1_ENTRY_HEADER_BYTES = 25;

function hintEntryHeaderBytes(version: number): number {
  return version === 1 ? HINT_V1_ENTRY_HEADER_BYTES : HINT_ENTRY_HEADER_BYTES;
}

/** The hint format version of a file header (1 or 2), or an error. */
function decodeHintHeader(data: Buffer): { id: number; version: number } | { error: string } {
  const v2 = decodeFileHeader(data, HINT_MAGIC, HINT_FORMAT_VERSION, 'hint file');
  if (!('error' in v2)) return { id: v2.id, version: HINT_FORMAT_VERSION };
  const v1 = decodeFileHeader(data, HINT_MAGIC, 1, 'hint file');
  return 'error' in v1 ? v2 : { id: v1.id, version: 1 };
}
const HINT_FOOTER_BYTES = 17;
/** Hint entries are grouped into frames of about this many payload bytes (one CRC per frame, not per key). */
const HINT_FRAME_BYTES = 64 * 1024;
const MERGED_NAME_RE = /^merged-(\d{20})\.(data|hint)$/;

export function mergedDataFileName(n: number): string {
  return `merged-${String(n).padStart(20, '0')}.data`;
}

export function hintFileName(n: number): string {
  return `merged-${String(n).padStart(20, '0')}.hint`;
}

/** The hint file of the log data file (segment) with first index `segmentId`: `<20 digits>.hint`. */
export function logHintFileName(segmentId: number): string {
  return `${String(segmentId).padStart(20, '0')}.hint`;
}

const LOG_HINT_NAME_RE = /^(\d{20})\.hint$/;

/** The segment id (first index) named by a log hint file name, else null. */
export function parseLogHintFileName(name: string): number | null {
  const m = LOG_HINT_NAME_RE.exec(name);
  return m ? Number(m[1]) : null;
}

/** `{ n, kind }` for a merged data or hint file name, else null. */
export function parseMergedFileName(name: string): { n: number; kind: 'data' | 'hint' } | null {
  const m = MERGED_NAME_RE.exec(name);
  return m ? { n: Number(m[1]), kind: m[2] as 'data' | 'hint' } : null;
}

/** Appends the encoded entry for `key` (latin1 bytes) to `out` at `at`; returns the new end. */
function encodeHintEntry(out: Buffer, at: number, op: EngineOp, revision: number, offset: number, sizeBytes: number, key: Uint8Array, meta: KeyMeta): number {
  out[at] = op;
  writeU64(out, revision, at + 1);
  writeU64(out, offset, at + 9);
  out.writeUInt32BE(sizeBytes, at + 17);
  out.writeUInt32BE(key.length, at + 21);
  writeU64(out, meta.createRevision, at + 25);
  writeU64(out, meta.version, at + 33);
  out.set(key, at + HINT_ENTRY_HEADER_BYTES);
  return at + HINT_ENTRY_HEADER_BYTES + key.length;
}

/**
 * Called per hint entry with its fields (no object per entry: open loads a million of them); the
 * key is `payload[keyStart..keyEnd)`. createRevision / version: 0 for a Delete; for a Set of a
 * version-1 hint file, the revision and 1.
 */
export type HintEntryVisitor = (op: EngineOp, payload: Buffer, keyStart: number, keyEnd: number, revision: number, offset: number, sizeBytes: number, createRevision: number, version: number) => void;

/**
 * Visits the entries of one entries-frame payload (tag byte included) of a hint file that
 * `readHintFile` validated (or that a `MergedFileWriter` wrote), of hint format `version`
 * (`readHintFile` says which); returns how many.
 */
export function forEachHintEntry(payload: Buffer, visit: HintEntryVisitor, version = HINT_FORMAT_VERSION): number {
  const headerBytes = hintEntryHeaderBytes(version);
  let count = 0;
  let at = 1;
  while (at < payload.length) {
    const keySize = payload.readUInt32BE(at + 21);
    const keyStart = at + headerBytes;
    const keyEnd = keyStart + keySize;
    const op = payload[at];
    const revision = readU64(payload, at + 1);
    let createRevision = 0;
    let keyVersion = 0;
    if (version !== 1) {
      createRevision = readU64(payload, at + 25);
      keyVersion = readU64(payload, at + 33);
    } else if (op === EngineOp.Set) {
      createRevision = revision;
      keyVersion = 1;
    }
    visit(op, payload, keyStart, keyEnd, revision, readU64(payload, at + 9), payload.readUInt32BE(at + 17), createRevision, keyVersion);
    at = keyEnd;
    count++;
  }
  return count;
}

/**
 * What the footer of a hint file claims: its entry count, and an upper bound of its key bytes (the
 * file's bytes less headers and entry headers); zeros when it cannot be read. A sizing hint only
 * (for `Keydir.reserve`), read with one small pread; `readHintFile` validates the file.
 */
export function hintFooterSizes(path: string, disk: Disk = nodeDisk): { entries: number; keyBytes: number } {
  let fd: DiskFile | null = null;
  try {
    fd = disk.openSync(path, 'r');
    const size = fd.statSync().size;
    const frameBytes = FRAME_HEADER_BYTES + HINT_FOOTER_BYTES;
    if (size < FILE_HEADER_BYTES + frameBytes) return { entries: 0, keyBytes: 0 };
    const head = Buffer.alloc(FILE_HEADER_BYTES);
    fd.readSync(head, 0, FILE_HEADER_BYTES, 0);
    const header = decodeHintHeader(head);
    if ('error' in header) return { entries: 0, keyBytes: 0 };
    const buf = Buffer.alloc(frameBytes);
    fd.readSync(buf, 0, frameBytes, size - frameBytes);
    const f = decodeFrame(buf, 0, frameBytes);
    if ('error' in f || f.payload[0] !== HINT_TAG_FOOTER) return { entries: 0, keyBytes: 0 };
    const entries = readU64(f.payload, 1);
    const keyBytes = size - FILE_HEADER_BYTES - frameBytes - entries * hintEntryHeaderBytes(header.version);
    return Number.isSafeInteger(entries) && keyBytes >= 0 ? { entries, keyBytes } : { entries: 0, keyBytes: 0 };
  } catch {
    return { entries: 0, keyBytes: 0 };
  } finally {
    fd?.closeSync();
  }
}

/**
 * Reads and validates a whole hint file. Returns the entries-frame payloads (for `forEachHintEntry`)
 * or why the file cannot be used; never throws for bad content.
 * @param dataBytes the size of the data file the hint must describe.
 */
export function readHintFile(path: string, n: number, dataBytes: number, recordBytesMax: number, disk: Disk = nodeDisk): { payloads: Buffer[]; entries: number; version: number } | { error: string } {
  let data: Buffer;
  try {
    data = disk.readFileSync(path);
  } catch (err) {
    return { error: `cannot read: ${(err as Error).message}` };
  }
  const header = decodeHintHeader(data);
  if ('error' in header) return header;
  const entryHeaderBytes = hintEntryHeaderBytes(header.version);
  if (header.id !== n) return { error: `hint file header names merged file ${header.id}, expected ${n}` };
  const payloads: Buffer[] = [];
  let entries = 0;
  let pos = FILE_HEADER_BYTES;
  while (pos < data.length) {
    const f = decodeFrame(data, pos, Math.max(recordBytesMax, HINT_FRAME_BYTES * 2));
    if ('error' in f) return { error: `${f.error} at byte offset ${pos}` };
    const p = f.payload;
    if (p[0] === HINT_TAG_FOOTER) {
      if (p.length !== HINT_FOOTER_BYTES || f.end !== data.length) return { error: `misplaced or malformed footer at byte offset ${pos}` };
      if (readU64(p, 1) !== entries) return { error: `footer counts ${readU64(p, 1)} entries, file holds ${entries}` };
      if (readU64(p, 9) !== dataBytes) return { error: `footer data file size ${readU64(p, 9)} differs from the data file's ${dataBytes} bytes` };
      return { payloads, entries, version: header.version };
    }
    if (p[0] !== HINT_TAG_ENTRIES) return { error: `unknown hint frame tag ${p[0]} at byte offset ${pos}` };
    // Structural check of every entry before any is used, so a bad file never half-loads.
    let at = 1;
    while (at < p.length) {
      if (p.length - at < entryHeaderBytes) return { error: `truncated entry in frame at byte offset ${pos}` };
      const end = at + entryHeaderBytes + p.readUInt32BE(at + 21);
      const offset = readU64(p, at + 9);
      const sizeBytes = p.readUInt32BE(at + 17);
      if (end > p.length || (p[at] !== EngineOp.Set && p[at] !== EngineOp.Delete) || offset < FILE_HEADER_BYTES || offset + sizeBytes > dataBytes || sizeBytes < FRAME_HEADER_BYTES) {
        return { error: `invalid entry in frame at byte offset ${pos}` };
      }
      entries++;
      at = end;
    }
    payloads.push(p);
    pos = f.end;
  }
  return { error: 'no footer (torn hint file)' };
}

/** An open, immutable merged data file. Reads are synchronous CRC-checked preads. */
export class MergedFile {
  private constructor(
    /** The file number `n`; its keydir file id is `-n`. */
    readonly n: number,
    readonly path: string,
    readonly hintPath: string,
    private fd: DiskFile | null,
    readonly sizeBytes: number,
    readonly hintBytes: number,
    private readonly recordBytesMax: number,
  ) {}

  get fileId(): number {
    return -this.n;
  }

  private file(): DiskFile {
    if (!this.fd) throw new LogCorruptionError(this.path, 0, 'merged data file read after close');
    return this.fd;
  }

  /** Frame bytes of records (the file without its header). */
  get recordBytes(): number {
    return this.sizeBytes - FILE_HEADER_BYTES;
  }

  /**
   * Opens `merged-<n>.data` in `dir` and checks its header and size.
   * @throws LogCorruptionError when the file is missing, foreign, or not `expectedBytes` long.
   */
  static open(dir: string, n: number, expectedBytes: number, recordBytesMax: number, disk: Disk = nodeDisk): MergedFile {
    const path = nodePath.join(dir, mergedDataFileName(n));
    const hintPath = nodePath.join(dir, hintFileName(n));
    let fd: DiskFile;
    try {
      fd = disk.openSync(path, 'r');
    } catch (err) {
      throw new LogCorruptionError(path, 0, `merged data file listed in the merge manifest cannot be opened: ${(err as Error).message}`);
    }
    try {
      const size = fd.statSync().size;
      if (size !== expectedBytes) throw new LogCorruptionError(path, 0, `merged data file has ${size} bytes, the merge manifest says ${expectedBytes}`);
      const head = Buffer.alloc(FILE_HEADER_BYTES);
      fd.readSync(head, 0, FILE_HEADER_BYTES, 0);
      const h = decodeFileHeader(head, MERGED_DATA_MAGIC, MERGED_FORMAT_VERSION, 'merged data file');
      if ('error' in h) throw new LogCorruptionError(path, 0, h.error);
      if (h.id !== n) throw new LogCorruptionError(path, 0, `merged data file header names file ${h.id}, expected ${n}`);
      let hintBytes = 0;
      try {
        hintBytes = disk.statSync(hintPath).size;
      } catch {
        // A missing hint file only means a scan at open.
      }
      return new MergedFile(n, path, hintPath, fd, size, hintBytes, recordBytesMax);
    } catch (err) {
      fd.closeSync();
      throw err;
    }
  }

  /**
   * The payload of the frame at `offset` (`sizeBytes` = frame size), CRC-checked.
   * @throws LogCorruptionError naming this file and the offset: never wrong bytes.
   */
  read(offset: number, sizeBytes: number): Buffer {
    if (offset < FILE_HEADER_BYTES || offset + sizeBytes > this.sizeBytes || sizeBytes < FRAME_HEADER_BYTES) {
      throw new LogCorruptionError(this.path, offset, `record frame of ${sizeBytes} bytes does not fit the file`);
    }
    const frame = Buffer.allocUnsafe(sizeBytes);
    const n = this.file().readSync(frame, 0, sizeBytes, offset);
    if (n !== sizeBytes) throw new LogCorruptionError(this.path, offset, `short read (${n} of ${sizeBytes} bytes)`);
    const f = decodeFrame(frame, 0, this.recordBytesMax);
    if ('error' in f) throw new LogCorruptionError(this.path, offset, f.error);
    if (f.end !== sizeBytes) throw new LogCorruptionError(this.path, offset, `record length field does not match the expected ${sizeBytes - FRAME_HEADER_BYTES}`);
    return f.payload;
  }

  /**
   * Every frame in file order, read sequentially in chunks of about `chunkBytes`, CRC-checked.
   * @throws LogCorruptionError on any bad frame (merged files are fsynced before they are used, so
   *   there is no torn tail to forgive).
   */
  *scan(chunkBytes = 1024 * 1024): Generator<{ offset: number; payload: Buffer }> {
    let chunk: Buffer = Buffer.alloc(0);
    let chunkStart = FILE_HEADER_BYTES;
    let pos = FILE_HEADER_BYTES;
    while (pos < this.sizeBytes) {
      const rel = pos - chunkStart;
      if (rel + FRAME_HEADER_BYTES > chunk.length || rel + FRAME_HEADER_BYTES + chunk.readUInt32BE(rel) > chunk.length) {
        // Refill from `pos`: one chunk, or the whole frame when it is longer (and plausible).
        chunk = this.readChunk(pos, chunkBytes);
        chunkStart = pos;
        if (chunk.length >= FRAME_HEADER_BYTES) {
          const len = chunk.readUInt32BE(0);
          if (len <= this.recordBytesMax && FRAME_HEADER_BYTES + len > chunk.length) chunk = this.readChunk(pos, FRAME_HEADER_BYTES + len);
        }
      }
      const f = decodeFrame(chunk, pos - chunkStart, this.recordBytesMax);
      if ('error' in f) throw new LogCorruptionError(this.path, pos, f.error);
      yield { offset: pos, payload: f.payload };
      pos = chunkStart + f.end;
    }
  }

  private readChunk(pos: number, bytes: number): Buffer {
    const chunk = Buffer.allocUnsafe(Math.min(bytes, this.sizeBytes - pos));
    const n = this.file().readSync(chunk, 0, chunk.length, pos);
    if (n !== chunk.length) throw new LogCorruptionError(this.path, pos, `short read (${n} of ${chunk.length} bytes)`);
    return chunk;
  }

  close(): void {
    this.fd?.closeSync();
    this.fd = null;
  }
}

/**
 * Writes one hint file (layout above; header id = the merged file's n or the log file's first
 * index) under `<path>.tmp`: `add` entries in data file order, `flush` what is queued, `finish`
 * writes the footer, fsyncs and closes, `install` renames it into place (the caller fsyncs the
 * directory). Used by a merge for its merged files and in the background for sealed log files.
 */
export class HintFileWriter {
  /** Entries-frame payloads written, kept when `keepPayloads` (a merge switches the keydir with them). */
  readonly payloads: Buffer[] = [];
  /** Bytes of the hint file so far (queued included). */
  sizeBytes = FILE_HEADER_BYTES;
  entries = 0;
  private fh: DiskFile | null = null;
  private queue: Buffer[] = [];
  private chunk = Buffer.allocUnsafe(HINT_FRAME_BYTES);
  private chunkBytes = 1;

  constructor(
    readonly path: string,
    private readonly id: number,
    private readonly keepPayloads: boolean,
    private readonly disk: Disk = nodeDisk,
  ) {}

  async create(): Promise<void> {
    this.fh = await this.disk.open(this.path + '.tmp', 'w');
    this.queue.push(encodeFileHeader(HINT_MAGIC, HINT_FORMAT_VERSION, this.id));
  }

  /** Queues the entry of the record frame at `offset` (`sizeBytes` long) of the data file. */
  add(op: EngineOp, revision: number, offset: number, sizeBytes: number, key: Uint8Array, meta: KeyMeta): void {
    const need = HINT_ENTRY_HEADER_BYTES + key.length;
    if (this.chunkBytes > 1 && this.chunkBytes + need > HINT_FRAME_BYTES) this.sealChunk();
    if (1 + need > this.chunk.length) this.chunk = Buffer.allocUnsafe(1 + need);
    this.chunkBytes = encodeHintEntry(this.chunk, this.chunkBytes, op, revision, offset, sizeBytes, key, meta);
    this.entries++;
  }

  /** Writes the sealed frames queued so far. */
  async flush(): Promise<void> {
    const q = this.queue;
    this.queue = [];
    if (q.length) await this.fh!.writev(q);
  }

  /** Writes the rest and the footer (entry count, `dataBytes` = the data file's size), fsyncs and closes. */
  async finish(dataBytes: number): Promise<void> {
    this.sealChunk();
    const footer = Buffer.alloc(HINT_FOOTER_BYTES);
    footer[0] = HINT_TAG_FOOTER;
    writeU64(footer, this.entries, 1);
    writeU64(footer, dataBytes, 9);
    const frame = encodeFrame(footer);
    this.queue.push(frame);
    this.sizeBytes += frame.length;
    await this.flush();
    await this.fh!.sync();
    await this.close();
  }

  /** Renames `<path>.tmp` to `path`. */
  async install(): Promise<void> {
    await this.disk.rename(this.path + '.tmp', this.path);
  }

  /** Closes and deletes `<path>.tmp` (and `path` when `installed`). */
  async discard(installed = false): Promise<void> {
    await this.close();
    await this.disk.rm(this.path + '.tmp', { force: true });
    if (installed) await this.disk.rm(this.path, { force: true });
  }

  private async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }

  private sealChunk(): void {
    if (this.chunkBytes <= 1) return;
    this.chunk[0] = HINT_TAG_ENTRIES;
    const payload = Buffer.from(this.chunk.subarray(0, this.chunkBytes));
    if (this.keepPayloads) this.payloads.push(payload);
    const frame = encodeFrame(payload);
    this.queue.push(frame);
    this.sizeBytes += frame.length;
    this.chunkBytes = 1;
    if (this.chunk.length > HINT_FRAME_BYTES) this.chunk = Buffer.allocUnsafe(HINT_FRAME_BYTES);
  }
}

/**
 * Writes one merged data file and its hint file under `.tmp` names; `finish` fsyncs both,
 * `install` renames them into place (the caller fsyncs the directory and commits the manifest).
 */
export class MergedFileWriter {
  readonly dataPath: string;
  readonly hintPath: string;
  /** Bytes of the data file so far (header included). */
  sizeBytes = FILE_HEADER_BYTES;
  records = 0;
  private data: DiskFile | null = null;
  private readonly hint: HintFileWriter;
  private dataQueue: Buffer[] = [];
  private dataWritten = 0;

  constructor(
    dir: string,
    readonly n: number,
    private readonly disk: Disk = nodeDisk,
  ) {
    this.dataPath = nodePath.join(dir, mergedDataFileName(n));
    this.hintPath = nodePath.join(dir, hintFileName(n));
    this.hint = new HintFileWriter(this.hintPath, n, true, disk);
  }

  /** Entries-frame payloads written to the hint file, kept for the keydir switch. */
  get hintPayloads(): Buffer[] {
    return this.hint.payloads;
  }

  get hintBytes(): number {
    return this.hint.sizeBytes;
  }

  async create(): Promise<void> {
    this.data = await this.disk.open(this.dataPath + '.tmp', 'w');
    await this.hint.create();
    this.dataQueue.push(encodeFileHeader(MERGED_DATA_MAGIC, MERGED_FORMAT_VERSION, this.n));
  }

  /** Queues one record frame (a complete `@cairn/log` frame) and its hint entry; returns its offset. */
  add(frame: Buffer, op: EngineOp, revision: number, key: Uint8Array, meta: KeyMeta): number {
    const offset = this.sizeBytes;
    this.dataQueue.push(frame);
    this.sizeBytes += frame.length;
    this.records++;
    this.hint.add(op, revision, offset, frame.length, key, meta);
    return offset;
  }

  /** Writes what is queued (data frames and sealed hint frames). */
  async flush(): Promise<void> {
    const data = this.dataQueue;
    this.dataQueue = [];
    if (data.length) this.dataWritten += (await this.data!.writev(data, this.dataWritten)).bytesWritten;
    await this.hint.flush();
  }

  /** Writes the rest and the hint footer, fsyncs both files and closes them. */
  async finish(): Promise<void> {
    await this.flush();
    if (this.dataWritten !== this.sizeBytes) throw new Error(`ShortWrite: wrote ${this.dataWritten} of ${this.sizeBytes} bytes to ${this.dataPath}.tmp`);
    await this.data!.sync();
    await this.closeData();
    await this.hint.finish(this.sizeBytes);
  }

  /** Renames both files from their `.tmp` names into place. */
  async install(): Promise<void> {
    await this.disk.rename(this.dataPath + '.tmp', this.dataPath);
    await this.hint.install();
  }

  /** Closes and deletes everything this writer created (a merge that did not commit). */
  async discard(): Promise<void> {
    await this.closeData();
    await this.disk.rm(this.dataPath + '.tmp', { force: true });
    await this.disk.rm(this.dataPath, { force: true });
    await this.hint.discard(true);
  }

  private async closeData(): Promise<void> {
    const h = this.data;
    this.data = null;
    await h?.close();
  }
}
