import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENTRY_OVERHEAD_BYTES, EntryType, MessageType, RaftNode, mulberry32, type Entry, type Message } from '@cairn/raft';
import { RaftLogStore } from './raft-log-store';

/**
 * The bounded log cache on the real segment files (docs/raft.md "The log cache"): a replica
 * restored with most of its log left on disk, and a follower 100,000 entries behind that catches
 * up through Appends the leader reads back from its segments.
 */

const opts = { segmentBytesMax: 1024 * 1024, fsyncPolicy: 'always' as const };
const entry = (index: number, term: number, type = EntryType.Normal): Entry => ({ index, term, type, data: Buffer.alloc(100, index % 251) });

describe('bounded log cache over RaftLogStore', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-cache-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('restoreTail: the newest entries within the cache bound, the older as term runs and configuration indexes', async () => {
    const s = await RaftLogStore.open(join(dir, 'log'), opts);
    const log = Array.from({ length: 3000 }, (_, i) => entry(i + 1, i < 1000 ? 1 : i < 2500 ? 2 : 4, i === 9 || i === 1999 ? EntryType.Config : EntryType.Normal));
    await s.persist(log);
    const bytesMax = 100 * (100 + ENTRY_OVERHEAD_BYTES);
    const { entries, onDisk } = s.restoreTail(1, bytesMax);
    expect(entries.map((e) => e.index)).toEqual(Array.from({ length: 100 }, (_, i) => 2901 + i));
    expect(onDisk).toEqual({ lastIndex: 2900, termRuns: [{ index: 1, term: 1 }, { index: 1001, term: 2 }, { index: 2501, term: 4 }], confIndexes: [10, 2000] });
    // From a snapshot index on, and a cache larger than the log: everything in memory.
    expect(s.restoreTail(2001, 1 << 30)).toEqual({ entries: s.readAll(2001), onDisk: { lastIndex: 2000, termRuns: [], confIndexes: [] } });
    await s.close();
  });

  it('a follower 100,000 entries behind catches up from the leader\'s segment files, each read within the Append bounds', async () => {
    const behind = 100_000;
    const cacheBytesMax = 256 * 1024;
    const entriesPerMsgMax = 1024;
    const msgBytesMax = 64 * 1024;
    const leaderStore = await RaftLogStore.open(join(dir, 'a'), opts);
    await leaderStore.persist(Array.from({ length: behind }, (_, i) => entry(i + 1, 1)));
    let reads = 0;
    let largestRead = 0;
    const counted = {
      entries: (lo: number, hi: number, bytesMax: number) => {
        const got = leaderStore.entries(lo, hi, bytesMax);
        reads++;
        largestRead = Math.max(largestRead, got.reduce((n, e) => n + e.data.length, 0));
        return got;
      },
    };
    const { entries, onDisk } = leaderStore.restoreTail(1, cacheBytesMax);
    expect(entries.length).toBeLessThan(cacheBytesMax / ENTRY_OVERHEAD_BYTES);
    const base = { voters: ['a', 'b'], electionTicks: 10, heartbeatTicks: 2, inflightMsgsMax: 8, entriesPerMsgMax, msgBytesMax };
    const a = new RaftNode({
      ...base,
      id: 'a',
      random: mulberry32(1),
      restored: { hardState: { term: 1, vote: 'a', commit: behind }, entries, onDisk },
      logCache: { storage: counted, bytesMax: cacheBytesMax },
    });
    const followerStore = await RaftLogStore.open(join(dir, 'b'), opts);
    const b = new RaftNode({ ...base, id: 'b', random: mulberry32(2), logCache: { storage: followerStore, bytesMax: cacheBytesMax } });
    const nodes = new Map([
      ['a', { node: a, store: leaderStore }],
      ['b', { node: b, store: followerStore }],
    ]);
    let inFlight: Message[] = [];
    let largestAppend = 0;
    const pump = async (): Promise<void> => {
      for (const { node, store } of nodes.values()) {
        while (node.hasReady()) {
          const rd = node.ready();
          await store.persist(rd.entries);
          for (const m of rd.messages) if (m.type === MessageType.Append) largestAppend = Math.max(largestAppend, m.entries.reduce((n, e) => n + e.data.length, 0));
          inFlight.push(...rd.messages);
          node.advance(rd);
        }
      }
      const batch = inFlight;
      inFlight = [];
      for (const m of batch) nodes.get(m.to)!.node.step(m);
    };
    a.campaign();
    for (let round = 0; round < 2000 && b.status().commit < behind + 1; round++) {
      await pump();
      if (inFlight.length === 0) {
        a.tick();
        b.tick();
      }
    }
    expect(a.status().role).toBe('leader');
    expect(b.status().commit).toBe(behind + 1);
    expect(followerStore.lastIndex()).toBe(behind + 1);
    expect(followerStore.entries(77_777, 77_777, Infinity)).toEqual(leaderStore.entries(77_777, 77_777, Infinity));
    // The missing entries came from the leader's segment files, in reads no larger than one Append.
    expect(a.logCacheStats().storageEntriesRead).toBeGreaterThanOrEqual(behind - entries.length);
    expect(reads).toBeGreaterThanOrEqual((behind * 100) / msgBytesMax);
    expect(largestRead).toBeLessThanOrEqual(msgBytesMax);
    expect(largestAppend).toBeLessThanOrEqual(msgBytesMax);
    for (const n of [a, b]) expect(n.logCacheStats().cachedBytes).toBeLessThanOrEqual(cacheBytesMax);
    await leaderStore.close();
    await followerStore.close();
  });
});
