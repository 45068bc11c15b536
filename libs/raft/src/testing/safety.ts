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
      const snap = node.snapshot();
      if (snap.index > 0 && snap.index <= this.committedIndex && this.committed.get(snap.index)!.term !== snap.term) {
        throw new SafetyViolationError('LeaderCompleteness', `leader ${st.id} of term ${st.term} has snapshot ${snap.index}@${snap.term}, committed was term ${this.committed.get(snap.index)!.term}`);
      }
      for (let i = st.firstIndex; i <= this.committedIndex; i++) {
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
      const st = n.status();
      const hi = Math.min(st.commit, this.committedIndex);
      const lo = st.firstIndex;
      const ents = n.entries(lo, hi);
      for (let i = lo; i <= hi; i++) {
        const want = this.committed.get(i)!;
        const have = ents[i - lo];
        if (!sameEntry(have, want)) {
          throw new SafetyViolationError('StateMachineSafety', `${n.id} has entry ${i} term ${have.term} at or below its commit, committed was term ${want.term}`);
        }
      }
    }
  }

  /** Pairwise Log Matching over the given nodes' current logs. */
  checkLogMatching(nodes: RaftNode[]): void {
    // Compared over the indexes both still hold (compaction drops prefixes).
    const logs = nodes.map((n) => ({ id: n.id, first: n.status().firstIndex, ents: n.entries() }));
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const x = logs[a];
        const y = logs[b];
        const lo = Math.max(x.first, y.first);
        const at = (l: typeof x, i: number) => l.ents[i - l.first];
        let i = Math.min(x.first + x.ents.length, y.first + y.ents.length) - 1;
        while (i >= lo && at(x, i).term !== at(y, i).term) i--;
        for (let j = lo; j <= i; j++) {
          if (!sameEntry(at(x, j), at(y, j))) {
            throw new SafetyViolationError('LogMatching', `${x.id} and ${y.id} agree at index ${i} but differ at ${j}`);
          }
        }
      }
    }
  }
}
