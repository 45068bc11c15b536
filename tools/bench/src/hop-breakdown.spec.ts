import { breakdown, parseHops, PUT_CHAIN, type HopMark } from './hop-breakdown';

/** One put window: every hop of PUT_CHAIN 10 µs after the previous, from `startUs`. */
function putWindow(startUs: number, stepUs = 10): HopMark[] {
  return PUT_CHAIN.map((hop, k) => ({ us: startUs + k * stepUs, hop }));
}

describe('hop breakdown', () => {
  it('parses `µs<TAB>role:hop` lines and skips # lines', () => {
    expect(parseHops('10.5\tgateway:tlv.data\n# dropped 0\n12\tconsensus:leader.loop\n')).toEqual([
      { us: 10.5, hop: 'gateway:tlv.data' },
      { us: 12, hop: 'consensus:leader.loop' },
    ]);
  });

  it('times each hop of a put since the previous one, over windows from tlv.data to tlv.answer', () => {
    const marks = [...putWindow(1000), ...putWindow(5000, 20)];
    const [put] = breakdown(marks);
    expect(put.op).toBe('put');
    expect(put.windows).toBe(2);
    expect(put.rows.map((r) => r.hop)).toEqual(PUT_CHAIN.slice(1));
    // Medians of {10, 20}: the upper one (floor(0.5 * 2) = 1).
    expect(put.rows.every((r) => r.p50Us === 20 && r.n === 2)).toBe(true);
    expect(put.totalP50Us).toBe((PUT_CHAIN.length - 1) * 20);
  });

  it('takes the first mark of a hop after the previous hop, not an earlier unrelated one', () => {
    // A heartbeat's loop turn before the proposal arrived must not count as the leader's loop for it.
    const marks = [...putWindow(1000), { us: 1005, hop: 'consensus:leader.loop' }];
    const [put] = breakdown(marks);
    expect(put.rows.find((r) => r.hop === 'consensus:leader.loop')?.p50Us).toBe(10);
  });

  it('tells puts from gets by the request the gateway sent, and leaves out hops a window lacks', () => {
    const get: HopMark[] = [
      { us: 0, hop: 'gateway:tlv.data' },
      { us: 5, hop: 'gateway:req.readindex' },
      { us: 50, hop: 'gateway:reply.readindex' },
      { us: 60, hop: 'gateway:tlv.answer' },
    ];
    const out = breakdown(get);
    expect(out.map((b) => b.op)).toEqual(['get']);
    expect(out[0].rows.find((r) => r.hop === 'gateway:reply.readindex')).toEqual({ hop: 'gateway:reply.readindex', p50Us: 45, p90Us: 45, n: 1 });
    expect(out[0].rows.find((r) => r.hop === 'storage:recv.read')?.n).toBe(0);
  });

  it('counts gets by where their storage reads left: beside the ReadIndex round, after it, or both', () => {
    const get = (t: number, reads: number[]): HopMark[] => [
      { us: t, hop: 'gateway:tlv.data' },
      { us: t + 1, hop: 'gateway:req.readindex' },
      { us: t + 50, hop: 'gateway:reply.readindex' },
      ...reads.map((at) => ({ us: t + at, hop: 'gateway:req.read' })),
      { us: t + 90, hop: 'gateway:tlv.answer' },
    ];
    const [out] = breakdown([...get(0, [1]), ...get(100, [1]), ...get(200, [60]), ...get(300, [1, 60])]);
    expect(out.reads).toEqual({ beside: 2, after: 1, again: 1 });
  });
});
