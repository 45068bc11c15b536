/**
 * Transactions, etcd Txn semantics (etcd API "Txn"; etcd server/etcdserver/txn): `if` every
 * compare holds `then` the success ops `else` the failure ops, applied atomically at ONE revision
 * (the entry's Raft index) by every storage node, in log order. docs/protocol.md "Txn" gives the
 * layouts below with test vectors; the same request bytes travel as the TLV TXN (0x06) value and,
 * behind a limits header, as the value of a Txn command (command op 4).
 *
 * TxnRequest (big-endian; `bytes` = `u32 length | bytes`):
 * ```
 * u16 compareCount | compare* | u16 successCount | op* | u16 failureCount | op*
 * compare: u8 target (1 value, 2 mod revision, 3 create revision, 4 version)
 *        | u8 result (0 =, 1 !=, 2 >, 3 <) | bytes key | target 1: bytes value ; else u64 operand
 * op:      u8 kind (1 put, 2 delete, 3 get, 4 range) | u8 flags | bytes key | put: bytes value [| u64 leaseId]
 *        | delete: bytes end | get: nothing | range: bytes end | u32 limit (0 = no limit but the bounds)
 * flags:   0x01 PREV_KV (put, delete) | 0x02 PREFIX (delete, range: every key starting with `key`;
 *          `end` must be empty) | 0x04 KEYS_ONLY (get, range) | 0x08 COUNT_ONLY (range) | 0x10 REVERSE (range)
 *          | 0x20 KEEP_TTL (put: keep the key's lease and expiry) | 0x40 LEASE (put: attach the key to
 *          the lease `leaseId`, 1..2^53-1, after the value; not with KEEP_TTL)
 * end:     empty = the single key `key`; one 0x00 byte = every key >= `key` (etcd's "\0"); else [key, end)
 * ```
 * A key is never empty (etcd: "key is not provided"; the empty key is the auth state's), except as
 * the start of a range (PREFIX or an end given: delete, range), which then starts at the first key.
 * TxnResult (the TLV OK payload; the revision is the frame's / outcome's):
 * ```
 * u8 succeeded | u16 count | response*
 * response: u8 kind | put: u8 hasPrev | [kv] ; delete: u32 deleted | u32 prevCount | kv*
 *         | get: u8 found | [kv] ; range: u32 count | u8 more | u32 n | kv*
 * kv: bytes key | bytes value | u64 modRevision | u64 createRevision | u64 version
 * ```
 */
import { ByteReader, ByteWriter, bytesFieldBytes } from './bytes';
import { ProtocolError } from './constants';

/** What a compare looks at (etcd Compare.CompareTarget). A missing key has revisions and version 0 and no value. */
export enum CompareTarget {
  Value = 1,
  ModRevision = 2,
  CreateRevision = 3,
  Version = 4,
}

/** How it compares (etcd Compare.CompareResult): the key's figure `result` the operand. */
export enum CompareResult {
  Equal = 0,
  NotEqual = 1,
  Greater = 2,
  Less = 3,
}

/**
 * One compare. `value` for target Value (compared bytewise, unsigned; a missing key's value is
 * absent: only `!=` holds against it), `operand` (integer 0..2^53-1) otherwise.
 */
export interface TxnCompare {
  key: Uint8Array;
  target: CompareTarget;
  result: CompareResult;
  value?: Uint8Array;
  operand?: number;
}

export enum TxnOpKind {
  Put = 1,
  Delete = 2,
  Get = 3,
  Range = 4,
}

/** Op flag bits (docs/protocol.md "Txn"). */
export const TxnOpFlags = {
  PrevKv: 0x01,
  Prefix: 0x02,
  KeysOnly: 0x04,
  CountOnly: 0x08,
  Reverse: 0x10,
  /**
   * Put only: keep the key's lease and expiry (etcd PutRequest.ignore_lease; Redis INCR keeps a
   * key's TTL). Without it a txn's put detaches the key from its lease and clears its expiry
   * (etcd put without a lease, Redis SET). A put after a delete of the key in the same txn has
   * nothing left to keep.
   */
  KeepTtl: 0x20,
  /**
   * Put only: a `u64 leaseId` (1..2^53-1) follows the value; the key is attached to that lease
   * (etcd PutRequest.lease) and loses any expiry of its own. At apply time a lease that does not
   * exist fails the whole txn, nothing applied (etcd `checkRequestPut`: ErrLeaseNotFound), as does
   * one already holding keysPerLeaseMax keys. Not with KEEP_TTL (etcd: "lease and ignore_lease
   * cannot both be set").
   */
  Lease: 0x40,
} as const;

/** Flags each op kind accepts. */
const FLAGS_ALLOWED: Record<TxnOpKind, number> = {
  [TxnOpKind.Put]: TxnOpFlags.PrevKv | TxnOpFlags.KeepTtl | TxnOpFlags.Lease,
  [TxnOpKind.Delete]: TxnOpFlags.PrevKv | TxnOpFlags.Prefix,
  [TxnOpKind.Get]: TxnOpFlags.KeysOnly,
  [TxnOpKind.Range]: TxnOpFlags.Prefix | TxnOpFlags.KeysOnly | TxnOpFlags.CountOnly | TxnOpFlags.Reverse,
};

/**
 * One op. Put: `value`. Delete and Range: `end` (empty = the single key, `[0]` = every key ≥ key,
 * else [key, end)) or `flags & PREFIX`. Range: `limit` keys at most (0 = only the bounds).
 * Get: the single key. `flags`: TxnOpFlags allowed for the kind. Put with flag LEASE: `lease`,
 * the lease id (1..2^53-1).
 */
export interface TxnOp {
  kind: TxnOpKind;
  key: Uint8Array;
  flags?: number;
  value?: Uint8Array;
  lease?: number;
  end?: Uint8Array;
  limit?: number;
}

export interface TxnRequest {
  compares: TxnCompare[];
  success: TxnOp[];
  failure: TxnOp[];
}

/** A key-value in a result (etcd mvccpb.KeyValue): value empty with KEYS_ONLY. */
export interface TxnKv {
  key: Uint8Array;
  value: Uint8Array;
  modRevision: number;
  createRevision: number;
  version: number;
}

/** One op's response, in op order. */
export type TxnOpResponse =
  | { kind: TxnOpKind.Put; prev?: TxnKv }
  | { kind: TxnOpKind.Delete; deleted: number; prev: TxnKv[] }
  | { kind: TxnOpKind.Get; kv?: TxnKv }
  | { kind: TxnOpKind.Range; count: number; more: boolean; kvs: TxnKv[] };

/** The outcome of an applied txn (etcd TxnResponse, the revision travels beside it). */
export interface TxnResult {
  succeeded: boolean;
  responses: TxnOpResponse[];
}

const EMPTY = new Uint8Array(0);
const OP_BYTES_MIN = 1 + 1 + 4;
const COMPARE_BYTES_MIN = 1 + 1 + 4 + 4;
/** Bytes of a kv in a TxnResult besides its key and value. */
export const TXN_KV_OVERHEAD_BYTES = 4 + 4 + 8 + 8 + 8;

function compareBytes(c: TxnCompare): number {
  return 2 + bytesFieldBytes(c.key) + (c.target === CompareTarget.Value ? bytesFieldBytes(c.value ?? EMPTY) : 8);
}

function opBytes(o: TxnOp): number {
  let n = 2 + bytesFieldBytes(o.key);
  if (o.kind === TxnOpKind.Put) n += bytesFieldBytes(o.value ?? EMPTY) + ((o.flags ?? 0) & TxnOpFlags.Lease ? 8 : 0);
  else if (o.kind === TxnOpKind.Delete) n += bytesFieldBytes(o.end ?? EMPTY);
  else if (o.kind === TxnOpKind.Range) n += bytesFieldBytes(o.end ?? EMPTY) + 4;
  return n;
}

/** Encoded size of a TxnRequest, bytes. */
export function txnRequestBytes(t: TxnRequest): number {
  let n = 6;
  for (const c of t.compares) n += compareBytes(c);
  for (const o of t.success) n += opBytes(o);
  for (const o of t.failure) n += opBytes(o);
  return n;
}

/** Ops of a txn in both branches plus its compares (what `txnOpsMax` bounds). */
export function txnOpsCount(t: TxnRequest): number {
  return t.compares.length + t.success.length + t.failure.length;
}

function assertCount(n: number, what: string): void {
  if (n > 0xffff) throw new RangeError(`${what}: ${n} exceeds 65535`);
}

/** Whether `o` selects a range of keys (PREFIX or an end key: delete, range) rather than the single key `o.key`. */
export function isRangeOp(o: TxnOp): boolean {
  return (o.kind === TxnOpKind.Delete || o.kind === TxnOpKind.Range) && (((o.flags ?? 0) & TxnOpFlags.Prefix) !== 0 || (o.end ?? EMPTY).length > 0);
}

/** @throws RangeError on a shape the decoder would refuse (unknown kind, target or result, a bad flag, a missing operand, an empty key outside a range start, over 65535 entries in a list). */
export function writeTxnRequest(w: ByteWriter, t: TxnRequest): void {
  assertCount(t.compares.length, 'compares');
  w.u16(t.compares.length);
  for (const c of t.compares) {
    if (!(c.target in CompareTarget) || !(c.result in CompareResult)) throw new RangeError(`unknown compare target ${c.target} or result ${c.result}`);
    if (c.key.length === 0) throw new RangeError('txn compare on the empty key');
    w.u8(c.target).u8(c.result).bytes(c.key);
    if (c.target === CompareTarget.Value) w.bytes(c.value ?? EMPTY);
    else {
      if (!Number.isSafeInteger(c.operand) || c.operand! < 0) throw new RangeError(`compare operand must be an integer in 0..2^53-1, got ${c.operand}`);
      w.u64(c.operand!);
    }
  }
  for (const ops of [t.success, t.failure]) {
    assertCount(ops.length, 'ops');
    w.u16(ops.length);
    for (const o of ops) {
      const flags = o.flags ?? 0;
      if (!(o.kind in TxnOpKind)) throw new RangeError(`unknown txn op kind ${o.kind}`);
      if (flags & ~FLAGS_ALLOWED[o.kind]) throw new RangeError(`flags 0x${flags.toString(16)} not allowed on txn op kind ${o.kind}`);
      if (o.key.length === 0 && !isRangeOp(o)) throw new RangeError(`txn op kind ${o.kind} on the empty key`);
      if ((o.end ?? EMPTY).length > 0 && flags & TxnOpFlags.Prefix) throw new RangeError('a PREFIX txn op carries no end key');
      const leased = (flags & TxnOpFlags.Lease) !== 0;
      if (leased && flags & TxnOpFlags.KeepTtl) throw new RangeError('a txn put carries LEASE or KEEP_TTL, not both');
      if (leased ? !Number.isSafeInteger(o.lease) || o.lease! < 1 : o.lease !== undefined) throw new RangeError(`a txn put's lease must be an integer in 1..2^53-1 with flag LEASE, got ${o.lease}`);
      w.u8(o.kind).u8(flags).bytes(o.key);
      if (o.kind === TxnOpKind.Put) {
        w.bytes(o.value ?? EMPTY);
        if (leased) w.u64(o.lease!);
      }
      else if (o.kind === TxnOpKind.Delete) w.bytes(o.end ?? EMPTY);
      else if (o.kind === TxnOpKind.Range) {
        const limit = o.limit ?? 0;
        if (!Number.isInteger(limit) || limit < 0 || limit > 0xffff_ffff) throw new RangeError(`range limit must be a u32, got ${limit}`);
        w.bytes(o.end ?? EMPTY).u32(limit);
      }
    }
  }
}

/** The TxnRequest bytes (the TLV TXN value). @throws RangeError as writeTxnRequest. */
export function encodeTxnRequest(t: TxnRequest): Buffer {
  const w = new ByteWriter(txnRequestBytes(t));
  writeTxnRequest(w, t);
  return w.finish();
}

function readOps(r: ByteReader): TxnOp[] {
  const n = r.u16();
  if (n * OP_BYTES_MIN > r.remaining()) throw new ProtocolError(`truncated txn: ${n} ops declared, ${r.remaining()} bytes left`);
  const ops: TxnOp[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const kind = r.u8();
    if (kind < TxnOpKind.Put || kind > TxnOpKind.Range) throw new ProtocolError(`unknown txn op kind ${kind}`);
    const flags = r.u8();
    if (flags & ~FLAGS_ALLOWED[kind as TxnOpKind]) throw new ProtocolError(`txn op flags 0x${flags.toString(16)} not allowed on op kind ${kind}`);
    const o: TxnOp = { kind, key: r.bytes(), flags };
    if (kind === TxnOpKind.Put) {
      o.value = r.bytes();
      if (flags & TxnOpFlags.Lease) {
        if (flags & TxnOpFlags.KeepTtl) throw new ProtocolError('a txn put carries LEASE or KEEP_TTL, not both');
        o.lease = r.u64();
        if (o.lease === 0) throw new ProtocolError('a txn put with LEASE names lease 0');
      }
    }
    else if (kind === TxnOpKind.Delete) o.end = r.bytes();
    else if (kind === TxnOpKind.Range) {
      o.end = r.bytes();
      o.limit = r.u32();
    }
    if (o.end && o.end.length > 0 && flags & TxnOpFlags.Prefix) throw new ProtocolError('a PREFIX txn op carries no end key');
    if (o.key.length === 0 && !isRangeOp(o)) throw new ProtocolError(`txn op kind ${kind} on the empty key`);
    ops[i] = o;
  }
  return ops;
}

/** Reads a TxnRequest. @throws ProtocolError on anything the layout does not allow (never another error). */
export function readTxnRequest(r: ByteReader): TxnRequest {
  const nc = r.u16();
  if (nc * COMPARE_BYTES_MIN > r.remaining()) throw new ProtocolError(`truncated txn: ${nc} compares declared, ${r.remaining()} bytes left`);
  const compares: TxnCompare[] = new Array(nc);
  for (let i = 0; i < nc; i++) {
    const target = r.u8();
    const result = r.u8();
    if (target < CompareTarget.Value || target > CompareTarget.Version) throw new ProtocolError(`unknown compare target ${target}`);
    if (result > CompareResult.Less) throw new ProtocolError(`unknown compare result ${result}`);
    const key = r.bytes();
    if (key.length === 0) throw new ProtocolError('txn compare on the empty key');
    compares[i] = target === CompareTarget.Value ? { key, target, result, value: r.bytes() } : { key, target, result, operand: r.u64() };
  }
  const success = readOps(r);
  const failure = readOps(r);
  return { compares, success, failure };
}

/** Decodes the TxnRequest bytes (the TLV TXN value). @throws ProtocolError on malformed bytes. */
export function decodeTxnRequest(b: Uint8Array): TxnRequest {
  const r = new ByteReader(b);
  const t = readTxnRequest(r);
  r.end();
  return t;
}

// ---- The Txn command's value ---------------------------------------------------------------------

/**
 * Bounds the gateway puts in a Txn command, so every storage node evaluates the txn against the
 * same bounds (determinism): `resultBytesMax` = the encoded TxnResult at most (beyond it the txn
 * is refused TOO_LARGE, nothing applied); `keysMax` = keys a txn's delete ranges and ranges may
 * touch in all, and ops' key mutations (beyond it: TOO_LARGE).
 */
export interface TxnLimits {
  resultBytesMax: number;
  keysMax: number;
}

/** The Txn command's value: `u32 resultBytesMax | u32 keysMax | TxnRequest`. */
export interface TxnCommandValue {
  limits: TxnLimits;
  request: TxnRequest;
}

/** @throws RangeError on limits outside u32 or a bad request shape. */
export function encodeTxnCommandValue(v: TxnCommandValue): Buffer {
  const { resultBytesMax, keysMax } = v.limits;
  for (const [k, n] of Object.entries(v.limits)) if (!Number.isInteger(n) || n < 1 || n > 0xffff_ffff) throw new RangeError(`txn ${k} must be an integer in 1..2^32-1, got ${n}`);
  const w = new ByteWriter(8 + txnRequestBytes(v.request)).u32(resultBytesMax).u32(keysMax);
  writeTxnRequest(w, v.request);
  return w.finish();
}

/** @throws ProtocolError on malformed bytes. */
export function decodeTxnCommandValue(b: Uint8Array): TxnCommandValue {
  const r = new ByteReader(b);
  const limits = { resultBytesMax: r.u32(), keysMax: r.u32() };
  if (limits.resultBytesMax < 1 || limits.keysMax < 1) throw new ProtocolError('txn limits must be at least 1');
  const request = readTxnRequest(r);
  r.end();
  return { limits, request };
}

// ---- TxnResult -----------------------------------------------------------------------------------

function kvBytes(kv: TxnKv): number {
  return TXN_KV_OVERHEAD_BYTES + kv.key.length + kv.value.length;
}

/** Encoded bytes one op response adds to a TxnResult. */
export function txnResponseBytes(x: TxnOpResponse): number {
  switch (x.kind) {
    case TxnOpKind.Put:
      return 2 + (x.prev ? kvBytes(x.prev) : 0);
    case TxnOpKind.Delete:
      return 9 + x.prev.reduce((n, kv) => n + kvBytes(kv), 0);
    case TxnOpKind.Get:
      return 2 + (x.kv ? kvBytes(x.kv) : 0);
    case TxnOpKind.Range:
      return 10 + x.kvs.reduce((n, kv) => n + kvBytes(kv), 0);
  }
}

/** Bytes of a TxnResult before its responses. */
export const TXN_RESULT_BASE_BYTES = 3;

/** Encoded size of a TxnResult, bytes. */
export function txnResultBytes(t: TxnResult): number {
  return t.responses.reduce((n, x) => n + txnResponseBytes(x), TXN_RESULT_BASE_BYTES);
}

function writeKv(w: ByteWriter, kv: TxnKv): void {
  w.bytes(kv.key).bytes(kv.value).u64(kv.modRevision).u64(kv.createRevision).u64(kv.version);
}

function readKv(r: ByteReader): TxnKv {
  return { key: r.bytes(), value: r.bytes(), modRevision: r.u64(), createRevision: r.u64(), version: r.u64() };
}

/** The TxnResult bytes (TLV TXN OK payload, outcome reply). @throws RangeError on over 65535 responses. */
export function encodeTxnResult(t: TxnResult): Buffer {
  assertCount(t.responses.length, 'responses');
  const w = new ByteWriter(txnResultBytes(t)).bool(t.succeeded).u16(t.responses.length);
  for (const x of t.responses) {
    w.u8(x.kind);
    if (x.kind === TxnOpKind.Put) {
      w.bool(x.prev !== undefined);
      if (x.prev) writeKv(w, x.prev);
    } else if (x.kind === TxnOpKind.Delete) {
      w.u32(x.deleted).u32(x.prev.length);
      for (const kv of x.prev) writeKv(w, kv);
    } else if (x.kind === TxnOpKind.Get) {
      w.bool(x.kv !== undefined);
      if (x.kv) writeKv(w, x.kv);
    } else {
      w.u32(x.count).bool(x.more).list(x.kvs, writeKv);
    }
  }
  return w.finish();
}

function readKvs(r: ByteReader): TxnKv[] {
  const kvs: TxnKv[] = r.list(TXN_KV_OVERHEAD_BYTES, readKv);
  return kvs;
}

/** @throws ProtocolError on malformed bytes. */
export function decodeTxnResult(b: Uint8Array): TxnResult {
  const r = new ByteReader(b);
  const succeeded = r.bool();
  const n = r.u16();
  if (n * 2 > r.remaining()) throw new ProtocolError(`truncated txn result: ${n} responses declared, ${r.remaining()} bytes left`);
  const responses: TxnOpResponse[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const kind = r.u8();
    if (kind === TxnOpKind.Put) responses[i] = r.bool() ? { kind, prev: readKv(r) } : { kind };
    else if (kind === TxnOpKind.Delete) responses[i] = { kind, deleted: r.u32(), prev: readKvs(r) };
    else if (kind === TxnOpKind.Get) responses[i] = r.bool() ? { kind, kv: readKv(r) } : { kind };
    else if (kind === TxnOpKind.Range) responses[i] = { kind, count: r.u32(), more: r.bool(), kvs: readKvs(r) };
    else throw new ProtocolError(`unknown txn response kind ${kind}`);
  }
  r.end();
  return { succeeded, responses };
}
