import { LeadershipTransferInProgressError, MessageType, NotLeaderError, type RaftConfig } from './index';
import { Simulator } from './testing';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('leadership transfer (thesis §3.10)', () => {
  it.each<[string, Partial<RaftConfig>]>([
    ['plain', {}],
    ['preVote + checkQuorum (transfer skips pre-vote and the lease)', { preVote: true, checkQuorum: true }],
  ])('%s: a lagging target is caught up and takes over with no election timeout elapsed and no committed entry lost', (_name, config) => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3'], seed: 6, config });
    expect(sim.elect('n1')).toBe(true);
    sim.stabilize();
    // n3 misses the last writes: it must be brought up to date before TimeoutNow.
    sim.dropIf((m) => m.to === 'n3' && m.type === MessageType.Append);
    for (let i = 0; i < 5; i++) sim.propose('n1', `w${i}`);
    sim.stabilize();
    const before = sim.node('n1').status();
    expect(sim.node('n3').status().lastIndex).toBeLessThan(before.lastIndex);
    const committed = sim.node('n1').entries(1, before.commit);
    sim.dropIf(null);
    sim.recordSent = true;

    sim.transferLeadership('n1', 'n3');
    expect(sim.node('n1').status().leadTransferee).toBe('n3');
    expect(() => sim.node('n1').propose([enc('refused')])).toThrow(LeadershipTransferInProgressError);
    try {
      sim.node('n1').propose([enc('refused')]);
    } catch (e) {
      expect(e).toBeInstanceOf(NotLeaderError); // drivers that answer NOT_LEADER keep working
      expect((e as NotLeaderError).leaderId).toBe('n3');
    }
    sim.stabilize(); // messages only: not a single tick

    expect(sim.leader()).toBe('n3');
    const st = sim.node('n3').status();
    expect(st.term).toBe(before.term + 1);
    const timeoutNow = sim.sent.filter((m) => m.type === MessageType.TimeoutNow);
    expect(timeoutNow.map((m) => [m.from, m.to])).toEqual([['n1', 'n3']]);
    expect(sim.sent.some((m) => m.type === MessageType.PreVote)).toBe(false);
    expect(sim.node('n3').entries(1, before.commit)).toEqual(committed);
    expect(st.commit).toBeGreaterThan(before.commit); // its own Noop committed on top
    expect(sim.node('n1').status()).toMatchObject({ role: 'follower', leaderId: 'n3', leadTransferee: null });
    const { lastIndex } = sim.propose('n3', 'after');
    sim.stabilize();
    for (const id of sim.ids) expect(sim.node(id).status().commit).toBe(lastIndex);
    sim.checkLogMatching();
  });

  it('a lost TimeoutNow is repeated on the next heartbeat response of the up-to-date target', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3'], seed: 6 });
    expect(sim.elect('n1')).toBe(true);
    sim.stabilize();
    let dropped = 0;
    sim.dropIf((m) => m.type === MessageType.TimeoutNow && dropped++ === 0);
    sim.transferLeadership('n1', 'n2');
    sim.stabilize();
    expect(dropped).toBe(1);
    expect(sim.leader()).toBe('n1');
    sim.run(2); // one heartbeat interval, far below the election timeout
    sim.stabilize();
    expect(sim.leader()).toBe('n2');
  });

  it('aborts after an election timeout if the target does not take over, then accepts proposals again', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3'], seed: 6 });
    expect(sim.elect('n1')).toBe(true);
    sim.stabilize();
    sim.crash('n3');
    sim.transferLeadership('n1', 'n3');
    for (let t = 0; t < 9; t++) sim.tick();
    expect(sim.node('n1').status().leadTransferee).toBe('n3');
    expect(() => sim.node('n1').propose([enc('x')])).toThrow(LeadershipTransferInProgressError);
    sim.tick(); // electionTicks = 10
    expect(sim.node('n1').status()).toMatchObject({ role: 'leader', leadTransferee: null });
    sim.propose('n1', 'x');
  });

  it('refuses on a follower and for a non-voter; transferring to itself is a no-op', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3'], seed: 6 });
    expect(sim.elect('n1')).toBe(true);
    sim.stabilize();
    expect(() => sim.node('n2').transferLeadership('n3')).toThrow(NotLeaderError);
    expect(() => sim.node('n1').transferLeadership('n9')).toThrow(/TransferTargetUnknown/);
    sim.transferLeadership('n1', 'n1');
    expect(sim.node('n1').status().leadTransferee).toBeNull();
  });

  it('pending reads fail when the transfer deposes the leader', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3'], seed: 6 });
    expect(sim.elect('n1')).toBe(true);
    sim.stabilize();
    sim.dropIf((m) => m.type === MessageType.HeartbeatResponse);
    sim.node('n1').readIndex(new Uint8Array([1, 2]));
    sim.transferLeadership('n1', 'n2');
    sim.stabilize();
    expect(sim.leader()).toBe('n2');
    expect(sim.readStates.get('n1')).toEqual([]);
    expect(sim.readStatesFailed.get('n1')).toEqual([{ ctx: new Uint8Array([1, 2]) }]);
  });
});
