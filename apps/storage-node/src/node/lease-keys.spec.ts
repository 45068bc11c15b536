import { Status, decodeLeaseKeysReply } from '@cairn/protocol';
import { LeaseIndex } from './lease-index';
import { leaseKeysReply } from './lease-keys';

describe('leaseKeysReply (LEASE_TTL with KEYS)', () => {
  const leases = new LeaseIndex();
  leases.grant(7, 10_000, 1);
  for (const [key, expiresAtMs] of [['b', 0], ['a', 0], ['c', 0], ['x', 500]] as const) leases.setMeta(Buffer.from(key), { leaseId: 7, expiresAtMs });
  leases.handedToEngine(); // the engine has these writes, as on a node serving reads
  const ask = (keysMax: number, bytesMax: number, payload = 1 << 20, leaseId = 7) => decodeLeaseKeysReply(leaseKeysReply(leases, { leaseId, minIndex: 0, keysMax, bytesMax }, 9, 1000, payload));
  const keys = (r: ReturnType<typeof ask>) => r.keys.map((k) => Buffer.from(k).toString());

  it('lists the keys in byte order, leaving out one past its own expiry', () => {
    const r = ask(10, 100);
    expect(r).toMatchObject({ status: Status.Ok, appliedIndex: 9, more: false });
    expect(keys(r)).toEqual(['a', 'b', 'c']);
  });

  it('cuts at keysMax, bytesMax and the payload bound (the first key always goes), saying more', () => {
    expect(keys(ask(2, 100))).toEqual(['a', 'b']);
    expect(ask(2, 100).more).toBe(true);
    expect(keys(ask(10, 0))).toEqual(['a']);
    expect(keys(ask(10, 100, 0))).toEqual(['a']);
  });

  it('NOT_FOUND for a lease not granted here', () => {
    expect(ask(10, 100, 1 << 20, 8)).toMatchObject({ status: Status.NotFound, keys: [] });
  });
});
