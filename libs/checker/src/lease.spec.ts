import { checkLeases, type KeptLease } from './lease';

describe('checkLeases: TTL keys', () => {
  const writes = [{ key: 't1', value: 'v1', invokeMs: 100, ackMs: 120, ttlMs: 300 }];

  it('a read started at or after ack + TTL must miss; one that returns the value is a violation', () => {
    const r = checkLeases({ writes, reads: [{ key: 't1', startMs: 420, endMs: 430, value: 'v1' }] });
    expect(r.ok).toBe(false);
    expect(r.ttlReadsAfterExpiry).toBe(1);
    expect(r.violations).toEqual([{ kind: 'expired-key-returned', key: 't1', message: 't1 (TTL 300 ms, written 100..120, expired by 420) returned "v1" to a read started at 420, 0 ms after it expired' }]);
  });

  it('allows the value before the bound (the server may stamp the expiry as late as the acknowledgement) and a miss after it', () => {
    const r = checkLeases({
      writes,
      reads: [
        { key: 't1', startMs: 419, endMs: 500, value: 'v1' },
        { key: 't1', startMs: 425, endMs: 430, value: null },
        { key: 'unknown', startMs: 900, endMs: 901, value: 'x' },
      ],
    });
    expect(r).toEqual({ ok: true, ttlReadsAfterExpiry: 1, keptReadsCovered: 0, violations: [] });
  });

  it('refuses a history that writes a TTL key twice', () => {
    expect(() => checkLeases({ writes: [...writes, ...writes], reads: [] })).toThrow(RangeError);
  });
});

describe('checkLeases: a kept-alive lease', () => {
  const lease = (over: Partial<KeptLease>): KeptLease => ({ leaseId: 7, ttlMs: 1000, acknowledgedSentMs: [0, 500], notFoundSentMs: [], reads: [], ...over });

  it('a key missing from a read that ended before the latest acknowledged send + TTL is a violation; after it, not', () => {
    const r = checkLeases({ writes: [], reads: [] }, [
      lease({
        reads: [
          { key: 'a', startMs: 1400, endMs: 1499, value: null },
          { key: 'a', startMs: 1450, endMs: 1500, value: null },
          { key: 'a', startMs: 100, endMs: 200, value: 'g1' },
        ],
      }),
    ]);
    expect(r.keptReadsCovered).toBe(2);
    expect(r.violations.map((v) => v.message)).toEqual(["a of lease 7 missing from a read that ended at 1499, before 1500 (an acknowledged renewal's send time + 1000 ms)"]);
  });

  it('a keep-alive answered not found while covered is a violation; once no renewal covers it, the lease was lost legitimately', () => {
    const r = checkLeases({ writes: [], reads: [] }, [lease({ notFoundSentMs: [1200, 1600] })]);
    expect(r.violations).toEqual([{ kind: 'kept-lease-lost', key: '', message: "lease 7 not found at 1200, before 1500 (an acknowledged renewal's send time + 1000 ms)" }]);
  });
});
