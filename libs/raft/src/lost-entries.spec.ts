import { Simulator } from './testing';

describe('a follower whose disk lost acknowledged entries', () => {
  it('is repaired by the same leader (no leader change needed)', () => {
    const sim = new Simulator({ seed: 41 });
    expect(sim.elect('n1')).toBe(true);
    for (let i = 0; i < 10; i++) sim.propose('n1', `p${i}`);
    sim.stabilize();
    const last = sim.node('n1').status().lastIndex;
    expect(sim.node('n1').status().progress!.n3.match).toBe(last);
    // A torn tail that cuts into fsynced, acknowledged records (what the chaos tool's `torn-tail` does).
    sim.crash('n3');
    const store = sim.stores.get('n3')!;
    store.entries.length = 4;
    store.hardState = { ...store.hardState, commit: 4 };
    sim.applied.get('n3')!.length = 4;
    sim.restart('n3');
    sim.propose('n1', 'after');
    sim.run(40); // heartbeats: the probe at the old match is rejected, and the leader backs off
    expect(sim.node('n3').status().lastIndex).toBe(last + 1);
    expect(sim.node('n1').status().progress!.n3.match).toBe(last + 1);
    sim.checkLogMatching();
  });
});
