import { EntryType, MessageType, type Message } from './index';
import { Simulator } from './testing';

const appendsTo = (msgs: Message[], to: string) => msgs.filter((m) => m.type === MessageType.Append && m.to === to);

describe('flow control (etcd Progress: probe / replicate)', () => {
  it('the pipelining window never exceeds inflightMsgsMax, and drains as acks arrive', () => {
    const sim = new Simulator({ seed: 31, config: { inflightMsgsMax: 4, entriesPerMsgMax: 2 } });
    expect(sim.elect('n1')).toBe(true);
    sim.stabilize();
    expect(sim.node('n1').status().progress!.n2.state).toBe('replicate');
    for (let i = 0; i < 100; i++) {
      sim.propose('n1', `p${i}`);
      for (const to of ['n2', 'n3']) {
        expect(appendsTo(sim.inFlight(), to).length).toBeLessThanOrEqual(4);
        expect(sim.node('n1').status().progress![to].inflight).toBeLessThanOrEqual(4);
      }
    }
    expect(appendsTo(sim.inFlight(), 'n2')).toHaveLength(4);
    expect(sim.node('n1').status().progress!.n2).toMatchObject({ inflight: 4, match: 1, next: 6 }); // one entry per Ready, so one per Append
    expect(sim.node('n1').status().progress!.n2).toMatchObject({ state: 'replicate' });
    sim.stabilize();
    for (const id of sim.ids) expect(sim.node(id).status().commit).toBe(101);
  });

  it('probe state keeps one Append in flight; a heartbeat response re-sends it after a loss', () => {
    const sim = new Simulator({ seed: 32 });
    sim.recordSent = true;
    sim.dropIf((m) => m.type === MessageType.Append && m.to === 'n3');
    expect(sim.elect('n1')).toBe(true);
    const pr = () => sim.node('n1').status().progress!.n3;
    expect(pr()).toMatchObject({ state: 'probe', inflight: 1, match: 0 });
    sim.propose('n1', 'a', 'b');
    expect(appendsTo(sim.sent, 'n3')).toHaveLength(1); // paused: no second probe
    sim.dropIf(null);
    sim.node('n1').tick();
    sim.node('n1').tick(); // heartbeat
    sim.stabilize();
    expect(pr()).toMatchObject({ state: 'replicate', match: 3 });
    expect(sim.node('n3').status().commit).toBe(3);
  });

  it('a lost Append in replicate state is recovered (reject → probe at hint → replicate)', () => {
    const sim = new Simulator({ seed: 33 });
    expect(sim.elect('n1')).toBe(true);
    sim.stabilize();
    let dropped = 0;
    sim.dropIf((m) => m.type === MessageType.Append && m.to === 'n2' && m.entries.length > 0 && dropped++ === 0);
    sim.propose('n1', 'lost');
    sim.deliver();
    sim.dropIf(null);
    sim.propose('n1', 'next'); // n2 rejects: prev entry 2 missing
    sim.stabilize();
    expect(sim.node('n2').entries().map((e) => e.index)).toEqual([1, 2, 3]);
    expect(sim.node('n1').status().progress!.n2).toMatchObject({ state: 'replicate', match: 3 });
  });

  it('the last Append lost with nothing after it: heartbeat responses trigger the retransmission', () => {
    const sim = new Simulator({ seed: 34, config: { inflightMsgsMax: 2, entriesPerMsgMax: 1 } });
    expect(sim.elect('n1')).toBe(true);
    sim.stabilize();
    sim.dropIf((m) => m.type === MessageType.Append && m.to === 'n2');
    sim.propose('n1', 'a');
    sim.propose('n1', 'b');
    sim.propose('n1', 'c'); // window of 2 full: 'c' waits
    sim.stabilize();
    expect(sim.node('n1').status().progress!.n2).toMatchObject({ inflight: 2, match: 1 });
    sim.dropIf(null);
    for (let t = 0; t < 6; t++) {
      sim.tick(['n1']);
      sim.stabilize();
    }
    expect(sim.node('n2').status().lastIndex).toBe(4);
    expect(sim.node('n2').status().commit).toBe(4);
  });

  it('message loss: 30% drops for many ticks, then all logs converge and everything commits', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3', 'n4', 'n5'], seed: 35 });
    sim.dropRate = 0.3;
    let proposed = 0;
    for (let t = 0; t < 600; t++) {
      sim.tick();
      sim.deliver();
      const l = sim.leader();
      if (l && t % 3 === 0) {
        sim.propose(l, `v${proposed++}`);
      }
    }
    sim.dropRate = 0;
    sim.run(100);
    const l = sim.leader()!;
    sim.propose(l, 'final');
    sim.stabilize();
    const ref = sim.node(l).entries();
    for (const id of sim.ids) {
      expect(sim.node(id).entries()).toEqual(ref);
      expect(sim.node(id).status().commit).toBe(ref.length);
      expect(sim.applied.get(id)).toEqual(ref);
    }
    const survived = ref.filter((e) => e.type === EntryType.Normal).length;
    expect(survived).toBeGreaterThan(proposed / 2); // most proposals survive leader changes
    sim.checkLogMatching();
  });

  it('duplicated and reordered messages are harmless', () => {
    const sim = new Simulator({ ids: ['n1', 'n2', 'n3', 'n4', 'n5'], seed: 36, config: { entriesPerMsgMax: 3, inflightMsgsMax: 4 } });
    sim.duplicateRate = 0.3;
    sim.reorder = true;
    for (let t = 0; t < 400; t++) {
      sim.tick();
      sim.deliver();
      const l = sim.leader();
      if (l && t % 2 === 0) sim.propose(l, `d${t}`, `e${t}`);
      if (t % 50 === 0) sim.checkLogMatching();
    }
    sim.duplicateRate = 0;
    sim.reorder = false;
    sim.run(60);
    sim.stabilize();
    const l = sim.leader()!;
    for (const id of sim.ids) expect(sim.applied.get(id)).toEqual(sim.node(l).entries());
  });
});
