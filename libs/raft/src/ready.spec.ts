import { EntryType, MessageType, RaftNode, makeMessage, mulberry32 } from './index';
import { Simulator, cycle, logWithTerms, newTestNode } from './testing';


describe('Ready / advance contract', () => {
  it('ready() twice returns the same Ready; inputs and a foreign Ready are refused until advance', () => {
    const n = newTestNode('a', ['a']);
    n.campaign();
    const rd = n.ready();
    expect(n.ready()).toBe(rd);
    expect(n.hasReady()).toBe(false);
    expect(() => n.tick()).toThrow(/ReadyOutstanding/);
    expect(() => n.step(makeMessage({ type: MessageType.Heartbeat, from: 'b', to: 'a', term: 1 }))).toThrow(/ReadyOutstanding/);
    expect(() => n.propose([new Uint8Array(1)])).toThrow(/ReadyOutstanding/);
    expect(() => n.advance({ ...rd })).toThrow(/ReadyMismatch/);
    n.advance(rd);
    expect(() => n.advance(rd)).toThrow(/ReadyMismatch/);
  });

  it('hardState and softState only when changed; committed entries delivered exactly once', () => {
    const n = newTestNode('a', ['a']);
    expect(n.hasReady()).toBe(false);
    n.campaign();
    const rd1 = cycle(n);
    expect(rd1.softState).not.toBeNull();
    const rd2 = cycle(n);
    expect(rd2.softState).toBeNull();
    expect(rd2.hardState).toEqual({ term: 1, vote: 'a', commit: 1 });
    n.propose([new Uint8Array([1]), new Uint8Array([2])]);
    const rd3 = cycle(n);
    expect(rd3.hardState).toBeNull();
    expect(rd3.committedEntries).toEqual([]);
    expect(rd3.entries.map((e) => e.index)).toEqual([2, 3]);
    const rd4 = cycle(n);
    expect(rd4.committedEntries.map((e) => e.index)).toEqual([2, 3]);
    expect(rd4.hardState!.commit).toBe(3);
    expect(n.hasReady()).toBe(false);
    for (let i = 0; i < 5; i++) n.tick(); // single-node heartbeats send nothing
    expect(n.hasReady()).toBe(false);
  });

  it('async storage writes: persisted() is refused without the option, between ready and advance, and beyond what a Ready handed out; a replaced entry is ignored', () => {
    expect(() => newTestNode('a', ['a']).persisted(1, 1)).toThrow(/AsyncStorageWritesOff/);
    const n = newTestNode('a', ['a'], { asyncStorageWrites: true });
    n.campaign(); // a single voter: leader at once, its Noop in the first Ready
    const rd = n.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([1]);
    expect(() => n.persisted(1, 1)).toThrow(/ReadyOutstanding/);
    n.advance(rd);
    n.propose([new Uint8Array([1])]); // entry 2 is in the log but not handed out in a Ready yet
    expect(() => n.persisted(2, 1)).toThrow(/PersistedBeyondReady/);
    n.persisted(1, 2); // not the term of entry 1: stale, ignored
    expect(n.status().persistedIndex).toBe(0);
    expect(n.status().commit).toBe(0);
    // The single voter's own durable copy is the majority: the message to itself commits it.
    n.persisted(1, 1);
    expect(n.status().commit).toBe(1);
    expect(cycle(n).committedEntries.map((e) => e.index)).toEqual([1]);
    n.persisted(2, 1); // now handed out (in the Ready above)
    expect(n.status().commit).toBe(2);
  });

  it('async storage writes: a follower\'s acknowledgement waits for its write, a heartbeat answer does not', () => {
    const n = newTestNode('f', ['l', 'f', 'x'], { asyncStorageWrites: true });
    n.step(makeMessage({ type: MessageType.Append, from: 'l', to: 'f', term: 1, index: 0, logTerm: 0, entries: logWithTerms([1, 1]) }));
    const rd = cycle(n);
    // The first message of term 1 changed the term: everything waits.
    expect(rd.messages).toEqual([]);
    expect(rd.messagesAfterPersist).toEqual([makeMessage({ type: MessageType.AppendResponse, from: 'f', to: 'l', term: 1, index: 2 })]);
    n.step(makeMessage({ type: MessageType.Append, from: 'l', to: 'f', term: 1, index: 2, logTerm: 1, entries: logWithTerms([1, 1, 1]).slice(2), commit: 2 }));
    n.step(makeMessage({ type: MessageType.Heartbeat, from: 'l', to: 'f', term: 1, commit: 2 }));
    const rd2 = cycle(n);
    expect(rd2.messages).toEqual([makeMessage({ type: MessageType.HeartbeatResponse, from: 'f', to: 'l', term: 1 })]);
    expect(rd2.messagesAfterPersist).toEqual([makeMessage({ type: MessageType.AppendResponse, from: 'f', to: 'l', term: 1, index: 3 })]);
    // Committed (commit 2) but not durable here yet: not applied.
    expect(rd2.committedEntries).toEqual([]);
    n.persisted(3, 1);
    expect(cycle(n).committedEntries.map((e) => e.index)).toEqual([1, 2]);
  });

  it('async storage writes: a write that completes after a new leader replaced its entries is ignored, the earlier entries it held still count', () => {
    const n = newTestNode('f', ['l', 'f', 'x'], { asyncStorageWrites: true });
    n.step(makeMessage({ type: MessageType.Append, from: 'l', to: 'f', term: 1, index: 0, logTerm: 0, entries: logWithTerms([1, 1, 1]) }));
    cycle(n); // the write of entries 1..3 (term 1) is in flight
    // A new leader of term 2 keeps entry 1 and replaces 2..3 (the truncation moves unstableFrom back to 2).
    n.step(makeMessage({ type: MessageType.Append, from: 'x', to: 'f', term: 2, index: 1, logTerm: 1, entries: logWithTerms([1, 2, 2]).slice(1) }));
    n.persisted(3, 1); // the old write completes: its entry 3 is gone, nothing counts
    expect(n.status().persistedIndex).toBe(0);
    const rd = cycle(n);
    expect(rd.entries.map((e) => [e.index, e.term])).toEqual([
      [2, 2],
      [3, 2],
    ]);
    n.persisted(3, 2);
    expect(n.status().persistedIndex).toBe(3);
  });

  it('a follower acknowledges entries only in the Ready that persists them', () => {
    const n = newTestNode('f', ['l', 'f', 'x']);
    n.step(makeMessage({ type: MessageType.Append, from: 'l', to: 'f', term: 1, index: 0, logTerm: 0, entries: logWithTerms([1, 1]) }));
    const rd = cycle(n);
    expect(rd.entries.map((e) => e.index)).toEqual([1, 2]);
    expect(rd.messages).toEqual([makeMessage({ type: MessageType.AppendResponse, from: 'f', to: 'l', term: 1, index: 2 })]);
  });

  it('the leader counts its own entries only after advance (persisted)', () => {
    const sim = new Simulator({ seed: 1 });
    expect(sim.elect('n1')).toBe(true);
    const n1 = sim.node('n1');
    n1.propose([new Uint8Array([7])]);
    const rd = n1.ready();
    expect(n1.status().progress!.n1.match).toBe(1);
    // Followers ack before the leader's advance (the driver may send after fsync, before advance).
    sim.stores.get('n1')!.persist(rd);
    for (const m of rd.messages) {
      sim.node(m.to).step(m);
      sim.processReady(m.to);
    }
    n1.advance(rd);
    expect(n1.status().progress!.n1.match).toBe(2);
  });

  it('a leader does not count its own unpersisted entries toward commit', () => {
    const sim = new Simulator({ seed: 1 });
    expect(sim.elect('n1')).toBe(true);
    const n1 = sim.node('n1');
    const term = n1.status().term;
    n1.propose([new Uint8Array([7])]);
    n1.step(makeMessage({ type: MessageType.AppendResponse, from: 'n2', to: 'n1', term, index: 2 }));
    expect(n1.status().commit).toBe(1); // n2 + an unpersisted leader entry is not a quorum
    sim.processReady('n1'); // persist + advance
    expect(n1.status().commit).toBe(2);
  });

  it('a node elected with unpersisted entries starts with its persisted index as its own match', () => {
    const n = newTestNode('a', ['a', 'b', 'c']);
    n.step(makeMessage({ type: MessageType.Append, from: 'b', to: 'a', term: 1, entries: logWithTerms([1, 1]) }));
    n.campaign();
    n.step(makeMessage({ type: MessageType.VoteResponse, from: 'c', to: 'a', term: 2 }));
    expect(n.status()).toMatchObject({ role: 'leader', lastIndex: 3, persistedIndex: 0 });
    expect(n.status().progress!.a.match).toBe(0);
    const rd = cycle(n);
    expect(rd.entries.map((e) => e.index)).toEqual([1, 2, 3]);
    expect(n.status().progress!.a.match).toBe(3);
  });

  it('single voter: commits exactly when advance reports the entries persisted', () => {
    const n = newTestNode('a', ['a']);
    n.campaign();
    cycle(n);
    cycle(n);
    const r = n.propose([new Uint8Array([1])]);
    expect(r).toEqual({ firstIndex: 2, lastIndex: 2, term: 1 });
    expect(n.status().commit).toBe(1);
    const rd = n.ready();
    expect(n.status().commit).toBe(1);
    n.advance(rd);
    expect(n.status().commit).toBe(2);
  });

  it('batching: 1,000 proposals between two Readies give one Ready with 1,000 entries and bounded Appends', () => {
    const sim = new Simulator({ seed: 6, config: { entriesPerMsgMax: 100, inflightMsgsMax: 64 } });
    expect(sim.elect('n1')).toBe(true);
    const n1 = sim.node('n1');
    for (let i = 0; i < 1000; i++) n1.propose([new TextEncoder().encode(`k${i}`)]);
    const rd = n1.ready();
    expect(rd.entries).toHaveLength(1000);
    expect(rd.entries[0].index).toBe(2);
    const appends = rd.messages.filter((m) => m.type === MessageType.Append);
    for (const to of ['n2', 'n3']) {
      const mine = appends.filter((m) => m.to === to);
      expect(mine).toHaveLength(10);
      expect(mine.every((m) => m.entries.length <= 100)).toBe(true);
      expect(mine.flatMap((m) => m.entries.map((e) => e.index))).toEqual(rd.entries.map((e) => e.index));
    }
    n1.advance(rd);
  });

  it('msgBytesMax bounds Append data bytes, but one oversized entry still goes alone', () => {
    const sim = new Simulator({ seed: 6, config: { msgBytesMax: 1000 } });
    expect(sim.elect('n1')).toBe(true);
    const n1 = sim.node('n1');
    n1.propose(Array.from({ length: 30 }, () => new Uint8Array(100)));
    n1.propose([new Uint8Array(5000)]);
    const rd = cycle(n1);
    const sizes = rd.messages.filter((m) => m.to === 'n2' && m.type === MessageType.Append).map((m) => m.entries.reduce((s, e) => s + e.data.length, 0));
    expect(sizes).toEqual([1000, 1000, 1000, 5000]);
  });
});

describe('restart from persisted state', () => {
  const restored = { hardState: { term: 3, vote: 'b', commit: 4 }, entries: logWithTerms([1, 1, 2, 3, 3]) };

  it('resumes as a follower with term, vote, commit and log; nothing is re-delivered by default', () => {
    const n = newTestNode('a', ['a', 'b', 'c'], { restored });
    expect(n.status()).toMatchObject({ role: 'follower', term: 3, vote: 'b', commit: 4, applied: 4, lastIndex: 5, lastTerm: 3, persistedIndex: 5 });
    expect(n.hasReady()).toBe(false);
  });

  it('config.applied: committed entries after it are delivered again', () => {
    const n = newTestNode('a', ['a', 'b', 'c'], { restored, applied: 2 });
    expect(cycle(n).committedEntries.map((e) => e.index)).toEqual([3, 4]);
  });

  it('rejects invalid restored state', () => {
    expect(() => newTestNode('a', ['a'], { restored: { ...restored, hardState: { term: 3, vote: null, commit: 9 } } })).toThrow(/RestoredStateInvalid/);
    expect(() => newTestNode('a', ['a'], { restored: { ...restored, hardState: { term: 2, vote: null, commit: 0 } } })).toThrow(/RestoredStateInvalid/);
    expect(() => newTestNode('a', ['a'], { restored, applied: 5 })).toThrow(/RestoredStateInvalid/);
    expect(() => newTestNode('a', ['a'], { restored: { hardState: restored.hardState, entries: logWithTerms([1, 2, 1, 3, 3]) } })).toThrow(/LogTermDecreasing/);
    const gap = logWithTerms([1, 1, 1]);
    expect(() => newTestNode('a', ['a'], { restored: { hardState: { term: 1, vote: null, commit: 0 }, entries: [gap[0], gap[2]] } })).toThrow(/LogNotContiguous/);
  });

  it('rejects invalid config', () => {
    const base = { id: 'a', voters: ['a'], electionTicks: 10, heartbeatTicks: 2, inflightMsgsMax: 1, entriesPerMsgMax: 1, msgBytesMax: 1, random: mulberry32(1) };
    expect(() => new RaftNode({ ...base, learners: ['a'] })).toThrow(/RaftConfigInvalid/);
    expect(() => new RaftNode({ ...base, heartbeatTicks: 10 })).toThrow(/RaftConfigInvalid/);
    expect(() => new RaftNode({ ...base, inflightMsgsMax: 0 })).toThrow(/RaftConfigInvalid/);
    expect(() => new RaftNode({ ...base, voters: ['a', 'a'] })).toThrow(/RaftConfigInvalid/);
  });

  it('a whole cluster restarted from its durable stores keeps every committed entry', () => {
    const sim = new Simulator({ seed: 17 });
    sim.run(50);
    const l = sim.leader()!;
    for (let i = 0; i < 20; i++) sim.propose(l, `x${i}`);
    sim.stabilize();
    const before = sim.applied.get(l)!.slice();
    for (const id of sim.ids) sim.crash(id);
    for (const id of sim.ids) sim.restart(id);
    for (const id of sim.ids) expect(sim.node(id).status().commit).toBe(before.length);
    sim.run(60);
    const l2 = sim.leader()!;
    sim.propose(l2, 'after');
    sim.stabilize();
    for (const id of sim.ids) {
      const applied = sim.applied.get(id)!;
      expect(applied.slice(0, before.length)).toEqual(before);
      expect(applied[applied.length - 1].type).toBe(EntryType.Normal);
    }
  });
});
