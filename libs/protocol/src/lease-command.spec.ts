import { ApplyOutcome, CommandOp, ExpireCondition, keptExpiry, LeaseRefusal, ProtocolError, decodeCommand, decodeExpire, encodeExpire, expireHolds, decodeLeaseGrant, decodeOutcomeReply, decodeU64Operand, encodeCommand, encodeLeaseGrant, encodeOutcomeReply, encodeU64Operand, type Command } from './index';

const EMPTY = Buffer.alloc(0);

/** Lease and TTL commands (ops 5..8, the META bit on Set): byte layouts of docs/protocol.md "Write commands". */
describe('lease and TTL commands', () => {
  it('LeaseGrant: op 5, empty key, value u64 leaseId | u64 ttlMs', () => {
    const c: Command = { op: CommandOp.LeaseGrant, key: EMPTY, value: encodeLeaseGrant(0x1234, 2000) };
    const hex = encodeCommand(c).toString('hex');
    expect(hex).toBe('0101' + '05' + '00000000' + '00000010' + '0000000000001234' + '00000000000007d0');
    expect(decodeCommand(Buffer.from(hex, 'hex'))).toEqual(c);
    expect(decodeLeaseGrant(c.value)).toEqual({ leaseId: 0x1234, ttlMs: 2000 });
  });

  it('LeaseRevoke (op 6), Expire (op 7), ExpireKey (op 8): one u64 operand in the value', () => {
    expect(encodeCommand({ op: CommandOp.LeaseRevoke, key: EMPTY, value: encodeU64Operand(7) }).toString('hex')).toBe('0101' + '06' + '00000000' + '00000008' + '0000000000000007');
    const exp: Command = { op: CommandOp.Expire, key: Buffer.from('k'), value: encodeU64Operand(1_700_000_000_000) };
    expect(encodeCommand(exp).toString('hex')).toBe('0101' + '07' + '000000016b' + '00000008' + '0000018bcfe56800');
    expect(decodeU64Operand(decodeCommand(encodeCommand(exp)).value)).toBe(1_700_000_000_000);
    expect(decodeCommand(encodeCommand({ ...exp, op: CommandOp.ExpireKey }))).toEqual({ ...exp, op: CommandOp.ExpireKey });
  });

  it('Expire (op 7) long form: u64 expiresAtMs | u8 ExpireCondition | u64 nowMs; the short form decodes as condition None, nowMs 0', () => {
    const exp: Command = { op: CommandOp.Expire, key: Buffer.from('k'), value: encodeExpire({ expiresAtMs: 1_700_000_000_000, condition: ExpireCondition.Gt, nowMs: 1_699_999_999_000 }) };
    expect(encodeCommand(exp).toString('hex')).toBe('0101' + '07' + '000000016b' + '00000011' + '0000018bcfe56800' + '03' + '0000018bcfe56418');
    expect(decodeExpire(decodeCommand(encodeCommand(exp)).value)).toEqual({ expiresAtMs: 1_700_000_000_000, condition: ExpireCondition.Gt, nowMs: 1_699_999_999_000 });
    expect(decodeExpire(encodeU64Operand(5))).toEqual({ expiresAtMs: 5, condition: ExpireCondition.None, nowMs: 0 });
    const bad = Buffer.from(exp.value);
    bad[8] = 6; // conditions are 0..5 (LtXx)
    expect(() => decodeExpire(bad)).toThrow(ProtocolError);
    expect(() => encodeCommand({ ...exp, value: Buffer.alloc(9) })).toThrow(RangeError);
    expect(() => decodeCommand(encodeCommand(exp).subarray(0, -1))).toThrow(ProtocolError);
    expect(() => encodeCommand({ ...exp, op: CommandOp.ExpireKey })).toThrow(RangeError); // ExpireKey keeps its one 8-byte form
  });

  it('expireHolds: an expiry at or before nowMs is an absent key; then NX / XX / GT / LT as Redis 7 (no expiry = infinite)', () => {
    const at = (condition: ExpireCondition, expiresAtMs = 500, nowMs = 100) => ({ expiresAtMs, condition, nowMs });
    expect(expireHolds(at(ExpireCondition.None), 100)).toBe(false); // expired at 100
    expect(expireHolds(at(ExpireCondition.None), 101)).toBe(true);
    expect(expireHolds(at(ExpireCondition.None, 500, 0), 1)).toBe(true); // short form: not checked
    expect([expireHolds(at(ExpireCondition.Nx), 0), expireHolds(at(ExpireCondition.Nx), 400)]).toEqual([true, false]);
    expect([expireHolds(at(ExpireCondition.Xx), 0), expireHolds(at(ExpireCondition.Xx), 400)]).toEqual([false, true]);
    expect([expireHolds(at(ExpireCondition.Gt), 0), expireHolds(at(ExpireCondition.Gt), 400), expireHolds(at(ExpireCondition.Gt), 500)]).toEqual([false, true, false]);
    expect([expireHolds(at(ExpireCondition.Lt), 0), expireHolds(at(ExpireCondition.Lt), 600), expireHolds(at(ExpireCondition.Lt), 500)]).toEqual([true, true, false]);
    expect([expireHolds(at(ExpireCondition.LtXx), 0), expireHolds(at(ExpireCondition.LtXx), 600), expireHolds(at(ExpireCondition.LtXx), 500)]).toEqual([false, true, false]);
  });

  it('a Set with META: u8 flags (bit 0 KEEPTTL) | u64 leaseId | u64 expiresAtMs after the condition operand, op byte bit 6', () => {
    const c: Command = { op: CommandOp.Set, key: Buffer.from('k'), value: Buffer.from('v'), meta: { leaseId: 5, expiresAtMs: 1_700_000_000_000, keepTtl: false } };
    const hex = encodeCommand(c).toString('hex');
    expect(hex).toBe('0101' + '41' + '00' + '0000000000000005' + '0000018bcfe56800' + '000000016b' + '0000000176');
    expect(decodeCommand(Buffer.from(hex, 'hex'))).toEqual(c);
    const keep: Command = { ...c, meta: { leaseId: 0, expiresAtMs: 0, keepTtl: true } };
    expect(decodeCommand(encodeCommand(keep))).toEqual(keep);
    // KEEPTTL with the proposer's clock in expiresAtMs: a current expiry at or before it has passed
    const keepAt: Command = { ...c, meta: { leaseId: 0, expiresAtMs: 1000, keepTtl: true } };
    expect(encodeCommand(keepAt).toString('hex')).toBe('0101' + '41' + '01' + '0000000000000000' + '00000000000003e8' + '000000016b' + '0000000176');
    expect(decodeCommand(encodeCommand(keepAt))).toEqual(keepAt);
    expect([keptExpiry(0, 1000), keptExpiry(999, 1000), keptExpiry(1000, 1000), keptExpiry(1001, 1000), keptExpiry(5, 0)]).toEqual([0, 0, 0, 1001, 5]);
  });

  it('refuses bad shapes on both sides', () => {
    expect(() => encodeCommand({ op: CommandOp.LeaseGrant, key: Buffer.from('k'), value: encodeLeaseGrant(1, 1) })).toThrow(/LeaseOpHasNoKey/);
    expect(() => encodeCommand({ op: CommandOp.LeaseRevoke, key: EMPTY, value: Buffer.alloc(7) })).toThrow(/OperandShape/);
    expect(() => encodeCommand({ op: CommandOp.Delete, key: Buffer.from('k'), value: EMPTY, meta: { leaseId: 1, expiresAtMs: 0, keepTtl: false } })).toThrow(/MetaOnlyOnSet/);
    expect(() => encodeLeaseGrant(0, 1000)).toThrow(RangeError);
    expect(() => decodeLeaseGrant(Buffer.alloc(16))).toThrow(ProtocolError);
    // op 6 with a 4-byte value; op 5 with a key; META flags with an unknown bit
    expect(() => decodeCommand(Buffer.from('0101' + '06' + '00000000' + '00000004' + '00000007', 'hex'))).toThrow(/8-byte operand/);
    expect(() => decodeCommand(Buffer.from('0101' + '05' + '000000016b' + '00000010' + '00'.repeat(16), 'hex'))).toThrow(/with a key/);
    expect(() => decodeCommand(Buffer.from('0101' + '41' + '02' + '00'.repeat(16) + '000000016b' + '00000000', 'hex'))).toThrow(/META flags/);
  });

  it('outcome codes 9 / 10: ConditionFailed because the lease does not exist / is full', () => {
    const reply = { appliedIndex: 9, results: [{ outcome: ApplyOutcome.ConditionFailed, revision: 8, leaseRefusal: LeaseRefusal.NotFound }, { outcome: ApplyOutcome.ConditionFailed, revision: 9, leaseRefusal: LeaseRefusal.KeysFull }] };
    const bytes = encodeOutcomeReply(reply);
    expect(bytes.subarray(14).toString('hex')).toBe('09' + '0000000000000008' + '0a' + '0000000000000009');
    expect(decodeOutcomeReply(bytes)).toEqual(reply);
  });
});
