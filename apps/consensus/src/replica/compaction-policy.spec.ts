import { compactionPlan, type CompactionInputs } from './compaction-policy';

const base: CompactionInputs = {
  applied: 1000,
  firstIndex: 1,
  lastIndex: 1000,
  storage: ['s1', 's2'],
  storageApplied: new Map([
    ['s1', 900],
    ['s2', 800],
  ]),
  logRetainedEntries: 100,
  logEntriesMax: 10_000,
};

describe('compactionPlan', () => {
  it('keeps logRetainedEntries below what every storage node durably applied', () => {
    expect(compactionPlan(base)).toEqual({ compactTo: 700, forced: false, keptEntries: 1000 });
  });

  it('never goes past what this replica has handed on', () => {
    expect(compactionPlan({ ...base, applied: 500 }).compactTo).toBe(400);
  });

  it('keeps everything while no storage node is in the configuration', () => {
    expect(compactionPlan({ ...base, storage: [], logEntriesMax: 10 })).toEqual({ compactTo: null, forced: false, keptEntries: 1000 });
  });

  it('counts a storage node never heard from as having applied nothing', () => {
    expect(compactionPlan({ ...base, storage: ['s1', 's2', 's3'] }).compactTo).toBeNull();
  });

  it('ignores reports of storage nodes outside the configuration', () => {
    expect(compactionPlan({ ...base, storage: ['s1'] }).compactTo).toBe(800);
  });

  it('compacts in steps of at least logRetainedEntries / 10 entries', () => {
    // Point 700; first index 691 + step 10 = 701 > 700: not worth it yet.
    expect(compactionPlan({ ...base, firstIndex: 691 }).compactTo).toBeNull();
    expect(compactionPlan({ ...base, firstIndex: 690 }).compactTo).toBe(700);
    // A step of at least one entry even with nothing retained.
    expect(compactionPlan({ ...base, logRetainedEntries: 0, firstIndex: 800 }).compactTo).toBeNull();
    expect(compactionPlan({ ...base, logRetainedEntries: 0, firstIndex: 799 }).compactTo).toBe(800);
  });

  it('past logEntriesMax, compacts past a lagging storage node and says so', () => {
    const lagging = { ...base, storageApplied: new Map([['s1', 900]]), logEntriesMax: 999 };
    expect(compactionPlan(lagging)).toEqual({ compactTo: 900, forced: true, keptEntries: 1000 });
  });

  it('at logEntriesMax exactly, the storage nodes still decide', () => {
    expect(compactionPlan({ ...base, storageApplied: new Map([['s1', 900]]), logEntriesMax: 1000 }).compactTo).toBeNull();
  });

  it('past logEntriesMax with every storage node caught up, nothing is forced', () => {
    const caughtUp = new Map([
      ['s1', 1000],
      ['s2', 1200],
    ]);
    expect(compactionPlan({ ...base, storageApplied: caughtUp, logEntriesMax: 10 })).toEqual({ compactTo: 900, forced: false, keptEntries: 1000 });
  });
});
