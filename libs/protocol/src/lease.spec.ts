import {
  DEFAULT_LIMITS,
  LEASE_LIST_PAGE_MAX,
  LeaseRequestKind,
  Opcode,
  ProtocolError,
  RequestDecoder,
  RequestFlags,
  Status,
  decodeLeaseGrantReply,
  decodeLeaseKeysReply,
  decodeLeaseKeysRequest,
  decodeLeaseStateReply,
  decodeLeaseStateRequest,
  encodeLeaseStateReply,
  encodeLeaseStateRequest,
  LEASE_STATE_REPLY_BASE_BYTES,
  encodeLeaseKeysReply,
  encodeLeaseKeysRequest,
  decodeLeaseGrantRequest,
  decodeLeaseListReply,
  decodeLeaseListRequest,
  decodeLeaseOperand,
  decodeLeaseReply,
  decodeLeaseRequest,
  decodeLeaseTtlReply,
  decodeLeaseTtlRequest,
  decodeLeaseU64,
  encodeLeaseGrantReply,
  encodeLeaseGrantRequest,
  encodeLeaseListReply,
  encodeLeaseListRequest,
  encodeLeaseOperand,
  encodeLeaseReply,
  encodeLeaseRequest,
  encodeLeaseTtlReply,
  encodeLeaseTtlRequest,
  encodeLeaseU64,
  encodeRequest,
} from './index';

describe('lease codecs (docs/protocol.md "Leases")', () => {
  it('round-trips every TLV value and payload', () => {
    expect(encodeLeaseGrantRequest({ ttlMs: 2000, leaseId: 0 }).toString('hex')).toBe('00000000000007d0' + '0000000000000000');
    expect(decodeLeaseGrantRequest(encodeLeaseGrantRequest({ ttlMs: 5, leaseId: 7 }))).toEqual({ ttlMs: 5, leaseId: 7 });
    expect(decodeLeaseGrantReply(encodeLeaseGrantReply({ leaseId: 2 ** 53 - 1, ttlMs: 1 }))).toEqual({ leaseId: 2 ** 53 - 1, ttlMs: 1 });
    expect(decodeLeaseU64(encodeLeaseU64(42))).toBe(42);
    expect(decodeLeaseTtlRequest(encodeLeaseTtlRequest({ leaseId: 3, keys: true }))).toEqual({ leaseId: 3, keys: true });
    const ttl = { ttlMs: 10, remainingMs: 4, keys: [Buffer.from('a'), Buffer.from('bc')], more: true };
    expect(decodeLeaseTtlReply(encodeLeaseTtlReply(ttl))).toEqual(ttl);
    expect(decodeLeaseListRequest(Buffer.alloc(0))).toEqual({ afterId: 0, limit: LEASE_LIST_PAGE_MAX });
    expect(decodeLeaseListRequest(encodeLeaseListRequest({ afterId: 9, limit: 2 }))).toEqual({ afterId: 9, limit: 2 });
    expect(decodeLeaseListReply(encodeLeaseListReply({ ids: [1, 5], more: false }))).toEqual({ ids: [1, 5], more: false });
    const op = decodeLeaseOperand(encodeLeaseOperand({ leaseId: 4, ttlMs: 0 }, Buffer.from('v')));
    expect(op.operand).toEqual({ leaseId: 4, ttlMs: 0 });
    expect(Buffer.from(op.value).toString()).toBe('v');
  });

  it('refuses malformed values with ProtocolError and bad arguments with RangeError', () => {
    expect(() => decodeLeaseGrantRequest(Buffer.alloc(15))).toThrow(ProtocolError);
    expect(() => decodeLeaseGrantRequest(Buffer.alloc(16))).toThrow(/ttlMs/);
    expect(() => decodeLeaseU64(Buffer.from('ffffffffffffffff', 'hex'))).toThrow(ProtocolError);
    expect(() => decodeLeaseTtlRequest(Buffer.from('000000000000000102', 'hex'))).toThrow(/option/);
    expect(() => decodeLeaseTtlRequest(Buffer.alloc(9))).toThrow(/lease id/);
    expect(() => decodeLeaseListRequest(encodeLeaseListRequest({ afterId: 0, limit: 1 }).fill(0, 8))).toThrow(/limit/);
    expect(() => decodeLeaseOperand(Buffer.alloc(16))).toThrow(/both 0/);
    expect(() => decodeLeaseOperand(Buffer.alloc(15))).toThrow(ProtocolError);
    expect(() => encodeLeaseGrantRequest({ ttlMs: 0, leaseId: 0 })).toThrow(RangeError);
    expect(() => encodeLeaseOperand({ leaseId: 0, ttlMs: 0 }, Buffer.alloc(0))).toThrow(RangeError);
    expect(() => decodeLeaseTtlReply(Buffer.alloc(20))).toThrow(ProtocolError);
  });

  it('round-trips the internal LeaseRequest / LeaseReply and refuses other types', () => {
    const q = { kind: LeaseRequestKind.List, leaseId: 7, limit: 100 };
    expect(decodeLeaseRequest(encodeLeaseRequest(q))).toEqual(q);
    const r = { status: Status.NotLeader, leaderHint: 'c2', message: 'not the leader', ttlMs: 0, remainingMs: 0, ids: [3, 4], more: true };
    expect(decodeLeaseReply(encodeLeaseReply(r))).toEqual(r);
    const bad = encodeLeaseRequest(q);
    bad[2] = 9;
    expect(() => decodeLeaseRequest(bad)).toThrow(/kind/);
    expect(() => decodeLeaseReply(encodeLeaseRequest(q))).toThrow(ProtocolError);
    const kq = { leaseId: 5, minIndex: 40, keysMax: 10, bytesMax: 1000 };
    expect(decodeLeaseKeysRequest(encodeLeaseKeysRequest(kq))).toEqual(kq);
    expect(() => decodeLeaseKeysRequest(encodeLeaseKeysRequest({ ...kq, keysMax: 0 }))).toThrow(/keysMax/);
    const kr = { status: Status.Ok, appliedIndex: 41, message: '', more: true, keys: [Buffer.from('a'), Buffer.from('b')] };
    expect(decodeLeaseKeysReply(encodeLeaseKeysReply(kr))).toEqual(kr);
  });

  it('the request decoder takes the lease opcodes without a key and the LEASE flag on SET only, its operand on top of valueBytesMax', () => {
    const limits = { ...DEFAULT_LIMITS, valueBytesMax: 8 };
    const events = (frame: Buffer) => new RequestDecoder(limits).push(frame);
    const ok = events(encodeRequest({ opcode: Opcode.LeaseKeepAlive, flags: 0, requestId: 1, key: Buffer.alloc(0), value: encodeLeaseU64(5) }));
    expect(ok).toMatchObject([{ kind: 'request', request: { opcode: Opcode.LeaseKeepAlive } }]);
    expect(events(encodeRequest({ opcode: Opcode.LeaseList, flags: 0, requestId: 2, key: Buffer.from('k'), value: Buffer.alloc(0) }))).toMatchObject([{ kind: 'reject', status: Status.BadRequest }]);
    expect(events(encodeRequest({ opcode: Opcode.Get, flags: RequestFlags.Lease, requestId: 3, key: Buffer.from('k'), value: Buffer.alloc(0) }))).toMatchObject([{ kind: 'reject', message: expect.stringMatching(/LEASE/) }]);
    expect(events(encodeRequest({ opcode: Opcode.Set, flags: RequestFlags.Lease, requestId: 4, key: Buffer.from('k'), value: Buffer.alloc(15) }))).toMatchObject([{ kind: 'reject', status: Status.BadRequest }]);
    const value = encodeLeaseOperand({ leaseId: 1, ttlMs: 0 }, Buffer.from('vvvvvvvv'));
    expect(events(encodeRequest({ opcode: Opcode.Set, flags: RequestFlags.Lease, requestId: 5, key: Buffer.from('k'), value }))).toMatchObject([{ kind: 'request' }]);
    const both = Buffer.concat([Buffer.alloc(8), value]);
    expect(events(encodeRequest({ opcode: Opcode.Set, flags: RequestFlags.Lease | RequestFlags.IfRevision, requestId: 6, key: Buffer.from('k'), value: both }))).toMatchObject([{ kind: 'request' }]);
    expect(events(encodeRequest({ opcode: Opcode.Set, flags: RequestFlags.Lease, requestId: 7, key: Buffer.from('k'), value: Buffer.concat([value, Buffer.from('x')]) }))).toMatchObject([{ kind: 'reject', status: Status.TooLarge }]);
  });

  it('LeaseStateRequest / LeaseStateReply (replica ↔ replica, lease.<replica>) round-trip; layout as docs/protocol.md', () => {
    const q = { minIndex: 7, crc32: 0xdeadbeef, offset: 3, bytesMax: 65536 };
    const qb = encodeLeaseStateRequest(q);
    expect(qb.toString('hex')).toBe('3401' + '0000000000000007' + 'deadbeef' + '0000000000000003' + '00010000');
    expect(decodeLeaseStateRequest(qb)).toEqual(q);
    expect(() => decodeLeaseStateRequest(encodeLeaseStateRequest({ ...q, bytesMax: 0 }))).toThrow(/bytesMax/);
    expect(() => decodeLeaseStateRequest(qb.subarray(0, qb.length - 1))).toThrow(ProtocolError);
    const r = { status: Status.Ok, message: '', index: 42, gapThrough: 0, crc32: 1, bodyBytes: 2, data: Buffer.from('hi') };
    const rb = encodeLeaseStateReply(r);
    expect(rb.length).toBe(LEASE_STATE_REPLY_BASE_BYTES + 2);
    expect(rb.toString('hex')).toBe('3501' + '00' + '0000' + '000000000000002a' + '0000000000000000' + '00000001' + '0000000000000002' + '00000002' + '6869');
    expect(decodeLeaseStateReply(rb)).toEqual(r);
  });
});
