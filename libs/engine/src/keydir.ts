/**
 * The keydir: for every live key, where its latest value record is. Also keeps the byte
 * accounting merge decisions use: live bytes in total and per data file, dead bytes in total.
 *
 * Memory layout (docs/engine.md "Keydir"): no JS object or string per key. Keys are hashed
 * (FNV-1a 32 with a murmur3 finaliser) into an open-addressing table (`Int32Array` of slot + 1,
 * 0 = empty; linear probing, load <= 0.7, backward-shift deletion so there are no tombstones), and
 * everything else sits in a slab of typed-array columns indexed by **slot**:
 * ```
 * hash      Uint32Array   4 B   the key's hash (probe without touching the key bytes; rehash)
 * keyAt     Float64Array  8 B   where the key bytes start in the key arena (one Buffer)
 * keyBytes  Uint32Array   4 B   key length
 * revision  Float64Array  8 B   Raft index that wrote the value (< 2^53): the mod revision
 * created   Float64Array  8 B   create revision (Raft index of the write that created the key)
 * version   Float64Array  8 B   writes since creation (1 = the creating write)
 * offset    Float64Array  8 B   byte offset of the record frame in its data file
 * sizeBytes Uint32Array   4 B   frame size (8 + data record bytes; < 2^32 by recordBytesMax)
 * file      Uint32Array   4 B   index into the file table (file ids are few: one per data file)
 * ```
 * = 56 bytes per slot + ~6–11 bytes of table per key, all outside the V8 heap (nothing for the GC
 * to trace). Freed slots (deleted keys) are reused; the arena is compacted when more than half of
 * it is deleted keys. Everything grows by half when full; `reserve` sizes it once at open.
 */
import { OrderedIndex, type KeyOrder } from './ordered-index';
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
  /** Revision of the write that created the key (the first Set after absence). */
  createRevision: number;
  /** Writes since creation, 1 = the creating write. */
  version: number;
}

/** The key bytes as a latin1 string (one char per byte): for messages and tests. */
export function keyString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');
}

/** FNV-1a 32 over `key[start..end)`, then the murmur3 finaliser (FNV alone clusters under linear probing). */
export function keyHash(key: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ key[i], 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const INITIAL_SLOTS = 1024;
const INITIAL_ARENA_BYTES = 64 * 1024;
/** Table slots per key at most 1 / this. */
const LOAD_MAX = 0.7;
/** A frame size must fit the `sizeBytes` column. */
const SIZE_BYTES_MAX = 0xffff_ffff;
/** Arena compaction: only when deleted key bytes are at least this many (and half the arena). */
const ARENA_COMPACT_BYTES_MIN = 1024 * 1024;

function tableSizeFor(keys: number): number {
  let size = 1024;
  while (size * LOAD_MAX < keys) size *= 2;
  return size;
}

export class Keydir implements KeyOrder {
  /** Open-addressing table: slot + 1, 0 = empty. Its length is a power of two. */
  private table = new Int32Array(tableSizeFor(INITIAL_SLOTS));
  private hashes = new Uint32Array(INITIAL_SLOTS);
  private keyAt = new Float64Array(INITIAL_SLOTS);
  private keyBytes = new Uint32Array(INITIAL_SLOTS);
  private revisions = new Float64Array(INITIAL_SLOTS);
  private created = new Float64Array(INITIAL_SLOTS);
  private versions = new Float64Array(INITIAL_SLOTS);
  private offsets = new Float64Array(INITIAL_SLOTS);
  private sizes = new Uint32Array(INITIAL_SLOTS);
  private files = new Uint32Array(INITIAL_SLOTS);
  /** Key bytes, appended; `arenaUsed` bytes in use, `arenaDeadBytes` of them belong to deleted keys. */
  private arena = Buffer.allocUnsafe(INITIAL_ARENA_BYTES);
  private arenaUsed = 0;
  private arenaDeadBytes = 0;
  private keys = 0;
  /** Slots ever handed out (the high-water mark); slots below it not in use are in `freeSlots`. */
  private slotsUsed = 0;
  private readonly freeSlots: number[] = [];
  /** File table: file index → file id, and back (ids of forgotten files are dropped from `fileIndexes`). */
  private readonly fileIds: number[] = [];
  private readonly fileIndexes = new Map<number, number>();
  /** One-entry cache for `fileIndexOf`: consecutive records mostly share a file. */
  private lastFileId = 0;
  private lastFileIndex = -1;
  /** Every live key's slot in key order, once `buildOrder` ran (open builds it after loading; null before). */
  private ordered: OrderedIndex | null = null;
  /** Frame bytes of live records, per file index. */
  private readonly liveByFile: number[] = [];
  /** Frame bytes of the records the keydir points to. */
  liveBytes = 0;
  /** Frame bytes of records nothing points to any more: overwritten values, tombstones, noops. A merge reclaims them. */
  deadBytes = 0;

  get size(): number {
    return this.keys;
  }

  /** Slots the columns hold (in use or not). */
  get capacity(): number {
    return this.revisions.length;
  }

  /**
   * Builds the ordered index over every live key (one sort) and keeps it up to date from then on.
   * Open calls it once the keydir is loaded, so loading does not pay an ordered insert per record.
   */
  buildOrder(): OrderedIndex {
    // Live slots in slot order: at open that is the arena's order, so the sort reads keys sequentially.
    const live = new Uint8Array(this.slotsUsed);
    for (const entry of this.table) if (entry !== 0) live[entry - 1] = 1;
    const slots = new Int32Array(this.keys);
    let n = 0;
    for (let slot = 0; slot < live.length; slot++) if (live[slot] === 1) slots[n++] = slot;
    this.sortSlots(slots);
    const ordered = new OrderedIndex(this);
    ordered.build(slots);
    this.ordered = ordered;
    return ordered;
  }

  /**
   * Sorts `slots` (live, distinct keys) into key order in place. A comparison sort through a JS
   * comparator took seconds for a million keys (each compare reads two keys at random places of
   * the arena); this reads 8 bytes of each key once per level into word arrays and sorts those
   * with an LSD radix sort (8 sequential passes of one byte, skipped when every key has the same
   * byte there), then sorts the runs of keys that share those 8 bytes the same way at the next 8
   * bytes, or by comparison when a run is small or holds a key that ends inside the window.
   */
  sortSlots(slots: Int32Array, lo = 0, hi = slots.length, depth = 0): void {
    const n = hi - lo;
    if (n < 2) return;
    let sl = slots.slice(lo, hi);
    let wHi = new Uint32Array(n);
    let wLo = new Uint32Array(n);
    const arena = this.arena;
    for (let i = 0; i < n; i++) {
      const s = sl[i];
      const at = this.keyAt[s] + depth;
      const len = this.keyBytes[s] - depth;
      let h = 0;
      let l = 0;
      for (let j = 0; j < 4; j++) h = (h << 8) | (j < len ? arena[at + j] : 0);
      for (let j = 4; j < 8; j++) l = (l << 8) | (j < len ? arena[at + j] : 0);
      wHi[i] = h >>> 0;
      wLo[i] = l >>> 0;
    }
    let tSl = new Int32Array(n);
    let tHi = new Uint32Array(n);
    let tLo = new Uint32Array(n);
    const counts = new Int32Array(256);
    for (let pass = 0; pass < 8; pass++) {
      const words = pass < 4 ? wLo : wHi;
      const shift = (pass % 4) * 8;
      counts.fill(0);
      for (let i = 0; i < n; i++) counts[(words[i] >>> shift) & 0xff]++;
      if (counts[(words[0] >>> shift) & 0xff] === n) continue; // every key has the same byte here
      let at = 0;
      for (let b = 0; b < 256; b++) {
        const c = counts[b];
        counts[b] = at;
        at += c;
      }
      for (let i = 0; i < n; i++) {
        const to = counts[(words[i] >>> shift) & 0xff]++;
        tSl[to] = sl[i];
        tHi[to] = wHi[i];
        tLo[to] = wLo[i];
      }
      [sl, tSl] = [tSl, sl];
      [wHi, tHi] = [tHi, wHi];
      [wLo, tLo] = [tLo, wLo];
    }
    slots.set(sl, lo);
    // Runs that tie on these 8 bytes: by the next 8 bytes, or by comparison.
    for (let i = 0; i < n; ) {
      let j = i + 1;
      while (j < n && wHi[j] === wHi[i] && wLo[j] === wLo[i]) j++;
      if (j - i > 1) {
        let ends = false;
        for (let k = lo + i; k < lo + j; k++) if (this.keyBytes[slots[k]] <= depth + 8) ends = true;
        if (ends || j - i <= 16) {
          const run = Array.from(slots.subarray(lo + i, lo + j)).sort((x, y) => this.compareSlots(x, y));
          slots.set(run, lo + i);
        } else {
          this.sortSlots(slots, lo + i, lo + j, depth + 8);
        }
      }
      i = j;
    }
  }

  /** The ordered index (null before `buildOrder`). */
  get order(): OrderedIndex | null {
    return this.ordered;
  }

  /** The key bytes of live `slot` (a copy). */
  keyOf(slot: number): Buffer {
    const at = this.keyAt[slot];
    return Buffer.from(this.arena.subarray(at, at + this.keyBytes[slot]));
  }

  /** Bytes of the key of live `slot`. */
  keyBytesOf(slot: number): number {
    return this.keyBytes[slot];
  }

  /** A copy of the entry of live `slot`. */
  entryOf(slot: number): KeydirEntry {
    return this.entryAt(slot);
  }

  /** Unsigned byte order (memcmp, then length) of the keys of slots `a` and `b`. */
  compareSlots(a: number, b: number): number {
    const at = this.keyAt[a];
    return this.compareKey(this.arena, at, at + this.keyBytes[a], b);
  }

  /** Unsigned byte order of `key[start..end)` against the key of `slot`. */
  compareKey(key: Uint8Array, start: number, end: number, slot: number): number {
    const arena = this.arena;
    const at = this.keyAt[slot];
    const la = end - start;
    const lb = this.keyBytes[slot];
    const n = la < lb ? la : lb;
    for (let i = 0; i < n; i++) {
      const d = key[start + i] - arena[at + i];
      if (d !== 0) return d;
    }
    return la - lb;
  }

  /** A copy of the entry for `key[start..end)` (changing it does not change the keydir). */
  get(key: Uint8Array, start = 0, end = key.length): KeydirEntry | undefined {
    const slot = this.find(key, start, end, keyHash(key, start, end));
    if (slot < 0) return undefined;
    return this.entryAt(slot);
  }

  /** The entry in `slot` (a slot in use). */
  private entryAt(slot: number): KeydirEntry {
    return {
      fileId: this.fileIds[this.files[slot]],
      offset: this.offsets[slot],
      sizeBytes: this.sizes[slot],
      revision: this.revisions[slot],
      createRevision: this.created[slot],
      version: this.versions[slot],
    };
  }

  /** Whether the live record of `key[start..end)` is the frame at `offset` of `fileId` (merge: is this copy still wanted?). Allocates nothing. */
  pointsAt(key: Uint8Array, start: number, end: number, fileId: number, offset: number): boolean {
    const slot = this.find(key, start, end, keyHash(key, start, end));
    return slot >= 0 && this.offsets[slot] === offset && this.fileIds[this.files[slot]] === fileId;
  }

  /** Frame bytes of the live records in data file `fileId`. */
  liveBytesOf(fileId: number): number {
    const index = this.fileIndexes.get(fileId);
    return index === undefined ? 0 : this.liveByFile[index];
  }

  /**
   * Makes room for `keys` more keys with `keyBytes` more key bytes in one step (open: from the
   * hint files), so nothing is regrown (and over-allocated) while loading.
   */
  reserve(keys: number, keyBytes = 0): void {
    const need = this.keys + keys;
    if (need > this.capacity) this.resizeSlots(need);
    if (need > this.table.length * LOAD_MAX) this.rehash(tableSizeFor(need));
    if (this.arenaUsed + keyBytes > this.arena.length) this.resizeArena(this.arenaUsed + keyBytes);
  }

  /**
   * Folds one data record (in revision order per key) into the keydir: the same path serves
   * `apply`, the data-file scan at open and hint files. The key is `key[start..end)` (copied).
   * `createRevision` / `version`: the Set record's metadata (ignored for Delete and Noop).
   */
  record(op: EngineOp, key: Uint8Array, start: number, end: number, fileId: number, offset: number, sizeBytes: number, revision: number, createRevision = revision, version = 1): void {
    if (op === EngineOp.Set) {
      if (!(sizeBytes <= SIZE_BYTES_MAX)) throw new RangeError(`KeydirSizeBytesFits: frame of ${sizeBytes} bytes`);
      const hash = keyHash(key, start, end);
      let slot = this.find(key, start, end, hash);
      if (slot < 0) {
        slot = this.insert(key, start, end, hash);
      } else {
        this.dropLiveSlot(slot);
      }
      const file = this.fileIndexOf(fileId);
      this.revisions[slot] = revision;
      this.created[slot] = createRevision;
      this.versions[slot] = version;
      this.offsets[slot] = offset;
      this.sizes[slot] = sizeBytes;
      this.files[slot] = file;
      this.addLive(file, sizeBytes);
    } else {
      if (op === EngineOp.Delete) {
        const hash = keyHash(key, start, end);
        const slot = this.find(key, start, end, hash);
        if (slot >= 0) {
          this.dropLiveSlot(slot);
          this.remove(slot, hash);
        }
      }
      // A tombstone is dead from the start: it only has to outlive the values it shadows.
      this.deadBytes += sizeBytes;
    }
  }

  /**
   * Merge switch: points `key[start..end)` at its copy in `fileId` when the keydir still holds
   * the same revision (else the key was overwritten or deleted during the merge and the copy is
   * dead). Returns whether it moved. `sizeBytes`: the copy's frame size when it differs from the
   * original's (a key of a batch record is copied as a single record).
   */
  repoint(key: Uint8Array, start: number, end: number, revision: number, fileId: number, offset: number, sizeBytes?: number): boolean {
    const slot = this.find(key, start, end, keyHash(key, start, end));
    if (slot < 0 || this.revisions[slot] !== revision) return false;
    this.dropLiveSlot(slot); // the original is dead now, until `forgetFile` drops its file
    const file = this.fileIndexOf(fileId);
    this.offsets[slot] = offset;
    this.files[slot] = file;
    if (sizeBytes !== undefined) this.sizes[slot] = sizeBytes;
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

  /** The slot of `key[start..end)` (hash `hash`), or -1. */
  private find(key: Uint8Array, start: number, end: number, hash: number): number {
    const table = this.table;
    const mask = table.length - 1;
    const length = end - start;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const s = table[i] - 1;
      if (s < 0) return -1;
      if (this.hashes[s] === hash && this.keyBytes[s] === length && this.keyEquals(s, key, start, length)) return s;
    }
  }

  private keyEquals(slot: number, key: Uint8Array, start: number, length: number): boolean {
    const arena = this.arena;
    const at = this.keyAt[slot];
    for (let i = 0; i < length; i++) if (arena[at + i] !== key[start + i]) return false;
    return true;
  }

  /** Adds a key that is not in the table; returns its new slot. */
  private insert(key: Uint8Array, start: number, end: number, hash: number): number {
    if (this.keys + 1 > this.table.length * LOAD_MAX) this.rehash(this.table.length * 2);
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      if (this.slotsUsed === this.capacity) this.resizeSlots(Math.ceil(this.capacity * 1.5));
      slot = this.slotsUsed++;
    }
    const length = end - start;
    if (this.arenaUsed + length > this.arena.length) this.makeArenaRoom(length);
    const at = this.arenaUsed;
    if (length <= 32) for (let i = 0; i < length; i++) this.arena[at + i] = key[start + i];
    else this.arena.set(key.subarray(start, end), at);
    this.arenaUsed += length;
    this.hashes[slot] = hash;
    this.keyAt[slot] = at;
    this.keyBytes[slot] = length;
    const mask = this.table.length - 1;
    let i = hash & mask;
    while (this.table[i] !== 0) i = (i + 1) & mask;
    this.table[i] = slot + 1;
    this.keys++;
    this.ordered?.insert(slot);
    return slot;
  }

  /** Removes `slot` (hash `hash`) from the table with a backward shift (linear probing without tombstones). */
  private remove(slot: number, hash: number): void {
    this.ordered?.remove(slot);
    const table = this.table;
    const mask = table.length - 1;
    let hole = hash & mask;
    while (table[hole] !== slot + 1) hole = (hole + 1) & mask;
    for (let j = (hole + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
      const home = this.hashes[table[j] - 1] & mask;
      // Move the entry at j into the hole unless its home lies cyclically in (hole, j].
      const stays = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!stays) {
        table[hole] = table[j];
        hole = j;
      }
    }
    table[hole] = 0;
    this.arenaDeadBytes += this.keyBytes[slot];
    this.keys--;
    this.freeSlots.push(slot);
  }

  private rehash(size: number): void {
    const table = new Int32Array(size);
    const mask = size - 1;
    for (const entry of this.table) {
      if (entry === 0) continue;
      let i = this.hashes[entry - 1] & mask;
      while (table[i] !== 0) i = (i + 1) & mask;
      table[i] = entry;
    }
    this.table = table;
  }

  private resizeSlots(slots: number): void {
    const used = this.slotsUsed;
    const grow = <T extends Float64Array | Uint32Array>(old: T, next: T): T => {
      next.set(old.subarray(0, used));
      return next;
    };
    this.hashes = grow(this.hashes, new Uint32Array(slots));
    this.keyAt = grow(this.keyAt, new Float64Array(slots));
    this.keyBytes = grow(this.keyBytes, new Uint32Array(slots));
    this.revisions = grow(this.revisions, new Float64Array(slots));
    this.created = grow(this.created, new Float64Array(slots));
    this.versions = grow(this.versions, new Float64Array(slots));
    this.offsets = grow(this.offsets, new Float64Array(slots));
    this.sizes = grow(this.sizes, new Uint32Array(slots));
    this.files = grow(this.files, new Uint32Array(slots));
  }

  /** Room for `length` more key bytes: compacts away deleted keys when they are most of the arena, else grows it by half. */
  private makeArenaRoom(length: number): void {
    if (this.arenaDeadBytes >= ARENA_COMPACT_BYTES_MIN && this.arenaDeadBytes * 2 >= this.arenaUsed) {
      this.compactArena();
      if (this.arenaUsed + length <= this.arena.length) return;
    }
    this.resizeArena(Math.max(this.arenaUsed + length, Math.ceil(this.arena.length * 1.5)));
  }

  private resizeArena(bytes: number): void {
    const next = Buffer.allocUnsafe(bytes);
    this.arena.copy(next, 0, 0, this.arenaUsed);
    this.arena = next;
  }

  /** Copies the keys in use to a fresh arena (same size), in table order. */
  private compactArena(): void {
    const next = Buffer.allocUnsafe(this.arena.length);
    let used = 0;
    for (const entry of this.table) {
      if (entry === 0) continue;
      const slot = entry - 1;
      const at = this.keyAt[slot];
      const length = this.keyBytes[slot];
      this.arena.copy(next, used, at, at + length);
      this.keyAt[slot] = used;
      used += length;
    }
    this.arena = next;
    this.arenaUsed = used;
    this.arenaDeadBytes = 0;
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
