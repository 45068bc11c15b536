/**
 * The write command (the data of one Raft entry, built by the gateway, opaque to Raft) and the
 * messages that ask a storage node what applying a command did (docs/protocol.md, "Write commands"
 * and "Outcomes"). Field encodings as in `internal.ts`.
 *
 * Command body: `u8 opByte | [u64 sessionId | u64 seq | u64 firstPendingSeq] | [u64 revision] | [u8 metaFlags | u64 leaseId | u64 expiresAtMs] | bytes key | bytes value`.
 * opByte bits: 0-3 op (1 Set, 2 Delete, 3 Incr: `value` = the i64 delta, 8 bytes; 4 Txn: empty `key`, `value` = `encodeTxnCommandValue`, txn.ts; lease/TTL ops 5-8, their operands in `value`: 5 LeaseGrant `u64 leaseId | u64 ttlMs`,
 * 6 LeaseRevoke `u64 leaseId` or `u64 leaseId | u8 RevokeCause`, 7 Expire `u64 expiresAtMs` (0 = persist) or `u64 expiresAtMs | u8 ExpireCondition | u64 nowMs`, 8 ExpireKey `u64
 * expiresAtMs`; 9..12 auth changes, auth.ts), 4-5 condition (0 none, 1 if-absent, 2 if-present: Set,
 * UserPut and RolePut only; 3 if-revision: Set or Delete, followed by its `u64 revision` operand), 6 META: a Set's
 * lease and expiry follow (`metaFlags` bit 0 = KEEPTTL), 7 session fields present. A plain Set/Delete is byte-for-byte the encoding that predates
 * conditions and sessions, so logs written before them decode unchanged.
 */
import { ByteReader, ByteWriter, bytesFieldBytes } from './bytes';
import { ProtocolError } from './constants';
import { TXN_RESULT_BASE_BYTES } from './txn';

/** Internal message type of a Command (same numbering as `MessageType` in internal.ts). */
const COMMAND_TYPE = 1;
/** Internal message types of the outcome query (storage node subject `read.<node>`). */
export const OUTCOME_REQUEST_TYPE = 20;
export const OUTCOME_REPLY_TYPE = 21;
const VERSION = 1;

export enum CommandOp {
  Set = 1,
  Delete = 2,
  /**
   * Add a signed 64-bit delta to the key's value read as a decimal integer (Redis INCRBY; a
   * missing key counts as 0), evaluated at apply time; the value field is `i64 delta` (8 bytes,
   * big-endian two's complement, `encodeIncrDelta`). Takes no condition.
   */
  Incr = 3,
  /**
   * An etcd-style transaction (txn.ts): `key` empty, `value` = `encodeTxnCommandValue` (limits +
   * TxnRequest). Compares and ops are evaluated at apply time, all its writes take effect at the
   * entry's index; its TxnResult comes back through the outcome query. Takes no condition.
   */
  Txn = 4,
  /**
   * Grant lease `leaseId` with `ttlMs` (etcd LeaseGrant); value = `u64 leaseId | u64 ttlMs`
   * (`encodeLeaseGrant`). ConditionFailed when the lease exists. The storage node records it;
   * the consensus leader keeps its deadline (docs/leases.md).
   */
  LeaseGrant = 5,
  /** Revoke lease `leaseId` (etcd LeaseRevoke): deletes it and every key attached, at this one revision; value = `u64 leaseId`. ConditionFailed when it does not exist. */
  LeaseRevoke = 6,
  /**
   * Set (expiresAtMs > 0) or remove (0) the absolute expiry of a live key without writing its value
   * (Redis EXPIRE/PEXPIREAT/PERSIST); value = `u64 expiresAtMs`, or (17 bytes, `encodeExpire`)
   * `u64 expiresAtMs | u8 ExpireCondition | u64 nowMs`: Redis 7's NX/XX/GT/LT evaluated at apply
   * time, and a key whose expiry is at or before `nowMs` (the gateway's clock at propose time)
   * counts as absent. ConditionFailed when the key is absent or the condition does not hold.
   */
  Expire = 7,
  /** Delete the key iff its recorded expiry is exactly `expiresAtMs` (proposed by the leader once it passed); value = `u64 expiresAtMs`. ConditionFailed otherwise (a newer write). */
  ExpireKey = 8,
  /** Enable or disable authentication (auth.ts AuthEnableValue); key empty. Takes no condition. */
  AuthEnable = 9,
  /** Create or change a user (auth.ts UserPutValue); key = the user name. IF_ABSENT = create only, IF_PRESENT = change only. */
  UserPut = 10,
  /** Create or change a role's permissions (auth.ts RolePutValue); key = the role name. IF_ABSENT / IF_PRESENT as UserPut. */
  RolePut = 11,
  /** Delete a user or a role (auth.ts AuthDeleteValue); key = the name. Takes no condition. */
  AuthDelete = 12,
}

/** Ops whose operands are a fixed-size `value` and whose key is empty (lease ops) or a key (expiry ops). */
const OPERAND_BYTES: Partial<Record<CommandOp, number>> = { [CommandOp.LeaseGrant]: 16, [CommandOp.LeaseRevoke]: 8, [CommandOp.Expire]: 8, [CommandOp.ExpireKey]: 8 };
/** Bytes of an Expire's long operand (`encodeExpire`); the short one is OPERAND_BYTES' 8. */
export const EXPIRE_OPERAND_BYTES = 17;
/** Bytes of a LeaseRevoke's long operand (`encodeLeaseRevoke` with a cause); the short one (a client's revoke, and every revoke logged before causes existed) is OPERAND_BYTES' 8. */
export const LEASE_REVOKE_CAUSE_OPERAND_BYTES = 9;

/** Whether `len` is a valid operand length of `op` (an Expire and a LeaseRevoke have two forms). */
function operandLengthOk(op: CommandOp, len: number): boolean {
  return len === OPERAND_BYTES[op] || (op === CommandOp.Expire && len === EXPIRE_OPERAND_BYTES) || (op === CommandOp.LeaseRevoke && len === LEASE_REVOKE_CAUSE_OPERAND_BYTES);
}

/** Redis 7 EXPIRE options (expire.c): evaluated against the key's current expiry at apply time. */
export enum ExpireCondition {
  None = 0,
  /** Only when the key has no expiry. */
  Nx = 1,
  /** Only when the key has an expiry. */
  Xx = 2,
  /** Only when the new expiry is later than the current one (a key without expiry counts as never expiring: never holds). */
  Gt = 3,
  /** Only when the new expiry is earlier than the current one (a key without expiry counts as never expiring: always holds). */
  Lt = 4,
  /** LT and XX together (Redis `EXPIRE k t LT XX`): only when the key has an expiry and the new one is earlier. */
  LtXx = 5,
}

/** An Expire's operands; a short (8-byte) operand decodes with condition None and nowMs 0. */
export interface ExpireOperand {
  expiresAtMs: number;
  condition: ExpireCondition;
  /** The proposer's clock: a key whose expiry is at or before it is absent. 0 = not checked. */
  nowMs: number;
}

/** The 17-byte value of an Expire. @throws RangeError on fields outside 0..2^53-1 or an unknown condition. */
export function encodeExpire(o: ExpireOperand): Buffer {
  if (!(o.condition >= ExpireCondition.None && o.condition <= ExpireCondition.LtXx)) throw new RangeError(`unknown expire condition ${o.condition}`);
  if (![o.expiresAtMs, o.nowMs].every((n) => Number.isSafeInteger(n) && n >= 0)) throw new RangeError('expire fields must be integers in 0..2^53-1');
  return new ByteWriter(EXPIRE_OPERAND_BYTES).u64(o.expiresAtMs).u8(o.condition).u64(o.nowMs).finish();
}

/** An Expire's value, either form. @throws ProtocolError on another length or an unknown condition. */
export function decodeExpire(value: Uint8Array): ExpireOperand {
  const r = new ByteReader(value);
  const expiresAtMs = r.u64();
  if (value.length === 8) return { expiresAtMs, condition: ExpireCondition.None, nowMs: 0 };
  const condition = r.u8();
  const nowMs = r.u64();
  r.end();
  if (condition > ExpireCondition.LtXx) throw new ProtocolError(`unknown expire condition ${condition}`);
  return { expiresAtMs, condition, nowMs };
}

/**
 * Whether an Expire to `next.expiresAtMs` holds on a key whose current expiry is `currentMs` (0 =
 * none): `currentMs` at or before `next.nowMs` means the key is gone (false); then Redis 7's
 * NX/XX/GT/LT. Shared by the storage nodes' applier and the leader's lease table, so both follow
 * the same keys the same way.
 */
export function expireHolds(next: ExpireOperand, currentMs: number): boolean {
  if (currentMs > 0 && next.nowMs > 0 && currentMs <= next.nowMs) return false;
  switch (next.condition) {
    case ExpireCondition.None:
      return true;
    case ExpireCondition.Nx:
      return currentMs === 0;
    case ExpireCondition.Xx:
      return currentMs !== 0;
    case ExpireCondition.Gt:
      return currentMs !== 0 && next.expiresAtMs > currentMs;
    case ExpireCondition.Lt:
      return currentMs === 0 || next.expiresAtMs < currentMs;
    case ExpireCondition.LtXx:
      return currentMs !== 0 && next.expiresAtMs < currentMs;
  }
}

/** Ops this codec knows (op 4, Txn, has its own). */
function knownOp(op: number): op is CommandOp {
  return isKnownOp(op) || OPERAND_BYTES[op as CommandOp] !== undefined;
}

/** Largest lease id (ids are 1..2^53-1: exact in a JS number; etcd's are int64). */
export const LEASE_ID_MAX = Number.MAX_SAFE_INTEGER;

/** The value of a LeaseGrant. @throws RangeError on an id outside 1..2^53-1 or a ttlMs that is not a positive safe integer. */
export function encodeLeaseGrant(leaseId: number, ttlMs: number): Buffer {
  checkLeaseId(leaseId);
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) throw new RangeError(`lease ttlMs must be a positive integer, got ${ttlMs}`);
  return new ByteWriter(16).u64(leaseId).u64(ttlMs).finish();
}

/** A LeaseGrant's operands. @throws ProtocolError on a bad length or id 0. */
export function decodeLeaseGrant(value: Uint8Array): { leaseId: number; ttlMs: number } {
  const r = new ByteReader(value);
  const leaseId = r.u64();
  const ttlMs = r.u64();
  r.end();
  if (leaseId === 0 || ttlMs === 0) throw new ProtocolError('lease grant with id 0 or ttl 0');
  return { leaseId, ttlMs };
}

/** The 8-byte value of a LeaseRevoke (a lease id) or of an Expire / ExpireKey (an expiresAtMs). */
export function encodeU64Operand(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`operand must be an integer in 0..2^53-1, got ${n}`);
  return new ByteWriter(8).u64(n).finish();
}

/** The u64 operand of a LeaseRevoke / Expire / ExpireKey value. @throws ProtocolError on a bad length. */
export function decodeU64Operand(value: Uint8Array): number {
  const r = new ByteReader(value);
  const n = r.u64();
  r.end();
  return n;
}

/** Why a LeaseRevoke was proposed (its optional `u8` after the lease id; docs/protocol.md "Lease and TTL commands"). */
export enum RevokeCause {
  /** A client's revoke (etcd LeaseRevoke); also the meaning of the 8-byte form. */
  Client = 0,
  /** The leader found the lease past its deadline (etcd's lessor expiry): its keys' deletes are flagged EXPIRED, as an ExpireKey's. */
  Expired = 1,
}

/** A LeaseRevoke's value: `u64 leaseId` for a client's revoke (the layout that predates causes), `u64 leaseId | u8 RevokeCause` otherwise. */
export function encodeLeaseRevoke(leaseId: number, cause: RevokeCause = RevokeCause.Client): Buffer {
  checkLeaseId(leaseId);
  if (cause === RevokeCause.Client) return encodeU64Operand(leaseId);
  return new ByteWriter(LEASE_REVOKE_CAUSE_OPERAND_BYTES).u64(leaseId).u8(cause).finish();
}

/** The lease id and cause of a LeaseRevoke value (8 bytes: a client's revoke). @throws ProtocolError on a bad length or an unknown cause. */
export function decodeLeaseRevoke(value: Uint8Array): { leaseId: number; cause: RevokeCause } {
  const r = new ByteReader(value);
  const leaseId = r.u64();
  const cause = value.length === LEASE_REVOKE_CAUSE_OPERAND_BYTES ? r.u8() : RevokeCause.Client;
  r.end();
  if (cause !== RevokeCause.Client && cause !== RevokeCause.Expired) throw new ProtocolError(`unknown lease revoke cause ${cause}`);
  return { leaseId, cause };
}

function checkLeaseId(id: number): void {
  if (!Number.isSafeInteger(id) || id < 1) throw new RangeError(`lease id must be an integer in 1..2^53-1, got ${id}`);
}

/**
 * A Set's lease and expiry (the META bit): `leaseId` 0 = no lease; `expiresAtMs` 0 = no expiry
 * (absolute, ms since the Unix epoch, from the gateway's clock at propose time); `keepTtl` keeps
 * the key's current expiry (Redis SET KEEPTTL), and then `expiresAtMs` is the proposer's clock
 * instead (0: not checked): a current expiry at or before it has passed, so the key is new and
 * gets none (`keptExpiry`). A Set without META detaches the key from its lease and removes its
 * expiry (etcd put, Redis SET).
 */
export interface CommandMeta {
  leaseId: number;
  expiresAtMs: number;
  keepTtl: boolean;
}

/** The expiry a KEEPTTL Set leaves on a key whose expiry is `currentMs` (0 = none), proposed at `nowMs` (0 = not checked): the current one unless it has passed. */
export function keptExpiry(currentMs: number, nowMs: number): number {
  return currentMs > 0 && (nowMs === 0 || currentMs > nowMs) ? currentMs : 0;
}

/** Whether `op` changes the auth state (ops 9..12) rather than a key. */
export function isAuthOp(op: number): boolean {
  return op >= CommandOp.AuthEnable && op <= CommandOp.AuthDelete;
}

const isKnownOp = (op: number): boolean => op === CommandOp.Set || op === CommandOp.Delete || op === CommandOp.Incr || op === CommandOp.Txn || isAuthOp(op);
/** Ops that take no condition and carry their own operand in `value`. */
const isUnconditionedOp = (op: number): boolean => op === CommandOp.Incr || op === CommandOp.Txn;
/** Ops that may carry IF_ABSENT / IF_PRESENT. */
const existenceConditionAllowed = (op: number): boolean => op === CommandOp.Set || op === CommandOp.UserPut || op === CommandOp.RolePut;

/** Bytes of an Incr command's value (the i64 delta). */
export const INCR_DELTA_BYTES = 8;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/** The value field of an Incr command. @throws RangeError when `delta` is not a signed 64-bit integer. */
export function encodeIncrDelta(delta: bigint): Buffer {
  if (delta < I64_MIN || delta > I64_MAX) throw new RangeError(`incr delta must be a signed 64-bit integer, got ${delta}`);
  const b = Buffer.alloc(INCR_DELTA_BYTES);
  b.writeBigInt64BE(delta);
  return b;
}

/** The delta of an Incr command's value field. @throws ProtocolError when it is not 8 bytes. */
export function decodeIncrDelta(value: Uint8Array): bigint {
  if (value.length !== INCR_DELTA_BYTES) throw new ProtocolError(`incr value must be the 8-byte delta, got ${value.length} bytes`);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).readBigInt64BE();
}

/**
 * Condition of a Set, evaluated by every storage node when it applies the entry (so the same log
 * order gives the same outcome on every node, replays included).
 */
export enum CommandCondition {
  None = 0,
  /** Apply only when the key does not exist (SET NX). */
  IfAbsent = 1,
  /** Apply only when the key exists (SET XX). */
  IfPresent = 2,
  /**
   * Apply only when the key's mod revision equals `Command.revision` (compare-and-swap; a missing
   * key compares as revision 0, as in etcd). Set or Delete.
   */
  IfRevision = 3,
}

/**
 * A client session's identity on a write (Raft thesis §6.3): the applier applies each
 * (sessionId, seq) at most once and may forget results of seqs below `firstPendingSeq` (the
 * client's lowest seq still awaiting a reply). `sessionId` is a 64-bit unsigned integer.
 */
export interface CommandSession {
  sessionId: bigint;
  seq: number;
  firstPendingSeq: number;
}

/** One client write; the data of one Raft entry. `value` is empty for Delete. */
export interface Command {
  op: CommandOp;
  key: Uint8Array;
  value: Uint8Array;
  /** Absent = None. Only Set may carry a condition. */
  condition?: CommandCondition;
  /** IfRevision only (required there): the mod revision the key must have, 0 = the key must be missing. Integer in 0..2^53-1. */
  revision?: number;
  /** Absent = a write outside any session (no deduplication). */
  session?: CommandSession;
  /** Set only: its lease and expiry (absent = none: a plain Set detaches and clears them). */
  meta?: CommandMeta;
}

const OP_MASK = 0x0f;
const CONDITION_SHIFT = 4;
const CONDITION_MASK = 0x30;
const META_BIT = 0x40;
const META_FIELDS_BYTES = 1 + 8 + 8;
const META_KEEP_TTL = 0x01;
const SESSION_BIT = 0x80;
const SESSION_FIELDS_BYTES = 24;
const U64_MAX = (1n << 64n) - 1n;

/** Bytes a command's session fields add to its encoded body (commandBodyBytes of a command with a session minus without). */
export const COMMAND_SESSION_BYTES = SESSION_FIELDS_BYTES;

/** Smallest encoded command body, bytes (op byte + two empty bytes fields). */
export const COMMAND_BODY_BYTES_MIN = 1 + 4 + 4;

/** Encoded size of a command body (no message header), bytes. */
export function commandBodyBytes(c: Command): number {
  return 1 + (c.session ? SESSION_FIELDS_BYTES : 0) + (c.meta ? META_FIELDS_BYTES : 0) + (c.condition === CommandCondition.IfRevision ? 8 : 0) + bytesFieldBytes(c.key) + bytesFieldBytes(c.value);
}

/** @throws RangeError on an unknown op or condition, an existence condition on Delete, a bad or misplaced revision operand, or session fields out of range. */
export function writeCommandBody(w: ByteWriter, c: Command): void {
  if (!knownOp(c.op)) throw new RangeError(`unknown command op ${c.op as number}`);
  const condition = c.condition ?? CommandCondition.None;
  checkOperandShape(c, condition);
  if (c.op === CommandOp.Incr && (condition !== CommandCondition.None || c.value.length !== INCR_DELTA_BYTES)) throw new RangeError('IncrShape: an Incr carries no condition and an 8-byte delta');
  if (c.op === CommandOp.Txn && (condition !== CommandCondition.None || c.key.length !== 0)) throw new RangeError('TxnShape: a Txn carries no condition and no key');
  if (condition < CommandCondition.None || condition > CommandCondition.IfRevision) throw new RangeError(`unknown command condition ${condition as number}`);
  if ((condition === CommandCondition.IfAbsent || condition === CommandCondition.IfPresent) && !existenceConditionAllowed(c.op)) throw new RangeError('ConditionOnlyOnSet: a Delete carries no existence condition');
  if (condition === CommandCondition.IfRevision && isAuthOp(c.op)) throw new RangeError('NoRevisionOnAuth: an auth change carries no revision condition');
  const cas = condition === CommandCondition.IfRevision;
  if (cas !== (c.revision !== undefined)) throw new RangeError('RevisionOperandIffIfRevision: a revision operand goes with the if-revision condition and only with it');
  if (cas && (!Number.isSafeInteger(c.revision) || c.revision! < 0)) throw new RangeError(`revision operand must be an integer in 0..2^53-1, got ${c.revision}`);
  w.u8(c.op | (condition << CONDITION_SHIFT) | (c.meta ? META_BIT : 0) | (c.session ? SESSION_BIT : 0));
  if (c.session) {
    const s = c.session;
    if (s.firstPendingSeq > s.seq) throw new RangeError(`FirstPendingAfterSeq: firstPendingSeq ${s.firstPendingSeq} > seq ${s.seq}`);
    const id = sessionIdWords(s.sessionId);
    w.u32(id.hi).u32(id.lo).u64(s.seq).u64(s.firstPendingSeq);
  }
  if (cas) w.u64(c.revision!);
  if (c.meta) w.u8(c.meta.keepTtl ? META_KEEP_TTL : 0).u64(c.meta.leaseId).u64(c.meta.expiresAtMs);
  w.bytes(c.key).bytes(c.value);
}

/** The last session id written and its two u32 words: a gateway writes its one session id in every command, and BigInt shifts allocate. */
const lastSessionId: { id: bigint | null; hi: number; lo: number } = { id: null, hi: 0, lo: 0 };

/** `sessionId`'s high and low u32 words. @throws RangeError when it is not a u64. */
function sessionIdWords(sessionId: bigint): { hi: number; lo: number } {
  if (sessionId === lastSessionId.id) return lastSessionId;
  if (sessionId < 0n || sessionId > U64_MAX) throw new RangeError(`sessionId must be a u64, got ${sessionId}`);
  lastSessionId.hi = Number(sessionId >> 32n);
  lastSessionId.lo = Number(sessionId & 0xffff_ffffn);
  lastSessionId.id = sessionId;
  return lastSessionId;
}

/** Shape rules of the lease/TTL ops and of META (writer side; the reader checks the same). */
function checkOperandShape(c: Command, condition: CommandCondition): void {
  const operand = OPERAND_BYTES[c.op];
  if (operand !== undefined && (condition !== CommandCondition.None || !operandLengthOk(c.op, c.value.length) || c.meta)) throw new RangeError(`OperandShape: op ${c.op} carries no condition or META and a ${operand}-byte value`);
  if ((c.op === CommandOp.LeaseGrant || c.op === CommandOp.LeaseRevoke) && c.key.length !== 0) throw new RangeError('LeaseOpHasNoKey: a lease op carries an empty key');
  if (c.meta) {
    if (c.op !== CommandOp.Set) throw new RangeError('MetaOnlyOnSet: only a Set carries a lease or an expiry');
    const m = c.meta;
    if (!Number.isSafeInteger(m.leaseId) || m.leaseId < 0 || !Number.isSafeInteger(m.expiresAtMs) || m.expiresAtMs < 0) throw new RangeError('META fields must be integers in 0..2^53-1');
  }
}

/** @throws ProtocolError on an unknown op, condition or reserved bit, an existence condition on Delete, or a Delete with a value. */
export function readCommandBody(r: ByteReader): Command {
  const b = r.u8();
  const op = b & OP_MASK;
  if (!knownOp(op)) throw new ProtocolError(`unknown command op ${op} (op byte 0x${b.toString(16)})`);
  if (b & META_BIT && op !== CommandOp.Set) throw new ProtocolError(`META bit on op ${op} (op byte 0x${b.toString(16)})`);
  const condition = (b & CONDITION_MASK) >> CONDITION_SHIFT;
  const operand = OPERAND_BYTES[op];
  if (operand !== undefined && condition !== CommandCondition.None) throw new ProtocolError(`condition ${condition} on op ${op}`);
  if ((condition === CommandCondition.IfAbsent || condition === CommandCondition.IfPresent) && !existenceConditionAllowed(op)) throw new ProtocolError(`condition ${condition} on ${op === CommandOp.Delete ? 'a Delete' : op === CommandOp.Incr ? 'an Incr' : op === CommandOp.Txn ? 'a Txn' : `an auth (op ${op})`} command`);
  if (condition === CommandCondition.IfRevision && isAuthOp(op)) throw new ProtocolError(`condition ${condition} on auth op ${op}`);
  if (condition !== CommandCondition.None && isUnconditionedOp(op)) throw new ProtocolError(`condition ${condition} on an op ${op} command`);
  const c: Command = { op, key: Buffer.alloc(0), value: Buffer.alloc(0) };
  if (condition !== CommandCondition.None) c.condition = condition;
  if (b & SESSION_BIT) {
    const sessionId = (BigInt(r.u32()) << 32n) | BigInt(r.u32());
    const seq = r.u64();
    const firstPendingSeq = r.u64();
    if (firstPendingSeq > seq) throw new ProtocolError(`firstPendingSeq ${firstPendingSeq} > seq ${seq}`);
    c.session = { sessionId, seq, firstPendingSeq };
  }
  if (condition === CommandCondition.IfRevision) c.revision = r.u64();
  if (b & META_BIT) {
    const flags = r.u8();
    if (flags & ~META_KEEP_TTL) throw new ProtocolError(`unknown META flags 0x${flags.toString(16)}`);
    const meta: CommandMeta = { leaseId: r.u64(), expiresAtMs: r.u64(), keepTtl: (flags & META_KEEP_TTL) !== 0 };
    c.meta = meta;
  }
  c.key = r.bytes();
  c.value = r.bytes();
  if (operand !== undefined && !operandLengthOk(op, c.value.length)) throw new ProtocolError(`op ${op} value must be its ${operand}-byte operand, got ${c.value.length} bytes`);
  if ((op === CommandOp.LeaseGrant || op === CommandOp.LeaseRevoke) && c.key.length !== 0) throw new ProtocolError(`lease op ${op} with a key`);
  if (op === CommandOp.Incr && c.value.length !== INCR_DELTA_BYTES) throw new ProtocolError(`incr value must be the 8-byte delta, got ${c.value.length} bytes`);
  if (op === CommandOp.Txn && c.key.length !== 0) throw new ProtocolError(`a Txn command carries no key, got ${c.key.length} bytes`);
  return c;
}


/** The op of an encoded Command (`encodeCommand` bytes) without decoding it, or null when the bytes are not a Command of this version. */
export function peekCommandOp(data: Uint8Array): number | null {
  if (data.length < 3 || data[0] !== COMMAND_TYPE || data[1] !== VERSION) return null;
  return data[2] & OP_MASK;
}

/** Whether an encoded Command (`encodeCommand` bytes) carries META (a lease or an expiry) without decoding it; false when the bytes are not a Command of this version. */
export function peekCommandMeta(data: Uint8Array): boolean {
  return peekCommandOp(data) !== null && (data[2] & META_BIT) !== 0;
}

/** `header(1) | command body`: one Raft entry's data. */
export function encodeCommand(c: Command): Buffer {
  const w = new ByteWriter(2 + commandBodyBytes(c)).u8(COMMAND_TYPE).u8(VERSION);
  writeCommandBody(w, c);
  return w.finish();
}

export function decodeCommand(b: Uint8Array): Command {
  const r = new ByteReader(b);
  r.header(COMMAND_TYPE, VERSION, 'Command');
  const c = readCommandBody(r);
  r.end();
  return c;
}

// ---- Outcomes ------------------------------------------------------------------------------------

/** What applying one committed entry did, as a storage node recorded it. */
export enum ApplyOutcome {
  /** The node has not applied the index yet (it waited its readWaitMs). Ask again or elsewhere. */
  Pending = 0,
  /** Applied; `revision` = the index it took effect at (for a duplicate: the original's index). */
  Applied = 1,
  /** A condition was false: not applied; `revision` = the index it was evaluated at. */
  ConditionFailed = 2,
  /** Applied index ≥ the index but no result recorded: evicted from the bounded results table, recorded before the node restarted, or not a recorded write. */
  Unknown = 3,
}

/**
 * Gateway → storage node: the outcome of each committed entry; answered once appliedIndex ≥ every
 * index (or the node's wait ends). `session` (the write's sessionId and seq) lets the node answer
 * from its session table, which survives restarts and knows the original outcome of a duplicate.
 */
export interface OutcomeRequest {
  queries: { index: number; session?: { sessionId: bigint; seq: number } }[];
}

/** Why an Incr was not applied (its outcome is ConditionFailed). */
export enum CounterRefusal {
  /** The value is not a decimal signed 64-bit integer (Redis: "value is not an integer or out of range"). */
  NotInteger = 1,
  /** The sum leaves the signed 64-bit range (Redis: "increment or decrement would overflow"). */
  Overflow = 2,
}

/** Why a Txn was not applied (its outcome is ConditionFailed; nothing of it was written). */
export enum TxnRefusal {
  /** Its TxnResult would exceed the command's resultBytesMax, or it touches more than keysMax keys, or its writes exceed the largest engine record. */
  TooLarge = 1,
}

/** Why a lease-related write was not applied (its outcome is ConditionFailed). */
export enum LeaseRefusal {
  /** The lease named does not exist (etcd "requested lease not found"): a put with it, or a revoke. */
  NotFound = 1,
  /** The lease already holds its keysPerLeaseMax keys. */
  KeysFull = 2,
}

/**
 * What applying one entry did. `counter`: an applied Incr's new value. `refusal`: why an Incr was
 * not applied, `leaseRefusal`: why a lease-related write was not (outcome ConditionFailed both).
 * `txn`: an applied Txn's encoded TxnResult (txn.ts; a failed compare is still Applied, with
 * `succeeded` false). `txnRefusal`: why a Txn was not applied.
 */
export interface OutcomeResult {
  outcome: ApplyOutcome;
  revision: number;
  counter?: bigint;
  refusal?: CounterRefusal;
  leaseRefusal?: LeaseRefusal;
  txn?: Uint8Array;
  txnRefusal?: TxnRefusal;
}

/** One result per index, in request order. */
export interface OutcomeReply {
  appliedIndex: number;
  results: OutcomeResult[];
}

/** Wire-only outcome codes of an Incr's result (docs/protocol.md "Outcomes"): Applied + `i64 counter`; ConditionFailed for a refusal. */
const WIRE_COUNTED = 4;
const WIRE_REFUSED_NOT_INTEGER = 5;
const WIRE_REFUSED_OVERFLOW = 6;
/** Applied Txn: `u8 7 | u64 revision | bytes txnResult`. */
const WIRE_TXN = 7;
/** A Txn refused as too large (ConditionFailed): `u8 8 | u64 revision`. */
const WIRE_TXN_TOO_LARGE = 8;
const WIRE_REFUSED_LEASE_NOT_FOUND = 9;
const WIRE_REFUSED_LEASE_KEYS_FULL = 10;
/** Largest encoded result without a TxnResult, bytes: `u8 outcome | u64 revision | [i64 counter]`. */
export const OUTCOME_RESULT_BYTES_MAX = 1 + 8 + 8;
/** Bytes of an OutcomeReply before its results: `u8 type | u8 version | u64 appliedIndex | u32 count`. */
export const OUTCOME_REPLY_BASE_BYTES = 2 + 8 + 4;
/** Bytes an applied Txn's result adds to an OutcomeReply on top of its TxnResult: `u8 | u64 | u32 length`. */
export const OUTCOME_TXN_OVERHEAD_BYTES = 1 + 8 + 4;

/** Encoded bytes of one result in an OutcomeReply (the storage node fills a reply up to its payload bound with it). */
export function outcomeResultBytes(x: OutcomeResult): number {
  if (x.outcome === ApplyOutcome.Applied && x.txn !== undefined) return OUTCOME_TXN_OVERHEAD_BYTES + x.txn.length;
  return x.counter !== undefined && x.outcome === ApplyOutcome.Applied ? 17 : 9;
}

function writeResult(w: ByteWriter, x: OutcomeResult): void {
  if (x.outcome === ApplyOutcome.Applied && x.txn !== undefined) {
    w.u8(WIRE_TXN).u64(x.revision).bytes(x.txn);
    return;
  }
  if (x.outcome === ApplyOutcome.ConditionFailed && x.txnRefusal !== undefined) {
    w.u8(WIRE_TXN_TOO_LARGE).u64(x.revision);
    return;
  }
  if (x.outcome === ApplyOutcome.Applied && x.counter !== undefined) {
    w.u8(WIRE_COUNTED).u64(x.revision);
    const u = BigInt.asUintN(64, x.counter);
    w.u32(Number(u >> 32n)).u32(Number(u & 0xffff_ffffn));
    return;
  }
  if (x.outcome === ApplyOutcome.ConditionFailed && x.leaseRefusal !== undefined) {
    w.u8(x.leaseRefusal === LeaseRefusal.KeysFull ? WIRE_REFUSED_LEASE_KEYS_FULL : WIRE_REFUSED_LEASE_NOT_FOUND).u64(x.revision);
    return;
  }
  if (x.outcome === ApplyOutcome.ConditionFailed && x.refusal !== undefined) {
    w.u8(x.refusal === CounterRefusal.Overflow ? WIRE_REFUSED_OVERFLOW : WIRE_REFUSED_NOT_INTEGER).u64(x.revision);
    return;
  }
  w.u8(x.outcome).u64(x.revision);
}

function readResult(r: ByteReader): OutcomeResult {
  const code = r.u8();
  const revision = r.u64();
  if (code <= ApplyOutcome.Unknown) return { outcome: code, revision };
  if (code === WIRE_COUNTED) return { outcome: ApplyOutcome.Applied, revision, counter: BigInt.asIntN(64, (BigInt(r.u32()) << 32n) | BigInt(r.u32())) };
  if (code === WIRE_REFUSED_NOT_INTEGER) return { outcome: ApplyOutcome.ConditionFailed, revision, refusal: CounterRefusal.NotInteger };
  if (code === WIRE_REFUSED_OVERFLOW) return { outcome: ApplyOutcome.ConditionFailed, revision, refusal: CounterRefusal.Overflow };
  if (code === WIRE_REFUSED_LEASE_NOT_FOUND) return { outcome: ApplyOutcome.ConditionFailed, revision, leaseRefusal: LeaseRefusal.NotFound };
  if (code === WIRE_REFUSED_LEASE_KEYS_FULL) return { outcome: ApplyOutcome.ConditionFailed, revision, leaseRefusal: LeaseRefusal.KeysFull };
  if (code === WIRE_TXN) {
    const txn = r.bytes();
    if (txn.length < TXN_RESULT_BASE_BYTES) throw new ProtocolError(`txn result of ${txn.length} bytes`);
    return { outcome: ApplyOutcome.Applied, revision, txn };
  }
  if (code === WIRE_TXN_TOO_LARGE) return { outcome: ApplyOutcome.ConditionFailed, revision, txnRefusal: TxnRefusal.TooLarge };
  throw new ProtocolError(`unknown apply outcome ${code}`);
}

/** `header(20) | u32 count | (u64 index | bool hasSession | [u64 sessionId | u64 seq])*`. */
export function encodeOutcomeRequest(q: OutcomeRequest): Buffer {
  let size = 2 + 4;
  for (const x of q.queries) size += 9 + (x.session ? 16 : 0);
  const w = new ByteWriter(size).u8(OUTCOME_REQUEST_TYPE).u8(VERSION).u32(q.queries.length);
  for (const x of q.queries) {
    w.u64(x.index).bool(x.session !== undefined);
    if (x.session) {
      const id = x.session.sessionId;
      if (id < 0n || id > U64_MAX) throw new RangeError(`sessionId must be a u64, got ${id}`);
      w.u32(Number(id >> 32n)).u32(Number(id & 0xffff_ffffn)).u64(x.session.seq);
    }
  }
  return w.finish();
}

export function decodeOutcomeRequest(b: Uint8Array): OutcomeRequest {
  const r = new ByteReader(b);
  r.header(OUTCOME_REQUEST_TYPE, VERSION, 'OutcomeRequest');
  const queries: OutcomeRequest['queries'] = r.list(9, () => {
    const index = r.u64();
    return r.bool() ? { index, session: { sessionId: (BigInt(r.u32()) << 32n) | BigInt(r.u32()), seq: r.u64() } } : { index };
  });
  r.end();
  return { queries };
}

/**
 * `header(21) | u64 appliedIndex | u32 count | (u8 outcome | u64 revision | [i64 counter | bytes txnResult])*`.
 * outcome 0-3 = ApplyOutcome; 4 = Applied with the Incr's new value (`i64 counter` follows);
 * 5 / 6 = ConditionFailed: an Incr refused as not an integer / as an overflow; 7 = an applied
 * Txn (`u32 length | TxnResult` follows); 8 = ConditionFailed: a Txn refused as too large; 9 / 10 =
 * ConditionFailed: the lease named does not exist / holds keysPerLeaseMax keys.
 */
export function encodeOutcomeReply(q: OutcomeReply): Buffer {
  let size = OUTCOME_REPLY_BASE_BYTES;
  for (const x of q.results) size += outcomeResultBytes(x);
  const w = new ByteWriter(size).u8(OUTCOME_REPLY_TYPE).u8(VERSION).u64(q.appliedIndex).u32(q.results.length);
  for (const x of q.results) writeResult(w, x);
  return w.finish();
}

export function decodeOutcomeReply(b: Uint8Array): OutcomeReply {
  const r = new ByteReader(b);
  r.header(OUTCOME_REPLY_TYPE, VERSION, 'OutcomeReply');
  const appliedIndex = r.u64();
  const results: OutcomeReply['results'] = r.list(9, readResult);
  r.end();
  return { appliedIndex, results };
}
