import fc from 'fast-check';
import {
  Permission,
  PermissionsChange,
  RolesChange,
  decodeAuthState,
  decodeRolePutValue,
  decodeUserPutValue,
  encodeAuthState,
  encodeRolePutValue,
  encodeUserPutValue,
  type AuthState,
  CompareTarget,
  TxnOpFlags,
  TxnOpKind,
  decodeTxnCommandValue,
  decodeTxnRequest,
  decodeTxnResult,
  encodeTxnCommandValue,
  encodeTxnRequest,
  encodeTxnResult,
  type TxnKv,
  type TxnOp,
  type TxnOpResponse,
  type TxnRequest,
  ApplyOutcome,
  CommandCondition,
  CommandOp,
  DEFAULT_LIMITS,
  Opcode,
  ProtocolError,
  REQUEST_HEADER_BYTES,
  RESPONSE_HEADER_BYTES,
  RequestDecoder,
  RequestFlags,
  ResponseDecoder,
  SnapshotPart,
  Status,
  decodeCommand,
  decodeFetchReply,
  decodeFetchRequest,
  decodeOutcomeReply,
  decodeOutcomeRequest,
  decodeProposeReply,
  decodeProposeRequest,
  decodeRaftMessages,
  decodeReadIndexReply,
  decodeReadIndexRequest,
  decodeReadReply,
  decodeReadRequest,
  decodeRequestHeader,
  decodeResponseHeader,
  decodeShipBatch,
  decodeWatchCancel,
  decodeWatchEvents,
  decodeWatchFrame,
  decodeWatchHistoryReply,
  decodeWatchHistoryRequest,
  decodeWatchInterest,
  encodeWatchInterest,
  decodeWatchSpec,
  encodeWatchCancel,
  encodeWatchEvents,
  encodeWatchEventsFrame,
  encodeWatchSharedEventsFrame,
  encodeWatchHistoryReply,
  encodeWatchHistoryRequest,
  encodeWatchSpec,
  decodeSnapshotBeginReply,
  decodeSnapshotBeginRequest,
  decodeSnapshotChunkReply,
  decodeSnapshotChunkRequest,
  encodeCommand,
  encodeLeaseGrant,
  encodeU64Operand,
  encodeFetchReply,
  encodeFetchRequest,
  encodeOutcomeReply,
  encodeOutcomeRequest,
  encodeProposeReply,
  encodeProposeRequest,
  encodeRaftMessages,
  encodeReadIndexReply,
  encodeReadIndexRequest,
  encodeReadReply,
  encodeReadRequest,
  encodeRequest,
  encodeResponse,
  encodeShipBatch,
  encodeSnapshotBeginReply,
  encodeSnapshotBeginRequest,
  encodeSnapshotChunkReply,
  encodeSnapshotChunkRequest,
  peekMessageType,
  type Command,
  type DecodeEvent,
  type Response,
} from './index';

/**
 * Hostile input for every decoder of this package (issue 9): random bytes, and valid encodings
 * that were truncated, extended or had bytes overwritten (length and count fields included), must
 * decode or throw ProtocolError: never a RangeError / TypeError from reading past the end, never an
 * allocation sized by a declared length that the input does not hold.
 */

const RUNS = 300;
const EMPTY = Buffer.alloc(0);

/** Runs `decode`; returns what it returned, or null when it threw ProtocolError; rethrows anything else. */
function decodeOrProtocolError<T>(decode: () => T): T | null {
  try {
    return decode();
  } catch (e) {
    if (e instanceof ProtocolError) return null;
    throw e;
  }
}

// ---- Arbitraries of valid messages ---------------------------------------------------------------

const u64 = fc.maxSafeNat();
const u32 = fc.nat({ max: 0xffff_ffff });
const bytes = (maxLength = 24) => fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));
const str = fc.string({ maxLength: 12, unit: 'grapheme' });
const status = fc.constantFrom(...(Object.values(Status).filter((v) => typeof v === 'number') as Status[]));
const entry = fc.record({ index: u64, term: u64, type: fc.nat({ max: 255 }), data: bytes() });
const entries = fc.array(entry, { maxLength: 4 });

const session = fc.record({ sessionId: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), seq: fc.maxSafeNat() }).chain((s) =>
  fc.nat({ max: s.seq }).map((firstPendingSeq) => ({ ...s, firstPendingSeq })),
);
const safeU64 = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const commandMeta = fc.record({ leaseId: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), expiresAtMs: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), keepTtl: fc.boolean() }).map((m) => (m.keepTtl ? { ...m, expiresAtMs: 0 } : m));
const kvCommand: fc.Arbitrary<Command> = fc
  .record({ op: fc.constantFrom(CommandOp.Set, CommandOp.Delete), key: bytes(), value: bytes(), condition: fc.constantFrom(CommandCondition.None, CommandCondition.IfAbsent, CommandCondition.IfPresent), session: fc.option(session, { nil: undefined }), meta: fc.option(commandMeta, { nil: undefined }) })
  .map((c) => {
    const out: Command = { op: c.op, key: c.key, value: c.op === CommandOp.Delete ? Buffer.alloc(0) : c.value };
    if (c.op === CommandOp.Set && c.condition !== CommandCondition.None) out.condition = c.condition;
    if (c.session) out.session = c.session;
    if (c.op === CommandOp.Set && c.meta) out.meta = c.meta;
    return out;
  });
/** Lease and expiry ops (docs/leases.md): operands in the value. */
const leaseCommand: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ id: safeU64, ttl: safeU64 }).map((x): Command => ({ op: CommandOp.LeaseGrant, key: Buffer.alloc(0), value: encodeLeaseGrant(x.id, x.ttl) })),
  safeU64.map((id): Command => ({ op: CommandOp.LeaseRevoke, key: Buffer.alloc(0), value: encodeU64Operand(id) })),
  fc.record({ key: bytes(), at: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), op: fc.constantFrom(CommandOp.Expire, CommandOp.ExpireKey) }).map((x): Command => ({ op: x.op, key: x.key, value: encodeU64Operand(x.at) })),
);
const command: fc.Arbitrary<Command> = fc.oneof(kvCommand, leaseCommand);

const authName = fc.stringMatching(/^[a-z0-9_.@-]{1,10}$/);
const rolePermission = fc.record({ prefix: bytes(8), permission: fc.constantFrom(Permission.Read, Permission.Write, Permission.ReadWrite) });
const authState = fc
  .record({
    enabled: fc.boolean(),
    users: fc.uniqueArray(fc.record({ name: authName, passwordHash: fc.constant('scrypt$16384$8$1$c2FsdA$aGFzaA'), roles: fc.uniqueArray(authName, { maxLength: 3 }) }), { maxLength: 3, selector: (u) => u.name }),
    roles: fc.uniqueArray(fc.record({ name: authName, permissions: fc.array(rolePermission, { maxLength: 3 }) }), { maxLength: 3, selector: (r) => r.name }),
  })
  .map((x): AuthState => ({ enabled: x.enabled, users: new Map(x.users.map((u) => [u.name, u])), roles: new Map(x.roles.map((r) => [r.name, r])) }));
const watchEvent = fc.record({ type: fc.constantFrom(0, 1), key: bytes(), value: bytes(), modRevision: u64, createRevision: u64, version: u64, prevValue: fc.option(bytes(), { nil: null }) });
const watchEvents = fc.array(watchEvent, { maxLength: 3 });

/** A txn key outside a range start is never empty. */
const txnKey = fc.uint8Array({ minLength: 1, maxLength: 24 }).map((b) => Buffer.from(b));
const txnCompare = fc.oneof(
  fc.record({ key: txnKey, target: fc.constant(CompareTarget.Value), result: fc.constantFrom(0, 1, 2, 3), value: bytes() }),
  fc.record({ key: txnKey, target: fc.constantFrom(CompareTarget.ModRevision, CompareTarget.CreateRevision, CompareTarget.Version), result: fc.constantFrom(0, 1, 2, 3), operand: u64 }),
);
const txnOp: fc.Arbitrary<TxnOp> = fc.oneof(
  fc.record({ kind: fc.constant(TxnOpKind.Put), key: txnKey, value: bytes(), flags: fc.constantFrom(0, TxnOpFlags.PrevKv, TxnOpFlags.KeepTtl, TxnOpFlags.PrevKv | TxnOpFlags.KeepTtl) }),
  fc.record({ kind: fc.constant(TxnOpKind.Put), key: txnKey, value: bytes(), flags: fc.constantFrom(TxnOpFlags.Lease, TxnOpFlags.PrevKv | TxnOpFlags.Lease), lease: safeU64 }),
  fc.record({ kind: fc.constant(TxnOpKind.Delete), key: txnKey, end: bytes(), flags: fc.constantFrom(0, TxnOpFlags.PrevKv) }),
  fc.record({ kind: fc.constant(TxnOpKind.Get), key: txnKey, flags: fc.constantFrom(0, TxnOpFlags.KeysOnly) }),
  fc.record({ kind: fc.constant(TxnOpKind.Range), key: bytes(), end: fc.constant(EMPTY), limit: u32, flags: fc.constantFrom(TxnOpFlags.Prefix, TxnOpFlags.Prefix | TxnOpFlags.Reverse | TxnOpFlags.KeysOnly | TxnOpFlags.CountOnly) }),
);
const txnRequest: fc.Arbitrary<TxnRequest> = fc.record({ compares: fc.array(txnCompare, { maxLength: 3 }), success: fc.array(txnOp, { maxLength: 3 }), failure: fc.array(txnOp, { maxLength: 3 }) });
const txnKv: fc.Arbitrary<TxnKv> = fc.record({ key: bytes(), value: bytes(), modRevision: u64, createRevision: u64, version: u64 });
const txnResponse: fc.Arbitrary<TxnOpResponse> = fc.oneof(
  fc.record({ kind: fc.constant(TxnOpKind.Put as const), prev: fc.option(txnKv, { nil: undefined }) }).map((x) => (x.prev ? x : { kind: x.kind })),
  fc.record({ kind: fc.constant(TxnOpKind.Delete as const), deleted: u32, prev: fc.array(txnKv, { maxLength: 2 }) }),
  fc.record({ kind: fc.constant(TxnOpKind.Get as const), kv: fc.option(txnKv, { nil: undefined }) }).map((x) => (x.kv ? x : { kind: x.kind })),
  fc.record({ kind: fc.constant(TxnOpKind.Range as const), count: u32, more: fc.boolean(), kvs: fc.array(txnKv, { maxLength: 2 }) }),
);
const txnResult = fc.record({ succeeded: fc.boolean(), responses: fc.array(txnResponse, { maxLength: 4 }) });

const raftMessage = fc.record({
  type: fc.nat({ max: 255 }),
  from: str,
  to: str,
  term: u64,
  logTerm: u64,
  index: u64,
  entries,
  commit: u64,
  reject: fc.boolean(),
  rejectHint: u64,
  context: u64,
});

/** One decoder with a generator of its valid encodings. */
interface Case {
  name: string;
  valid: fc.Arbitrary<Buffer>;
  decode: (b: Buffer) => unknown;
  /** Bytes the decoder reads at most (a header decoder); absent = the whole message. */
  fixedBytes?: number;
}

const cases: Case[] = [
  { name: 'decodeCommand', valid: command.map(encodeCommand), decode: decodeCommand },
  { name: 'decodeRaftMessages', valid: fc.array(raftMessage, { maxLength: 3 }).map(encodeRaftMessages), decode: decodeRaftMessages },
  { name: 'decodeProposeRequest', valid: fc.array(command, { maxLength: 4 }).map((commands) => encodeProposeRequest({ commands })), decode: decodeProposeRequest },
  {
    name: 'decodeProposeReply',
    valid: fc.record({ status, firstIndex: u64, lastIndex: u64, leaderHint: str, message: str, retrySafe: fc.boolean() }).map(encodeProposeReply),
    decode: decodeProposeReply,
  },
  { name: 'decodeReadIndexRequest', valid: fc.record({ reads: u32 }).map(encodeReadIndexRequest), decode: decodeReadIndexRequest },
  { name: 'decodeReadIndexReply', valid: fc.record({ status, readIndex: u64, leaderHint: str, message: str }).map(encodeReadIndexReply), decode: decodeReadIndexReply },
  { name: 'decodeShipBatch', valid: fc.record({ leaderId: str, term: u64, commitIndex: u64, entries }).map(encodeShipBatch), decode: decodeShipBatch },
  { name: 'decodeFetchRequest', valid: fc.record({ fromIndex: u64, entriesMax: u32, bytesMax: u32 }).map(encodeFetchRequest), decode: decodeFetchRequest },
  { name: 'decodeFetchReply', valid: fc.record({ status, commitIndex: u64, entries, message: str }).map(encodeFetchReply), decode: decodeFetchReply },
  { name: 'decodeReadRequest', valid: fc.array(fc.record({ key: bytes(), minIndex: u64 }), { maxLength: 5 }).map((reads) => encodeReadRequest({ reads })), decode: decodeReadRequest },
  {
    name: 'decodeReadReply',
    valid: fc.record({ appliedIndex: u64, results: fc.array(fc.record({ status, revision: u64, value: bytes(), message: str }), { maxLength: 5 }) }).map(encodeReadReply),
    decode: decodeReadReply,
  },
  {
    name: 'decodeOutcomeRequest',
    valid: fc
      .array(fc.record({ index: u64, session: fc.option(fc.record({ sessionId: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), seq: u64 }), { nil: undefined }) }), { maxLength: 5 })
      .map((queries) => encodeOutcomeRequest({ queries: queries.map((q) => (q.session ? q : { index: q.index })) })),
    decode: decodeOutcomeRequest,
  },
  {
    name: 'decodeOutcomeReply',
    valid: fc
      .record({ appliedIndex: u64, results: fc.array(fc.record({ outcome: fc.constantFrom(ApplyOutcome.Pending, ApplyOutcome.Applied, ApplyOutcome.ConditionFailed, ApplyOutcome.Unknown), revision: u64 }), { maxLength: 5 }) })
      .map(encodeOutcomeReply),
    decode: decodeOutcomeReply,
  },
  { name: 'decodeTxnRequest', valid: txnRequest.map(encodeTxnRequest), decode: decodeTxnRequest },
  {
    name: 'decodeCommand (Txn)',
    valid: fc.record({ request: txnRequest, session: fc.option(session, { nil: undefined }) }).map(({ request, session: s }) =>
      encodeCommand({ op: CommandOp.Txn, key: EMPTY, value: encodeTxnCommandValue({ limits: { resultBytesMax: 1, keysMax: 1 }, request }), ...(s ? { session: s } : {}) }),
    ),
    decode: decodeCommand,
  },
  {
    name: 'decodeTxnCommandValue',
    valid: fc.record({ limits: fc.record({ resultBytesMax: fc.integer({ min: 1, max: 0xffff_ffff }), keysMax: fc.integer({ min: 1, max: 0xffff_ffff }) }), request: txnRequest }).map(encodeTxnCommandValue),
    decode: decodeTxnCommandValue,
  },
  { name: 'decodeTxnResult', valid: txnResult.map(encodeTxnResult), decode: decodeTxnResult },
  {
    name: 'decodeOutcomeReply (txn results)',
    valid: fc.record({ appliedIndex: u64, results: fc.array(fc.record({ outcome: fc.constant(ApplyOutcome.Applied), revision: u64, txn: txnResult.map(encodeTxnResult) }), { maxLength: 3 }) }).map(encodeOutcomeReply),
    decode: decodeOutcomeReply,
  },
  { name: 'decodeSnapshotBeginRequest', valid: fc.record({ requesterId: str, minAppliedIndex: u64 }).map(encodeSnapshotBeginRequest), decode: decodeSnapshotBeginRequest },
  {
    name: 'decodeSnapshotBeginReply',
    valid: fc.record({ status, message: str, transferId: str, appliedIndex: u64, chunkBytesMax: u32, manifest: bytes(), sessionBytes: u64, sessionCrc32: u32 }).map(encodeSnapshotBeginReply),
    decode: decodeSnapshotBeginReply,
  },
  {
    name: 'decodeSnapshotChunkRequest',
    valid: fc.record({ transferId: str, part: fc.constantFrom(SnapshotPart.End, SnapshotPart.Engine, SnapshotPart.Sessions), file: str, offset: u64 }).map(encodeSnapshotChunkRequest),
    decode: decodeSnapshotChunkRequest,
  },
  { name: 'decodeSnapshotChunkReply', valid: fc.record({ status, message: str, data: bytes() }).map(encodeSnapshotChunkReply), decode: decodeSnapshotChunkReply },
  { name: 'decodeAuthState', valid: authState.map(encodeAuthState), decode: decodeAuthState },
  { name: 'decodeUserPutValue', valid: fc.record({ passwordHash: fc.option(fc.constant('scrypt$16384$8$1$c2FsdA$aGFzaA'), { nil: undefined }), rolesChange: fc.constantFrom(RolesChange.None, RolesChange.Replace, RolesChange.Add, RolesChange.Remove), roles: fc.array(authName, { maxLength: 3 }) }).map(encodeUserPutValue), decode: decodeUserPutValue },
  { name: 'decodeRolePutValue', valid: fc.record({ change: fc.constantFrom(PermissionsChange.Replace, PermissionsChange.Grant, PermissionsChange.Revoke), permissions: fc.array(rolePermission, { maxLength: 3 }) }).map(encodeRolePutValue), decode: decodeRolePutValue },
  { name: 'decodeWatchEvents', valid: fc.record({ nodeId: str, prevRevision: u64, more: u32, events: watchEvents }).map((m) => encodeWatchEvents({ ...m, lastRevision: Math.min(Number.MAX_SAFE_INTEGER, m.prevRevision + m.more) })), decode: decodeWatchEvents },
  {
    name: 'decodeWatchHistoryRequest',
    valid: fc.record({ fromRevision: fc.integer({ min: 1, max: 2 ** 40 }), toRevision: u64, start: bytes(), end: fc.option(bytes(), { nil: null }), bytesMax: u32, eventsMax: fc.integer({ min: 1, max: 2 ** 31 }) }).map(encodeWatchHistoryRequest),
    decode: decodeWatchHistoryRequest,
  },
  {
    name: 'decodeWatchHistoryReply',
    valid: fc.record({ result: fc.constantFrom(0, 1, 2), oldestRevision: u64, lastRevision: u64, nextRevision: u64, message: str, events: watchEvents }).map(encodeWatchHistoryReply),
    decode: decodeWatchHistoryReply,
  },
  { name: 'decodeWatchInterest', valid: fc.record({ forMs: u32 }).map(encodeWatchInterest), decode: decodeWatchInterest },
  { name: 'decodeWatchSpec', valid: fc.record({ options: fc.constantFrom(0, 2, 4, 6), startRevision: u64, end: bytes() }).map(encodeWatchSpec), decode: decodeWatchSpec },
  { name: 'decodeWatchFrame', valid: watchEvents.map(encodeWatchEventsFrame), decode: decodeWatchFrame },
  { name: 'decodeWatchFrame (SHARED_EVENTS)', valid: fc.record({ ids: fc.uniqueArray(u32, { minLength: 1, maxLength: 4 }), events: watchEvents }).map((f) => encodeWatchSharedEventsFrame(f.ids, f.events)), decode: decodeWatchFrame },
  { name: 'decodeWatchCancel', valid: u32.map(encodeWatchCancel), decode: decodeWatchCancel },
  { name: 'peekMessageType', valid: bytes().map((b) => Buffer.concat([Buffer.from([1, 1]), b])), decode: peekMessageType, fixedBytes: 2 },
  { name: 'decodeRequestHeader', valid: fc.record({ opcode: fc.nat({ max: 255 }), requestId: u32, key: bytes(), value: bytes() }).map(encodeRequest), decode: (b) => decodeRequestHeader(b), fixedBytes: REQUEST_HEADER_BYTES },
  { name: 'decodeResponseHeader', valid: fc.record({ status, flags: fc.constant(0), requestId: u32, revision: u64, payload: bytes() }).map(encodeResponse), decode: (b) => decodeResponseHeader(b), fixedBytes: RESPONSE_HEADER_BYTES },
];

// ---- Mutations -----------------------------------------------------------------------------------

/** Values that stress length / count / u64 fields. */
const hostileWord = fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff);

type Mutation =
  | { kind: 'set'; at: number; value: number }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; data: Uint8Array }
  | { kind: 'delete'; at: number; n: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat({ max: 255 }) }),
  fc.record({ kind: fc.constant('u32' as const), at: fc.nat(), value: fc.oneof(hostileWord, u32) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), data: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
);

function mutate(b: Buffer, ms: Mutation[]): Buffer {
  let out = Buffer.from(b);
  for (const m of ms) {
    const at = out.length === 0 ? 0 : m.at % (out.length + 1);
    if (m.kind === 'set' && out.length > 0) out[at % out.length] = m.value;
    else if (m.kind === 'u32' && out.length >= 4) out.writeUInt32BE(m.value >>> 0, Math.min(at, out.length - 4));
    else if (m.kind === 'truncate') out = out.subarray(0, at);
    else if (m.kind === 'insert') out = Buffer.concat([out.subarray(0, at), m.data, out.subarray(at)]);
    else if (m.kind === 'delete') out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.n)]);
  }
  return out;
}

// ---- Internal message decoders -------------------------------------------------------------------

describe.each(cases)('$name on hostile input (fast-check)', ({ valid, decode, fixedBytes }) => {
  it('decodes every valid encoding without error', () => {
    fc.assert(
      fc.property(valid, (b) => {
        decode(b);
      }),
      { numRuns: 100 },
    );
  });

  it('random bytes (with and without the right message header) decode or throw ProtocolError', () => {
    fc.assert(
      fc.property(valid, fc.uint8Array({ maxLength: 80 }), fc.boolean(), (good, noise, keepHeader) => {
        const b = keepHeader ? Buffer.concat([good.subarray(0, 2), noise]) : Buffer.from(noise);
        decodeOrProtocolError(() => decode(b));
      }),
      { numRuns: RUNS },
    );
  });

  it('mutated, truncated and extended valid encodings decode or throw ProtocolError', () => {
    fc.assert(
      fc.property(valid, fc.array(mutation, { minLength: 1, maxLength: 4 }), (good, ms) => {
        decodeOrProtocolError(() => decode(mutate(good, ms)));
      }),
      { numRuns: RUNS },
    );
  });

  it('every truncation of a valid encoding throws ProtocolError (a message ends exactly at its last field)', () => {
    fc.assert(
      fc.property(valid, (good) => {
        const min = fixedBytes ?? good.length;
        for (let n = 0; n < min; n++) expect(decodeOrProtocolError(() => decode(good.subarray(0, n)))).toBeNull();
      }),
      { numRuns: 40 },
    );
  });
});

// ---- Streaming client-protocol decoders ----------------------------------------------------------

/** Cuts `b` into consecutive pieces at the given fractions. */
function split(b: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => Math.floor(c * b.length)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const a of at) {
    out.push(b.subarray(prev, a));
    prev = a;
  }
  out.push(b.subarray(prev));
  return out;
}

const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 });

const validRequest = fc
  .record({
    opcode: fc.constantFrom(Opcode.Ping, Opcode.Get, Opcode.Set, Opcode.Del, Opcode.Status),
    requestId: u32,
    key: bytes(16).filter((k) => k.length > 0),
    value: bytes(40),
    flags: fc.constantFrom(0, RequestFlags.Stale, RequestFlags.IfAbsent, RequestFlags.IfPresent),
  })
  .map((r) => {
    const keyed = r.opcode === Opcode.Get || r.opcode === Opcode.Set || r.opcode === Opcode.Del;
    const valued = r.opcode === Opcode.Set || r.opcode === Opcode.Ping;
    const flags = r.opcode === Opcode.Set || r.flags === RequestFlags.Stale ? r.flags : 0;
    return encodeRequest({ opcode: r.opcode, requestId: r.requestId, flags, key: keyed ? r.key : EMPTY, value: valued ? r.value : EMPTY });
  });

/** Feeds the pieces; returns every event. The decoder itself must never throw. */
function decodeRequests(limits: { keyBytesMax: number; valueBytesMax: number }, pieces: Buffer[]): DecodeEvent[] {
  const d = new RequestDecoder(limits);
  const events: DecodeEvent[] = [];
  for (const p of pieces) {
    events.push(...d.push(p));
    // Held bytes stay within one header plus one accepted body.
    expect(d.bufferedBytes()).toBeLessThanOrEqual(REQUEST_HEADER_BYTES + limits.keyBytesMax + limits.valueBytesMax);
  }
  return events;
}

/** A comparable form of the events (views become plain byte arrays). */
function plain(events: DecodeEvent[]): unknown[] {
  return events.map((e) => (e.kind === 'request' ? { ...e.request, key: [...e.request.key], value: [...e.request.value] } : e));
}

describe('RequestDecoder on hostile streams (fast-check)', () => {
  const limits = { keyBytesMax: 32, valueBytesMax: 64 };

  it('valid frames, cut anywhere, decode to the same requests', () => {
    fc.assert(
      fc.property(fc.array(validRequest, { minLength: 1, maxLength: 6 }), cuts, (frames, c) => {
        const stream = Buffer.concat(frames);
        const whole = decodeRequests(limits, [stream]);
        expect(whole.every((e) => e.kind === 'request')).toBe(true);
        expect(whole).toHaveLength(frames.length);
        expect(plain(decodeRequests(limits, split(stream, c)))).toEqual(plain(whole));
      }),
      { numRuns: RUNS },
    );
  });

  it('random bytes and mutated streams never throw, give the same events however they are cut, and stop after a fatal event', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
          fc.tuple(fc.array(validRequest, { minLength: 1, maxLength: 6 }), fc.array(mutation, { minLength: 1, maxLength: 5 })).map(([fs, ms]) => mutate(Buffer.concat(fs), ms)),
        ),
        cuts,
        (stream, c) => {
          const whole = decodeRequests(limits, [stream]);
          expect(plain(decodeRequests(limits, split(stream, c)))).toEqual(plain(whole));
          const fatal = whole.findIndex((e) => e.kind === 'fatal');
          if (fatal >= 0) expect(fatal).toBe(whole.length - 1);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('a header declaring lengths up to 2^32-1 is rejected before any body is buffered', () => {
    fc.assert(
      fc.property(fc.nat({ max: 255 }), hostileWord, hostileWord, (opcode, keyLength, valueLength) => {
        const h = encodeRequest({ opcode, requestId: 7, key: EMPTY, value: EMPTY });
        h.writeUInt32BE(keyLength, 8);
        h.writeUInt32BE(valueLength, 12);
        const d = new RequestDecoder(DEFAULT_LIMITS);
        const events = d.push(Buffer.concat([h, Buffer.alloc(100)]));
        expect(d.bufferedBytes()).toBeLessThanOrEqual(DEFAULT_LIMITS.keyBytesMax + DEFAULT_LIMITS.valueBytesMax);
        if (keyLength + valueLength > DEFAULT_LIMITS.keyBytesMax + DEFAULT_LIMITS.valueBytesMax) expect(events[0]).toMatchObject({ kind: 'reject' });
      }),
      { numRuns: RUNS },
    );
  });
});

const validResponse = fc.record({ status, flags: fc.constant(0), requestId: u32, revision: u64, payload: bytes(40) }).map((r: Response) => encodeResponse(r));

/** Feeds the pieces; returns the responses and whether it stopped with ProtocolError. Anything else thrown fails the test. */
function decodeResponses(payloadBytesMax: number, pieces: Buffer[]): { responses: unknown[]; failed: boolean } {
  const d = new ResponseDecoder({ payloadBytesMax });
  const responses: unknown[] = [];
  for (const p of pieces) {
    try {
      d.pushTo(p, (r) => responses.push({ ...r, payload: [...r.payload] }));
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      // A stopped decoder keeps throwing the same error.
      expect(() => d.push(Buffer.alloc(1))).toThrow(ProtocolError);
      return { responses, failed: true };
    }
    expect(d.bufferedBytes()).toBeLessThanOrEqual(RESPONSE_HEADER_BYTES + payloadBytesMax);
  }
  return { responses, failed: false };
}

describe('ResponseDecoder on hostile streams (fast-check)', () => {
  it('valid frames, cut anywhere, decode to the same responses', () => {
    fc.assert(
      fc.property(fc.array(validResponse, { minLength: 1, maxLength: 6 }), cuts, (frames, c) => {
        const stream = Buffer.concat(frames);
        const whole = decodeResponses(64, [stream]);
        expect(whole).toMatchObject({ failed: false });
        expect(whole.responses).toHaveLength(frames.length);
        expect(decodeResponses(64, split(stream, c))).toEqual(whole);
      }),
      { numRuns: RUNS },
    );
  });

  it('random bytes and mutated streams only throw ProtocolError, whatever the cuts', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
          fc.tuple(fc.array(validResponse, { minLength: 1, maxLength: 6 }), fc.array(mutation, { minLength: 1, maxLength: 5 })).map(([fs, ms]) => mutate(Buffer.concat(fs), ms)),
        ),
        cuts,
        (stream, c) => {
          const whole = decodeResponses(64, [stream]);
          // The same responses come out before the error, however the stream was cut.
          expect(decodeResponses(64, split(stream, c))).toEqual(whole);
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('txn codecs round trip (fast-check)', () => {
  it('TxnRequest, TxnCommandValue and TxnResult decode to what was encoded', () => {
    fc.assert(
      fc.property(txnRequest, txnResult, (req, res) => {
        expect(decodeTxnRequest(encodeTxnRequest(req))).toEqual(req);
        expect(decodeTxnCommandValue(encodeTxnCommandValue({ limits: { resultBytesMax: 5, keysMax: 6 }, request: req }))).toEqual({ limits: { resultBytesMax: 5, keysMax: 6 }, request: req });
        expect(decodeTxnResult(encodeTxnResult(res))).toEqual(res);
        const reply = decodeOutcomeReply(encodeOutcomeReply({ appliedIndex: 9, results: [{ outcome: ApplyOutcome.Applied, revision: 9, txn: encodeTxnResult(res) }] }));
        expect(decodeTxnResult(reply.results[0].txn!)).toEqual(res);
      }),
      { numRuns: 200 },
    );
  });

  it('KEEP_TTL (0x20) is a put\'s flag only: a get carrying it is refused on both sides', () => {
    const put = { compares: [], success: [{ kind: TxnOpKind.Put, key: Buffer.from('k'), value: Buffer.from('1'), flags: TxnOpFlags.KeepTtl }], failure: [] };
    const wire = encodeTxnRequest(put);
    expect(wire.toString('hex')).toBe('0000' + '0001' + '0120' + '000000016b' + '0000000131' + '0000');
    const get = { compares: [], success: [{ kind: TxnOpKind.Get, key: Buffer.from('k'), flags: TxnOpFlags.KeepTtl }], failure: [] };
    expect(() => encodeTxnRequest(get)).toThrow(RangeError);
    expect(() => decodeTxnRequest(Buffer.from('0000' + '0001' + '0320' + '000000016b' + '0000', 'hex'))).toThrow(/flags 0x20 not allowed/);
  });

  it('LEASE (0x40) is a put\'s flag only, with the lease id (1..2^53-1) after the value; not with KEEP_TTL, never lease 0', () => {
    const put = (flags: number, lease?: number) => ({ compares: [], success: [{ kind: TxnOpKind.Put, key: Buffer.from('k'), value: Buffer.from('v'), flags, ...(lease === undefined ? {} : { lease }) }], failure: [] });
    expect(encodeTxnRequest(put(TxnOpFlags.Lease, 0x1234)).toString('hex')).toBe('0000' + '0001' + '0140' + '000000016b' + '0000000176' + '0000000000001234' + '0000');
    expect(decodeTxnRequest(encodeTxnRequest(put(TxnOpFlags.Lease, 2 ** 53 - 1)))).toEqual(put(TxnOpFlags.Lease, 2 ** 53 - 1));
    for (const bad of [put(TxnOpFlags.Lease), put(TxnOpFlags.Lease, 0), put(TxnOpFlags.Lease, 1.5), put(0, 7), put(TxnOpFlags.Lease | TxnOpFlags.KeepTtl, 7)]) expect(() => encodeTxnRequest(bad)).toThrow(RangeError);
    expect(() => decodeTxnRequest(Buffer.from('0000' + '0001' + '0140' + '000000016b' + '0000000176' + '0000000000000000' + '0000', 'hex'))).toThrow(/lease 0/);
    expect(() => decodeTxnRequest(Buffer.from('0000' + '0001' + '0160' + '000000016b' + '0000000176' + '0000000000000007' + '0000', 'hex'))).toThrow(/not both/);
    // Cut inside the lease id, and a get carrying the flag.
    expect(() => decodeTxnRequest(Buffer.from('0000' + '0001' + '0140' + '000000016b' + '0000000176' + '000000', 'hex'))).toThrow(ProtocolError);
    expect(() => decodeTxnRequest(Buffer.from('0000' + '0001' + '0340' + '000000016b' + '0000', 'hex'))).toThrow(/flags 0x40 not allowed/);
  });
});
