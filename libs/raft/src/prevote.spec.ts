import { MessageType, makeMessage, type Message, type RaftNode } from './index';
import { Simulator, cycle, logWithTerms, newTestNode } from './testing';


function tickUntil(n: RaftNode, done: () => boolean, ticksMax = 100): void {
  for (let t = 0; t < ticksMax && !done(); t++) n.tick();
  if (!done()) throw new Error(`condition not reached in ${ticksMax} ticks`);
}

/** Highest term any node of the simulator is in. */
function maxTerm(sim: Simulator): number {
  return Math.max(...sim.liveNodes().map((n) => n.status().term));
}

describe('pre-vote (thesis §9.6)', () => {
  it('an election timeout starts a pre-vote round at term+1 without changing term or vote', () => {
    const n = newTestNode('a', ['a', 'b', 'c'], { preVote: true, hardState: { term: 4, vote: 'b', commit: 0 }, log: logWithTerms([1, 4]) });
    tickUntil(n, () => n.status().role === 'candidate');
    expect(n.status()).toMatchObject({ role: 'candidate', preCandidate: true, term: 4, vote: 'b' });
    const rd = cycle(n);
    expect(rd.hardState).toBeNull(); // nothing to persist: a pre-candidate cannot disturb anyone's term
    expect(rd.messages).toEqual(
      ['b', 'c'].map((to) => makeMessage({ type: MessageType.PreVote, from: 'a', to, term: 5, index: 2, logTerm: 4 })),
    );
  });

  it('a quorum of pre-vote grants starts the real election; a quorum of rejects ends the round', () => {
    const n = newTestNode('a', ['a', 'b', 'c'], { preVote: true });
    n.campaign();
    cycle(n);
    n.step(makeMessage({ type: MessageType.PreVoteResponse, from: 'b', to: 'a', term: 1 }));
    expect(n.status()).toMatchObject({ role: 'candidate', preCandidate: false, term: 1, vote: 'a' });
    expect(cycle(n).messages.map((m) => [m.type, m.to, m.term])).toEqual([
      [MessageType.Vote, 'b', 1],
      [MessageType.Vote, 'c', 1],
    ]);

    const r = newTestNode('a', ['a', 'b', 'c'], { preVote: true });
    r.campaign();
    cycle(r);
    r.step(makeMessage({ type: MessageType.PreVoteResponse, from: 'b', to: 'a', term: 0, reject: true }));
    r.step(makeMessage({ type: MessageType.PreVoteResponse, from: 'c', to: 'a', term: 0, reject: true }));
    expect(r.status()).toMatchObject({ role: 'follower', preCandidate: false, term: 0 });
  });

  it('a pre-vote reject carrying a higher term makes the pre-candidate follow that term (it was behind)', () => {
    const n = newTestNode('a', ['a', 'b', 'c'], { preVote: true });
    n.campaign();
    cycle(n);
    n.step(makeMessage({ type: MessageType.PreVoteResponse, from: 'b', to: 'a', term: 7, reject: true }));
    expect(n.status()).toMatchObject({ role: 'follower', term: 7, vote: null });
  });

  describe('granting', () => {
    const preVote = (over: Partial<Message> = {}): Message => makeMessage({ type: MessageType.PreVote, from: 'a', to: 'b', term: 3, index: 2, logTerm: 2, ...over });

    it('grants at the pre-vote term, changing neither its term nor its vote, if no leader and the log is up to date', () => {
      const b = newTestNode('b', ['a', 'b', 'c'], { hardState: { term: 2, vote: 'c', commit: 0 }, log: logWithTerms([1, 2]) });
      b.step(preVote());
      expect(cycle(b).messages).toEqual([makeMessage({ type: MessageType.PreVoteResponse, from: 'b', to: 'a', term: 3 })]);
      expect(b.status()).toMatchObject({ term: 2, vote: 'c' });
    });

    it('rejects a candidate whose log is behind (§5.4.1)', () => {
      const b = newTestNode('b', ['a', 'b', 'c'], { hardState: { term: 2, vote: null, commit: 0 }, log: logWithTerms([1, 2, 2]) });
      b.step(preVote());
      expect(cycle(b).messages).toEqual([makeMessage({ type: MessageType.PreVoteResponse, from: 'b', to: 'a', term: 2, reject: true })]);
    });

    it('rejects while it heard from a leader within the election timeout, grants after (leader lease)', () => {
      // random ≈ 1: b's own election timeout is 19 ticks, so it does not campaign during the test.
      const b = newTestNode('b', ['a', 'b', 'c'], { random: () => 0.999, hardState: { term: 2, vote: null, commit: 0 }, log: logWithTerms([1, 2]) });
      b.step(makeMessage({ type: MessageType.Heartbeat, from: 'c', to: 'b', term: 2 }));
      cycle(b);
      for (let t = 0; t < 9; t++) b.tick(); // electionTicks 10: still within the lease
      b.step(preVote());
      expect(cycle(b).messages).toEqual([makeMessage({ type: MessageType.PreVoteResponse, from: 'b', to: 'a', term: 2, reject: true })]);
      b.tick();
      b.step(preVote());
      expect(cycle(b).messages).toEqual([makeMessage({ type: MessageType.PreVoteResponse, from: 'b', to: 'a', term: 3 })]);
      expect(b.status()).toMatchObject({ term: 2, leaderId: 'c' });
    });

    it('a leader rejects pre-votes', () => {
      const sim = new Simulator({ seed: 2, config: { preVote: true } });
      expect(sim.elect('n1')).toBe(true);
      const term = sim.node('n1').status().term;
      sim.node('n1').step(makeMessage({ type: MessageType.PreVote, from: 'n2', to: 'n1', term: term + 1, index: 99, logTerm: term }));
      sim.recordSent = true;
      sim.processReady('n1');
      expect(sim.sent.filter((m) => m.type === MessageType.PreVoteResponse)).toEqual([
        makeMessage({ type: MessageType.PreVoteResponse, from: 'n1', to: 'n2', term, reject: true }),
      ]);
      expect(sim.node('n1').status()).toMatchObject({ role: 'leader', term });
    });
  });

  it.each([
    ['preVote', { preVote: true }],
    ['preVote + checkQuorum', { preVote: true, checkQuorum: true }],
  ])('%s: a partitioned node rejoining does not disrupt a healthy leader (term unchanged)', (_name, config) => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3'], seed: 11, config });
    expect(sim.elect('n1')).toBe(true);
    sim.propose('n1', 'x');
    sim.stabilize();
    const term = sim.node('n1').status().term;
    sim.isolate('n3');
    sim.run(200); // n3 times out again and again: pre-votes only, its term stays put
    expect(sim.node('n3').status().term).toBe(term);
    sim.heal();
    sim.run(100);
    expect(sim.leader()).toBe('n1');
    expect(maxTerm(sim)).toBe(term);
    expect(sim.node('n3').status()).toMatchObject({ role: 'follower', leaderId: 'n1', term });
  });

  it('control: without pre-vote the rejoining node bumps the term and deposes the leader', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3'], seed: 11 });
    expect(sim.elect('n1')).toBe(true);
    const term = sim.node('n1').status().term;
    sim.isolate('n3');
    sim.run(200);
    sim.heal();
    sim.run(100);
    expect(maxTerm(sim)).toBeGreaterThan(term + 1);
  });

  it('elections still work with 30% message loss, and after the leader crashes', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3', 'n4', 'n5'], seed: 21, config: { preVote: true, checkQuorum: true } });
    sim.dropRate = 0.3;
    for (let t = 0; t < 500 && !sim.leader(); t++) sim.run(1);
    const first = sim.leader();
    expect(first).not.toBeNull();
    sim.crash(first!);
    for (let t = 0; t < 500 && !sim.leader(); t++) sim.run(1);
    const second = sim.leader();
    expect(second).not.toBeNull();
    expect(second).not.toBe(first);
    sim.dropRate = 0;
    sim.restart(first!);
    sim.run(60);
    const { lastIndex } = sim.propose(sim.leader()!, 'after');
    sim.stabilize();
    for (const n of sim.liveNodes()) expect(n.status().commit).toBe(lastIndex);
  });
});

describe('check-quorum with pre-vote (leader lease)', () => {
  it('with checkQuorum, a follower that heard from its leader recently ignores a higher-term Vote (no term change, no answer)', () => {
    const mk = (checkQuorum: boolean): RaftNode => {
      const b = newTestNode('b', ['a', 'b', 'c'], { checkQuorum, hardState: { term: 2, vote: null, commit: 0 } });
      b.step(makeMessage({ type: MessageType.Heartbeat, from: 'c', to: 'b', term: 2 }));
      cycle(b);
      b.step(makeMessage({ type: MessageType.Vote, from: 'a', to: 'b', term: 3 }));
      return b;
    };
    const leased = mk(true);
    expect(leased.status()).toMatchObject({ term: 2, leaderId: 'c', vote: null });
    expect(leased.hasReady()).toBe(false);
    const plain = mk(false);
    expect(plain.status()).toMatchObject({ term: 3, vote: 'a' });
  });

  it('a leader cut off from its quorum steps down after an election timeout; the majority elects another; on healing nobody bumps the term again', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3'], seed: 4, config: { preVote: true, checkQuorum: true } });
    expect(sim.elect('n1')).toBe(true);
    const term = sim.node('n1').status().term;
    sim.isolate('n1');
    sim.run(20); // two CheckQuorum periods (electionTicks 10): the first may still count pre-isolation acks
    expect(sim.node('n1').status()).toMatchObject({ role: 'follower', term, leaderId: null });
    sim.run(60);
    const l = sim.leader();
    expect(l === 'n2' || l === 'n3').toBe(true);
    const newTerm = sim.node(l!).status().term;
    expect(newTerm).toBe(term + 1); // pre-vote: one real election, no term inflation
    expect(sim.node('n1').status().term).toBe(term); // the isolated node never adopted a term of its own
    sim.heal();
    sim.run(40);
    expect(sim.leader()).toBe(l);
    expect(maxTerm(sim)).toBe(newTerm);
    expect(sim.node('n1').status()).toMatchObject({ role: 'follower', leaderId: l, term: newTerm });
  });
});
