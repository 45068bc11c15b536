import { ENTRY_OVERHEAD_BYTES, EntryType, MessageType, type Entry, type LogStorage } from './index';
import { RaftLog } from './raft-log';
import { Simulator, logWithTerms } from './testing';

/** The bounded log cache (RaftConfig.logCache): what leaves memory, what is read back, and a far-behind follower. */

/** A LogStorage over an array of entries 1..n that counts its reads and checks each stays within its bounds. */
function arrayStorage(all: Entry[]): LogStorage & { reads: { lo: number; hi: number; got: number }[] } {
  const reads: { lo: number; hi: number; got: number }[] = [];
  return {
    reads,
    entries(lo, hi, bytesMax) {
      const out: Entry[] = [];
      let bytes = 0;
      for (let i = lo; i <= hi; i++) {
        const e = all[i - 1];
        if (out.length > 0 && bytes + e.data.length > bytesMax) break;
        bytes += e.data.length;
        out.push(e);
      }
      reads.push({ lo, hi, got: out.length });
      return out;
    },
  };
}

const cost = (e: Entry): number => e.data.length + ENTRY_OVERHEAD_BYTES;

describe('RaftLog with a bounded cache', () => {
  const all = logWithTerms([1, 1, 1, 2, 2, 2, 2, 3, 3, 3]);
  const bytesMax = cost(all[7]) + cost(all[8]) + cost(all[9]);

  function cachedLog() {
    const storage = arrayStorage(all);
    const log = new RaftLog(all, undefined, { storage, bytesMax });
    return { log, storage };
  }

  it('evicts only persisted, handed-on entries at or below the applied index, oldest first, down to bytesMax', () => {
    const { log } = cachedLog();
    log.evict(5);
    expect(log.cacheStats()).toMatchObject({ firstCachedIndex: 6, cachedEntries: 5 });
    log.evict(10);
    expect(log.cacheStats()).toMatchObject({ firstCachedIndex: 8, cachedEntries: 3, cachedBytes: bytesMax });
    // Entries not yet persisted stay, whatever the bound.
    log.append(logWithTerms([1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3]).slice(10));
    log.evict(14);
    expect(log.cacheStats()).toMatchObject({ firstCachedIndex: 11, cachedEntries: 4 });
    expect(log.cacheStats().cachedBytes).toBeGreaterThan(bytesMax);
  });

  it('reads evicted entries back from storage: entry, slice and a bounded slice; terms and conflicts without a read', () => {
    const { log, storage } = cachedLog();
    log.evict(10);
    expect(log.term(1)).toBe(1);
    expect(log.term(5)).toBe(2);
    expect(log.findConflict(logWithTerms([1, 1, 1, 2, 9]).slice(3))).toBe(5);
    expect(log.lastIndexOfTerm(2)).toBe(7);
    expect(log.firstIndexWithTermAtLeast(3)).toBe(8);
    expect(storage.reads).toEqual([]);
    expect(log.entry(4)).toBe(all[3]);
    expect(log.slice(6, 9)).toEqual(all.slice(5, 9));
    // Bounded: at most 3 entries, of which 2 from storage (the first read stops at the cache) then the cache.
    expect(log.sliceBounded(6, 3, 1 << 20).map((e) => e.index)).toEqual([6, 7, 8]);
    expect(storage.reads.at(-1)).toEqual({ lo: 6, hi: 7, got: 2 });
    // A byte bound that stops inside the storage part returns just that.
    expect(log.sliceBounded(1, 10, all[0].data.length).map((e) => e.index)).toEqual([1]);
    expect(log.cacheStats().storageReads).toBe(storage.reads.length);
  });

  it('compaction across the cached boundary, truncation above it, restore; a truncation below it is a broken invariant', () => {
    const { log } = cachedLog();
    log.evict(10);
    log.compact(5);
    expect(log.term(6)).toBe(2);
    expect(log.firstIndexWithTermAtLeast(1)).toBe(6);
    log.compact(8);
    expect(log.cacheStats()).toMatchObject({ firstCachedIndex: 9, cachedEntries: 2 });
    expect(log.term(9)).toBe(3);
    const repl = { index: 10, term: 4, type: EntryType.Normal, data: new Uint8Array(1) };
    log.truncateAndAppend([repl]);
    expect(log.lastTerm()).toBe(4);
    expect(log.persistedIndex).toBe(9);
    expect(log.lastIndexOfTerm(3)).toBe(9);
    const { log: other } = cachedLog();
    other.evict(10);
    expect(() => other.truncateAndAppend([{ ...repl, index: 6 }])).toThrow(/LogTruncateEvicted/);
    other.restore(20, 5);
    expect([other.firstIndex(), other.lastIndex(), other.lastTerm(), other.cacheStats().cachedEntries]).toEqual([21, 20, 5, 0]);
  });

  it('restores with the older entries left on disk (term runs and configuration indexes only)', () => {
    const withConf = all.map((e) => (e.index === 3 ? { ...e, type: EntryType.Config } : e));
    const storage = arrayStorage(withConf);
    const log = new RaftLog(withConf.slice(7), undefined, { storage, bytesMax }, { lastIndex: 7, termRuns: [{ index: 1, term: 1 }, { index: 4, term: 2 }], confIndexes: [3] });
    expect([log.firstIndex(), log.lastIndex(), log.lastTerm(), log.term(3), log.term(7)]).toEqual([1, 10, 3, 1, 2]);
    expect(log.lastConfIndex(10)).toBe(3);
    expect(log.entry(3).type).toBe(EntryType.Config);
    expect(() => new RaftLog([], undefined, undefined, { lastIndex: 2, termRuns: [{ index: 1, term: 1 }], confIndexes: [] })).toThrow(/LogOnDiskInvalid/);
    expect(() => new RaftLog([], undefined, { storage, bytesMax }, { lastIndex: 2, termRuns: [{ index: 2, term: 1 }], confIndexes: [] })).toThrow(/LogOnDiskInvalid/);
    expect(() => new RaftLog([], undefined, { storage, bytesMax }, { lastIndex: 3, termRuns: [{ index: 1, term: 2 }, { index: 2, term: 1 }], confIndexes: [] })).toThrow(/LogOnDiskInvalid/);
  });

  it('a storage that answers other entries than were persisted is a broken invariant (LogStorageMismatch)', () => {
    const wrong = logWithTerms([1, 1, 1, 2, 5, 5, 5, 5, 5, 5]);
    const log = new RaftLog(all, undefined, { storage: arrayStorage(wrong), bytesMax });
    log.evict(10);
    expect(() => log.entry(6)).toThrow(/LogStorageMismatch/);
    expect(() => new RaftLog(all, undefined, { storage: { entries: () => [] }, bytesMax }).slice(1, 1)).not.toThrow();
    const empty = new RaftLog(all, undefined, { storage: { entries: () => [] }, bytesMax });
    empty.evict(10);
    expect(() => empty.entry(1)).toThrow(/LogStorageMismatch/);
  });
});

describe('a follower 100,000 entries behind catches up through storage reads', () => {
  it('the leader sends every missing entry from its durable log, each read within the message bounds, its cache within bytesMax', () => {
    const cacheBytesMax = 64 * 1024;
    const entriesPerMsgMax = 512;
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3'], seed: 3, checkSafety: false, logCacheBytesMax: cacheBytesMax, config: { entriesPerMsgMax, inflightMsgsMax: 16 } });
    expect(sim.elect('n1')).toBe(true);
    sim.crash('n3');
    const behind = 100_000;
    for (let i = 0; i < behind / 10_000; i++) {
      sim.propose('n1', ...Array.from({ length: 10_000 }, (_, k) => `v${i * 10_000 + k}`));
      sim.stabilize();
    }
    const leader = sim.node('n1');
    const last = leader.status().lastIndex;
    expect(leader.status().commit).toBe(last);
    const before = leader.logCacheStats();
    expect(before.cachedBytes).toBeLessThanOrEqual(cacheBytesMax);
    expect(before.firstCachedIndex).toBeGreaterThan(last - cacheBytesMax / ENTRY_OVERHEAD_BYTES);

    let appends = 0;
    let largest = 0;
    sim.onReady = (id, rd) => {
      for (const m of rd.messages) {
        if (id !== 'n1' || m.to !== 'n3' || m.type !== MessageType.Append) continue;
        appends++;
        largest = Math.max(largest, m.entries.length);
      }
    };
    sim.restart('n3');
    for (let round = 0; round < 200 && sim.node('n3').status().commit < last; round++) {
      sim.tick();
      sim.stabilize();
    }
    const n3 = sim.node('n3').status();
    expect(n3.commit).toBe(last);
    expect(n3.lastIndex).toBe(last);
    expect(sim.node('n3').entries(behind / 2, behind / 2)).toEqual(leader.entries(behind / 2, behind / 2));
    sim.checkLogMatching();
    const after = leader.logCacheStats();
    expect(after.storageEntriesRead - before.storageEntriesRead).toBeGreaterThanOrEqual(behind - cacheBytesMax / ENTRY_OVERHEAD_BYTES);
    expect(largest).toBeLessThanOrEqual(entriesPerMsgMax);
    expect(appends).toBeGreaterThanOrEqual(behind / entriesPerMsgMax);
    expect(after.cachedBytes).toBeLessThanOrEqual(cacheBytesMax);
    expect(sim.node('n3').logCacheStats().cachedBytes).toBeLessThanOrEqual(cacheBytesMax);
  });
});
