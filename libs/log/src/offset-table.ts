/**
 * Byte offsets of the record frames of one segment, as a growable Float64Array (8 bytes per
 * record, no per-record object) so `read(index)` is O(1): record `firstIndex + k` starts at
 * `get(k)` and ends at `get(k + 1)`. Holds `count + 1` offsets: the last one is the end of the
 * last record, i.e. where the next frame goes. Float64 keeps offsets exact up to 2^53.
 */
export class OffsetTable {
  private offsets: Float64Array;
  private length = 1; // offsets held = count + 1

  constructor(startOffset: number, capacity = 1024) {
    this.offsets = new Float64Array(Math.max(2, capacity));
    this.offsets[0] = startOffset;
  }

  /** Number of records. */
  get count(): number {
    return this.length - 1;
  }

  /** Offset where the next record frame goes (= end of the last record). */
  get endOffset(): number {
    return this.offsets[this.length - 1];
  }

  /** Frame offset of the k-th record (0-based); `get(count)` is `endOffset`. */
  get(k: number): number {
    if (k < 0 || k >= this.length) throw new RangeError(`offset table index ${k} outside [0, ${this.length - 1}]`);
    return this.offsets[k];
  }

  /** Records one more frame of `frameBytes` bytes at `endOffset`; returns its offset. */
  push(frameBytes: number): number {
    const start = this.endOffset;
    if (this.length === this.offsets.length) {
      const grown = new Float64Array(this.offsets.length * 2);
      grown.set(this.offsets);
      this.offsets = grown;
    }
    this.offsets[this.length++] = start + frameBytes;
    return start;
  }

  /** Keeps the first `count` records. */
  truncate(count: number): void {
    if (count < 0 || count > this.count) throw new RangeError(`cannot truncate offset table of ${this.count} records to ${count}`);
    this.length = count + 1;
  }

  /** The 0-based record number whose frame starts at `offset`, or -1 (binary search). */
  find(offset: number): number {
    let lo = 0;
    let hi = this.length - 2;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.offsets[mid];
      if (v === offset) return mid;
      if (v < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}
