import { EntryType, MessageType, makeMessage, type Entry, type RaftNode } from './index';
import { Simulator, cycle, logWithTerms, newTestNode } from './testing';

const text = (e: Entry) => new TextDecoder().decode(e.data);
const terms = (n: RaftNode) => n.entries().map((e) => e.term);


describe('replication and commit (Raft §5.3, §5.4)', () => {
  it.each([3, 5])('replicates and commits on %i nodes; every node applies the same sequence once', (size) => {
    const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    const sim = new Simulator({ ids, seed: size });
    sim.run(60);
    const l = sim.leader()!;
    for (let i = 0; i < 10; i++) sim.propose(l, `v${i}`);
    sim.stabilize();
    const want = sim.applied.get(l)!.filter((e) => e.type === EntryType.Normal).map(text);
    expect(want).toEqual(Array.from({ length: 10 }, (_, i) => `v${i}`));
    for (const id of ids) {
      expect(sim.applied.get(id)).toEqual(sim.applied.get(l));
      expect(sim.node(id).status().commit).toBe(sim.node(l).status().lastIndex);
    }
    sim.checkLogMatching();
  });

  it('commits with a majority while a minority is unreachable, and catches the minority up', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3', 'n4', 'n5'], seed: 8 });
    expect(sim.elect('n1')).toBe(true);
    sim.partition(['n1', 'n2', 'n3'], ['n4', 'n5']);
    const { lastIndex } = sim.propose('n1', 'a', 'b', 'c');
    sim.stabilize();
    expect(sim.node('n1').status().commit).toBe(lastIndex);
    expect(sim.node('n4').status().lastIndex).toBe(1);
    sim.heal();
    sim.run(10); // heartbeat responses trigger the catch-up
    sim.stabilize();
    for (const id of sim.ids) expect(sim.node(id).status()).toMatchObject({ commit: lastIndex, lastIndex });
  });

  it('Figure 8: a leader never commits a previous-term entry by counting replicas', () => {
    // s1 leader of term 4 holds entry 2 from term 2 on a majority; it must wait for its own term's entry.
    const n = newTestNode('s1', ['s1', 's2', 's3', 's4', 's5'], { log: logWithTerms([1, 2]), hardState: { term: 3, vote: null, commit: 1 } });
    n.campaign();
    cycle(n);
    for (const v of ['s2', 's3']) n.step(makeMessage({ type: MessageType.VoteResponse, from: v, to: 's1', term: 4 }));
    expect(n.status().role).toBe('leader');
    cycle(n); // persists the Noop at index 3 (term 4)
    const ack = (from: string, index: number) => n.step(makeMessage({ type: MessageType.AppendResponse, from, to: 's1', term: 4, index }));
    ack('s2', 2);
    ack('s3', 2);
    expect(n.status().commit).toBe(1); // 3 of 5 hold entry 2 (term 2), still not committed
    ack('s2', 3);
    expect(n.status().commit).toBe(1); // 2 of 5 hold index 3
    ack('s3', 3);
    expect(n.status().commit).toBe(3); // term-4 entry on a majority commits 2 indirectly
    expect(cycle(n).committedEntries.map((e) => [e.index, e.term])).toEqual([
      [2, 2],
      [3, 4],
    ]);
  });

  it('Figure 8 continued: an uncommitted previous-term entry may be overwritten, safely', () => {
    const sim = new Simulator({
      ids: ['s1', 's2', 's3', 's4', 's5'],
      seed: 8,
      config: { entriesPerMsgMax: 1 },
      restored: {
        s1: { hardState: { term: 3, vote: null, commit: 1 }, entries: logWithTerms([1, 2]) },
        s2: { hardState: { term: 3, vote: null, commit: 1 }, entries: logWithTerms([1, 2]) },
        s3: { hardState: { term: 3, vote: null, commit: 1 }, entries: logWithTerms([1]) },
        s4: { hardState: { term: 3, vote: null, commit: 1 }, entries: logWithTerms([1]) },
        s5: { hardState: { term: 3, vote: null, commit: 1 }, entries: logWithTerms([1, 3]) },
      },
    });
    // s1 wins term 4 but only gets entry 2 to s3 (its own Noop, term 4, reaches nobody): s3 rejects the
    // first probe (it lacks entry 2), then one-entry Appends carry entry 2 but never the Noop.
    let firstToS3 = true;
    sim.dropIf((m) => {
      if (m.type !== MessageType.Append) return false;
      if (m.to !== 's3') return true;
      if (firstToS3) {
        firstToS3 = false;
        return false;
      }
      return m.entries.some((e) => e.term === 4);
    });
    sim.node('s1').campaign();
    sim.stabilize();
    expect(sim.node('s1').status().role).toBe('leader');
    expect(terms(sim.node('s3'))).toEqual([1, 2]);
    expect(sim.node('s1').status().commit).toBe(1);
    sim.crash('s1');
    sim.dropIf(null);
    expect(sim.elect('s5')).toBe(true); // lastTerm 3 beats s2, s3, s4
    sim.stabilize();
    for (const id of ['s2', 's3', 's4', 's5']) expect(terms(sim.node(id))).toEqual([1, 3, 5]);
    expect(sim.applied.get('s2')!.map((e) => e.term)).toEqual([1, 3, 5]);
  });

  it('Figure 7: followers with missing, extra and conflicting entries converge to the leader log', () => {
    const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    const logs: Record<string, number[]> = {
      L: leaderLog,
      a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
      b: [1, 1, 1, 4],
      c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
      d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
      e: [1, 1, 1, 4, 4, 4, 4],
      f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    };
    const restored = Object.fromEntries(Object.entries(logs).map(([id, t]) => [id, { hardState: { term: 7, vote: null, commit: 3 }, entries: logWithTerms(t) }]));
    const sim = new Simulator({ ids: Object.keys(logs), seed: 7, restored, config: { entriesPerMsgMax: 3 } });
    sim.recordSent = true;
    expect(sim.elect('L')).toBe(true);
    sim.propose('L', 'new');
    sim.stabilize();
    const want = [...leaderLog, 8, 8];
    for (const id of sim.ids) {
      expect([id, terms(sim.node(id))]).toEqual([id, want]);
      expect(sim.node(id).status().commit).toBe(12);
      expect(sim.node(id).entries(1, 10)).toEqual(logWithTerms(leaderLog));
    }
    // Fast backtracking: f (conflicting terms 2 and 3) needs at most 3 rejects, not one per entry.
    const rejects = sim.sent.filter((m) => m.from === 'f' && m.type === MessageType.AppendResponse && m.reject);
    expect(rejects.length).toBeLessThanOrEqual(3);
  });

  it('an old leader’s Append after a new election is rejected and the old leader steps down', () => {
    const sim = new Simulator({ seed: 12 });
    expect(sim.elect('n1')).toBe(true);
    sim.stabilize();
    sim.isolate('n1');
    sim.propose('n1', 'lost'); // uncommitted, only on n1
    expect(sim.elect('n2')).toBe(true);
    sim.propose('n2', 'kept');
    sim.stabilize();
    sim.heal();
    sim.recordSent = true;
    sim.node('n1').tick();
    sim.node('n1').tick(); // n1 still believes it leads term 1 and heartbeats
    sim.stabilize();
    const resp = sim.sent.find((m) => m.to === 'n1' && m.type === MessageType.AppendResponse);
    expect(resp).toMatchObject({ reject: true, term: 2 });
    expect(sim.node('n1').status()).toMatchObject({ role: 'follower', term: 2 });
    sim.run(10);
    sim.stabilize();
    const data = sim.node('n1').entries().filter((e) => e.type === EntryType.Normal).map(text);
    expect(data).toEqual(['kept']);
    expect(sim.applied.get('n1')).toEqual(sim.applied.get('n2'));
  });

  it('a crashed leader is replaced by one holding all committed entries; the old one rejoins and is repaired', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3', 'n4', 'n5'], seed: 21 });
    sim.run(60);
    const old = sim.leader()!;
    for (let i = 0; i < 5; i++) sim.propose(old, `a${i}`);
    sim.stabilize();
    const committed = sim.node(old).status().commit;
    sim.isolate(old);
    sim.propose(old, 'orphan'); // persisted on the old leader only, never committed
    sim.deliver(); // its Appends are lost in the partition
    sim.crash(old);
    sim.heal();
    sim.run(80);
    const nu = sim.leader()!;
    expect(nu).not.toBe(old);
    expect(sim.node(nu).entries(1, committed)).toEqual(sim.applied.get(old)!.slice(0, committed));
    sim.propose(nu, 'b');
    sim.stabilize();
    sim.restart(old);
    expect(sim.node(old).entries().map(text)).toContain('orphan');
    sim.run(30);
    sim.stabilize();
    expect(sim.node(old).entries()).toEqual(sim.node(nu).entries());
    expect(sim.node(old).entries().map(text)).not.toContain('orphan');
    expect(sim.applied.get(old)).toEqual(sim.applied.get(nu));
  });

  describe('follower side', () => {
    const follower = (log: number[], commit = 0) => newTestNode('f', ['l', 'f', 'x'], { log: logWithTerms(log), hardState: { term: 5, vote: null, commit } });
    const append = (index: number, logTerm: number, entries: Entry[], commit = 0) =>
      makeMessage({ type: MessageType.Append, from: 'l', to: 'f', term: 5, index, logTerm, entries, commit });

    it('rejects a too-short log with hint lastIndex+1 and hint term 0', () => {
      const n = follower([1, 1]);
      n.step(append(5, 3, []));
      expect(cycle(n).messages[0]).toMatchObject({ type: MessageType.AppendResponse, reject: true, index: 5, rejectHint: 3, logTerm: 0 });
    });

    it('rejects a term conflict with the first index of its conflicting term', () => {
      const n = follower([1, 2, 2, 2, 3]);
      n.step(append(4, 4, []));
      expect(cycle(n).messages[0]).toMatchObject({ reject: true, index: 4, rejectHint: 2, logTerm: 2 });
    });

    it('truncates only on a real conflict; a stale Append never truncates matching entries', () => {
      const n = follower([1, 1, 1, 1, 1]);
      const log = logWithTerms([1, 1, 1, 1, 1]);
      n.step(append(1, 1, [log[1]])); // reordered old Append carrying entry 2
      const rd = cycle(n);
      expect(rd.entries).toEqual([]);
      expect(rd.messages[0]).toMatchObject({ reject: false, index: 2 });
      expect(n.status().lastIndex).toBe(5);
      const repl = logWithTerms([1, 1, 1, 5]).slice(3);
      n.step(append(3, 1, repl, 4));
      const rd2 = cycle(n);
      expect(rd2.entries).toEqual(repl); // Ready replaces the persisted suffix from index 4
      expect(terms(n)).toEqual([1, 1, 1, 5]);
      expect(rd2.hardState!.commit).toBe(4);
      expect(rd2.messages[0]).toMatchObject({ reject: false, index: 4 });
    });

    it('answers an Append below its commit with its commit index', () => {
      const n = follower([1, 1, 1], 3);
      n.step(append(1, 1, []));
      expect(cycle(n).messages[0]).toMatchObject({ reject: false, index: 3 });
    });

    it('commit = min(leader commit, index of last new entry)', () => {
      const n = follower([1, 1, 1, 1]);
      n.step(append(1, 1, logWithTerms([1, 1]).slice(1), 4));
      expect(n.status().commit).toBe(2);
    });

    it('never truncates a committed entry: a conflicting Append below commit only gets the commit index', () => {
      const n = follower([1, 1, 1], 3);
      n.step(append(2, 1, [{ index: 3, term: 5, type: EntryType.Normal, data: new Uint8Array() }]));
      const rd = cycle(n);
      expect(rd.entries).toEqual([]);
      expect(rd.messages[0]).toMatchObject({ reject: false, index: 3 });
      expect(terms(n)).toEqual([1, 1, 1]);
    });
  });

  it('stale and duplicate responses are harmless to the leader', () => {
    const sim = new Simulator({ seed: 13 });
    expect(sim.elect('n1')).toBe(true);
    sim.propose('n1', 'a', 'b');
    sim.stabilize();
    const before = sim.node('n1').status();
    const n1 = sim.node('n1');
    const t = before.term;
    n1.step(makeMessage({ type: MessageType.AppendResponse, from: 'n2', to: 'n1', term: t, index: 1 }));
    n1.step(makeMessage({ type: MessageType.AppendResponse, from: 'n2', to: 'n1', term: t, index: 2, reject: true, rejectHint: 1 }));
    n1.step(makeMessage({ type: MessageType.AppendResponse, from: 'n2', to: 'n1', term: t, reject: true }));
    n1.step(makeMessage({ type: MessageType.VoteResponse, from: 'n2', to: 'n1', term: t }));
    n1.step(makeMessage({ type: MessageType.AppendResponse, from: 'n3', to: 'n1', term: t - 1, index: 0 }));
    expect(n1.status()).toEqual(before);
  });
});
