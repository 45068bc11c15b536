import { EngineOp, ENGINE_DEFAULTS, decodeRecord, decodeSnapshotChunk, recordBytesMaxOf } from '@cairn/engine';
import { FILE_HEADER_BYTES, FRAME_HEADER_BYTES, decodeFrame, parseSegmentFileName, type SavedLeaseState } from '@cairn/log';
import { decodeReservedRecord, isReservedKey } from '@cairn/protocol';
import { UsageError } from './exit-codes';

/** Bounds of the lease table a restore rebuilds: the new cluster's `consensus.leasesMax` and `consensus.ttlKeysMax`. */
export interface LeaseBounds {
  leasesMax: number;
  ttlKeysMax: number;
}

/** The latest record of one reserved key seen so far: its revision and value (null = deleted). */
interface Latest {
  revision: number;
  key: Buffer;
  value: Buffer | null;
}

/** Merged data files (`merged-<n>.data`): records framed as the log's (docs/engine.md "Files"). */
const MERGED_DATA_RE = /^merged-\d{20}\.data$/;

/**
 * The reserved keyspace of a store (docs/leases.md "Storage": lease and key-expiry records), read
 * from the engine files of a backup as `cairn snapshot restore` streams them, so the restore needs
 * no second open of the restored engine (an open rebuilds the keydir and key order of every key:
 * 1.0–1.7 s for the 226,974-row npm store, docs/operations.md).
 *
 * Input: the chunk messages of a snapshot (`decodeSnapshotChunk`), files one after another, each
 * file's chunks in offset order (as a backup holds them, already CRC-checked by BackupReader).
 * Data files (`<index>.seg`, `merged-<n>.data`): a 24-byte header, then frames `u32 length |
 * u32 CRC32 | payload`, payload = an engine data record (`decodeRecord`: Set, Delete, Noop or a
 * batch of Sets and Deletes at one revision). Hint files and the merge manifest are skipped.
 *
 * Which record of a key wins is the engine's rule, by revision: the record with the highest
 * revision, and within one batch record its last mutation of the key (`lastMutationOf`); a Delete
 * removes the key. So the result does not depend on the order of the files.
 *
 * Bounds: one partial frame per file is held across chunks (at most the engine's largest record,
 * `recordBytesMaxOf` of the engine defaults, plus its 8-byte frame header); one entry per reserved
 * key of the backup (as the restored storage node's LeaseIndex holds them all).
 * @throws UsageError when a data file's frames or records do not decode (a corrupt backup).
 */
export class ReservedRecordScan {
  private readonly latest = new Map<string, Latest>();
  private readonly recordBytesMax = recordBytesMaxOf(ENGINE_DEFAULTS.keyBytesMax, ENGINE_DEFAULTS.valueBytesMax);
  /** The data file being read: its name, the bytes of its last partial frame, and the file offset they start at. */
  private file: { name: string; pending: Buffer; at: number } | null = null;

  /** One chunk message of the backup (`BackupEvent` kind 'chunk'). */
  push(message: Buffer): void {
    const c = decodeSnapshotChunk(message);
    if (c.file !== this.file?.name) this.startFile(c.file);
    const f = this.file;
    if (!f) return;
    if (c.offset !== f.at + f.pending.length) throw new UsageError(`${c.file}: chunk at offset ${c.offset}, expected ${f.at + f.pending.length}`);
    const buf = f.pending.length ? Buffer.concat([f.pending, c.bytes]) : c.bytes;
    let pos = 0;
    if (f.at === 0) {
      if (buf.length < FILE_HEADER_BYTES) {
        f.pending = Buffer.from(buf);
        return;
      }
      pos = FILE_HEADER_BYTES;
    }
    while (buf.length - pos >= FRAME_HEADER_BYTES) {
      const len = buf.readUInt32BE(pos);
      if (len > this.recordBytesMax) throw this.corrupt(f.at + pos, `record length ${len} exceeds ${this.recordBytesMax}`);
      if (buf.length - pos < FRAME_HEADER_BYTES + len) break;
      const frame = decodeFrame(buf, pos, this.recordBytesMax);
      if ('error' in frame) throw this.corrupt(f.at + pos, frame.error);
      this.record(frame.payload, f.at + pos);
      pos = frame.end;
    }
    // A copy: the chunk's buffer is not kept beyond this call.
    f.pending = Buffer.from(buf.subarray(pos));
    f.at += pos;
  }

  /** Call after the last chunk: every data file must have ended on a frame boundary. */
  finish(): void {
    this.startFile(null);
  }

  /**
   * The consensus replicas' lease table as of `index` (etcd lessor `initAndRecover`): every lease
   * with its TTL in key order (= lease id order), and the key expiries in key order, at most
   * `ttlKeysMax` (the rest left out, as a replica leaves them untracked).
   * @throws UsageError when there are more than `leasesMax` leases (the new cluster could not track them).
   */
  leaseState(index: number, bounds: LeaseBounds): SavedLeaseState {
    const state: SavedLeaseState = { index, gapThrough: 0, leases: [], keys: [] };
    const live = [...this.latest.values()].filter((l): l is Latest & { value: Buffer } => l.value !== null).sort((a, b) => Buffer.compare(a.key, b.key));
    for (const l of live) {
      const record = decodeReservedRecord(l.key, l.value);
      if (!record) continue;
      if (record.kind === 'lease') {
        if (state.leases.length === bounds.leasesMax) throw new UsageError(`the backup holds more than ${bounds.leasesMax} leases, the new cluster's consensus.leasesMax: raise it in the config`);
        state.leases.push({ leaseId: record.leaseId, ttlMs: record.ttlMs });
      } else if (record.meta.expiresAtMs > 0 && state.keys.length < bounds.ttlKeysMax) {
        state.keys.push({ key: record.key, expiresAtMs: record.meta.expiresAtMs });
      }
    }
    return state;
  }

  private startFile(name: string | null): void {
    const f = this.file;
    if (f && f.pending.length > 0) throw this.corrupt(f.at, `${f.pending.length} bytes after the last whole record`);
    this.file = name !== null && (parseSegmentFileName(name) !== null || MERGED_DATA_RE.test(name)) ? { name, pending: Buffer.alloc(0), at: 0 } : null;
  }

  private record(payload: Buffer, offset: number): void {
    const r = decodeRecord(payload);
    if ('error' in r) throw this.corrupt(offset, r.error);
    if (r.op === EngineOp.Batch) for (const m of r.mutations) this.mutate(r.revision, m.key, m.op === EngineOp.Set ? m.value : null);
    else if (r.op !== EngineOp.Noop) this.mutate(r.revision, r.key, r.op === EngineOp.Set ? r.value : null);
  }

  private mutate(revision: number, key: Buffer, value: Buffer | null): void {
    if (!isReservedKey(key)) return;
    const k = key.toString('latin1');
    const had = this.latest.get(k);
    // Equal revisions: a later mutation of the same batch record, which wins (`lastMutationOf`).
    if (had && had.revision > revision) return;
    // Copies: the payload's chunk buffer is not kept.
    this.latest.set(k, { revision, key: Buffer.from(key), value: value && Buffer.from(value) });
  }

  private corrupt(offset: number, why: string): UsageError {
    return new UsageError(`${this.file?.name ?? 'engine file'} at byte ${offset}: ${why} (a corrupt backup); refusing it`);
  }
}
