/**
 * The ordered index beside the keydir: every live key's keydir slot, in unsigned byte order of the
 * keys (memcmp, as etcd orders keys), so range reads can seek and walk. No JS object per key: slot
 * numbers sit in sorted **leaves** (`Int32Array`s of at most LEAF_SLOTS_MAX slots, each sorted, all
 * in order), a two-level B+tree (the leaves' first keys are searched by binary search over the
 * leaf list, as Python's SortedContainers does). About 4–8 bytes per key (leaves are 1/4 to full;
 * a bulk build fills them to 7/8) plus ~40 bytes per leaf. Keys are compared through the keydir's
 * arena (`KeyOrder`), so the index holds no key bytes of its own. docs/engine.md "Ordered index".
 */

/** How the index compares keys: by slot (keys held by the keydir) and a probe key against a slot. */
export interface KeyOrder {
  /** < 0, 0, > 0 as the key of slot `a` sorts before, equal to, after the key of slot `b`. */
  compareSlots(a: number, b: number): number;
  /** < 0, 0, > 0 as `key[start..end)` sorts before, equal to, after the key of `slot`. */
  compareKey(key: Uint8Array, start: number, end: number, slot: number): number;
}

/** Slots per leaf at most. 512 × 4 bytes: one insert moves at most 2 KiB. */
const LEAF_SLOTS_MAX = 512;
/** A bulk build fills leaves to this many slots, leaving room for inserts before a split. */
const LEAF_BUILD_SLOTS = 448;
/** A leaf under this many slots is merged into a neighbour that has room. */
const LEAF_SLOTS_MIN = LEAF_SLOTS_MAX / 4;

/** A position in the index: leaf number and index in it. */
export interface OrderedPosition {
  leaf: number;
  at: number;
}

export class OrderedIndex {
  private leaves: Int32Array[] = [new Int32Array(LEAF_SLOTS_MAX)];
  private counts: number[] = [0];
  private total = 0;

  constructor(private readonly order: KeyOrder) {}

  get size(): number {
    return this.total;
  }

  /** Bytes the index holds (leaf arrays and per-leaf bookkeeping, estimated at 40 bytes a leaf). */
  get memoryBytes(): number {
    return this.leaves.length * (LEAF_SLOTS_MAX * 4 + 40);
  }

  /**
   * Replaces the contents with `sorted` (slots in key order, each key once: the caller sorted
   * them, `Keydir.sortSlots`), leaves filled to 7/8.
   */
  build(sorted: Int32Array): void {
    this.leaves = [];
    this.counts = [];
    for (let i = 0; i < sorted.length; i += LEAF_BUILD_SLOTS) {
      const leaf = new Int32Array(LEAF_SLOTS_MAX);
      const part = sorted.subarray(i, Math.min(sorted.length, i + LEAF_BUILD_SLOTS));
      leaf.set(part);
      this.leaves.push(leaf);
      this.counts.push(part.length);
    }
    if (this.leaves.length === 0) {
      this.leaves.push(new Int32Array(LEAF_SLOTS_MAX));
      this.counts.push(0);
    }
    this.total = sorted.length;
  }

  /** Adds `slot` (its key must not be in the index). */
  insert(slot: number): void {
    const leaf = this.leafForSlot(slot);
    const slots = this.leaves[leaf];
    const n = this.counts[leaf];
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.order.compareSlots(slots[mid], slot) < 0) lo = mid + 1;
      else hi = mid;
    }
    slots.copyWithin(lo + 1, lo, n);
    slots[lo] = slot;
    this.counts[leaf] = n + 1;
    this.total++;
    if (n + 1 === LEAF_SLOTS_MAX) this.split(leaf);
  }

  /** Removes `slot` (its key must be in the index, held by that slot). */
  remove(slot: number): void {
    const leaf = this.leafForSlot(slot);
    const slots = this.leaves[leaf];
    const n = this.counts[leaf];
    let at = -1;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.order.compareSlots(slots[mid], slot);
      if (c === 0) {
        at = mid;
        break;
      }
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    if (at < 0 || slots[at] !== slot) throw new Error(`OrderedIndexHoldsKey: slot ${slot} is not in the ordered index`);
    slots.copyWithin(at, at + 1, n);
    this.counts[leaf] = n - 1;
    this.total--;
    // No empty leaf but a lone one: the leaf searches rely on every leaf having a first key.
    if (n - 1 === 0) this.dropLeaf(leaf);
    else if (n - 1 < LEAF_SLOTS_MIN) this.mergeSmall(leaf);
  }

  /** The first position whose key is ≥ `key[start..end)` (past the end: `{ leaf: last, at: its count }`). */
  seek(key: Uint8Array, start = 0, end = key.length): OrderedPosition {
    // The last leaf whose first key is <= key; every key before it is smaller.
    let lo = 0;
    let hi = this.leaves.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.counts[mid] > 0 && this.order.compareKey(key, start, end, this.leaves[mid][0]) >= 0) lo = mid;
      else hi = mid - 1;
    }
    const slots = this.leaves[lo];
    let a = 0;
    let b = this.counts[lo];
    while (a < b) {
      const mid = (a + b) >>> 1;
      if (this.order.compareKey(key, start, end, slots[mid]) > 0) a = mid + 1;
      else b = mid;
    }
    return this.normalize({ leaf: lo, at: a });
  }

  /** The position of the first key (or the end). */
  first(): OrderedPosition {
    return this.normalize({ leaf: 0, at: 0 });
  }

  /** The end position (one past the last key). */
  end(): OrderedPosition {
    const leaf = this.leaves.length - 1;
    return { leaf, at: this.counts[leaf] };
  }

  /** The slot at `p` (a position before the end). */
  slotAt(p: OrderedPosition): number {
    return this.leaves[p.leaf][p.at];
  }

  /** Whether `p` is the end position. */
  atEnd(p: OrderedPosition): boolean {
    return p.leaf === this.leaves.length - 1 && p.at >= this.counts[p.leaf];
  }

  /** The position after `p` (`p` before the end). */
  next(p: OrderedPosition): OrderedPosition {
    return this.normalize({ leaf: p.leaf, at: p.at + 1 });
  }

  /** The position before `p`, or null when `p` is the first. */
  prev(p: OrderedPosition): OrderedPosition | null {
    if (p.at > 0) return { leaf: p.leaf, at: p.at - 1 };
    for (let leaf = p.leaf - 1; leaf >= 0; leaf--) if (this.counts[leaf] > 0) return { leaf, at: this.counts[leaf] - 1 };
    return null;
  }

  /** Keys from `a` (inclusive) to `b` (exclusive), `a` ≤ `b`: O(leaves between them). */
  countBetween(a: OrderedPosition, b: OrderedPosition): number {
    if (a.leaf === b.leaf) return Math.max(0, b.at - a.at);
    let n = this.counts[a.leaf] - a.at;
    for (let leaf = a.leaf + 1; leaf < b.leaf; leaf++) n += this.counts[leaf];
    return n + b.at;
  }

  /** Whether position `a` is before `b`. */
  before(a: OrderedPosition, b: OrderedPosition): boolean {
    return a.leaf < b.leaf || (a.leaf === b.leaf && a.at < b.at);
  }

  /** Skips past the end of a leaf to the next non-empty leaf (or the end position). */
  private normalize(p: OrderedPosition): OrderedPosition {
    let { leaf, at } = p;
    while (at >= this.counts[leaf] && leaf < this.leaves.length - 1) {
      leaf++;
      at = 0;
    }
    return { leaf, at };
  }

  /** The leaf where `slot`'s key belongs: the last leaf whose first key is ≤ it (leaf 0 when none). */
  private leafForSlot(slot: number): number {
    let lo = 0;
    let hi = this.leaves.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.counts[mid] > 0 && this.order.compareSlots(slot, this.leaves[mid][0]) >= 0) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private split(leaf: number): void {
    const slots = this.leaves[leaf];
    const half = LEAF_SLOTS_MAX >>> 1;
    const right = new Int32Array(LEAF_SLOTS_MAX);
    right.set(slots.subarray(half, LEAF_SLOTS_MAX));
    this.counts[leaf] = half;
    this.leaves.splice(leaf + 1, 0, right);
    this.counts.splice(leaf + 1, 0, LEAF_SLOTS_MAX - half);
  }

  /** Merges a leaf that fell under LEAF_SLOTS_MIN into a neighbour with room (keeps memory per key bounded under deletes). */
  private mergeSmall(leaf: number): void {
    const n = this.counts[leaf];
    const room = (LEAF_SLOTS_MAX * 3) / 4;
    if (leaf > 0 && this.counts[leaf - 1] + n <= room) {
      this.leaves[leaf - 1].set(this.leaves[leaf].subarray(0, n), this.counts[leaf - 1]);
      this.counts[leaf - 1] += n;
      this.dropLeaf(leaf);
    } else if (leaf < this.leaves.length - 1 && this.counts[leaf + 1] + n <= room) {
      const next = this.leaves[leaf + 1];
      next.copyWithin(n, 0, this.counts[leaf + 1]);
      next.set(this.leaves[leaf].subarray(0, n), 0);
      this.counts[leaf + 1] += n;
      this.dropLeaf(leaf);
    }
  }

  private dropLeaf(leaf: number): void {
    if (this.leaves.length === 1) return;
    this.leaves.splice(leaf, 1);
    this.counts.splice(leaf, 1);
  }
}
