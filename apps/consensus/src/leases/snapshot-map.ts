/** A value a SnapshotMap holds: `seq` is the map's, set when the value is added (insertion order). */
export interface Sequenced {
  seq: number;
}

/**
 * A Map whose saved part (one number per entry, `saved(v)`) can be read as of one instant while
 * the map keeps changing: a copy-on-write snapshot, so the Ready loop takes it in O(1) and the
 * lease-state save reads it in slices in the background (docs/leases.md "Restarts and
 * compaction").
 *
 * How: entries carry an insertion sequence number, and a JS Map iterates in insertion order, so
 * the reader's position is the `seq` of the last entry it visited. Before an entry that existed at
 * the snapshot and is not yet visited changes its saved part or is deleted (`touch`, called by
 * `delete` and by the owner before an in-place change), its saved value is kept aside; the reader
 * skips such entries and entries added after the snapshot, then yields the kept values. Extra
 * memory: one number per entry changed during a save. One snapshot at a time.
 */
export class SnapshotMap<K, V extends Sequenced> {
  private readonly m = new Map<K, V>();
  private nextSeq = 1;
  private snap: { seqMax: number; visitedSeq: number; kept: Map<K, number> } | null = null;

  constructor(private readonly saved: (v: V) => number) {}

  get size(): number {
    return this.m.size;
  }

  get(k: K): V | undefined {
    return this.m.get(k);
  }

  has(k: K): boolean {
    return this.m.has(k);
  }

  keys(): IterableIterator<K> {
    return this.m.keys();
  }

  values(): IterableIterator<V> {
    return this.m.values();
  }

  entries(): IterableIterator<[K, V]> {
    return this.m.entries();
  }

  /** Adds `k` (absent; an existing key is deleted first, so it moves to the end). */
  add(k: K, v: V): void {
    if (this.m.has(k)) this.delete(k);
    v.seq = this.nextSeq++;
    this.m.set(k, v);
  }

  delete(k: K): boolean {
    this.touch(k);
    return this.m.delete(k);
  }

  clear(): void {
    if (this.snap) throw new Error('SnapshotMapClearedDuringSnapshot: a snapshot is being read');
    this.m.clear();
  }

  /** Call before changing the saved part of `k`'s value in place: a snapshot being read keeps its old value. */
  touch(k: K): void {
    const s = this.snap;
    if (!s) return;
    const v = this.m.get(k);
    if (v && v.seq <= s.seqMax && v.seq > s.visitedSeq && !s.kept.has(k)) s.kept.set(k, this.saved(v));
  }

  /**
   * Takes a snapshot of every entry's saved value (O(1)) and returns its reader: `next(max, visit)`
   * calls `visit(key, saved value)` for at most `max` entries, stopping after one for which it
   * returns false, and returns how many (0: done),
   * exactly the entries of the instant of the snapshot, whatever changes between calls. `size` is
   * their count. Call `end()` when done or abandoned. @throws when a snapshot is already open.
   */
  snapshot(): SnapshotReader<K> {
    if (this.snap) throw new Error('SnapshotMapSnapshotOpen: one snapshot at a time');
    const s = (this.snap = { seqMax: this.nextSeq - 1, visitedSeq: 0, kept: new Map<K, number>() });
    const live = this.m.entries();
    let keptIt: IterableIterator<[K, number]> | null = null;
    const next = (max: number, visit: (k: K, saved: number) => boolean | void): number => {
      let n = 0;
      while (!keptIt && n < max) {
        const r = live.next();
        // Insertion order is seq order: past seqMax everything was added after the snapshot.
        if (r.done || r.value[1].seq > s.seqMax) {
          s.visitedSeq = Infinity;
          keptIt = s.kept.entries();
          break;
        }
        const [k, v] = r.value;
        s.visitedSeq = v.seq;
        if (s.kept.has(k)) continue;
        n++;
        if (visit(k, this.saved(v)) === false) return n;
      }
      while (keptIt && n < max) {
        const r = keptIt.next();
        if (r.done) break;
        n++;
        if (visit(r.value[0], r.value[1]) === false) return n;
      }
      return n;
    };
    const end = () => {
      if (this.snap === s) this.snap = null;
    };
    return { size: this.m.size, next, end };
  }
}

/** A SnapshotMap snapshot being read (SnapshotMap.snapshot). */
export interface SnapshotReader<K> {
  readonly size: number;
  next(max: number, visit: (k: K, saved: number) => boolean | void): number;
  end(): void;
}
