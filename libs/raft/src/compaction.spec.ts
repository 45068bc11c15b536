import { MessageType, type Ready } from './index';
import { Simulator, newTestNode } from './testing';

/** Log compaction and InstallSnapshot (Raft §7). */

function settle(sim: Simulator, rounds = 30): void {
  for (let i = 0; i < rounds; i++) {
    sim.tick();
    sim.stabilize();
  }
}

function writeN(sim: Simulator, leader: string, n: number): number {
  let last = 0;
  for (let i = 0; i < n; i++) last = sim.propose(leader, `w${i}`).lastIndex;
  sim.stabilize();
  return last;
}

describe('compaction', () => {
  it('compact() drops the prefix, keeps its term and the configuration, and refuses to pass the applied index', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3'] });
    sim.node('n1').campaign();
    sim.stabilize();
    const last = writeN(sim, 'n1', 10);
    const n1 = sim.node('n1');
    expect(() => n1.compact(last + 1)).toThrow(/CompactInvalid/);
    const termAt = n1.entries(8, 8)[0].term;
    sim.compact('n1', 8);
    expect(n1.status().firstIndex).toBe(9);
    expect(n1.snapshot()).toEqual({ index: 8, term: termAt, conf: { voters: ['n1', 'n2', 'n3'], learners: [], storage: [] } });
    expect(() => n1.entries(8, 8)).toThrow(/LogCompacted/);
    expect(sim.stores.get('n1')!.firstIndex()).toBe(9);
    sim.compact('n1', 3); // at or below the snapshot: no-op
    expect(n1.status().firstIndex).toBe(9);
  });

  it('a follower that missed compacted entries gets InstallSnapshot, then the rest of the log', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3'] });
    sim.node('n1').campaign();
    sim.stabilize();
    sim.crash('n3');
    const last = writeN(sim, 'n1', 20);
    sim.compact('n1', last - 5);
    sim.compact('n2', last - 5);
    sim.recordSent = true;
    const readies: Ready[] = [];
    sim.onReady = (id, rd) => {
      if (id === 'n3') readies.push(rd);
    };
    sim.restart('n3');
    settle(sim);
    const snaps = sim.sent.filter((m) => m.type === MessageType.Snapshot && m.to === 'n3');
    expect(snaps.length).toBeGreaterThanOrEqual(1);
    expect(snaps[0].index).toBe(last - 5);
    expect(readies.filter((rd) => rd.snapshot).map((rd) => rd.snapshot!.index)).toEqual([last - 5]);
    const st = sim.node('n3').status();
    expect(st.firstIndex).toBe(last - 4);
    expect(st.commit).toBe(sim.node('n1').status().commit);
    expect(st.lastIndex).toBe(sim.node('n1').status().lastIndex);
    sim.checkLogMatching();
    sim.checkCommittedPrefixes();
    // It restarts from its store (snapshot + log after it) with the same state.
    sim.crash('n3');
    const again = sim.restart('n3');
    expect(again.status().firstIndex).toBe(last - 4);
    expect(again.status().applied).toBe(st.commit);
  });

  it('a replica added after the log was compacted catches up through InstallSnapshot and becomes a voter', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3', 'n4'], voters: ['n1', 'n2', 'n3'] });
    sim.node('n1').campaign();
    sim.stabilize();
    const last = writeN(sim, 'n1', 30);
    for (const id of ['n1', 'n2', 'n3']) sim.compact(id, last);
    sim.recordSent = true;
    sim.proposeConfChange('n1', { type: 'addLearner', node: 'n4' });
    settle(sim);
    expect(sim.sent.some((m) => m.type === MessageType.Snapshot && m.to === 'n4')).toBe(true);
    expect(sim.node('n4').status().firstIndex).toBe(last + 1);
    expect(sim.node('n4').status().conf.learners).toEqual(['n4']);
    sim.proposeConfChange('n1', { type: 'addVoter', node: 'n4' });
    settle(sim);
    expect(sim.node('n4').status().conf.voters).toEqual(['n1', 'n2', 'n3', 'n4']);
    sim.transferLeadership('n1', 'n4');
    settle(sim);
    expect(sim.leader()).toBe('n4');
    const w = sim.propose('n4', 'from-n4');
    sim.stabilize();
    expect(sim.node('n2').status().commit).toBeGreaterThanOrEqual(w.lastIndex);
  });

  it('a snapshot the follower already holds only advances its commit (no Ready.snapshot)', () => {
    const n2 = newTestNode('n2', ['n1', 'n2']);
    const entries = [1, 2, 3].map((index) => ({ index, term: 1, type: 0, data: new Uint8Array([index]) }));
    n2.step({ type: MessageType.Append, from: 'n1', to: 'n2', term: 1, logTerm: 0, index: 0, entries, commit: 0, reject: false, rejectHint: 0 });
    n2.advance(n2.ready());
    const conf = { index: 2, term: 1, type: 2, data: new TextEncoder().encode('{"voters":["n1","n2"],"learners":[],"storage":[]}') };
    n2.step({ type: MessageType.Snapshot, from: 'n1', to: 'n2', term: 1, logTerm: 1, index: 2, entries: [conf], commit: 3, reject: false, rejectHint: 0 });
    const rd = n2.ready();
    expect(rd.snapshot).toBeNull();
    expect(n2.status().commit).toBe(2);
    expect(n2.status().lastIndex).toBe(3);
    expect(rd.messages).toMatchObject([{ type: MessageType.AppendResponse, index: 2, reject: false }]);
  });

  it('refuses a snapshot without its configuration entry', () => {
    const n2 = newTestNode('n2', ['n1', 'n2']);
    expect(() => n2.step({ type: MessageType.Snapshot, from: 'n1', to: 'n2', term: 1, logTerm: 1, index: 5, entries: [], commit: 5, reject: false, rejectHint: 0 })).toThrow(/SnapshotInvalid/);
  });
});
