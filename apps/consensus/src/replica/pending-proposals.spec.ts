import { PendingProposals, type ProposalOutcome } from './pending-proposals';

const entry = (index: number, term: number) => ({ index, term, type: 0, data: new Uint8Array(0) });

describe('PendingProposals', () => {
  function add(p: PendingProposals, firstIndex: number, lastIndex: number, term: number): ProposalOutcome[] {
    const out: ProposalOutcome[] = [];
    p.add({ firstIndex, lastIndex, term, resolve: (o) => out.push(o) });
    return out;
  }

  it('answers a proposal once its last entry commits in its own term', () => {
    const p = new PendingProposals(10);
    const a = add(p, 2, 4, 1);
    const b = add(p, 5, 5, 1);
    p.onCommitted([entry(1, 1), entry(2, 1), entry(3, 1)]);
    expect(a).toEqual([]);
    p.onCommitted([entry(4, 1)]);
    expect(a).toEqual([{ kind: 'committed', firstIndex: 2, lastIndex: 4 }]);
    expect(b).toEqual([]);
    expect(p.size()).toBe(1);
  });

  it('reports an overwritten proposal when another term committed at its index', () => {
    const p = new PendingProposals(10);
    const a = add(p, 3, 3, 1);
    p.onCommitted([entry(3, 2)]);
    expect(a).toEqual([{ kind: 'overwritten' }]);
  });

  it('reports an unknown outcome when a new leader kept only a prefix of the batch', () => {
    const p = new PendingProposals(10);
    const a = add(p, 3, 5, 1);
    p.onCommitted([entry(3, 1)]);
    p.onCommitted([entry(4, 2), entry(5, 2)]);
    expect(a).toEqual([{ kind: 'unknown', reason: expect.stringMatching(/part of the proposal/) }]);
  });

  it('answers the leader\'s own-term proposals at its commit index, in order, leaving an older term\'s to their committed entries', () => {
    const p = new PendingProposals(10);
    const old = add(p, 2, 2, 1);
    const a = add(p, 3, 4, 2);
    p.onCommitIndex(4, 2);
    expect([old, a]).toEqual([[], []]); // FIFO: the term-1 proposal at the head waits for onCommitted
    p.onCommitted([entry(2, 1)]);
    expect(old).toEqual([{ kind: 'committed', firstIndex: 2, lastIndex: 2 }]);
    const b = add(p, 5, 7, 2);
    p.onCommitIndex(6, 2);
    expect(a).toEqual([{ kind: 'committed', firstIndex: 3, lastIndex: 4 }]);
    expect(b).toEqual([]); // entry 7 is above the commit index
    p.onCommitIndex(7, 2);
    expect(b).toEqual([{ kind: 'committed', firstIndex: 5, lastIndex: 7 }]);
    // Entries already answered at the commit index are not answered again when applied.
    p.onCommitted([entry(3, 2), entry(4, 2), entry(5, 2), entry(6, 2), entry(7, 2)]);
    expect([a.length, b.length, p.size()]).toEqual([1, 1, 0]);
  });

  it('fails everything on leadership loss, bounds the queue and rejects out-of-order adds', () => {
    const p = new PendingProposals(2);
    const a = add(p, 1, 1, 1);
    add(p, 2, 2, 1);
    expect(p.full()).toBe(true);
    expect(() => add(p, 2, 3, 1)).toThrow(/out of order/);
    p.failAll('leadership lost');
    expect(a).toEqual([{ kind: 'unknown', reason: 'leadership lost' }]);
    expect(p.size()).toBe(0);
  });
});
