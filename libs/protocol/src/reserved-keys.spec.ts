import { RESERVED_KEY_PREFIX, isReservedKey } from './constants';
import { decodeReservedRecord, encodeKeyMeta, keyMetaRecordKey, leaseRecordKey, reservedRecords, type ReservedRangePage } from './reserved-keys';

describe('reserved keyspace records (docs/leases.md "Storage")', () => {
  it('lease and key-metadata records round-trip; their keys are reserved; other shapes decode to null', () => {
    const lease = leaseRecordKey(2 ** 53 - 1);
    expect(isReservedKey(lease)).toBe(true);
    expect(lease.toString('hex')).toBe('ffffffffffffffff' + '4c' + '001fffffffffffff');
    expect(decodeReservedRecord(lease, Buffer.from('00000000000007d0', 'hex'))).toEqual({ kind: 'lease', leaseId: 2 ** 53 - 1, ttlMs: 2000 });
    const key = Buffer.from([0, 0xff, 0x80]);
    const meta = keyMetaRecordKey(key);
    expect(isReservedKey(meta)).toBe(true);
    expect(encodeKeyMeta({ leaseId: 7, expiresAtMs: 1234 }).toString('hex')).toBe('0000000000000007' + '00000000000004d2');
    expect(decodeReservedRecord(meta, encodeKeyMeta({ leaseId: 7, expiresAtMs: 1234 }))).toEqual({ kind: 'key', key, meta: { leaseId: 7, expiresAtMs: 1234 } });
    // Wrong value or key lengths, another tag, the bare prefix.
    expect(decodeReservedRecord(lease, Buffer.alloc(16))).toBeNull();
    expect(decodeReservedRecord(Buffer.concat([lease, Buffer.from([0])]), Buffer.alloc(8))).toBeNull();
    expect(decodeReservedRecord(meta, Buffer.alloc(8))).toBeNull();
    expect(decodeReservedRecord(Buffer.concat([RESERVED_KEY_PREFIX, Buffer.from('X')]), Buffer.alloc(16))).toBeNull();
    expect(decodeReservedRecord(RESERVED_KEY_PREFIX, Buffer.alloc(8))).toBeNull();
  });

  it('reservedRecords pages from the prefix on, each page after the last key of the one before, and skips what does not decode', () => {
    const store = [
      { key: leaseRecordKey(1), value: Buffer.from('0000000000000064', 'hex'), revision: 3 },
      { key: Buffer.concat([RESERVED_KEY_PREFIX, Buffer.from('X')]), value: Buffer.alloc(1), revision: 4 },
      { key: keyMetaRecordKey(Buffer.from('a')), value: encodeKeyMeta({ leaseId: 1, expiresAtMs: 0 }), revision: 5 },
      { key: keyMetaRecordKey(Buffer.from('b')), value: encodeKeyMeta({ leaseId: 0, expiresAtMs: 9 }), revision: 6 },
    ].sort((x, y) => Buffer.compare(x.key, y.key));
    const starts: Buffer[] = [];
    const range = (q: { start: Uint8Array; limit: number }): ReservedRangePage => {
      starts.push(Buffer.from(q.start));
      const from = store.filter((it) => Buffer.compare(it.key, q.start) >= 0);
      return { items: from.slice(0, q.limit), more: from.length > q.limit };
    };
    const got = [...reservedRecords(range, 2)];
    expect(got.map((g) => g.revision)).toEqual([5, 6, 3]);
    expect(got.map((g) => g.record.kind)).toEqual(['key', 'key', 'lease']);
    expect(starts[0].equals(RESERVED_KEY_PREFIX)).toBe(true);
    expect(starts[1].equals(Buffer.concat([store[1].key, Buffer.from([0])]))).toBe(true);
    expect(starts).toHaveLength(2);
  });
});
