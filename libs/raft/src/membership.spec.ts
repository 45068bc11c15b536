import {
  ConfChangeInProgressError,
  ConfChangeInvalidError,
  EntryType,
  applyConfChange,
  decodeConfState,
  encodeConfState,
  type ConfState,
  type Entry,
} from './index';
import { Simulator, newTestNode } from './testing';

/** Single-server membership changes (thesis §4.1) with learners (§4.2.1) and leader removal (§4.2.2). */

function electN1(sim: Simulator): void {
  sim.node('n1').campaign();
  sim.stabilize();
  expect(sim.leader()).toBe('n1');
}

/** Proposes on the leader and runs to quiescence; returns the entry index. */
function change(sim: Simulator, leader: string, type: Parameters<Simulator['proposeConfChange']>[1]['type'], node: string): number {
  const r = sim.proposeConfChange(leader, { type, node });
  sim.stabilize();
  return r.index;
}

describe('membership: applyConfChange', () => {
  const base: ConfState = { voters: ['a', 'b', 'c'], learners: [], storage: ['s1'] };

  it('applies each change type and keeps the lists sorted and disjoint', () => {
    expect(applyConfChange(base, { type: 'addLearner', node: 'd' })).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'], storage: ['s1'] });
    expect(applyConfChange({ ...base, learners: ['d'] }, { type: 'addVoter', node: 'd' })).toEqual({ voters: ['a', 'b', 'c', 'd'], learners: [], storage: ['s1'] });
    expect(applyConfChange(base, { type: 'removeNode', node: 'a' })).toEqual({ voters: ['b', 'c'], learners: [], storage: ['s1'] });
    expect(applyConfChange(base, { type: 'addStorage', node: 's0' }).storage).toEqual(['s0', 's1']);
    expect(applyConfChange(base, { type: 'removeStorage', node: 's1' }).storage).toEqual([]);
  });

  it('rejects changes that do not apply', () => {
    expect(() => applyConfChange(base, { type: 'addLearner', node: 'a' })).toThrow(ConfChangeInvalidError);
    expect(() => applyConfChange(base, { type: 'addVoter', node: 'b' })).toThrow(ConfChangeInvalidError);
    expect(() => applyConfChange(base, { type: 'removeNode', node: 'zz' })).toThrow(ConfChangeInvalidError);
    expect(() => applyConfChange({ voters: ['a'], learners: [], storage: [] }, { type: 'removeNode', node: 'a' })).toThrow(/last voter/);
    expect(() => applyConfChange(base, { type: 'removeStorage', node: 's9' })).toThrow(ConfChangeInvalidError);
    expect(() => applyConfChange(base, { type: 'addStorage', node: 'bad id!' })).toThrow(ConfChangeInvalidError);
  });

  it('round-trips ConfState through a config entry and rejects garbage', () => {
    expect(decodeConfState(encodeConfState(base))).toEqual(base);
    expect(() => decodeConfState(new TextEncoder().encode('{"voters":[1]}'))).toThrow(/ConfStateInvalid/);
    expect(() => decodeConfState(new Uint8Array([0xff]))).toThrow(/ConfStateInvalid/);
  });
});

describe('membership: RaftNode', () => {
  it('a learner receives the log but neither counts toward commit nor campaigns', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3', 'n4'], voters: ['n1', 'n2', 'n3'] });
    electN1(sim);
    const idx = change(sim, 'n1', 'addLearner', 'n4');
    expect(sim.node('n4').status().conf).toEqual({ voters: ['n1', 'n2', 'n3'], learners: ['n4'], storage: [] });
    expect(sim.node('n4').status().commit).toBeGreaterThanOrEqual(idx);
    // With n2 and n3 down, n1 + learner n4 are not a quorum: nothing commits.
    sim.crash('n2');
    sim.crash('n3');
    const { lastIndex } = sim.propose('n1', 'x');
    sim.stabilize();
    expect(sim.node('n1').status().commit).toBeLessThan(lastIndex);
    expect(sim.node('n4').status().lastIndex).toBe(lastIndex);
    // The learner never campaigns, however long it waits.
    sim.crash('n1');
    for (let i = 0; i < 100; i++) sim.tick();
    expect(sim.node('n4').status().role).toBe('follower');
    expect(sim.node('n4').status().term).toBe(sim.stores.get('n4')!.hardState.term);
  });

  it('promoting a learner makes it a voter that counts in the quorum', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3', 'n4'], voters: ['n1', 'n2', 'n3'] });
    electN1(sim);
    change(sim, 'n1', 'addLearner', 'n4');
    change(sim, 'n1', 'addVoter', 'n4');
    expect(sim.node('n1').status().conf.voters).toEqual(['n1', 'n2', 'n3', 'n4']);
    // 4 voters: quorum 3. n1 + n4 alone cannot commit; n1 + n4 + n2 can.
    sim.crash('n2');
    sim.crash('n3');
    const a = sim.propose('n1', 'a');
    sim.stabilize();
    expect(sim.node('n1').status().commit).toBeLessThan(a.lastIndex);
    sim.restart('n2');
    for (let i = 0; i < 10; i++) {
      sim.tick();
      sim.stabilize();
    }
    expect(sim.node('n1').status().commit).toBeGreaterThanOrEqual(a.lastIndex);
  });

  it('allows one change at a time, and none before the leader commits an entry of its term', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3', 'n4', 'n5'], voters: ['n1', 'n2', 'n3'] });
    sim.node('n1').campaign();
    // Campaign → leader at once? No: votes are in flight. Deliver just enough for n1 to win.
    sim.stabilize();
    // Cut n1 off so its next change cannot commit.
    sim.isolate('n1');
    sim.proposeConfChange('n1', { type: 'addLearner', node: 'n4' });
    expect(() => sim.proposeConfChange('n1', { type: 'addLearner', node: 'n5' })).toThrow(ConfChangeInProgressError);
    sim.heal();
    sim.stabilize();
    expect(() => sim.proposeConfChange('n1', { type: 'addLearner', node: 'n5' })).not.toThrow();
  });

  it('a new leader refuses a change until an entry of its own term commits', () => {
    const n1 = newTestNode('n1', ['n1', 'n2', 'n3']);
    n1.campaign();
    let rd = n1.ready();
    n1.advance(rd);
    for (const from of ['n2', 'n3']) n1.step({ type: 2, from, to: 'n1', term: 1, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 });
    expect(n1.status().role).toBe('leader');
    expect(() => n1.proposeConfChange({ type: 'addLearner', node: 'n4' })).toThrow(/has not committed an entry of its term/);
    rd = n1.ready();
    n1.advance(rd);
    n1.step({ type: 4, from: 'n2', to: 'n1', term: 1, logTerm: 0, index: 1, entries: [], commit: 0, reject: false, rejectHint: 0 });
    expect(n1.status().commit).toBe(1);
    expect(n1.proposeConfChange({ type: 'addLearner', node: 'n4' }).index).toBe(2);
  });

  it('removing a follower shrinks the quorum; the removed node cannot disrupt the cluster (pre-vote, thesis §4.2.3)', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3'], config: { preVote: true, checkQuorum: true } });
    electN1(sim);
    const idx = change(sim, 'n1', 'removeNode', 'n3');
    expect(sim.node('n3').status().confIndex).toBe(idx);
    expect(sim.node('n1').status().conf.voters).toEqual(['n1', 'n2']);
    const term = sim.node('n1').status().term;
    // n3 no longer hears from the leader; its pre-votes meet n2's lease and never raise a term.
    for (let i = 0; i < 100; i++) {
      sim.tick();
      sim.stabilize();
    }
    expect(sim.leader()).toBe('n1');
    expect(sim.node('n1').status().term).toBe(term);
    expect(sim.node('n2').status().term).toBe(term);
    // Quorum of {n1, n2} is both: with n2 down nothing commits.
    sim.crash('n2');
    const w = sim.propose('n1', 'w');
    sim.stabilize();
    expect(sim.node('n1').status().commit).toBeLessThan(w.lastIndex);
  });

  it('removing the leader: it keeps leading until the change commits, then hands over without an election timeout', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3'] });
    electN1(sim);
    sim.recordSent = true;
    const idx = change(sim, 'n1', 'removeNode', 'n1');
    expect(sim.node('n1').status().role).toBe('follower');
    expect(sim.sent.some((m) => m.type === 9 && m.from === 'n1')).toBe(true); // TimeoutNow
    const l = sim.leader();
    expect(l === 'n2' || l === 'n3').toBe(true);
    expect(sim.node(l!).status().conf.voters).toEqual(['n2', 'n3']);
    expect(sim.node(l!).status().commit).toBeGreaterThanOrEqual(idx);
    // The cluster keeps committing without n1.
    sim.crash('n1');
    const w = sim.propose(l!, 'after');
    sim.stabilize();
    expect(sim.node(l!).status().commit).toBeGreaterThanOrEqual(w.lastIndex);
  });

  it('a leader removed while it alone holds the change campaigns again to finish it (thesis §4.2.2)', () => {
    const sim = new Simulator({ ids: ['n1', 'n2'] });
    electN1(sim);
    sim.isolate('n1');
    sim.proposeConfChange('n1', { type: 'removeNode', node: 'n1' });
    sim.propose('n1', 'only-on-n1');
    // n2 times out and bumps the term; n1 hears it and steps down, holding the longer log.
    for (let i = 0; i < 40; i++) sim.tick();
    sim.heal();
    for (let i = 0; i < 200 && (sim.leader() !== 'n2' || sim.node('n2').status().conf.voters.join() !== 'n2'); i++) {
      sim.tick();
      sim.stabilize();
    }
    expect(sim.leader()).toBe('n2');
    expect(sim.node('n2').status().conf.voters).toEqual(['n2']);
  });

  it('a truncated config entry reverts to the previous configuration', () => {
    const n3 = newTestNode('n3', ['n1', 'n2', 'n3']);
    const cfgEntry: Entry = { index: 2, term: 1, type: EntryType.Config, data: encodeConfState({ voters: ['n1', 'n2'], learners: [], storage: [] }) };
    const noop: Entry = { index: 1, term: 1, type: EntryType.Noop, data: new Uint8Array(0) };
    n3.step({ type: 3, from: 'n1', to: 'n3', term: 1, logTerm: 0, index: 0, entries: [noop, cfgEntry], commit: 1, reject: false, rejectHint: 0 });
    expect(n3.status().conf.voters).toEqual(['n1', 'n2']);
    expect(n3.status().confIndex).toBe(2);
    n3.advance(n3.ready());
    // A leader of term 2 that never had the config entry overwrites index 2.
    const other: Entry = { index: 2, term: 2, type: EntryType.Noop, data: new Uint8Array(0) };
    n3.step({ type: 3, from: 'n2', to: 'n3', term: 2, logTerm: 1, index: 1, entries: [other], commit: 1, reject: false, rejectHint: 0 });
    expect(n3.status().conf.voters).toEqual(['n1', 'n2', 'n3']);
    expect(n3.status().confIndex).toBe(0);
  });

  it('a restarted node takes its configuration from the last config entry of its log', () => {
    const log: Entry[] = [
      { index: 1, term: 1, type: EntryType.Noop, data: new Uint8Array(0) },
      { index: 2, term: 1, type: EntryType.Config, data: encodeConfState({ voters: ['a', 'b', 'c'], learners: ['d'], storage: [] }) },
      { index: 3, term: 1, type: EntryType.Config, data: encodeConfState({ voters: ['a', 'b', 'c', 'd'], learners: [], storage: ['s1'] }) },
    ];
    const d = newTestNode('d', ['a', 'b', 'c'], { hardState: { term: 1, vote: null, commit: 3 }, log });
    expect(d.status().conf).toEqual({ voters: ['a', 'b', 'c', 'd'], learners: [], storage: ['s1'] });
    expect(d.status().confIndex).toBe(3);
  });

  it('a node outside the initial configuration waits to be added, then votes and can lead', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3', 'n4'], voters: ['n1', 'n2', 'n3'] });
    for (let i = 0; i < 100; i++) {
      sim.tick();
      sim.stabilize();
    }
    const l = sim.leader()!;
    expect(l).not.toBe('n4');
    expect(sim.node('n4').status().term).toBe(0);
    change(sim, l, 'addLearner', 'n4');
    change(sim, l, 'addVoter', 'n4');
    sim.transferLeadership(l, 'n4');
    sim.stabilize();
    expect(sim.leader()).toBe('n4');
    expect(sim.node('n4').status().conf.voters).toEqual(['n1', 'n2', 'n3', 'n4']);
  });
});
