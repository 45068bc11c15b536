import { MessageType } from './index';
import { Simulator, newTestNode } from './testing';

/** RaftNode.ticksUntilDue: the ticks before it only count, so a driver may batch them (apps/consensus Replica). */
describe('ticksUntilDue', () => {
  it('a follower: its randomized election timeout, counting down; the ticks before it make no Ready, the due one campaigns', () => {
    const n = newTestNode('a', ['a', 'b', 'c'], { random: () => 0.5 }); // timeout 15 ticks
    expect(n.ticksUntilDue()).toBe(15);
    for (let t = 0; t < 14; t++) {
      n.tick();
      expect(n.hasReady()).toBe(false);
    }
    expect(n.ticksUntilDue()).toBe(1);
    n.tick();
    expect(n.status().role).toBe('candidate');
    expect(n.hasReady()).toBe(true);
  });

  it('a leader: its next heartbeat; the ticks before it make no Ready, the due one sends heartbeats', () => {
    const sim = new Simulator({ seed: 7, config: { heartbeatTicks: 5, checkQuorum: true } });
    expect(sim.elect('n1')).toBe(true);
    const n = sim.node('n1');
    const due = n.ticksUntilDue();
    expect(due).toBeGreaterThanOrEqual(1);
    expect(due).toBeLessThanOrEqual(5);
    for (let t = 1; t < due; t++) {
      n.tick();
      expect(n.hasReady()).toBe(false);
    }
    n.tick();
    expect(n.hasReady()).toBe(true);
    expect(n.ready().messages.map((m) => m.type)).toContain(MessageType.Heartbeat);
  });

  it('a node outside the voters never campaigns: Infinity', () => {
    expect(newTestNode('z', ['a', 'b', 'c']).ticksUntilDue()).toBe(Infinity);
  });

  it('under faults (drops, delays, reordering, check quorum, pre-vote, lease reads, transfers), no tick before the due one makes a Ready', () => {
    for (const seed of [1, 2]) {
      const sim = new Simulator({ seed, ids: ['n1', 'n2', 'n3', 'n4', 'n5'], config: { heartbeatTicks: 3, checkQuorum: true, preVote: true, readLeaseTicks: 5 } });
      sim.dropRate = 0.2;
      sim.delayRate = 0.2;
      sim.reorder = true;
      let checked = 0;
      for (let round = 0; round < 150; round++) {
        for (const id of sim.ids) {
          if (!sim.isUp(id)) continue;
          const n = sim.node(id);
          const due = n.ticksUntilDue();
          n.tick();
          if (due > 1) {
            expect(n.hasReady()).toBe(false);
            checked++;
          }
          sim.processReady(id);
        }
        if (round % 50 === 10) {
          const l = sim.leader();
          if (l && sim.node(l).status().role === 'leader') sim.transferLeadership(l, sim.ids.find((x) => x !== l)!);
        }
        const leader = sim.leader();
        if (round % 7 === 0 && leader) sim.readIndex(leader, round);
        sim.deliver();
      }
      expect(checked).toBeGreaterThan(300);
      sim.checkLogMatching();
    }
  });
});
