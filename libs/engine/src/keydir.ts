/**
 * The keydir: for every live key, where its latest value record is. Also keeps the byte
 * accounting merge decisions use: live bytes in total and per data file, dead bytes in total.
 *
 * Memory layout (docs/engine.md "Keydir"): a `Map` from the key bytes as a latin1 string (one
 * char per byte, so binary-safe and hashed natively) to a **slot** number (a small integer, so
 * no object per key), and the entry fields in a packed slab of typed-array columns indexed by
 * slot:
 * ```
 * revision  Float64Array  8 B   Raft index that wrote the value (< 2^53)
 * offset    Float64Array  8 B   byte offset of the record frame in its data file
 * sizeBytes Uint32Array   4 B   frame size (8 + data record bytes; < 2^32 by recordBytesMax)
 * file      Uint32Array   4 B   index into the file table (file ids are few: one per data file)
 * ```
 * = 24 bytes per slot, off the V8 heap. Freed slots (deleted keys) are reused; the slab grows by
 * half when full, and `reserve` sizes it once at open from the hint files' entry counts.
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

const INITIAL_SLOTS = 1024;
/** A frame size must fit the `sizeBytes` column. */
const SIZE_BYTES_MAX = 0xffff_ffff;

export class Keydir {
  /** Key (latin1) → slot in the columns below. */
  private readonly slots = new Map<string, number>();
  private revisions = new Float64Array(INITIAL_SLOTS);
  private offsets = new Float64Array(INITIAL_SLOTS);
  private sizes = new Uint32Array(INITIAL_SLOTS);
  private files = new Uint32Array(INITIAL_SLOTS);
  /** Slots ever handed out (the high-water mark); slots below it not in use are in `freeSlots`. */
  private slotsUsed = 0;
  private readonly freeSlots: number[] = [];
  /** File table: file index → file id, and back (ids of forgotten files are dropped from `fileIndexes`). */
  private readonly fileIds: number[] = [];
  private readonly fileIndexes = new Map<number, number>();
  /** One-entry cache for `fileIndexOf`: consecutive records mostly share a file. */
  private lastFileId = 0;
  private lastFileIndex = -1;
  /** Frame bytes of live records, per file index. */
  private readonly liveByFile: number[] = [];
  /** Frame bytes of the records the keydir points to. */
  liveBytes = 0;
  /** Frame bytes of records nothing points to any more: overwritten values, tombstones, noops. A merge reclaims them. */
  deadBytes = 0;

  get size(): number {
    return this.slots.size;
  }

  /** Slots the columns hold (in use or not): what the slab costs, 24 bytes each. */
  get capacity(): number {
    return this.revisions.length;
  }

  /** A copy of the entry for `key` (changing it does not change the keydir). */
  get(key: string): KeydirEntry | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    return { fileId: this.fileIds[this.files[slot]], offset: this.offsets[slot], sizeBytes: this.sizes[slot], revision: this.revisions[slot] };
  }

  /** Whether `key`'s live record is the frame at `offset` of `fileId` (merge: is this copy still wanted?). Allocates nothing. */
  pointsAt(key: string, fileId: number, offset: number): boolean {
    const slot = this.slots.get(key);
    return slot !== undefined && this.offsets[slot] === offset && this.fileIds[this.files[slot]] === fileId;
  }

  /** Frame bytes of the live records in data file `fileId`. */
  liveBytesOf(fileId: number): number {
    const index = this.fileIndexes.get(fileId);
    return index === undefined ? 0 : this.liveByFile[index];
  }

  /** Makes room for `keys` more keys in one step (open: from the hint files' entry counts), so the slab is not regrown and over-allocated while loading. */
  reserve(keys: number): void {
    const need = this.slots.size + keys;
    if (need > this.capacity) this.resize(need);
  }

  /**
   * Folds one data record (in revision order per key) into the keydir: the same path serves
   * `apply`, the data-file scan at open and hint files.
   */
  record(op: EngineOp, key: string, fileId: number, offset: number, sizeBytes: number, revision: number): void {
    if (op === EngineOp.Set) {
      if (!(sizeBytes <= SIZE_BYTES_MAX)) throw new RangeError(`KeydirSizeBytesFits: frame of ${sizeBytes} bytes`);
      let slot = this.slots.get(key);
      if (slot === undefined) {
        slot = this.allocSlot();
        this.slots.set(key, slot);
      } else {
        this.dropLiveSlot(slot);
      }
      const file = this.fileIndexOf(fileId);
      this.revisions[slot] = revision;
      this.offsets[slot] = offset;
      this.sizes[slot] = sizeBytes;
      this.files[slot] = file;
      this.addLive(file, sizeBytes);
    } else {
      if (op === EngineOp.Delete) {
        const slot = this.slots.get(key);
        if (slot !== undefined) {
          this.dropLiveSlot(slot);
          this.slots.delete(key);
          this.freeSlots.push(slot);
        }
      }
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
    const slot = this.slots.get(key);
    if (slot === undefined || this.revisions[slot] !== revision) return false;
    this.dropLiveSlot(slot); // the original is dead now, until `forgetFile` drops its file
    const file = this.fileIndexOf(fileId);
    this.offsets[slot] = offset;
    this.files[slot] = file;
    this.addLive(file, this.sizes[slot]);
    return true;
  }

  /** Accounts for a data file (with no live record left) deleted by a merge: its `recordBytes` are no longer dead bytes on disk. */
  forgetFile(fileId: number, recordBytes: number): void {
    const live = this.liveBytesOf(fileId);
    if (live !== 0) throw new Error(`MergeInputHasNoLiveRecords: file ${fileId} still holds ${live} live bytes`);
    // No slot points at it (live bytes 0, every frame >= 8 bytes): its file index is never read again.
    this.fileIndexes.delete(fileId);
    if (this.lastFileId === fileId) this.lastFileIndex = -1;
    this.deadBytes -= recordBytes;
  }

  /** Adds the bytes of a new merged file's copies that were not repointed (dead from the start). */
  addDead(bytes: number): void {
    this.deadBytes += bytes;
  }

  private allocSlot(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    if (this.slotsUsed === this.capacity) this.resize(Math.ceil(this.capacity * 1.5));
    return this.slotsUsed++;
  }

  private resize(slots: number): void {
    const grow = <T extends Float64Array | Uint32Array>(old: T, make: (n: number) => T): T => {
      const next = make(slots);
      next.set(old.subarray(0, this.slotsUsed));
      return next;
    };
    this.revisions = grow(this.revisions, (n) => new Float64Array(n));
    this.offsets = grow(this.offsets, (n) => new Float64Array(n));
    this.sizes = grow(this.sizes, (n) => new Uint32Array(n));
    this.files = grow(this.files, (n) => new Uint32Array(n));
  }

  private fileIndexOf(fileId: number): number {
    if (fileId === this.lastFileId && this.lastFileIndex >= 0) return this.lastFileIndex;
    let index = this.fileIndexes.get(fileId);
    if (index === undefined) {
      index = this.fileIds.length;
      this.fileIds.push(fileId);
      this.liveByFile.push(0);
      this.fileIndexes.set(fileId, index);
    }
    this.lastFileId = fileId;
    this.lastFileIndex = index;
    return index;
  }

  private addLive(file: number, bytes: number): void {
    this.liveByFile[file] += bytes;
    this.liveBytes += bytes;
  }

  /** The slot's current record is dead now (overwritten or deleted). */
  private dropLiveSlot(slot: number): void {
    const sizeBytes = this.sizes[slot];
    this.addLive(this.files[slot], -sizeBytes);
    this.deadBytes += sizeBytes;
  }
}
