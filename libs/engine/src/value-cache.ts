/** Bytes one cached value costs besides its key and value bytes (the Map entry, the entry object, the key string's header): an estimate. */
export const VALUE_CACHE_ENTRY_OVERHEAD_BYTES = 96;
/** A value larger than the cache's bound divided by this is not cached (one large value never empties the cache). */
const VALUE_CACHE_ENTRIES_MIN = 64;

interface Cached {
  revision: number;
  value: Buffer;
  bytes: number;
}

/**
 * The values of recently written and read keys (BitcaskEngine.get), each with the revision that
 * wrote it, bounded by `bytesMax` (keys, values and VALUE_CACHE_ENTRY_OVERHEAD_BYTES each): the
 * oldest written or missed first goes first. A hit needs the revision the keydir holds for the
 * key, so an entry that is not the key's live value is never returned. Values are copies (a value
 * decoded from a message or a read buffer would pin that whole buffer), never handed out for
 * writing. Why: a storage node reads every put's previous value (conditions, INCR, the watch
 * event's previous value) and every get's value; without the cache each is a pread, a frame
 * decode and a CRC32 (docs/engine.md "Value cache").
 */
export class ValueCache {
  private readonly entries = new Map<string, Cached>();
  private bytes = 0;
  private readonly valueBytesMax: number;

  /** @throws RangeError when bytesMax is not a non-negative safe integer (0 = no cache). */
  constructor(readonly bytesMax: number) {
    if (!Number.isSafeInteger(bytesMax) || bytesMax < 0) throw new RangeError(`valueCacheBytesMax must be a non-negative integer, got ${bytesMax}`);
    this.valueBytesMax = Math.floor(bytesMax / VALUE_CACHE_ENTRIES_MIN);
  }

  /** The cached value of key `name` (latin1 of its bytes) when it is the one `revision` wrote; else null. */
  get(name: string, revision: number): Buffer | null {
    const c = this.entries.get(name);
    return c !== undefined && c.revision === revision ? c.value : null;
  }

  /** Caches a copy of `value`, written by `revision`, as key `name`'s value (replacing any older one), then evicts the oldest entries down to bytesMax. */
  set(name: string, revision: number, value: Uint8Array): void {
    this.delete(name);
    if (value.length > this.valueBytesMax) return;
    const bytes = name.length + value.length + VALUE_CACHE_ENTRY_OVERHEAD_BYTES;
    this.entries.set(name, { revision, value: Buffer.from(value), bytes });
    this.bytes += bytes;
    if (this.bytes <= this.bytesMax) return;
    for (const [k, c] of this.entries) {
      if (this.bytes <= this.bytesMax) break;
      this.entries.delete(k);
      this.bytes -= c.bytes;
    }
  }

  /** Forgets key `name` (deleted, or written by a record whose value is not cached). */
  delete(name: string): void {
    const c = this.entries.get(name);
    if (c === undefined) return;
    this.entries.delete(name);
    this.bytes -= c.bytes;
  }

  /** Entries and their bytes (≤ bytesMax). */
  stats(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }
}
