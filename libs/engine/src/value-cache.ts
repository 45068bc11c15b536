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
 * The values of recently read keys (BitcaskEngine.get), kept current as they are written, each
 * with the revision that wrote it, bounded by `bytesMax` (keys, values and
 * VALUE_CACHE_ENTRY_OVERHEAD_BYTES each): the entry read or written longest ago goes first. A hit needs the revision the keydir holds for the
 * key, so an entry that is not the key's live value is never returned. Values are copies (a value
 * decoded from a message or a read buffer would pin that whole buffer), never handed out for
 * writing. Why: a storage node reads every put's previous value (conditions, INCR, the watch
 * event's previous value) and every get's value; without the cache each is a pread, a frame
 * decode and a CRC32 (docs/engine.md "Value cache").
 */
export class ValueCache {
  private readonly entries = new Map<string, Cached>();
  private bytes = 0;
  /**
   * Where eviction goes on: a Map iterator is live (it walks past deleted entries and on to ones
   * added later), so the oldest entry is the next one it yields. Starting a new iteration at every
   * eviction would step over every entry deleted since the table was last rehashed: 0.1–0.4 ms a
   * set once 40,000 entries had been evicted (measured).
   */
  private evictFrom: Iterator<[string, Cached]> | null = null;
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
    while (this.bytes > this.bytesMax) {
      this.evictFrom ??= this.entries.entries();
      const next = this.evictFrom.next();
      if (next.done) {
        this.evictFrom = null; // cannot happen while bytes > 0: every counted entry is in the map
        return;
      }
      const [k, c] = next.value;
      this.entries.delete(k);
      this.bytes -= c.bytes;
    }
  }

  /**
   * Key `name` was written by `revision`: when its value is cached, the cache takes the new one (a
   * key someone reads stays answered from memory across writes); a key not cached is not added (a
   * write-only key, e.g. an import's, costs a lookup, not a copy).
   */
  update(name: string, revision: number, value: Uint8Array): void {
    if (this.entries.has(name)) this.set(name, revision, value);
  }

  /** Forgets key `name` (deleted, or written by a record whose value is not cached). */
  delete(name: string): void {
    const c = this.entries.get(name);
    if (c === undefined) return;
    this.entries.delete(name);
    this.bytes -= c.bytes;
  }

  /** Entries cached. */
  get size(): number {
    return this.entries.size;
  }

  /** Entries and their bytes (≤ bytesMax). */
  stats(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }
}
