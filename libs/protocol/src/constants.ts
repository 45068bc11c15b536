/**
 * Constants, enums, limits and the error type of client protocol v1 (docs/protocol.md).
 */

import { CodedError } from './coded-error';

export const PROTOCOL_VERSION = 1;
/** First byte of every request frame. */
export const REQUEST_MAGIC = 0xca;
/** First byte of every response frame. */
export const RESPONSE_MAGIC = 0xcb;
/** `u8 magic | u8 version | u8 opcode | u8 flags | u32 requestId | u32 keyLength | u32 valueLength`. */
export const REQUEST_HEADER_BYTES = 16;
/** `u8 magic | u8 version | u8 status | u8 flags | u32 requestId | u64 revision | u32 payloadLength`. */
export const RESPONSE_HEADER_BYTES = 20;

export enum Opcode {
  /** Liveness / round trip: the value is echoed back as the payload. No key. */
  Ping = 0x01,
  /** Read a key. Key 1..keyBytesMax, no value. Flag STALE allowed. */
  Get = 0x02,
  /** Write a key. Key 1..keyBytesMax, value 0..valueBytesMax. Flags IF_ABSENT / IF_PRESENT make it conditional. */
  Set = 0x03,
  /** Delete a key (OK even when missing: a tombstone is written). Key 1..keyBytesMax, no value. */
  Del = 0x04,
  /** One page of an ordered range read. Key = start or prefix, 0..keyBytesMax; value = a range spec (`encodeRangeSpec`). Flag STALE allowed. */
  Range = 0x05,
  /**
   * An etcd-style transaction (docs/protocol.md "TXN"). No key; value = a TxnRequest
   * (`encodeTxnRequest`, txn.ts), 0..valueBytesMax. OK: payload = the TxnResult (`decodeTxnResult`;
   * also when the compares failed), revision = the txn's revision.
   */
  Txn = 0x06,
  /**
   * Redis INCRBY, evaluated where the write is applied. Key 1..keyBytesMax; value = `i64 delta`
   * [· `u64 sessionId · u64 seq · u64 firstPendingSeq`] (8 or 32 bytes, `encodeIncrRequest`): with
   * the client's session a re-sent INCR applies at most once through any gateway. OK payload:
   * `i64` new value (`decodeIncrReply`); CONDITION_FAILED payload: Redis's error text.
   */
  Incr = 0x07,
  /** Cluster status; the payload is UTF-8 JSON. No key, no value. */
  Status = 0x10,
  /**
   * Log in (docs/protocol.md "HELLO and AUTH"). Key = the user name (1..64 bytes) and value = its
   * password; or no key and value = a bearer token. Value 1..AUTH_VALUE_BYTES_MAX. OK payload: the
   * user name (UTF-8); UNAUTHENTICATED for wrong credentials (never says whether the user exists).
   */
  Auth = 0x20,
  /** Protocol version and auth state of the connection. No key, no value. OK payload: `encodeHelloReply` (hello.ts). */
  Hello = 0x21,
  /** Create a watch (docs/watch.md). Key = the key, range start or prefix, 0..keyBytesMax; value = a watch spec (`encodeWatchSpec`). OK answer: revision = the watch's starting point; then server-streamed frames with response flag WATCH and this request id. */
  Watch = 0x30,
  /** Cancel a watch of this connection. No key; value = `u32 watchId` (`encodeWatchCancel`). OK, or NOT_FOUND when no such watch is open. */
  WatchCancel = 0x31,
  /** Grant a lease (etcd LeaseGrant, docs/protocol.md "Leases"). No key; value = `u64 ttlMs · u64 leaseId` (0 = the gateway picks). OK payload = `u64 leaseId · u64 ttlMs`, revision = the grant's. CONDITION_FAILED: that id is live. TOO_LARGE: consensus.leasesMax leases are live. */
  LeaseGrant = 0x40,
  /** Revoke a lease and delete its keys at one revision (etcd LeaseRevoke). No key; value = `u64 leaseId`. OK: revision = the revoke's. NOT_FOUND: no such lease. */
  LeaseRevoke = 0x41,
  /** Renew a lease at the consensus leader (etcd LeaseKeepAlive; not a log entry). No key; value = `u64 leaseId`. OK payload = `u64 ttlMs`. NOT_FOUND: the lease is not live (expired or revoked). */
  LeaseKeepAlive = 0x42,
  /** A lease's TTL, time left and optionally its keys (etcd LeaseTimeToLive). No key; value = `u64 leaseId · u8 options` (`encodeLeaseTtlRequest`). OK payload: `encodeLeaseTtlReply`. NOT_FOUND: not live. */
  LeaseTtl = 0x43,
  /** One page of live lease ids (etcd LeaseLeases). No key; value empty or `u64 afterId · u32 limit`. OK payload: `encodeLeaseListReply`. */
  LeaseList = 0x44,
}

export enum Status {
  Ok = 0x00,
  /** GET of a key that does not exist (or was deleted). Empty payload, revision 0. */
  NotFound = 0x01,
  /** Internal failure. Payload: UTF-8 message. */
  Error = 0x02,
  /** Malformed request. Payload: UTF-8 message. */
  BadRequest = 0x03,
  /** Key or value over the gateway's limits. Payload: UTF-8 message. */
  TooLarge = 0x04,
  /** Retryable: no leader, replicas catching up, timeouts inside the cluster. Payload: UTF-8 message. */
  Unavailable = 0x05,
  /** The addressed replica is not the leader. Payload: UTF-8 leader id hint (may be empty). */
  NotLeader = 0x06,
  /** A conditional SET (IF_ABSENT / IF_PRESENT) whose condition was false when applied: nothing written. Empty payload; revision = the log index it was evaluated at. */
  ConditionFailed = 0x07,
  /** Authentication is enabled and the connection (or request) has not authenticated, or its credentials are wrong, expired or revoked; never says whether a user exists. Payload: UTF-8 message. docs/security.md. */
  Unauthenticated = 0x10,
  /** The authenticated user's roles do not permit this key, range or administrative request. Payload: UTF-8 message. */
  PermissionDenied = 0x11,
}

/** Request flag bits (byte 3 of the request header). Unknown bits are rejected with BAD_REQUEST. */
export const RequestFlags = {
  /** GET may be served without waiting for the connection's last acknowledged write. Accepted on every opcode; only GET uses it. */
  Stale: 0x01,
  /** SET only: apply only when the key does not exist (SET NX), evaluated atomically at apply time. */
  IfAbsent: 0x02,
  /** SET only: apply only when the key exists (SET XX), evaluated atomically at apply time. */
  IfPresent: 0x04,
  /** GET only: an OK answer carries the key's create revision and version before the value (response flag META; docs/protocol.md "Per-key metadata"). */
  Meta: 0x08,
  /**
   * SET / DEL only: compare-and-swap on the key's mod revision (etcd `mod_revision ==` compare;
   * 0 = the key must be missing), evaluated atomically at apply time. The value starts with the
   * `u64 revision` operand (IF_REVISION_OPERAND_BYTES): SET `u64 revision | value`, DEL exactly
   * `u64 revision`. Excludes IF_ABSENT / IF_PRESENT. CONDITION_FAILED when it did not hold.
   */
  IfRevision: 0x10,
  /**
   * SET only: the value starts with the LEASE operand `u64 leaseId · u64 ttlMs` (LEASE_OPERAND_BYTES,
   * after the IF_REVISION operand when both are set): attach the key to a lease (etcd put with
   * `lease`; 0 = none) and/or give it a TTL from now in ms (Redis SET PX; 0 = none). A lease that
   * is not live when the SET applies: CONDITION_FAILED with payload "lease not found".
   */
  Lease: 0x20,
} as const;
/** Bytes of the IF_REVISION operand at the start of the value. */
export const IF_REVISION_OPERAND_BYTES = 8;
/** Bytes of the LEASE operand (`u64 leaseId · u64 ttlMs`), after the IF_REVISION operand when both are set. */
export const LEASE_OPERAND_BYTES = 16;
/** Union of every defined request flag bit. */
export const REQUEST_FLAGS_KNOWN = RequestFlags.Stale | RequestFlags.IfAbsent | RequestFlags.IfPresent | RequestFlags.Meta | RequestFlags.IfRevision | RequestFlags.Lease;

/** Response flag bits (byte 3 of the response header); a client ignores bits it did not ask for. */
export const ResponseFlags = {
  /** The payload starts with `u64 createRevision | u64 version` (GET with the META request flag; `decodeGetMeta`). */
  Meta: 0x01,
  /** A server-streamed watch frame (docs/watch.md): requestId = the watch id, payload = `u8 kind | …` (`decodeWatchFrame`); never the answer to a request. */
  Watch: 0x02,
  /**
   * CONDITION_FAILED of a SET with LEASE only: the lease named is not live when the SET applied
   * (etcd "requested lease not found"); nothing written. Without it (and without LEASE_KEYS_FULL)
   * a CONDITION_FAILED is the SET's IF_ABSENT / IF_PRESENT / IF_REVISION condition being false.
   * The payload's reason text is unchanged, for clients from before the flag.
   */
  LeaseNotFound: 0x04,
  /** CONDITION_FAILED of a SET with LEASE only: the lease holds storage.keysPerLeaseMax keys (or its revoke would outgrow the largest engine record); nothing written. */
  LeaseKeysFull: 0x08,
} as const;
/** The condition bits: at most one, and only on SET. */
export const REQUEST_FLAGS_CONDITION = RequestFlags.IfAbsent | RequestFlags.IfPresent;
/** Largest AUTH value (a password is at most 256 bytes, an HS256 token a few hundred), bytes; beyond, TOO_LARGE. */
export const AUTH_VALUE_BYTES_MAX = 4096;

/** Per-frame size bounds enforced by the request decoder, bytes. */
export interface FrameLimits {
  keyBytesMax: number;
  valueBytesMax: number;
}

/**
 * The reserved keyspace (docs/leases.md "Storage"): keys that start with these eight 0xff bytes
 * hold a storage node's lease and expiry records, never a client's data. Every door refuses a
 * client key in it (BAD_REQUEST, reads included) and a range that starts in it; a range that
 * only reaches into it stops where it starts.
 */
export const RESERVED_KEY_PREFIX: Buffer = Buffer.alloc(8, 0xff);

/** Whether `key` is in the reserved keyspace (starts with RESERVED_KEY_PREFIX). */
export function isReservedKey(key: Uint8Array): boolean {
  if (key.length < RESERVED_KEY_PREFIX.length) return false;
  for (let i = 0; i < RESERVED_KEY_PREFIX.length; i++) if (key[i] !== 0xff) return false;
  return true;
}

/** The BAD_REQUEST message of a client key in the reserved keyspace. */
export const RESERVED_KEY_MESSAGE = 'keys starting with eight 0xff bytes are reserved (lease and expiry records)';

/** Hard ceiling of `keyBytesMax`, bytes (64 KiB). */
export const KEY_BYTES_CEILING = 64 * 1024;
/** Hard ceiling of `valueBytesMax`, bytes (16 MiB). */
export const VALUE_BYTES_CEILING = 16 * 1024 * 1024;

/** keyBytesMax 1024, valueBytesMax 1 MiB (1,048,576). */
export const DEFAULT_LIMITS: FrameLimits = Object.freeze({ keyBytesMax: 1024, valueBytesMax: 1024 * 1024 });

/**
 * Checks `limits` against the hard ceilings. @throws RangeError when a limit is not an integer in
 * 1..KEY_BYTES_CEILING (key) or 0..VALUE_BYTES_CEILING (value).
 */
export function assertFrameLimits(limits: FrameLimits): void {
  const { keyBytesMax, valueBytesMax } = limits;
  if (!Number.isInteger(keyBytesMax) || keyBytesMax < 1 || keyBytesMax > KEY_BYTES_CEILING) {
    throw new RangeError(`keyBytesMax must be an integer in 1..${KEY_BYTES_CEILING}, got ${keyBytesMax}`);
  }
  if (!Number.isInteger(valueBytesMax) || valueBytesMax < 0 || valueBytesMax > VALUE_BYTES_CEILING) {
    throw new RangeError(`valueBytesMax must be an integer in 0..${VALUE_BYTES_CEILING}, got ${valueBytesMax}`);
  }
}

/** A decoded client request. `key` and `value` may be views into the received chunk. */
export interface Request {
  opcode: Opcode;
  flags: number;
  requestId: number;
  key: Buffer;
  value: Buffer;
}

/** A decoded or to-be-encoded response. `revision` is a non-negative integer < 2^53. */
export interface Response {
  status: Status;
  flags: number;
  requestId: number;
  revision: number;
  payload: Buffer;
}

/**
 * Bytes that do not follow the protocol: bad magic, unsupported version, an oversized response
 * payload, or truncated / overrunning internal messages. `requestId` is set when the offending
 * frame's id is known (oversized response).
 */
export class ProtocolError extends CodedError {
  readonly code = 'PROTOCOL_ERROR';
  constructor(
    message: string,
    readonly requestId?: number,
  ) {
    super(message);
  }
}

const OPCODE_NAMES: Record<Opcode, string> = { [Opcode.Ping]: 'PING', [Opcode.Get]: 'GET', [Opcode.Set]: 'SET', [Opcode.Del]: 'DEL', [Opcode.Range]: 'RANGE', [Opcode.Txn]: 'TXN', [Opcode.Incr]: 'INCR', [Opcode.Status]: 'STATUS', [Opcode.Auth]: 'AUTH', [Opcode.Hello]: 'HELLO', [Opcode.Watch]: 'WATCH', [Opcode.WatchCancel]: 'WATCH_CANCEL',
  [Opcode.LeaseGrant]: 'LEASE_GRANT',
  [Opcode.LeaseRevoke]: 'LEASE_REVOKE',
  [Opcode.LeaseKeepAlive]: 'LEASE_KEEPALIVE',
  [Opcode.LeaseTtl]: 'LEASE_TTL',
  [Opcode.LeaseList]: 'LEASE_LIST',
};
const STATUS_NAMES: Record<Status, string> = {
  [Status.Ok]: 'OK',
  [Status.NotFound]: 'NOT_FOUND',
  [Status.Error]: 'ERROR',
  [Status.BadRequest]: 'BAD_REQUEST',
  [Status.TooLarge]: 'TOO_LARGE',
  [Status.Unavailable]: 'UNAVAILABLE',
  [Status.NotLeader]: 'NOT_LEADER',
  [Status.ConditionFailed]: 'CONDITION_FAILED',
  [Status.Unauthenticated]: 'UNAUTHENTICATED',
  [Status.PermissionDenied]: 'PERMISSION_DENIED',
};

export function isOpcode(n: number): n is Opcode {
  return Object.hasOwn(OPCODE_NAMES, n);
}

export function isStatus(n: number): n is Status {
  return Object.hasOwn(STATUS_NAMES, n);
}

const hexByte = (b: number) => `0x${b.toString(16).padStart(2, '0')}`;

/** Upper-case wire name of a status (`NOT_LEADER`), or `STATUS_0x..` for an unknown byte. */
export function statusName(s: number): string {
  return isStatus(s) ? STATUS_NAMES[s] : `STATUS_${hexByte(s)}`;
}

/** Upper-case wire name of an opcode (`PING`), or `OPCODE_0x..` for an unknown byte. */
export function opcodeName(op: number): string {
  return isOpcode(op) ? OPCODE_NAMES[op] : `OPCODE_${hexByte(op)}`;
}
