import { SimNetwork } from './network';
import { SimScheduler } from './scheduler';
import { isTransportError } from '../transport';

function runAll(s: SimScheduler): void {
  while (s.step());
}

describe('SimNetwork', () => {
  it('delivers publishes in order per link, to every subscriber and one queue member, and replies to requests', async () => {
    const s = new SimScheduler(7);
    const net = new SimNetwork(s, { latencyMsMin: 1, latencyMsMax: 20 });
    const a = s.incarnation('a');
    const b = s.incarnation('b');
    const c = s.incarnation('c');
    const got: string[] = [];
    net.connect(b).subscribe('x', (m) => got.push(`b:${m.data[0]}`));
    net.connect(b).subscribe('q', (m) => got.push(`bq:${m.data[0]}`), { queue: 'g' });
    net.connect(c).subscribe('q', (m) => got.push(`cq:${m.data[0]}`), { queue: 'g' });
    net.connect(c).subscribe('echo', (m) => m.respond(m.data));
    const ta = net.connect(a);
    for (let i = 0; i < 20; i++) ta.publish('x', Uint8Array.of(i));
    ta.publish('q', Uint8Array.of(99));
    const reply = ta.request('echo', Uint8Array.of(5), { timeoutMs: 1000 });
    runAll(s);
    expect((await reply).data).toEqual(Uint8Array.of(5));
    expect(got.filter((g) => g.startsWith('b:'))).toEqual(Array.from({ length: 20 }, (_, i) => `b:${i}`));
    expect(got.filter((g) => g.includes('q:99'))).toHaveLength(1);
  });

  it('refuses a payload over max_payload, reports no responders, times out across a partition, and forgets a killed process', async () => {
    const s = new SimScheduler(1);
    const net = new SimNetwork(s, { maxPayloadBytes: 100 });
    const a = s.incarnation('a');
    const b = s.incarnation('b');
    const ta = net.connect(a);
    expect(net.firstPayloadRefused).toBeNull();
    expect(() => ta.publish('x', new Uint8Array(101))).toThrow(expect.objectContaining({ code: 'MAX_PAYLOAD_EXCEEDED' }));
    expect(net.firstPayloadRefused).toEqual({ host: 'a', subject: 'x', bytes: 101 });
    const none = ta.request('nobody', Uint8Array.of(1), { timeoutMs: 1000 }).catch((e: unknown) => e);
    let served = 0;
    net.connect(b).subscribe('svc', (m) => {
      served++;
      m.respond(Uint8Array.of(1));
    });
    net.partition(['a'], ['b']);
    const cut = ta.request('svc', Uint8Array.of(1), { timeoutMs: 500 }).catch((e: unknown) => e);
    runAll(s);
    expect(isTransportError(await none, 'NO_RESPONDERS')).toBe(true);
    expect(isTransportError(await cut, 'TIMEOUT')).toBe(true);
    net.heal();
    b.kill();
    const servedBefore = served;
    ta.publish('svc', Uint8Array.of(1));
    const afterKill = ta.request('svc', Uint8Array.of(1), { timeoutMs: 500 }).catch((e: unknown) => e);
    runAll(s);
    expect(served).toBe(servedBefore);
    expect(isTransportError(await afterKill, 'NO_RESPONDERS')).toBe(true);
  });

  it('replays the same run for the same seed, under loss, duplication and reordering', () => {
    const trace = (seed: number): string => {
      const s = new SimScheduler(seed);
      const net = new SimNetwork(s, { latencyMsMin: 1, latencyMsMax: 30, dropRate: 0.2, duplicateRate: 0.2, reorderRate: 0.3 });
      const a = s.incarnation('a');
      const b = s.incarnation('b');
      const out: string[] = [];
      net.connect(b).subscribe('x', (m) => out.push(`${s.nowMs}:${m.data[0]}`));
      const ta = net.connect(a);
      for (let i = 0; i < 50; i++) a.clock.setTimeout(() => ta.publish('x', Uint8Array.of(i)), i);
      runAll(s);
      return out.join(',');
    };
    expect(trace(3)).toBe(trace(3));
    expect(trace(3)).not.toBe(trace(4));
  });
});
