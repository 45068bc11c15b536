import { EntryType, MessageType, NotLeaderError, makeMessage } from './index';
import { Simulator, cycle, logWithTerms, newTestNode } from './testing';


describe('elections (Raft §5.2)', () => {
  it('a single node elects itself on timeout, appends a Noop and commits it on advance', () => {
    const n = newTestNode('a', ['a']);
    let ticks = 0;
    while (n.status().role !== 'leader') {
      n.tick();
      ticks++;
      expect(ticks).toBeLessThan(20);
    }
    expect(ticks).toBeGreaterThanOrEqual(10);
    const rd = n.ready();
    expect(rd.softState).toEqual({ role: 'leader', leaderId: 'a', term: 1 });
    expect(rd.hardState).toEqual({ term: 1, vote: 'a', commit: 0 });
    expect(rd.entries).toEqual([{ index: 1, term: 1, type: EntryType.Noop, data: new Uint8Array(0) }]);
    expect(rd.committedEntries).toEqual([]); // not persisted yet: does not count
    n.advance(rd);
    expect(n.hasReady()).toBe(true);
    const rd2 = cycle(n);
    expect(rd2.hardState).toEqual({ term: 1, vote: 'a', commit: 1 });
    expect(rd2.committedEntries.map((e) => e.index)).toEqual([1]);
    expect(n.hasReady()).toBe(false);
  });

  it('randomized timeout is drawn in [electionTicks, 2*electionTicks)', () => {
    for (const [r, want] of [
      [0, 10],
      [0.999999, 19],
      [0.5, 15],
    ] as const) {
      const n = newTestNode('a', ['a', 'b', 'c'], { random: () => r });
      let t = 0;
      while (n.status().role === 'follower') {
        n.tick();
        t++;
      }
      expect(t).toBe(want);
    }
  });

  it('3 nodes elect exactly one leader that everyone follows', () => {
    const sim = new Simulator({ seed: 3 });
    sim.run(50);
    const l = sim.leader()!;
    expect(l).not.toBeNull();
    const term = sim.node(l).status().term;
    for (const id of sim.ids) {
      const st = sim.node(id).status();
      expect(st.term).toBe(term);
      expect(st.leaderId).toBe(l);
      expect(st.role).toBe(id === l ? 'leader' : 'follower');
    }
  });

  it('a split vote resolves in a later term', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3', 'n4'], seed: 5 });
    // n3 only hears n1's Vote, n4 only n2's: 2-2 in term 1.
    sim.dropIf((m) => m.type === MessageType.Vote && ((m.from === 'n1' && m.to === 'n4') || (m.from === 'n2' && m.to === 'n3')));
    sim.node('n1').campaign();
    sim.node('n2').campaign();
    sim.stabilize();
    expect(sim.leader()).toBeNull();
    for (const id of ['n1', 'n2']) expect(sim.node(id).status()).toMatchObject({ role: 'candidate', term: 1 });
    expect(sim.node('n3').status().vote).toBe('n1');
    expect(sim.node('n4').status().vote).toBe('n2');
    sim.dropIf(null);
    sim.run(60);
    const l = sim.leader();
    expect(l).not.toBeNull();
    expect(sim.node(l!).status().term).toBeGreaterThan(1);
  });

  it('grants at most one vote per term and re-grants the same candidate (duplicates)', () => {
    const n = newTestNode('a', ['a', 'b', 'c']);
    const vote = (from: string) => makeMessage({ type: MessageType.Vote, from, to: 'a', term: 2 });
    n.step(vote('b'));
    n.step(vote('c'));
    n.step(vote('b'));
    const rd = cycle(n);
    expect(rd.hardState).toEqual({ term: 2, vote: 'b', commit: 0 });
    expect(rd.messages.map((m) => [m.to, m.type, m.reject])).toEqual([
      ['b', MessageType.VoteResponse, false],
      ['c', MessageType.VoteResponse, true],
      ['b', MessageType.VoteResponse, false],
    ]);
  });

  it('the grant is in the same Ready as the persisted vote', () => {
    const n = newTestNode('a', ['a', 'b', 'c']);
    n.step(makeMessage({ type: MessageType.Vote, from: 'b', to: 'a', term: 1 }));
    const rd = n.ready();
    expect(rd.hardState!.vote).toBe('b');
    expect(rd.messages).toHaveLength(1);
    expect(rd.messages[0]).toMatchObject({ type: MessageType.VoteResponse, reject: false, term: 1 });
  });

  it('rejects a candidate whose log is less up-to-date (§5.4.1: last term, then last index)', () => {
    const log = logWithTerms([1, 1, 2]);
    const cases: Array<[number, number, boolean]> = [
      [1, 5, true], // lower last term loses even when longer
      [2, 2, true], // same last term, shorter
      [2, 3, false], // same term, same length
      [2, 9, false],
      [3, 1, false], // higher last term wins even when shorter
    ];
    for (const [logTerm, index, reject] of cases) {
      const n = newTestNode('a', ['a', 'b', 'c'], { log, hardState: { term: 2, vote: null, commit: 0 } });
      n.step(makeMessage({ type: MessageType.Vote, from: 'b', to: 'a', term: 3, logTerm, index }));
      const rd = cycle(n);
      expect([logTerm, index, rd.messages[0].reject]).toEqual([logTerm, index, reject]);
      expect(rd.hardState!.vote).toBe(reject ? null : 'b');
    }
  });

  it('a node with a stale log cannot win; an up-to-date one does', () => {
    const sim = new Simulator({ seed: 11 });
    expect(sim.elect('n1')).toBe(true);
    sim.isolate('n3');
    sim.propose('n1', 'x', 'y');
    sim.stabilize();
    expect(sim.node('n1').status().commit).toBe(3);
    sim.crash('n1');
    sim.heal();
    sim.node('n3').campaign();
    sim.stabilize();
    expect(sim.node('n3').status().role).not.toBe('leader');
    expect(sim.node('n2').status().vote).toBeNull(); // n2 saw term 2 from n3's Vote but rejected it
    expect(sim.elect('n2')).toBe(true);
    expect(sim.node('n2').entries().map((e) => e.index)).toEqual([1, 2, 3, 4]);
  });

  it('a lower-term Vote is rejected with the current term', () => {
    const n = newTestNode('a', ['a', 'b', 'c'], { hardState: { term: 5, vote: null, commit: 0 } });
    n.step(makeMessage({ type: MessageType.Vote, from: 'b', to: 'a', term: 4 }));
    const rd = cycle(n);
    expect(rd.messages).toEqual([makeMessage({ type: MessageType.VoteResponse, from: 'a', to: 'b', term: 5, reject: true })]);
    expect(rd.hardState).toBeNull();
  });

  it('a higher-term Vote makes a leader step down (vote cleared, then granted if up-to-date)', () => {
    const sim = new Simulator({ seed: 2 });
    expect(sim.elect('n1')).toBe(true);
    sim.stabilize();
    const n2 = sim.node('n2');
    const st = n2.status();
    sim.node('n1').step(makeMessage({ type: MessageType.Vote, from: 'n2', to: 'n1', term: st.term + 1, logTerm: st.lastTerm, index: st.lastIndex }));
    const n1 = sim.node('n1').status();
    expect(n1).toMatchObject({ role: 'follower', term: st.term + 1, vote: 'n2', leaderId: null });
  });

  it('restart keeps term and vote: no second vote in the same term', () => {
    const sim = new Simulator({ seed: 4 });
    sim.isolate('n3');
    sim.node('n2').campaign(); // term 1, n1 grants
    sim.stabilize();
    expect(sim.node('n1').status().vote).toBe('n2');
    sim.crash('n1');
    sim.restart('n1');
    expect(sim.node('n1').status()).toMatchObject({ term: 1, vote: 'n2', role: 'follower' });
    sim.node('n1').step(makeMessage({ type: MessageType.Vote, from: 'n3', to: 'n1', term: 1 }));
    const rd = sim.node('n1').ready();
    expect(rd.messages[0]).toMatchObject({ to: 'n3', reject: true });
    sim.node('n1').advance(rd);
  });

  it('propose on a follower throws NotLeaderError with the leader id; on a candidate with null', () => {
    const sim = new Simulator({ seed: 9 });
    expect(sim.elect('n1')).toBe(true);
    const err = (() => {
      try {
        sim.node('n2').propose([new Uint8Array([1])]);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(NotLeaderError);
    expect(err).toMatchObject({ code: 'NOT_LEADER', leaderId: 'n1' });
    const c = newTestNode('a', ['a', 'b', 'c']);
    c.campaign();
    expect(() => c.propose([new Uint8Array([1])])).toThrow(expect.objectContaining({ code: 'NOT_LEADER', leaderId: null }));
  });

  it('a rejected higher-term Vote does not restart the election timer (a stale candidate cannot stall elections)', () => {
    const n = newTestNode('a', ['a', 'b', 'c'], { log: logWithTerms([1, 1]), hardState: { term: 1, vote: null, commit: 0 }, random: () => 0 });
    for (let i = 0; i < 9; i++) n.tick();
    n.step(makeMessage({ type: MessageType.Vote, from: 'b', to: 'a', term: 5, logTerm: 1, index: 1 })); // stale log: rejected
    expect(n.status()).toMatchObject({ term: 5, vote: null, role: 'follower' });
    n.tick();
    expect(n.status()).toMatchObject({ term: 6, role: 'candidate' });
    const m = newTestNode('a', ['a', 'b', 'c'], { random: () => 0 });
    for (let i = 0; i < 9; i++) m.tick();
    m.step(makeMessage({ type: MessageType.Vote, from: 'b', to: 'a', term: 5 })); // granted: timer restarts
    m.tick();
    expect(m.status()).toMatchObject({ term: 5, vote: 'b', role: 'follower' });
  });

  it('checkQuorum: an isolated leader steps down after an election timeout; a connected one stays', () => {
    const sim = new Simulator({ seed: 14, config: { checkQuorum: true } });
    expect(sim.elect('n1')).toBe(true);
    sim.run(40);
    expect(sim.node('n1').status().role).toBe('leader');
    sim.isolate('n1');
    for (let t = 0; t < 20; t++) {
      sim.tick(['n1']);
      sim.deliver();
    }
    expect(sim.node('n1').status()).toMatchObject({ role: 'follower', leaderId: null });
    const off = new Simulator({ seed: 14 });
    expect(off.elect('n1')).toBe(true);
    off.isolate('n1');
    for (let t = 0; t < 20; t++) {
      off.tick(['n1']);
      off.deliver();
    }
    expect(off.node('n1').status().role).toBe('leader');
  });

  it('checkQuorum: a new leader counts the voters that elected it in its first period, and steps down a period later if none answers again', () => {
    const sim = new Simulator({ seed: 14, config: { checkQuorum: true } });
    sim.node('n1').campaign();
    sim.processReady('n1');
    // Deliver only the vote requests and grants, then cut n1 off: its Appends and heartbeats go unanswered.
    sim.deliver();
    sim.deliver();
    expect(sim.node('n1').status().role).toBe('leader');
    sim.isolate('n1');
    const electionTicks = 10;
    for (let t = 0; t < electionTicks; t++) sim.tick(['n1']);
    expect(sim.node('n1').status().role).toBe('leader'); // the grants count for the first check
    for (let t = 0; t < electionTicks; t++) sim.tick(['n1']);
    expect(sim.node('n1').status()).toMatchObject({ role: 'follower', leaderId: null });
  });

  it('a candidate steps down when a majority rejects it', () => {
    const n = newTestNode('a', ['a', 'b', 'c']);
    n.campaign();
    cycle(n);
    n.step(makeMessage({ type: MessageType.VoteResponse, from: 'b', to: 'a', term: 1, reject: true }));
    expect(n.status().role).toBe('candidate');
    n.step(makeMessage({ type: MessageType.VoteResponse, from: 'c', to: 'a', term: 1, reject: true }));
    expect(n.status()).toMatchObject({ role: 'follower', term: 1, vote: 'a' });
  });
});
