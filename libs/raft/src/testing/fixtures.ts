import { mulberry32 } from '../prng';
import { RaftNode } from '../raft-node';
import { EntryType, type Entry, type HardState, type NodeId, type RaftConfig, type Ready } from '../types';

/** A log whose entry i+1 has term `terms[i]` and data `${index}@${term}` (paper Figure 7 style). */
export function logWithTerms(terms: number[]): Entry[] {
  return terms.map((term, i) => ({ index: i + 1, term, type: EntryType.Normal, data: new TextEncoder().encode(`${i + 1}@${term}`) }));
}

/** A standalone node for message-level unit tests (electionTicks 10, heartbeatTicks 2 unless overridden). */
export function newTestNode(
  id: NodeId,
  voters: NodeId[],
  opts: Partial<RaftConfig> & { hardState?: HardState; log?: Entry[] } = {},
): RaftNode {
  const { hardState, log, ...rest } = opts;
  return new RaftNode({
    id,
    voters,
    electionTicks: 10,
    heartbeatTicks: 2,
    inflightMsgsMax: 64,
    entriesPerMsgMax: 64,
    msgBytesMax: 1 << 20,
    random: mulberry32(1),
    ...(hardState || log ? { restored: { hardState: hardState ?? { term: 0, vote: null, commit: 0 }, entries: log ?? [] } } : {}),
    ...rest,
  });
}

/** Runs one Ready cycle on a standalone node (nothing persisted anywhere: the Ready is advanced at once) and returns it. */
export function cycle(n: RaftNode): Ready {
  const rd = n.ready();
  n.advance(rd);
  return rd;
}
