import fc from 'fast-check';
import { mulberry32, type NodeId } from './index';
import { Simulator } from './testing';

/**
 * Seeded chaos: random drops, duplicates, reordering, partitions and crash-restarts (keeping only
 * persisted state), with the SafetyChecker observing every Ready (election safety, leader
 * completeness, state machine safety) and periodic Log Matching checks. After the faults stop,
 * the cluster must converge and commit a fresh proposal everywhere.
 */
function chaos(seed: number, size: number, ticks: number): void {
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const sim = new Simulator({ ids, seed, config: { entriesPerMsgMax: 4, inflightMsgsMax: 4, checkQuorum: seed % 3 === 0 } });
  const rng = mulberry32(seed ^ 0x9e3779b9);
  const pick = (): NodeId => ids[Math.floor(rng() * ids.length)];
  let n = 0;
  for (let t = 0; t < ticks; t++) {
    const r = rng();
    if (r < 0.02) sim.dropRate = rng() * 0.5;
    else if (r < 0.03) sim.duplicateRate = rng() * 0.3;
    else if (r < 0.04) sim.reorder = !sim.reorder;
    else if (r < 0.05) sim.partition(ids.filter(() => rng() < 0.5));
    else if (r < 0.06) sim.heal();
    else if (r < 0.075) {
      const id = pick();
      if (!sim.isUp(id)) sim.restart(id);
      else if (rng() < 0.5) sim.crash(id);
      else sim.crashAfterNextPersist(id);
    }
    sim.tick();
    sim.deliver();
    const l = sim.leader();
    if (l && rng() < 0.3) sim.propose(l, `s${seed}-${n++}`);
    if (t % 25 === 0) sim.checkLogMatching();
  }
  sim.calm();
  sim.run(80);
  const l = sim.leader();
  if (!l) throw new Error(`seed ${seed}: no leader after healing`);
  const { lastIndex } = sim.propose(l, 'final');
  sim.stabilize();
  sim.checkLogMatching();
  for (const id of ids) {
    const st = sim.node(id).status();
    if (st.commit !== lastIndex || st.lastIndex !== lastIndex) throw new Error(`seed ${seed}: ${id} commit ${st.commit} last ${st.lastIndex}, want ${lastIndex}`);
  }
}

describe('chaos (seeded)', () => {
  it('safety holds and the cluster converges over 100 seeds of drops, duplicates, reordering, partitions and crash-restarts', () => {
    for (let seed = 1; seed <= 100; seed++) chaos(seed, seed % 2 ? 3 : 5, 400);
  });

  it('fast-check: random seeds and cluster sizes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.constantFrom(1, 2, 3, 4, 5), (seed, size) => chaos(seed, size, 300)),
      { numRuns: 50, seed: 42 },
    );
  });
});
