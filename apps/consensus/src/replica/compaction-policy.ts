/** What the compaction policy looks at: the replica's log bounds, its applied index and what storage nodes report. */
export interface CompactionInputs {
  /** Highest committed index this replica has handed on (answered, shipped). */
  applied: number;
  /** First and last index still in the Raft log. */
  firstIndex: number;
  lastIndex: number;
  /** The storage nodes of the configuration in effect (ids). */
  storage: readonly string[];
  /** Durable applied index each storage node last reported (status heartbeats); a node never heard from counts as 0. */
  storageApplied: ReadonlyMap<string, number>;
  /** consensus.logRetainedEntries: entries kept below the compaction point (entries). */
  logRetainedEntries: number;
  /** consensus.logEntriesMax: past this many entries in the log, compact past a lagging storage node (entries). */
  logEntriesMax: number;
}

export interface CompactionDecision {
  /** Compact the log up to and including this index; null = keep the log as it is. */
  compactTo: number | null;
  /** True when logEntriesMax moved the point past what some storage node has durably applied (that node will need a storage snapshot). */
  forced: boolean;
  /** Entries in the log now (lastIndex - firstIndex + 1). */
  keptEntries: number;
}

/**
 * Raft §7 compaction policy (pure): which log prefix a replica may drop. The point is what every
 * storage node of the configuration has durably applied (and this replica has handed on), minus
 * `logRetainedEntries`. Past `logEntriesMax` entries it is `applied - logRetainedEntries` whatever
 * the storage nodes say (a dead storage node must not grow the log forever). With no storage node
 * in the configuration nothing is dropped (every entry may still be needed). Compaction happens in
 * steps of at least max(1, logRetainedEntries / 10) entries, not on every entry.
 */
export function compactionPlan(i: CompactionInputs): CompactionDecision {
  const keptEntries = i.lastIndex - i.firstIndex + 1;
  if (i.storage.length === 0) return { compactTo: null, forced: false, keptEntries };
  const durable = Math.min(...i.storage.map((id) => i.storageApplied.get(id) ?? 0));
  let target = Math.min(i.applied, durable) - i.logRetainedEntries;
  let forced = false;
  if (keptEntries > i.logEntriesMax) {
    const atBound = i.applied - i.logRetainedEntries;
    if (atBound > target) {
      target = atBound;
      forced = true;
    }
  }
  const stepMin = Math.max(1, Math.floor(i.logRetainedEntries / 10));
  return { compactTo: target < i.firstIndex + stepMin ? null : target, forced, keptEntries };
}
