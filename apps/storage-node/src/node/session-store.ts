import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { fsyncDir, nodeDisk, writeFileAtomic, type Disk, type DiskFile } from '@cairn/log';
import { ApplyOutcome, ByteReader, ByteWriter, CodedError } from '@cairn/protocol';
import type { SessionRecord } from './apply-result';
import { SessionTable, type SessionLimits } from './session-table';

/** Rewrite the base and empty the journal once the journal holds this many bytes. */
export const SESSION_JOURNAL_BYTES_MAX = 4 * 1024 * 1024;
const BASE_FILE = 'sessions.base';
const JOURNAL_FILE = 'sessions.journal';
/** A session table received with a snapshot, staged in the base format until the engine reopens at its index. */
export const SESSION_INSTALL_FILE = 'sessions.install';
const BASE_MAGIC = 0xca5e5510;
/** `u32 magic | u64 index | u32 crc32(table) | u32 length | table`. */
const BASE_HEADER_BYTES = 4 + 8 + 4 + 4;
/** `u32 length | u32 crc32(payload) | payload`. */
const FRAME_HEADER_BYTES = 8;
/** `u64 index | u32 idHigh | u32 idLow | u64 seq | u64 firstPendingSeq | u8 outcome | u64 revision`. */
const RECORD_BYTES = 8 + 8 + 8 + 8 + 1 + 8;

export type { SessionRecord } from './apply-result';

export class SessionStoreCorruptionError extends CodedError {
  readonly code = 'SESSION_STORE_CORRUPT';
}

/**
 * Persists a storage node's SessionTable consistently with the engine's applied index
 * (docs/reliability.md, "Duplicate-safe writes"): a base (the whole table at some index B,
 * replaced atomically: write a temporary file, fsync, rename, fsync the directory) plus a journal
 * of the session writes after B, one CRC-framed frame per apply batch.
 *
 * Order: a batch's frame is written (and fdatasync'ed with `fsync`) BEFORE the batch is handed to
 * the engine, so the journal always covers the engine's applied index A. On open, the journal's
 * records up to A are replayed onto the base, records past A (their batch never reached the
 * engine; it is applied again, and journaled again) are dropped, a torn last frame (a crash in the
 * middle of a write) is dropped, and the result is compacted into a new base at A.
 */
export class SessionStore {
  private journalBytes = 0;

  private constructor(
    private readonly dir: string,
    private readonly fsync: boolean,
    private readonly disk: Disk,
    private journal: DiskFile,
    readonly table: SessionTable,
  ) {}

  /**
   * Loads the table as of `appliedIndex` (the engine's). A base past `appliedIndex` (only after an
   * OS crash lost engine records under fsyncPolicy 'interval') cannot be rolled back: the table
   * starts empty then, and `onWarning` says so (duplicates of writes in flight are not detected).
   * @throws SessionStoreCorruptionError on a base whose CRC or layout is wrong.
   */
  static async open(opts: { dir: string; fsync: boolean; appliedIndex: number; limits?: SessionLimits; onWarning?: (msg: string) => void; disk?: Disk }): Promise<SessionStore> {
    const disk = opts.disk ?? nodeDisk;
    await disk.mkdir(opts.dir, { recursive: true });
    let baseIndex = 0;
    let table = new SessionTable(opts.limits);
    const base = await readIfExists(disk, join(opts.dir, BASE_FILE));
    if (base) {
      ({ baseIndex, table } = decodeBase(base, opts.limits));
      if (baseIndex > opts.appliedIndex) {
        opts.onWarning?.(`session table base at index ${baseIndex} is past the engine's applied index ${opts.appliedIndex}: starting with an empty session table`);
        baseIndex = 0;
        table = new SessionTable(opts.limits);
      }
    }
    // A session table staged by a snapshot install (`stageInstall`): it is the table exactly when
    // the engine reopened at its index (the install committed); otherwise the install never
    // committed (or the engine moved on: impossible, it is deleted before anything is applied).
    const staged = await readIfExists(disk, join(opts.dir, SESSION_INSTALL_FILE));
    let adopted = false;
    if (staged) {
      const s = decodeBase(staged, opts.limits);
      if (s.baseIndex === opts.appliedIndex) {
        ({ baseIndex, table } = s);
        adopted = true;
      } else {
        opts.onWarning?.(`staged session table at index ${s.baseIndex} does not match the engine's applied index ${opts.appliedIndex} (snapshot install not committed): discarded`);
      }
    }
    const journal = adopted ? null : await readIfExists(disk, join(opts.dir, JOURNAL_FILE));
    if (journal) {
      for (const rec of decodeJournal(journal)) {
        if (rec.index <= baseIndex || rec.index > opts.appliedIndex) continue;
        const d = table.apply(rec.index, rec.session, () => {
          if (!rec.result) throw new SessionStoreCorruptionError(`journal replay diverged at index ${rec.index}: a write recorded as a duplicate is new`);
          return rec.result;
        });
        if (d.kind !== 'new' && rec.result) throw new SessionStoreCorruptionError(`journal replay diverged at index ${rec.index}: a write recorded as new is a ${d.kind}`);
      }
    }
    const fh = await disk.open(join(opts.dir, JOURNAL_FILE), 'a');
    const store = new SessionStore(opts.dir, opts.fsync, disk, fh, table);
    await store.compact(opts.appliedIndex);
    if (staged) {
      await disk.rm(join(opts.dir, SESSION_INSTALL_FILE), { force: true });
      await fsyncDir(opts.dir, disk);
    }
    return store;
  }

  /**
   * Stages the session table of a snapshot at `index` (the bytes of `SessionTable.encode()`, checked
   * by decoding) next to the store: written in the base format to a temporary file, fsynced,
   * renamed, directory fsynced. Call before the engine install's commit point; the next `open`
   * whose engine is at `index` adopts it (journal ignored), any other discards it.
   * @throws SessionStoreCorruptionError when `tableBytes` do not decode.
   */
  static async stageInstall(dir: string, index: number, tableBytes: Uint8Array, limits?: SessionLimits, disk: Disk = nodeDisk): Promise<void> {
    try {
      SessionTable.decode(tableBytes, limits);
    } catch (e) {
      throw new SessionStoreCorruptionError(`snapshot session table at index ${index}: ${(e as Error).message}`);
    }
    await disk.mkdir(dir, { recursive: true });
    await writeFileAtomic(join(dir, SESSION_INSTALL_FILE), encodeBase(index, Buffer.from(tableBytes.buffer, tableBytes.byteOffset, tableBytes.byteLength)), disk);
  }

  /** Appends one apply batch's session writes (call before handing the batch to the engine). No-op for none. */
  async append(records: SessionRecord[]): Promise<void> {
    if (records.length === 0) return;
    const w = new ByteWriter(FRAME_HEADER_BYTES + 4 + records.length * RECORD_BYTES);
    const payloadBytes = 4 + records.length * RECORD_BYTES;
    w.u32(payloadBytes).u32(0).u32(records.length);
    for (const r of records) {
      const id = r.session.sessionId;
      w.u64(r.index).u32(Number(id >> 32n)).u32(Number(id & 0xffff_ffffn)).u64(r.session.seq).u64(r.session.firstPendingSeq);
      w.u8(r.result ? r.result.outcome : ApplyOutcome.Pending).u64(r.result ? r.result.revision : 0);
    }
    const frame = w.finish();
    frame.writeUInt32BE(crc32(frame.subarray(FRAME_HEADER_BYTES)), 4);
    await this.journal.write(frame);
    if (this.fsync) await this.journal.datasync();
    this.journalBytes += frame.length;
  }

  /** After the engine made `durableIndex` durable (and before the next batch is evaluated): compacts when the journal is over its bound. */
  async maybeCompact(durableIndex: number): Promise<void> {
    if (this.journalBytes >= SESSION_JOURNAL_BYTES_MAX) await this.compact(durableIndex);
  }

  /** Writes the table as the base at `index` (atomically), then empties the journal. The table must be exactly the state at `index`. */
  async compact(index: number): Promise<void> {
    await writeFileAtomic(join(this.dir, BASE_FILE), encodeBase(index, this.table.encode()), this.disk);
    // A crash from here until the truncate leaves journal records ≤ index: open skips them.
    await this.journal.truncate(0);
    await this.journal.sync();
    this.journalBytes = 0;
  }

  async close(): Promise<void> {
    await this.journal.close();
  }
}

/** `u32 magic | u64 index | u32 crc32(table) | u32 length | table`. */
function encodeBase(index: number, table: Buffer): Buffer {
  const header = Buffer.alloc(BASE_HEADER_BYTES);
  header.writeUInt32BE(BASE_MAGIC, 0);
  header.writeUInt32BE(Math.floor(index / 2 ** 32), 4);
  header.writeUInt32BE(index >>> 0, 8);
  header.writeUInt32BE(crc32(table), 12);
  header.writeUInt32BE(table.length, 16);
  return Buffer.concat([header, table]);
}

async function readIfExists(disk: Disk, path: string): Promise<Buffer | null> {
  try {
    return await disk.readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function decodeBase(b: Buffer, limits?: SessionLimits): { baseIndex: number; table: SessionTable } {
  if (b.length < BASE_HEADER_BYTES || b.readUInt32BE(0) !== BASE_MAGIC) throw new SessionStoreCorruptionError(`session base of ${b.length} bytes has no valid header`);
  const baseIndex = b.readUInt32BE(4) * 2 ** 32 + b.readUInt32BE(8);
  const length = b.readUInt32BE(16);
  const table = b.subarray(BASE_HEADER_BYTES);
  if (table.length !== length || crc32(table) !== b.readUInt32BE(12)) throw new SessionStoreCorruptionError(`session base at index ${baseIndex}: CRC or length mismatch`);
  try {
    return { baseIndex, table: SessionTable.decode(table, limits) };
  } catch (e) {
    throw new SessionStoreCorruptionError(`session base at index ${baseIndex}: ${(e as Error).message}`);
  }
}

/** The records of every whole, CRC-valid frame; stops at the first torn or corrupt frame (a crash mid-write: its batch never reached the engine). */
export function decodeJournal(b: Buffer): SessionRecord[] {
  const out: SessionRecord[] = [];
  let at = 0;
  while (b.length - at >= FRAME_HEADER_BYTES) {
    const len = b.readUInt32BE(at);
    if (b.length - at - FRAME_HEADER_BYTES < len) break;
    const payload = b.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + len);
    if (crc32(payload) !== b.readUInt32BE(at + 4)) break;
    const r = new ByteReader(payload);
    const n = r.count(RECORD_BYTES);
    for (let i = 0; i < n; i++) {
      const index = r.u64();
      const sessionId = (BigInt(r.u32()) << 32n) | BigInt(r.u32());
      const seq = r.u64();
      const firstPendingSeq = r.u64();
      const outcome = r.u8();
      const revision = r.u64();
      out.push({ index, session: { sessionId, seq, firstPendingSeq }, result: outcome === ApplyOutcome.Pending ? null : { outcome, revision } });
    }
    at += FRAME_HEADER_BYTES + len;
  }
  return out;
}
