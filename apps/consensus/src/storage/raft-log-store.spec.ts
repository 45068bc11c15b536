import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EntryType, type Entry } from '@cairn/raft';
import { RaftLogStore } from './raft-log-store';

const opts = { segmentBytesMax: 64 * 1024, fsyncPolicy: 'always' as const };
const entry = (index: number, term: number): Entry => ({ index, term, type: EntryType.Normal, data: Buffer.alloc(100, index % 251) });
const run = (from: number, to: number, term: number) => Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, term));

/** What a replica finds on disk after a crash at each point of compaction and of installing a snapshot (Raft §7). */
describe('RaftLogStore and the snapshot at start-up', () => {
  let dir: string;
  beforeEach(() => {
    dir = join(mkdtempSync(join(tmpdir(), 'cairn-rls-')), 'raft-log');
  });

  it('keeps a log that continues the snapshot (compaction: snapshot file written, prefix dropped or not yet)', async () => {
    const s = await RaftLogStore.open(dir, opts);
    await s.persist(run(1, 2000, 3));
    expect(await s.alignWithSnapshot({ index: 1500, term: 3 })).toBe(false);
    await s.dropPrefix(1501);
    expect(s.firstIndex()).toBeGreaterThan(1);
    expect(s.firstIndex()).toBeLessThanOrEqual(1501);
    await s.close();
    const again = await RaftLogStore.open(dir, opts, 1501);
    expect(await again.alignWithSnapshot({ index: 1500, term: 3 })).toBe(false);
    expect(again.readAll(1501).map((e) => e.index)).toEqual(run(1501, 2000, 3).map((e) => e.index));
    await again.close();
  });

  it('discards the old log of a crash between writing an installed snapshot and resetting the log', async () => {
    const s = await RaftLogStore.open(dir, opts);
    await s.persist(run(1, 100, 2)); // a follower far behind, on an old term
    // Crash after the snapshot file (index 5000, term 4) was written, before reset(): on restart...
    expect(await s.alignWithSnapshot({ index: 5000, term: 4 })).toBe(true);
    expect(s.firstIndex()).toBe(5001);
    expect(s.lastIndex()).toBe(5000);
    await s.persist(run(5001, 5003, 4));
    expect(s.readAll().map((e) => e.index)).toEqual([5001, 5002, 5003]);
    await s.close();
  });

  it('discards a log holding another term at the snapshot index, and keeps an empty log reset after it', async () => {
    const s = await RaftLogStore.open(dir, opts);
    await s.persist([...run(1, 50, 1), ...run(51, 60, 2)]);
    expect(await s.alignWithSnapshot({ index: 55, term: 3 })).toBe(true);
    expect(await s.alignWithSnapshot({ index: 55, term: 3 })).toBe(false); // the empty log reset after it continues it
    await s.close();
  });
});
