/**
 * The keydir: for every live key, where its latest value record is. Keyed by the key bytes as a
 * latin1 string (one char per byte, so binary-safe and cheap to hash); entries are small
 * fixed-shape objects of four numbers. Also keeps the byte accounting merge decisions use:
 * live bytes in total and per data file, dead bytes in total.
 */
import { EngineOp } from './record';

/**
 * Position of a key's live Set record. `fileId` > 0 is a data file of the log (its first index),
 * `fileId` < 0 is merged data file number `-fileId` (docs/engine.md "Files").
 * `revision` = the Raft index that wrote it.
 */
export interface KeydirEntry {
  fileId: number;
  /** Byte offset of the record's frame in that file. */
  offset: number;
  /** Size of the frame (8 + data record bytes). */
  sizeBytes: number;
  revision: number;
}

export function keyString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');
}

export class Keydir {
  private readonly map = new Map<string, KeydirEntry>();
  /** Frame bytes of live records, per data file. */
  private readonly liveByFile = new Map<number, number>();
  /** Frame bytes of the records the keydir points to. */
  liveBytes = 0;
  /** Frame bytes of records nothing points to any more: overwritten values, tombstones, noops. A merge reclaims them. */
  deadBytes = 0;

  get size(): number {
    return this.map.size;
  }

  get(key: string): KeydirEntry | undefined {
    return this.map.get(key);
  }

  /** Frame bytes of the live records in data file `fileId`. */
  liveBytesOf(fileId: number): number {
    return this.liveByFile.get(fileId) ?? 0;
  }

  /**
   * Folds one data record (in revision order per key) into the keydir: the same path serves
   * `apply`, the data-file scan at open and hint files.
   */
  record(op: EngineOp, key: string, fileId: number, offset: number, sizeBytes: number, revision: number): void {
    if (op === EngineOp.Set) {
      this.dropLive(key);
      this.map.set(key, { fileId, offset, sizeBytes, revision });
      this.addLive(fileId, sizeBytes);
    } else {
      if (op === EngineOp.Delete) this.dropLive(key);
      // A tombstone is dead from the start: it only has to outlive the values it shadows.
      this.deadBytes += sizeBytes;
    }
  }

  /**
   * Merge switch: points `key` at its copy in `fileId` when the keydir still holds the same
   * revision (else the key was overwritten or deleted during the merge and the copy is dead).
   * Returns whether it moved.
   */
  repoint(key: string, revision: number, fileId: number, offset: number): boolean {
    const e = this.map.get(key);
    if (!e || e.revision !== revision) return false;
    this.addLive(e.fileId, -e.sizeBytes);
    this.deadBytes += e.sizeBytes; // the original is dead now, until `forgetFile` drops its file
    e.fileId = fileId;
    e.offset = offset;
    this.addLive(fileId, e.sizeBytes);
    return true;
  }

  /** Accounts for a data file (with no live record left) deleted by a merge: its `recordBytes` are no longer dead bytes on disk. */
  forgetFile(fileId: number, recordBytes: number): void {
    const live = this.liveBytesOf(fileId);
    if (live !== 0) throw new Error(`MergeInputHasNoLiveRecords: file ${fileId} still holds ${live} live bytes`);
    this.liveByFile.delete(fileId);
    this.deadBytes -= recordBytes;
  }

  /** Adds the bytes of a new merged file's copies that were not repointed (dead from the start). */
  addDead(bytes: number): void {
    this.deadBytes += bytes;
  }

  private addLive(fileId: number, bytes: number): void {
    this.liveByFile.set(fileId, (this.liveByFile.get(fileId) ?? 0) + bytes);
    this.liveBytes += bytes;
  }

  private dropLive(key: string): void {
    const old = this.map.get(key);
    if (!old) return;
    this.map.delete(key);
    this.addLive(old.fileId, -old.sizeBytes);
    this.deadBytes += old.sizeBytes;
  }
}
