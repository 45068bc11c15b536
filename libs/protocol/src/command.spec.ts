import fc from 'fast-check';
import {
  ApplyOutcome,
  CommandCondition,
  CommandOp,
  CounterRefusal,
  ProtocolError,
  decodeCommand,
  decodeIncrDelta,
  encodeIncrDelta,
  decodeOutcomeReply,
  decodeOutcomeRequest,
  decodeProposeRequest,
  encodeCommand,
  encodeOutcomeReply,
  encodeOutcomeRequest,
  encodeProposeRequest,
  type Command,
  RevokeCause,
  decodeLeaseRevoke,
  encodeLeaseRevoke,
} from './index';

const bytes = () => fc.uint8Array({ maxLength: 32 }).map((b) => Buffer.from(b));
const sessionArb = fc
  .record({ sessionId: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), seq: fc.nat({ max: Number.MAX_SAFE_INTEGER }), back: fc.nat({ max: 1000 }) })
  .map(({ sessionId, seq, back }) => ({ sessionId, seq, firstPendingSeq: Math.max(0, seq - back) }));
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ op: fc.constant(CommandOp.Set), key: bytes(), value: bytes(), condition: fc.constantFrom(CommandCondition.IfAbsent, CommandCondition.IfPresent), session: sessionArb }, { requiredKeys: ['op', 'key', 'value'] }),
  fc.record({ op: fc.constant(CommandOp.Delete), key: bytes(), value: fc.constant(Buffer.alloc(0)), session: sessionArb }, { requiredKeys: ['op', 'key', 'value'] }),
  fc.record(
    { op: fc.constantFrom(CommandOp.Set, CommandOp.Delete), key: bytes(), value: fc.constant(Buffer.alloc(0)), condition: fc.constant(CommandCondition.IfRevision), revision: fc.nat({ max: Number.MAX_SAFE_INTEGER }), session: sessionArb },
    { requiredKeys: ['op', 'key', 'value', 'condition', 'revision'] },
  ),
  fc.record({ op: fc.constant(CommandOp.Incr), key: bytes(), value: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map(encodeIncrDelta), session: sessionArb }, { requiredKeys: ['op', 'key', 'value'] }),
);

describe('write command encoding', () => {
  it('round-trips every op, condition and session (alone and inside a ProposeRequest)', () => {
    fc.assert(
      fc.property(commandArb, (c) => {
        expect(decodeCommand(encodeCommand(c))).toEqual(c);
        expect(decodeProposeRequest(encodeProposeRequest({ commands: [c, c] })).commands).toEqual([c, c]);
      }),
    );
  });

  it('keeps the pre-condition encoding of a plain SET and DEL byte for byte (old logs decode unchanged)', () => {
    expect(encodeCommand({ op: CommandOp.Set, key: Buffer.from('k'), value: Buffer.from('v1') }).toString('hex')).toBe('0101' + '01' + '000000016b' + '000000027631');
    expect(encodeCommand({ op: CommandOp.Set, key: Buffer.from('k'), value: Buffer.from('v1'), condition: CommandCondition.None }).toString('hex')).toBe('0101' + '01' + '000000016b' + '000000027631');
    expect(decodeCommand(Buffer.from('0101' + '02' + '000000016b' + '00000000', 'hex'))).toEqual({ op: CommandOp.Delete, key: Buffer.from('k'), value: Buffer.alloc(0) });
  });

  it('encodes a conditional SET with a session byte for byte', () => {
    const c: Command = {
      op: CommandOp.Set,
      key: Buffer.from('k'),
      value: Buffer.from('v'),
      condition: CommandCondition.IfAbsent,
      session: { sessionId: 0x0123456789abcdefn, seq: 7, firstPendingSeq: 5 },
    };
    // op byte 0x91 = session bit | condition 1 << 4 | op 1
    expect(encodeCommand(c).toString('hex')).toBe('0101' + '91' + '0123456789abcdef' + '0000000000000007' + '0000000000000005' + '000000016b' + '0000000176');
    expect(encodeCommand({ ...c, condition: CommandCondition.IfPresent, session: undefined }).toString('hex')).toBe('0101' + '21' + '000000016b' + '0000000176');
  });

  it('writes each session id as its own two u32 words, alternating ids included, and refuses one outside u64 however often it comes', () => {
    const ids = [0xfedc_ba98_7654_3210n, 1n, 0xfedc_ba98_7654_3210n, (1n << 64n) - 1n, 0n];
    for (const sessionId of ids) {
      const c: Command = { op: CommandOp.Set, key: Buffer.from('k'), value: Buffer.from('v'), session: { sessionId, seq: 2, firstPendingSeq: 1 } };
      expect(decodeCommand(encodeCommand(c)).session?.sessionId).toBe(sessionId);
    }
    for (const bad of [-1n, 1n << 64n, -1n]) expect(() => encodeCommand({ op: CommandOp.Set, key: Buffer.from('k'), value: Buffer.alloc(0), session: { sessionId: bad, seq: 0, firstPendingSeq: 0 } })).toThrow(RangeError);
  });

  it('refuses conditions on DEL, unknown conditions and reserved bits, on both sides', () => {
    expect(() => encodeCommand({ op: CommandOp.Delete, key: Buffer.from('k'), value: Buffer.alloc(0), condition: CommandCondition.IfPresent })).toThrow(/ConditionOnlyOnSet/);
    expect(() => encodeCommand({ op: CommandOp.Set, key: Buffer.from('k'), value: Buffer.alloc(0), condition: 4 as CommandCondition })).toThrow(/condition 4/);
    expect(() => encodeCommand({ op: CommandOp.Set, key: Buffer.from('k'), value: Buffer.alloc(0), session: { sessionId: 1n, seq: 1, firstPendingSeq: 2 } })).toThrow(/FirstPendingAfterSeq/);
    const body = (opByte: string) => Buffer.from('0101' + opByte + '000000016b' + '00000000', 'hex');
    expect(() => decodeCommand(body('22'))).toThrow(/condition 2 on a Delete/);
    expect(() => decodeCommand(body('31'))).toThrow(ProtocolError); // if-revision without its 8-byte operand
    expect(() => decodeCommand(body('41'))).toThrow(ProtocolError); // META bit (once reserved) without its 17 bytes
    expect(() => decodeCommand(body('42'))).toThrow(/META bit on op 2/);
    expect(() => decodeCommand(body('81'))).toThrow(ProtocolError); // session bit without its 24 bytes
  });
});

describe('lease revoke commands (cause)', () => {
  it('a client revoke keeps the 8-byte layout; an expiry adds its u8 cause; both decode, inside a command too', () => {
    expect(encodeLeaseRevoke(9)).toEqual(Buffer.from([0, 0, 0, 0, 0, 0, 0, 9]));
    expect(encodeLeaseRevoke(9, RevokeCause.Expired)).toEqual(Buffer.from([0, 0, 0, 0, 0, 0, 0, 9, 1]));
    for (const cause of [RevokeCause.Client, RevokeCause.Expired]) {
      const c: Command = { op: CommandOp.LeaseRevoke, key: Buffer.alloc(0), value: encodeLeaseRevoke(9, cause) };
      expect(decodeLeaseRevoke(decodeCommand(encodeCommand(c)).value)).toEqual({ leaseId: 9, cause });
    }
  });

  it('refuses an unknown cause and any other length', () => {
    expect(() => decodeLeaseRevoke(Buffer.from([0, 0, 0, 0, 0, 0, 0, 9, 2]))).toThrow(ProtocolError);
    const bad: Command = { op: CommandOp.LeaseRevoke, key: Buffer.alloc(0), value: Buffer.alloc(10) };
    expect(() => encodeCommand(bad)).toThrow(RangeError);
  });
});

describe('compare-and-swap commands (if-revision)', () => {
  const key = Buffer.from('k');
  it('encodes the revision operand after the session fields, on SET and DEL, byte for byte (docs/protocol.md "Write commands")', () => {
    // op byte 0x31 = condition 3 << 4 | op 1; operand u64 5
    expect(encodeCommand({ op: CommandOp.Set, key, value: Buffer.from('v'), condition: CommandCondition.IfRevision, revision: 5 }).toString('hex')).toBe('0101' + '31' + '0000000000000005' + '000000016b' + '0000000176');
    // op byte 0x32: a DEL if the key is missing (revision 0), as etcd's mod_revision = 0 compare
    expect(encodeCommand({ op: CommandOp.Delete, key, value: Buffer.alloc(0), condition: CommandCondition.IfRevision, revision: 0 }).toString('hex')).toBe('0101' + '32' + '0000000000000000' + '000000016b' + '00000000');
    const withSession = encodeCommand({ op: CommandOp.Set, key, value: Buffer.from('v'), condition: CommandCondition.IfRevision, revision: 9, session: { sessionId: 1n, seq: 2, firstPendingSeq: 2 } });
    expect(withSession.toString('hex')).toBe('0101' + 'b1' + '0000000000000001' + '0000000000000002' + '0000000000000002' + '0000000000000009' + '000000016b' + '0000000176');
  });

  it('refuses an operand without the condition, the condition without an operand, and operands out of range', () => {
    expect(() => encodeCommand({ op: CommandOp.Set, key, value: Buffer.alloc(0), revision: 3 })).toThrow(/RevisionOperandIffIfRevision/);
    expect(() => encodeCommand({ op: CommandOp.Set, key, value: Buffer.alloc(0), condition: CommandCondition.IfRevision })).toThrow(/RevisionOperandIffIfRevision/);
    expect(() => encodeCommand({ op: CommandOp.Set, key, value: Buffer.alloc(0), condition: CommandCondition.IfRevision, revision: -1 })).toThrow(/revision operand/);
    expect(() => encodeCommand({ op: CommandOp.Set, key, value: Buffer.alloc(0), condition: CommandCondition.IfRevision, revision: 2 ** 53 })).toThrow(/revision operand/);
    expect(() => decodeCommand(Buffer.from('0101' + '31' + '0020000000000000' + '000000016b' + '00000000', 'hex'))).toThrow(ProtocolError); // operand >= 2^53
  });
});

describe('incr commands', () => {
  it('encodes the delta as an i64 value, byte for byte (docs/protocol.md "Write commands")', () => {
    expect(encodeCommand({ op: CommandOp.Incr, key: Buffer.from('k'), value: encodeIncrDelta(-1n) }).toString('hex')).toBe('0101' + '03' + '000000016b' + '00000008' + 'ffffffffffffffff');
    expect(decodeIncrDelta(encodeIncrDelta(-(1n << 63n)))).toBe(-(1n << 63n));
    expect(() => encodeIncrDelta(1n << 63n)).toThrow(RangeError);
  });

  it('refuses a condition or a delta other than 8 bytes, on both sides', () => {
    expect(() => encodeCommand({ op: CommandOp.Incr, key: Buffer.from('k'), value: Buffer.alloc(4) })).toThrow(/IncrShape/);
    expect(() => encodeCommand({ op: CommandOp.Incr, key: Buffer.from('k'), value: encodeIncrDelta(1n), condition: CommandCondition.IfAbsent })).toThrow(/IncrShape/);
    expect(() => decodeCommand(Buffer.from('0101' + '03' + '000000016b' + '00000001' + '01', 'hex'))).toThrow(/8-byte delta/);
    expect(() => decodeCommand(Buffer.from('0101' + '13' + '000000016b' + '00000008' + '0000000000000001', 'hex'))).toThrow(/condition 1 on an Incr/);
  });

  it('carries an Incr result (new value or refusal) in the outcome reply', () => {
    const reply = {
      appliedIndex: 9,
      results: [
        { outcome: ApplyOutcome.Applied, revision: 7, counter: -(1n << 63n) },
        { outcome: ApplyOutcome.Applied, revision: 8, counter: 42n },
        { outcome: ApplyOutcome.ConditionFailed, revision: 9, refusal: CounterRefusal.NotInteger },
        { outcome: ApplyOutcome.ConditionFailed, revision: 9, refusal: CounterRefusal.Overflow },
        { outcome: ApplyOutcome.Applied, revision: 3 },
      ],
    };
    const b = encodeOutcomeReply(reply);
    expect(decodeOutcomeReply(b)).toEqual(reply);
    // outcome 4 = Applied + i64 counter
    expect(encodeOutcomeReply({ appliedIndex: 1, results: [{ outcome: ApplyOutcome.Applied, revision: 1, counter: 42n }] }).toString('hex')).toBe('1501' + '0000000000000001' + '00000001' + '04' + '0000000000000001' + '000000000000002a');
    expect(() => decodeOutcomeReply(Buffer.from('1501' + '0000000000000001' + '00000001' + 'ff' + '0000000000000001', 'hex'))).toThrow(/unknown apply outcome 255/);
  });
});

describe('outcome messages', () => {
  it('round-trip', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: Number.MAX_SAFE_INTEGER }), { maxLength: 20 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (indexes, sessionId) => {
        const queries = indexes.map((index) => (index % 2 ? { index, session: { sessionId, seq: index } } : { index }));
        expect(decodeOutcomeRequest(encodeOutcomeRequest({ queries }))).toEqual({ queries });
        const reply = { appliedIndex: 99, results: indexes.map((i) => ({ outcome: (i % 4) as ApplyOutcome, revision: i })) };
        expect(decodeOutcomeReply(encodeOutcomeReply(reply))).toEqual(reply);
      }),
    );
  });

  it('have a fixed layout and reject unknown outcomes, wrong types and trailing bytes', () => {
    expect(encodeOutcomeRequest({ queries: [{ index: 42 }] }).toString('hex')).toBe('1401' + '00000001' + '000000000000002a' + '00');
    expect(encodeOutcomeRequest({ queries: [{ index: 42, session: { sessionId: 0xfedcba9876543210n, seq: 3 } }] }).toString('hex')).toBe(
      '1401' + '00000001' + '000000000000002a' + '01' + 'fedcba9876543210' + '0000000000000003',
    );
    const reply = encodeOutcomeReply({ appliedIndex: 43, results: [{ outcome: ApplyOutcome.ConditionFailed, revision: 42 }] });
    expect(reply.toString('hex')).toBe('1501' + '000000000000002b' + '00000001' + '02' + '000000000000002a');
    const bad = Buffer.from(reply);
    bad[14] = 0xff; // codes 4..10 have meanings
    expect(() => decodeOutcomeReply(bad)).toThrow(/unknown apply outcome 255/);
    expect(() => decodeOutcomeRequest(reply)).toThrow(/expected internal message type 20/);
    expect(() => decodeOutcomeReply(Buffer.concat([reply, Buffer.from([0])]))).toThrow(/trailing/);
  });
});
