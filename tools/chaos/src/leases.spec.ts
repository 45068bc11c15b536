import { LeaseHistory } from './leases';

/** The chaos lease workload's history, judged by libs/checker's checkLeases in bounded parts (no cluster: times are given). */
describe('LeaseHistory (chaos --leases)', () => {
  const write = (n: number, ackMs: number, ttlMs = 500) => ({ key: `ttl/${n}`, value: `v${n}`, invokeMs: ackMs - 5, ackMs, ttlMs });

  it('a TTL key read back after ack + TTL must miss: one that returns its value is a violation naming its revision; reads before the bound are not counted', () => {
    const h = new LeaseHistory();
    h.ttlWritten(write(1, 1000), 41);
    h.ttlWritten(write(2, 1000), 42);
    expect(h.ttlExpired(1400)).toEqual([]);
    const [one, two] = h.ttlExpired(1600);
    h.ttlRead(one, { key: 'ttl/1', startMs: 1400, endMs: 1410, value: 'v1' }); // before its bound: fine
    h.ttlRead(one, { key: 'ttl/1', startMs: 1600, endMs: 1610, value: null });
    h.ttlRead(two, { key: 'ttl/2', startMs: 1650, endMs: 1660, value: 'v2' });
    const r = h.finish(null);
    expect(r).toMatchObject({ ttlWrites: 2, ttlReadsAfterExpiry: 2 });
    expect(r.violations).toHaveLength(1);
    expect(r.violations[0]).toMatch(/^leases: ttl\/2 .*returned "v2" .*150 ms after it expired.*revision 42/);
  });

  it('remembers at most ttlKeysMax TTL keys: the oldest is checked as it is dropped, so its violation is still found', () => {
    const h = new LeaseHistory({ ttlKeysMax: 2, keptReadsCheckAt: 1000 });
    h.ttlWritten(write(1, 1000), 1);
    h.ttlRead(h.ttlExpired(2000)[0], { key: 'ttl/1', startMs: 2000, endMs: 2001, value: 'v1' });
    h.ttlWritten(write(2, 2000), 2);
    h.ttlWritten(write(3, 2000), 3);
    expect(h.result.violations).toHaveLength(1); // ttl/1 left the remembered keys and was checked then
    expect(h.ttlExpired(9000).map((t) => t.write.key)).toEqual(['ttl/2', 'ttl/3']);
  });

  it('a kept lease: a key missing or a NOT_FOUND while an acknowledged renewal covers it is a violation; after its coverage ends, a lost lease (counted)', () => {
    const h = new LeaseHistory();
    const l = h.keptGranted(7, 3000, 1, 1000);
    h.keptRenewed(l, 1500);
    h.keptRead(l, { key: 'lease/1/0', startMs: 4000, endMs: 4400, value: null }, true); // covered until 4500: violation
    h.keptRead(l, { key: 'lease/1/1', startMs: 4400, endMs: 4600, value: null }, true); // coverage over: lost legitimately
    expect(h.keptNotFound(l, 4700)).toBe(4500);
    const m = h.keptGranted(8, 3000, 2, 5000);
    expect(h.keptNotFound(m, 6000)).toBe(8000); // NOT_FOUND 2 s into its TTL: a violation
    const r = h.finish(null);
    expect(r).toMatchObject({ keptReads: 2, keptReadsCovered: 1, renewals: 1, leasesLost: 1 });
    expect(r.violations).toEqual([expect.stringMatching(/^leases: lease\/1\/0 of lease 7 missing from a read that ended at 4400, before 4500/), expect.stringMatching(/^leases: lease 8 not found at 6000, before 8000/)]);
  });

  it('a kept lease\'s history is checked and dropped every keptReadsCheckAt reads (its latest renewal kept), and a read that ends after the lease was replaced is checked at once', () => {
    const h = new LeaseHistory({ ttlKeysMax: 10, keptReadsCheckAt: 3 });
    const l = h.keptGranted(7, 3000, 1, 0);
    for (let i = 0; i < 3; i++) h.keptRenewed(l, 100 * i);
    for (let i = 0; i < 3; i++) h.keptRead(l, { key: 'lease/1/0', startMs: 10 * i, endMs: 10 * i + 5, value: 'g1' }, true);
    expect({ reads: l.reads.length, acknowledged: l.acknowledgedSentMs }).toEqual({ reads: 0, acknowledged: [200] });
    expect(h.result.keptReadsCovered).toBe(3);
    // Still covered by the renewal kept (200 + 3000): a miss at 3100 is a violation, checked at once (the lease was replaced meanwhile).
    h.keptRead(l, { key: 'lease/1/2', startMs: 3000, endMs: 3100, value: null }, false);
    expect(h.result.violations).toEqual([expect.stringMatching(/lease\/1\/2 of lease 7 missing from a read that ended at 3100, before 3200/)]);
  });
});
