import { MessageType, NotLeaderError, ReadIndexPendingFullError, type NodeId } from './index';
import { Simulator, newTestNode } from './testing';

const ids5 = ['n1', 'n2', 'n3', 'n4', 'n5'];

function ctxs(sim: Simulator, id: NodeId): unknown[] {
  return sim.readStates.get(id)!.map((r) => r.ctx);
}

describe('ReadIndex (thesis §6.4)', () => {
  it('a read is answered only after a quorum acknowledged the heartbeat round, at the commit index of the request', () => {
    const sim = new Simulator({ seed: 1 });
    expect(sim.elect('n1')).toBe(true);
    const { lastIndex } = sim.propose('n1', 'a', 'b');
    sim.stabilize();
    sim.recordSent = true;
    sim.readIndex('n1', 7);
    expect(sim.readStates.get('n1')).toEqual([]); // round sent, not acknowledged yet
    const round = sim.sent.filter((m) => m.type === MessageType.Heartbeat);
    expect(round.map((m) => m.to)).toEqual(['n2', 'n3']);
    expect(round.every((m) => m.context === round[0].context && round[0].context! > 0)).toBe(true);
    sim.stabilize();
    expect(sim.readStates.get('n1')).toEqual([{ index: lastIndex, ctx: 7 }]);
    expect(sim.node('n1').status().readIndexPending).toBe(0);
  });

  it('one acknowledgement short of a quorum is not enough', () => {
    const sim = new Simulator({ ids: ids5, seed: 1 });
    expect(sim.elect('n1')).toBe(true);
    sim.stabilize();
    sim.dropIf((m) => m.type === MessageType.HeartbeatResponse && m.from !== 'n2'); // only n2 acks: 2 of 5
    sim.readIndex('n1', 77);
    sim.stabilize();
    expect(sim.readStates.get('n1')).toEqual([]);
    sim.dropIf((m) => m.type === MessageType.HeartbeatResponse && m.from !== 'n2' && m.from !== 'n3');
    sim.run(2); // the next periodic heartbeat repeats the round: 3 of 5
    sim.stabilize();
    expect(ctxs(sim, 'n1')).toEqual([77]);
  });

  it('a follower refuses with NotLeaderError naming the leader', () => {
    const sim = new Simulator({ seed: 1 });
    expect(sim.elect('n1')).toBe(true);
    sim.stabilize();
    expect(() => sim.node('n2').readIndex(1)).toThrow(NotLeaderError);
    try {
      sim.node('n2').readIndex(1);
    } catch (e) {
      expect((e as NotLeaderError).leaderId).toBe('n1');
    }
  });

  it('many concurrent reads share one heartbeat round and are answered in order', () => {
    const sim = new Simulator({ ids: ids5, seed: 3 });
    expect(sim.elect('n1')).toBe(true);
    sim.stabilize();
    sim.recordSent = true;
    const n1 = sim.node('n1');
    for (let i = 0; i < 100; i++) n1.readIndex(i);
    sim.stabilize();
    const heartbeats = sim.sent.filter((m) => m.type === MessageType.Heartbeat);
    expect(heartbeats).toHaveLength(4); // one per follower, for all 100 reads
    expect(ctxs(sim, 'n1')).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(new Set(sim.readStates.get('n1')!.map((r) => r.index)).size).toBe(1);
  });

  it('a read recorded while a round is in flight waits for a round started after it', () => {
    const s2 = new Simulator({ seed: 5 });
    expect(s2.elect('n1')).toBe(true);
    s2.stabilize();
    const n1 = s2.node('n1');
    n1.readIndex(10);
    const rd = n1.ready(); // round r goes out (not yet delivered)
    s2.stores.get('n1')!.persist(rd);
    n1.advance(rd);
    const roundMsgs = rd.messages.filter((m) => m.type === MessageType.Heartbeat);
    n1.readIndex(11); // recorded after round r was sent
    // Deliver only round r to the followers and their answers back, without another ready() on n1.
    for (const m of roundMsgs) {
      s2.node(m.to).step(m);
      const frd = s2.node(m.to).ready();
      s2.node(m.to).advance(frd);
      for (const resp of frd.messages) if (resp.type === MessageType.HeartbeatResponse) n1.step(resp);
    }
    expect(n1.status().readIndexPending).toBe(1); // 11 still waits
    s2.stabilize();
    expect(ctxs(s2, 'n1')).toEqual([10, 11]);
  });

  it('a new leader answers reads only once an entry of its term is committed (its commit index may be behind before)', () => {
    const sim = new Simulator({ seed: 8 });
    expect(sim.elect('n1')).toBe(true);
    sim.propose('n1', 'a');
    sim.stabilize();
    sim.dropIf((m) => m.type === MessageType.Append || m.type === MessageType.AppendResponse);
    expect(sim.elect('n2')).toBe(true); // its Noop cannot replicate
    sim.readIndex('n2', 5);
    sim.stabilize();
    expect(sim.node('n2').status().readIndexPending).toBe(1); // heartbeats acked, but nothing of term 2 committed
    expect(sim.readStates.get('n2')).toEqual([]);
    sim.dropIf(null);
    sim.run(2); // a heartbeat response unpauses the probe; the Noop replicates
    sim.stabilize();
    const st = sim.node('n2').status();
    expect(sim.readStates.get('n2')).toEqual([{ index: st.commit, ctx: 5 }]);
    expect(st.commit).toBe(3); // 1 Noop(t1), 2 'a', 3 Noop(t2)
  });

  it('a single-voter cluster answers at the next Ready', () => {
    const n = newTestNode('a', ['a']);
    n.campaign();
    for (let i = 0; i < 2; i++) n.advance(n.ready()); // persist + commit the Noop
    n.readIndex(42);
    const rd = n.ready();
    expect(rd.readStates).toEqual([{ index: 1, ctx: 42 }]);
    expect(rd.messages).toEqual([]);
    n.advance(rd);
  });

  it('a deposed leader partitioned from the majority never answers a read (no stale read); it fails the read on stepping down', () => {
    const sim = new Simulator({ ids: ids5, seed: 9 });
    expect(sim.elect('n1')).toBe(true);
    sim.propose('n1', 'old');
    sim.stabilize();
    sim.partition(['n1', 'n2'], ['n3', 'n4', 'n5']);
    sim.run(100);
    const l = sim.leader();
    expect(['n3', 'n4', 'n5']).toContain(l);
    const { lastIndex } = sim.propose(l!, 'new'); // committed by the majority: a read after this must see it
    sim.run(5);
    expect(sim.node(l!).status().commit).toBe(lastIndex);
    expect(sim.node('n1').status().role).toBe('leader'); // no checkQuorum: it still believes it leads
    sim.readIndex('n1', 501);
    sim.run(300);
    expect(sim.readStates.get('n1')).toEqual([]);
    expect(sim.node('n1').status().readIndexPending).toBe(1);
    sim.heal();
    sim.run(20);
    expect(sim.node('n1').status().role).toBe('follower');
    expect(sim.readStates.get('n1')).toEqual([]);
    expect(sim.readStatesFailed.get('n1')).toEqual([{ ctx: 501 }]);
    // The same read on the real leader is answered at or after the majority's write.
    sim.readIndex(l!, 502);
    sim.stabilize();
    expect(sim.readStates.get(l!)![0].index).toBeGreaterThanOrEqual(lastIndex);
  });

  it('with checkQuorum the isolated leader steps down and fails its pending reads', () => {
    const sim = new Simulator({ seed: 12, config: { checkQuorum: true } });
    expect(sim.elect('n1')).toBe(true);
    sim.stabilize();
    sim.isolate('n1');
    sim.readIndex('n1', 6);
    sim.run(20);
    expect(sim.node('n1').status().role).toBe('follower');
    expect(sim.readStatesFailed.get('n1')).toEqual([{ ctx: 6 }]);
    expect(sim.readStates.get('n1')).toEqual([]);
  });

  it('bounds pending reads with readIndexPendingMax', () => {
    const sim = new Simulator({ seed: 1, config: { readIndexPendingMax: 2 } });
    expect(sim.elect('n1')).toBe(true);
    sim.stabilize();
    const n1 = sim.node('n1');
    n1.readIndex(1);
    n1.readIndex(2);
    expect(() => n1.readIndex(3)).toThrow(ReadIndexPendingFullError);
    sim.stabilize();
    expect(ctxs(sim, 'n1')).toEqual([1, 2]);
    n1.readIndex(3);
  });
});

describe('lease reads (thesis §6.4.1, readLeaseTicks)', () => {
  const LEASE = { checkQuorum: true, preVote: true, readLeaseTicks: 8 }; // electionTicks 10, heartbeatTicks 2

  /** A 3-node cluster with lease reads that elected a leader on its own (nodes refuse votes for their first electionTicks). */
  function leaseCluster(seed: number): { sim: Simulator; l: NodeId } {
    const sim = new Simulator({ seed, config: LEASE });
    for (let i = 0; i < 60 && !sim.leader(); i++) sim.run(1);
    const l = sim.leader();
    if (!l) throw new Error('no leader');
    sim.propose(l, 'x');
    sim.stabilize();
    sim.run(2); // a heartbeat: a read round the followers acknowledge
    sim.stabilize();
    return { sim, l };
  }

  it('a leader whose quorum acknowledged a recent round answers a read at once, with no heartbeat round, at its commit index', () => {
    const { sim, l } = leaseCluster(1);
    sim.recordSent = true;
    sim.readIndex(l, 1);
    expect(sim.readStates.get(l)).toEqual([{ index: sim.node(l).status().commit, ctx: 1 }]);
    expect(sim.sent.filter((m) => m.type === MessageType.Heartbeat)).toEqual([]);
  });

  it('a leader cut off from its followers stops answering from its lease before any other node can be elected (the test can fail)', () => {
    const { sim, l } = leaseCluster(2);
    sim.isolate(l);
    const term = sim.node(l).status().term;
    let leaseReads = 0;
    for (let tick = 0; tick < 40; tick++) {
      const before = sim.readStates.get(l)!.length;
      if (sim.node(l).status().role === 'leader' && sim.node(l).status().readIndexPending === 0) sim.readIndex(l, 100 + tick);
      const answeredAtOnce = sim.readStates.get(l)!.length > before;
      if (answeredAtOnce) leaseReads++;
      // While the old leader answers from its lease, no node may have become leader of a later term.
      const others = sim.liveNodes().filter((n) => n.status().id !== l && n.status().role === 'leader' && n.status().term > term);
      if (answeredAtOnce) expect(others).toEqual([]);
      sim.run(1);
    }
    expect(leaseReads).toBeGreaterThan(0); // the lease did serve reads after the partition
    expect(leaseReads).toBeLessThan(LEASE.readLeaseTicks + 1);
    expect(sim.leader()).not.toBe(l); // the others elected a new leader
  });

  it('a leadership transfer forfeits the lease for the rest of the term: reads need a round again', () => {
    const { sim, l } = leaseCluster(3);
    const to = ['n1', 'n2', 'n3'].find((x) => x !== l)!;
    sim.dropIf((m) => m.type === MessageType.TimeoutNow); // the transfer never completes
    sim.transferLeadership(l, to);
    sim.readIndex(l, 9);
    expect(sim.readStates.get(l)).toEqual([]);
    expect(sim.node(l).status().readIndexPending).toBe(1);
  });

  it('a node refuses votes for its first electionTicks after start (it may have acknowledged a round before a restart)', () => {
    const sim = new Simulator({ seed: 4, config: LEASE });
    expect(sim.elect('n1')).toBe(false);
    for (let i = 0; i < 60 && !sim.leader(); i++) sim.run(1);
    expect(sim.leader()).not.toBeNull();
  });

  it('refuses a lease without checkQuorum or not below electionTicks', () => {
    expect(() => new Simulator({ seed: 1, config: { readLeaseTicks: 8 } })).toThrow(/ReadLeaseInvalid/);
    expect(() => new Simulator({ seed: 1, config: { checkQuorum: true, readLeaseTicks: 10 } })).toThrow(/ReadLeaseInvalid/);
    expect(() => new Simulator({ seed: 1, config: { checkQuorum: true, readLeaseTicks: 1.5 } })).toThrow(/ReadLeaseInvalid/);
  });
});
