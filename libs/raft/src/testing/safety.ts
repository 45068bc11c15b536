import type { Entry, NodeId } from '../types';
import type { RaftNode } from '../raft-node';

/** A Raft safety property (Raft Figure 3) was violated. */
export class SafetyViolationError extends Error {
  readonly code = 'SAFETY_VIOLATION';
  constructor(
    readonly property: 'ElectionSafety' | 'LogMatching' | 'LeaderCompleteness' | 'StateMachineSafety',
    detail: string,
  ) {
    super(`${property}: ${detail}`);
    this.name = 'SafetyViolationError';
  }
}

function sameEntry(a: Entry, b: Entry): boolean {
  if (a === b) return true;
  if (a.index !== b.index || a.term !== b.term || a.type !== b.type || a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

/**
 * Checks the Raft Figure 3 properties over a run:
 * - Election Safety: at most one leader per term (`observe` after every state change);
 * - Leader Completeness: a leader's log holds every entry committed before its term (checked
 *   when a leader is first observed);
 * - State Machine Safety: no two nodes apply different entries at one index (`onCommitted`);
 * - Log Matching: same index+term ⇒ identical prefixes (`checkLogMatching`);
 * - committed entries never change: every node's log up to its commit index holds exactly the
 *   committed entries (`checkCommittedPrefixes`, reported as StateMachineSafety).
 * Throws SafetyViolationError.
 */
export class SafetyChecker {
  /** term → leader id. */
  readonly leaders = new Map<number, NodeId>();
  /** index → the entry applied there (by whichever node applied it first). */
  readonly committed = new Map<number, Entry>();
  /** Highest index in `committed` (entries are applied in order, so 1..this are present). */
  committedIndex = 0;

  observe(node: RaftNode): void {
    const st = node.status();
    if (st.role !== 'leader') return;
    const known = this.leaders.get(st.term);
    if (known === undefined) {
      this.leaders.set(st.term, st.id);
      for (let i = 1; i <= this.committedIndex; i++) {
        const want = this.committed.get(i)!;
        const have = i <= st.lastIndex ? node.entries(i, i)[0] : undefined;
        if (!have || !sameEntry(have, want)) {
          throw new SafetyViolationError('LeaderCompleteness', `leader ${st.id} of term ${st.term} lacks committed entry ${i} (term ${want.term})`);
        }
      }
    } else if (known !== st.id) {
      throw new SafetyViolationError('ElectionSafety', `term ${st.term} has leaders ${known} and ${st.id}`);
    }
  }

  onCommitted(id: NodeId, entries: Entry[]): void {
    for (const e of entries) {
      const prev = this.committed.get(e.index);
      if (prev === undefined) {
        if (e.index !== this.committedIndex + 1) throw new SafetyViolationError('StateMachineSafety', `${id} applied ${e.index} before ${this.committedIndex + 1}`);
        this.committed.set(e.index, e);
        this.committedIndex = e.index;
      } else if (!sameEntry(prev, e)) {
        throw new SafetyViolationError('StateMachineSafety', `${id} applied entry ${e.index} term ${e.term}, another node applied term ${prev.term}`);
      }
    }
  }

  /** Each node's log at indexes <= its commit index equals the entries committed there. */
  checkCommittedPrefixes(nodes: RaftNode[]): void {
    for (const n of nodes) {
      const hi = Math.min(n.status().commit, this.committedIndex);
      const ents = n.entries(1, hi);
      for (let i = 0; i < hi; i++) {
        const want = this.committed.get(i + 1)!;
        if (!sameEntry(ents[i], want)) {
          throw new SafetyViolationError('StateMachineSafety', `${n.id} has entry ${i + 1} term ${ents[i].term} at or below its commit, committed was term ${want.term}`);
        }
      }
    }
  }

  /** Pairwise Log Matching over the given nodes' current logs. */
  checkLogMatching(nodes: RaftNode[]): void {
    const logs = nodes.map((n) => ({ id: n.id, ents: n.entries() }));
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const x = logs[a].ents;
        const y = logs[b].ents;
        let i = Math.min(x.length, y.length);
        while (i > 0 && x[i - 1].term !== y[i - 1].term) i--;
        for (let j = 0; j < i; j++) {
          if (!sameEntry(x[j], y[j])) {
            throw new SafetyViolationError('LogMatching', `${logs[a].id} and ${logs[b].id} agree at index ${i} but differ at ${j + 1}`);
          }
        }
      }
    }
  }
}
