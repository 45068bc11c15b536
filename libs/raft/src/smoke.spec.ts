import { Simulator } from './index';

describe('smoke', () => {
  it('elects and replicates on 3 nodes', () => {
    const sim = new Simulator({ seed: 7 });
    sim.run(40);
    const l = sim.leader();
    expect(l).not.toBeNull();
    sim.propose(l!, 'a', 'b');
    sim.stabilize();
    for (const id of sim.ids) expect(sim.applied.get(id)!.map((e) => e.index)).toEqual([1, 2, 3]);
  });
});
