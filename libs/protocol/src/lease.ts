/**
 * Leases on the doors (docs/protocol.md "Leases", docs/leases.md; etcd's Lease API: LeaseGrant,
 * LeaseRevoke, LeaseKeepAlive, LeaseTimeToLive, LeaseLeases). Two kinds of encoding live here:
 * the TLV request values and OK payloads of opcodes 0x40..0x44 and of the LEASE request flag, and
 * the internal LeaseRequest / LeaseReply a gateway exchanges with the consensus leader on
 * `lease.<replica>` (a keep-alive is not a log entry: etcd sends it to the leader, which resets
 * the lease's deadline). All integers big-endian; u64 = a number < 2^53.
 */
import { ByteReader, ByteWriter, clampString, stringFieldBytes } from './bytes';
import { LEASE_OPERAND_BYTES, ProtocolError, type Status } from './constants';
import { LEASE_ID_MAX } from './command';

/** Bytes of a LEASE_GRANT value: `u64 ttlMs · u64 leaseId` (leaseId 0 = the gateway picks one). */
export const LEASE_GRANT_REQUEST_BYTES = 16;
/** Bytes of a lease-id value (LEASE_REVOKE, LEASE_KEEPALIVE) and of a LEASE_KEEPALIVE OK payload (`u64 ttlMs`). */
export const LEASE_ID_BYTES = 8;
/** Bytes of a LEASE_TTL value: `u64 leaseId · u8 options`. */
export const LEASE_TTL_REQUEST_BYTES = 9;
/** Bytes of a LEASE_LIST value when given: `u64 afterId · u32 limit` (empty value = from the first id, the gateway's limit). */
export const LEASE_LIST_REQUEST_BYTES = 12;
/** Ids one LEASE_LIST page holds at most (80 KB of ids: well inside a NATS payload and a TLV response). */
export const LEASE_LIST_PAGE_MAX = 10_000;

/** LEASE_TTL options (`u8`). */
export const LeaseTtlOptions = {
  /** Also list the keys attached to the lease (etcd LeaseTimeToLive `keys: true`). */
  Keys: 0x01,
} as const;

const u64 = (b: Uint8Array, at: number): number => {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const hi = buf.readUInt32BE(at);
  if (hi >= 2 ** 21) throw new ProtocolError(`u64 at byte ${at} is >= 2^53`);
  return hi * 2 ** 32 + buf.readUInt32BE(at + 4);
};

function exact(value: Uint8Array, bytes: number, what: string): void {
  if (value.length !== bytes) throw new ProtocolError(`${what} must be ${bytes} bytes, got ${value.length}`);
}

function checkTtlMs(ttlMs: number, E: new (m: string) => Error): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) throw new E(`lease ttlMs must be an integer in 1..2^53-1, got ${ttlMs}`);
}

function checkId(id: number, zeroOk: boolean, E: new (m: string) => Error): void {
  if (!Number.isSafeInteger(id) || id < (zeroOk ? 0 : 1) || id > LEASE_ID_MAX) throw new E(`lease id must be an integer in ${zeroOk ? 0 : 1}..2^53-1, got ${id}`);
}

/** LEASE_GRANT request: `ttlMs` ≥ 1; `leaseId` 0 = the gateway picks a unique id (etcd ID 0). */
export interface LeaseGrantRequest {
  ttlMs: number;
  leaseId: number;
}

/** `u64 ttlMs · u64 leaseId`. @throws RangeError on a ttl < 1 or an id outside 0..2^53-1. */
export function encodeLeaseGrantRequest(r: LeaseGrantRequest): Buffer {
  checkTtlMs(r.ttlMs, RangeError);
  checkId(r.leaseId, true, RangeError);
  return new ByteWriter(LEASE_GRANT_REQUEST_BYTES).u64(r.ttlMs).u64(r.leaseId).finish();
}

/** @throws ProtocolError on a wrong length, ttl 0 or a u64 ≥ 2^53. */
export function decodeLeaseGrantRequest(value: Uint8Array): LeaseGrantRequest {
  exact(value, LEASE_GRANT_REQUEST_BYTES, 'LEASE_GRANT value (u64 ttlMs, u64 leaseId)');
  const r = { ttlMs: u64(value, 0), leaseId: u64(value, 8) };
  checkTtlMs(r.ttlMs, ProtocolError);
  return r;
}

/** LEASE_GRANT OK payload: `u64 leaseId · u64 ttlMs` (the id granted, the TTL granted). */
export function encodeLeaseGrantReply(r: { leaseId: number; ttlMs: number }): Buffer {
  return new ByteWriter(16).u64(r.leaseId).u64(r.ttlMs).finish();
}

/** @throws ProtocolError on a wrong length. */
export function decodeLeaseGrantReply(payload: Uint8Array): { leaseId: number; ttlMs: number } {
  exact(payload, 16, 'LEASE_GRANT payload');
  return { leaseId: u64(payload, 0), ttlMs: u64(payload, 8) };
}

/** A lease id (LEASE_REVOKE / LEASE_KEEPALIVE value) or a ttl (LEASE_KEEPALIVE payload): `u64`. @throws RangeError outside 0..2^53-1. */
export function encodeLeaseU64(v: number): Buffer {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`lease field must be an integer in 0..2^53-1, got ${v}`);
  return new ByteWriter(LEASE_ID_BYTES).u64(v).finish();
}

/** @throws ProtocolError when not exactly 8 bytes or ≥ 2^53. */
export function decodeLeaseU64(value: Uint8Array, what = 'lease value (u64)'): number {
  exact(value, LEASE_ID_BYTES, what);
  return u64(value, 0);
}

/** LEASE_TTL request: `u64 leaseId · u8 options` (LeaseTtlOptions). */
export function encodeLeaseTtlRequest(r: { leaseId: number; keys: boolean }): Buffer {
  checkId(r.leaseId, false, RangeError);
  return new ByteWriter(LEASE_TTL_REQUEST_BYTES).u64(r.leaseId).u8(r.keys ? LeaseTtlOptions.Keys : 0).finish();
}

/** @throws ProtocolError on a wrong length, id 0 or unknown option bits. */
export function decodeLeaseTtlRequest(value: Uint8Array): { leaseId: number; keys: boolean } {
  exact(value, LEASE_TTL_REQUEST_BYTES, 'LEASE_TTL value (u64 leaseId, u8 options)');
  const leaseId = u64(value, 0);
  checkId(leaseId, false, ProtocolError);
  const options = value[8];
  if (options & ~LeaseTtlOptions.Keys) throw new ProtocolError(`unknown LEASE_TTL option bits 0x${options.toString(16)}`);
  return { leaseId, keys: (options & LeaseTtlOptions.Keys) !== 0 };
}

/**
 * A lease's time to live (etcd LeaseTimeToLiveResponse): granted TTL and ms left before the leader
 * expires it; with keys asked, the attached keys (at most the gateway's leaseKeysMax: `more` says
 * some were left out).
 */
export interface LeaseTtl {
  ttlMs: number;
  remainingMs: number;
  keys: Buffer[];
  more: boolean;
}

/** LEASE_TTL OK payload: `u64 ttlMs · u64 remainingMs · bool more · u32 count · (bytes key)*`. */
export function encodeLeaseTtlReply(t: LeaseTtl): Buffer {
  let size = 8 + 8 + 1 + 4;
  for (const k of t.keys) size += 4 + k.length;
  return new ByteWriter(size).u64(t.ttlMs).u64(t.remainingMs).bool(t.more).list(t.keys, (w, k) => w.bytes(k)).finish();
}

/** @throws ProtocolError on truncation or trailing bytes. */
export function decodeLeaseTtlReply(payload: Uint8Array): LeaseTtl {
  const r = new ByteReader(payload);
  const ttlMs = r.u64();
  const remainingMs = r.u64();
  const more = r.bool();
  const keys: Buffer[] = r.list(4, () => r.bytes());
  r.end();
  return { ttlMs, remainingMs, keys, more };
}

/** LEASE_LIST request: ids greater than `afterId`, at most `limit` (1..LEASE_LIST_PAGE_MAX). */
export interface LeaseListRequest {
  afterId: number;
  limit: number;
}

/** `u64 afterId · u32 limit`. @throws RangeError outside the ranges. */
export function encodeLeaseListRequest(r: LeaseListRequest): Buffer {
  checkId(r.afterId, true, RangeError);
  if (!Number.isInteger(r.limit) || r.limit < 1 || r.limit > LEASE_LIST_PAGE_MAX) throw new RangeError(`limit must be an integer in 1..${LEASE_LIST_PAGE_MAX}, got ${r.limit}`);
  return new ByteWriter(LEASE_LIST_REQUEST_BYTES).u64(r.afterId).u32(r.limit).finish();
}

/** An empty value = `{ afterId: 0, limit: LEASE_LIST_PAGE_MAX }`. @throws ProtocolError on another length or a limit outside 1..LEASE_LIST_PAGE_MAX. */
export function decodeLeaseListRequest(value: Uint8Array): LeaseListRequest {
  if (value.length === 0) return { afterId: 0, limit: LEASE_LIST_PAGE_MAX };
  exact(value, LEASE_LIST_REQUEST_BYTES, 'LEASE_LIST value (u64 afterId, u32 limit)');
  const limit = Buffer.from(value.buffer, value.byteOffset, value.byteLength).readUInt32BE(8);
  if (limit < 1 || limit > LEASE_LIST_PAGE_MAX) throw new ProtocolError(`LEASE_LIST limit must be 1..${LEASE_LIST_PAGE_MAX}, got ${limit}`);
  return { afterId: u64(value, 0), limit };
}

/** One LEASE_LIST page: live lease ids ascending; `more`: ids after the last one exist. */
export interface LeaseListPage {
  ids: number[];
  more: boolean;
}

/** LEASE_LIST OK payload: `bool more · u32 count · (u64 leaseId)*`. */
export function encodeLeaseListReply(p: LeaseListPage): Buffer {
  return new ByteWriter(1 + 4 + 8 * p.ids.length).bool(p.more).list(p.ids, (w, id) => w.u64(id)).finish();
}

/** @throws ProtocolError on truncation or trailing bytes. */
export function decodeLeaseListReply(payload: Uint8Array): LeaseListPage {
  const r = new ByteReader(payload);
  const more = r.bool();
  const ids: number[] = r.list(8, () => r.u64());
  r.end();
  return { ids, more };
}

/** The LEASE flag's operand on a SET: the lease to attach the key to (0 = none) and a TTL from now (0 = none). */
export interface LeaseOperand {
  leaseId: number;
  ttlMs: number;
}

/** `u64 leaseId · u64 ttlMs` followed by `value`. @throws RangeError outside 0..2^53-1 or both 0. */
export function encodeLeaseOperand(o: LeaseOperand, value: Uint8Array): Buffer {
  checkId(o.leaseId, true, RangeError);
  if (!Number.isSafeInteger(o.ttlMs) || o.ttlMs < 0) throw new RangeError(`ttlMs must be an integer in 0..2^53-1, got ${o.ttlMs}`);
  if (o.leaseId === 0 && o.ttlMs === 0) throw new RangeError('a LEASE operand names a lease, a TTL or both');
  return Buffer.concat([new ByteWriter(LEASE_OPERAND_BYTES).u64(o.leaseId).u64(o.ttlMs).finish(), value]);
}

/** The operand at the start of `value` and the value proper after it. @throws ProtocolError when short, ≥ 2^53 or both 0. */
export function decodeLeaseOperand(value: Uint8Array): { operand: LeaseOperand; value: Uint8Array } {
  if (value.length < LEASE_OPERAND_BYTES) throw new ProtocolError(`the LEASE operand is ${LEASE_OPERAND_BYTES} bytes, got ${value.length}`);
  const operand = { leaseId: u64(value, 0), ttlMs: u64(value, 8) };
  if (operand.leaseId === 0 && operand.ttlMs === 0) throw new ProtocolError('a LEASE operand names a lease, a TTL or both (both 0)');
  return { operand, value: value.subarray(LEASE_OPERAND_BYTES) };
}

// ---- internal: gateway ↔ consensus leader on `lease.<replica>` ------------------------------------

/** Internal message types of the lease subject (docs/protocol.md "Internal messages"). */
export const LEASE_REQUEST_TYPE = 48;
export const LEASE_REPLY_TYPE = 49;
const INTERNAL_VERSION = 1;

/** What a LeaseRequest asks the leader's LeaseTable (docs/leases.md "Leader lease table"). */
export enum LeaseRequestKind {
  /** Reset the lease's deadline to now + ttl (etcd LeaseKeepAlive). Reply: ttlMs. */
  KeepAlive = 1,
  /** Granted TTL and ms left (etcd LeaseTimeToLive without keys). Reply: ttlMs, remainingMs. */
  TimeToLive = 2,
  /** Live lease ids > `leaseId`, at most `limit` (etcd LeaseLeases, paged). Reply: ids, more. */
  List = 3,
}

/** `header(48) | u8 kind | u64 leaseId (List: afterId) | u32 limit (List only; else 0)`. */
export interface LeaseRequest {
  kind: LeaseRequestKind;
  leaseId: number;
  limit: number;
}

/**
 * `header(49) | u8 status | string leaderHint | string message | u64 ttlMs | u64 remainingMs | bool more | u32 count | (u64 id)*`.
 * OK; NOT_FOUND (the lease is not live); NOT_LEADER (leaderHint); BAD_REQUEST.
 */
export interface LeaseReply {
  status: Status;
  leaderHint: string;
  message: string;
  ttlMs: number;
  remainingMs: number;
  ids: number[];
  more: boolean;
}

export function encodeLeaseRequest(q: LeaseRequest): Buffer {
  return new ByteWriter(2 + 1 + 8 + 4).u8(LEASE_REQUEST_TYPE).u8(INTERNAL_VERSION).u8(q.kind).u64(q.leaseId).u32(q.limit).finish();
}

/** @throws ProtocolError on a wrong type/version, an unknown kind, truncation or trailing bytes. */
export function decodeLeaseRequest(b: Uint8Array): LeaseRequest {
  const r = header(b, LEASE_REQUEST_TYPE);
  const kind = r.u8();
  if (!(kind in LeaseRequestKind)) throw new ProtocolError(`unknown LeaseRequest kind ${kind}`);
  const q = { kind: kind as LeaseRequestKind, leaseId: r.u64(), limit: r.u32() };
  r.end();
  return q;
}

export function encodeLeaseReply(q: LeaseReply): Buffer {
  const message = clampString(q.message);
  const w = new ByteWriter(2 + 1 + stringFieldBytes(q.leaderHint) + stringFieldBytes(message) + 16 + 1 + 4 + 8 * q.ids.length);
  w.u8(LEASE_REPLY_TYPE).u8(INTERNAL_VERSION).u8(q.status).string(q.leaderHint).string(message).u64(q.ttlMs).u64(q.remainingMs).bool(q.more).list(q.ids, (x, id) => x.u64(id));
  return w.finish();
}

/** @throws ProtocolError on a wrong type/version, an unknown status, truncation or trailing bytes. */
export function decodeLeaseReply(b: Uint8Array): LeaseReply {
  const r = header(b, LEASE_REPLY_TYPE);
  const status = r.status();
  const leaderHint = r.string();
  const message = r.string();
  const ttlMs = r.u64();
  const remainingMs = r.u64();
  const more = r.bool();
  const ids: number[] = r.list(8, () => r.u64());
  r.end();
  return { status, leaderHint, message, ttlMs, remainingMs, ids, more };
}

function header(b: Uint8Array, type: number): ByteReader {
  const r = new ByteReader(b);
  const got = r.u8();
  if (got !== type) throw new ProtocolError(`expected internal message type ${type}, got ${got}`);
  const version = r.u8();
  if (version !== INTERNAL_VERSION) throw new ProtocolError(`unsupported lease message version ${version}`);
  return r;
}

// ---- internal: gateway ↔ storage node on `read.<node>`: a lease's attached keys -------------------

/** Internal message types of a lease's keys (shares the read subject, docs/protocol.md "Internal messages"). */
export const LEASE_KEYS_REQUEST_TYPE = 50;
export const LEASE_KEYS_REPLY_TYPE = 51;

/** `header(50) | u64 leaseId | u64 minIndex | u32 keysMax | u32 bytesMax`: the node answers once it applied minIndex. */
export interface LeaseKeysRequest {
  leaseId: number;
  minIndex: number;
  /** Keys at most (≥ 1). */
  keysMax: number;
  /** Key bytes at most; the first key always goes. */
  bytesMax: number;
}

/**
 * `header(51) | u8 status | u64 appliedIndex | string message | bool more | u32 count | (bytes key)*`.
 * OK: the lease's keys in byte order (a prefix when `more`); NOT_FOUND: no such lease at
 * appliedIndex; UNAVAILABLE: the node is behind minIndex or bootstrapping.
 */
export interface LeaseKeysReply {
  status: Status;
  appliedIndex: number;
  message: string;
  more: boolean;
  keys: Uint8Array[];
}

export function encodeLeaseKeysRequest(q: LeaseKeysRequest): Buffer {
  return new ByteWriter(2 + 8 + 8 + 4 + 4).u8(LEASE_KEYS_REQUEST_TYPE).u8(INTERNAL_VERSION).u64(q.leaseId).u64(q.minIndex).u32(q.keysMax).u32(q.bytesMax).finish();
}

/** @throws ProtocolError on a wrong type/version, keysMax 0, truncation or trailing bytes. */
export function decodeLeaseKeysRequest(b: Uint8Array): LeaseKeysRequest {
  const r = header(b, LEASE_KEYS_REQUEST_TYPE);
  const q = { leaseId: r.u64(), minIndex: r.u64(), keysMax: r.u32(), bytesMax: r.u32() };
  r.end();
  if (q.keysMax < 1) throw new ProtocolError('LeaseKeysRequest keysMax must be >= 1');
  return q;
}

/** Bytes of a LeaseKeysReply around its keys and message: header, status, appliedIndex, message length, more, count. */
export const LEASE_KEYS_REPLY_BASE_BYTES = 2 + 1 + 8 + 2 + 1 + 4;

export function encodeLeaseKeysReply(q: LeaseKeysReply): Buffer {
  const message = clampString(q.message);
  let size = LEASE_KEYS_REPLY_BASE_BYTES - 2 + stringFieldBytes(message);
  for (const k of q.keys) size += 4 + k.length;
  return new ByteWriter(size).u8(LEASE_KEYS_REPLY_TYPE).u8(INTERNAL_VERSION).u8(q.status).u64(q.appliedIndex).string(message).bool(q.more).list(q.keys, (w, k) => w.bytes(k)).finish();
}

/** @throws ProtocolError on a wrong type/version, an unknown status, truncation or trailing bytes. */
export function decodeLeaseKeysReply(b: Uint8Array): LeaseKeysReply {
  const r = header(b, LEASE_KEYS_REPLY_TYPE);
  const status = r.status();
  const appliedIndex = r.u64();
  const message = r.string();
  const more = r.bool();
  const keys: Uint8Array[] = r.list(4, () => r.bytes());
  r.end();
  return { status, appliedIndex, message, more, keys };
}

// ---- internal: replica ↔ replica on `lease.<replica>`: the lease-state file after a snapshot install ----

/** Internal message types of the lease-state transfer (shares the lease subject, docs/leases.md "Snapshot install"). */
export const LEASE_STATE_REQUEST_TYPE = 52;
export const LEASE_STATE_REPLY_TYPE = 53;
/** Bytes of a LeaseStateRequest. */
export const LEASE_STATE_REQUEST_BYTES = 2 + 8 + 4 + 8 + 4;
/** Bytes of a LeaseStateReply around its data and message: header, status, message length, index, gapThrough, crc32, bodyBytes, data length. */
export const LEASE_STATE_REPLY_BASE_BYTES = 2 + 1 + 2 + 8 + 8 + 4 + 8 + 4;

/**
 * `header(52) | u64 minIndex | u32 crc32 | u64 offset | u32 bytesMax`: one chunk of the peer's
 * lease-state file body (apps/consensus lease-state-file.ts) from `offset`, at most `bytesMax`
 * bytes (≥ 1). `minIndex`: the lowest file index that helps the requester (its lease gap);
 * `crc32`: 0 on the first chunk, then the file's CRC32 from the first reply (a file replaced
 * meanwhile is answered NOT_FOUND: start over).
 */
export interface LeaseStateRequest {
  minIndex: number;
  crc32: number;
  offset: number;
  bytesMax: number;
}

/**
 * `header(53) | u8 status | string message | u64 index | u64 gapThrough | u32 crc32 | u64 bodyBytes | bytes data`.
 * OK: `data` = body bytes from the requested offset (empty at the end) of the file saved at
 * `index` (its `gapThrough`, its CRC32 and its body size); UNAVAILABLE: the file's index is below
 * minIndex (or there is none yet: the peer saves one); NOT_FOUND: the file changed since `crc32`;
 * BAD_REQUEST; ERROR: the peer could not read it.
 */
export interface LeaseStateReply {
  status: Status;
  message: string;
  index: number;
  gapThrough: number;
  crc32: number;
  bodyBytes: number;
  data: Uint8Array;
}

export function encodeLeaseStateRequest(q: LeaseStateRequest): Buffer {
  if (!Number.isInteger(q.crc32) || q.crc32 < 0 || q.crc32 > 0xffff_ffff) throw new RangeError(`crc32 must be a u32, got ${q.crc32}`);
  return new ByteWriter(LEASE_STATE_REQUEST_BYTES).u8(LEASE_STATE_REQUEST_TYPE).u8(INTERNAL_VERSION).u64(q.minIndex).u32(q.crc32).u64(q.offset).u32(q.bytesMax).finish();
}

/** @throws ProtocolError on a wrong type/version, bytesMax 0, truncation or trailing bytes. */
export function decodeLeaseStateRequest(b: Uint8Array): LeaseStateRequest {
  const r = header(b, LEASE_STATE_REQUEST_TYPE);
  const q = { minIndex: r.u64(), crc32: r.u32(), offset: r.u64(), bytesMax: r.u32() };
  r.end();
  if (q.bytesMax < 1) throw new ProtocolError('LeaseStateRequest bytesMax must be >= 1');
  return q;
}

export function encodeLeaseStateReply(q: LeaseStateReply): Buffer {
  const message = clampString(q.message);
  const w = new ByteWriter(LEASE_STATE_REPLY_BASE_BYTES - 2 + stringFieldBytes(message) + q.data.length);
  return w.u8(LEASE_STATE_REPLY_TYPE).u8(INTERNAL_VERSION).u8(q.status).string(message).u64(q.index).u64(q.gapThrough).u32(q.crc32).u64(q.bodyBytes).bytes(q.data).finish();
}

/** @throws ProtocolError on a wrong type/version, an unknown status, truncation or trailing bytes. */
export function decodeLeaseStateReply(b: Uint8Array): LeaseStateReply {
  const r = header(b, LEASE_STATE_REPLY_TYPE);
  const status = r.status();
  const q = { status, message: r.string(), index: r.u64(), gapThrough: r.u64(), crc32: r.u32(), bodyBytes: r.u64(), data: r.bytes() };
  r.end();
  return q;
}

