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
