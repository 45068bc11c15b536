import { IF_REVISION_OPERAND_BYTES, LEASE_LIST_PAGE_MAX, Opcode, decodeLeaseGrantReply, decodeLeaseListReply, decodeLeaseTtlReply, decodeLeaseU64, encodeLeaseGrantRequest, encodeLeaseListRequest, encodeLeaseOperand, encodeLeaseTtlRequest, encodeLeaseU64, type LeaseTtl, RangeOptions, RequestFlags, ResponseFlags, Status, decodeGetMeta, decodeIncrReply, decodeRangePage, decodeTxnResult, encodeIncrRequest, encodeRangeSpec, encodeTxnRequest, type RangeItemWire, type RangePageOptions, type Response, type TxnOpResponse, type TxnRequest } from '@cairn/protocol';
import { TxnBuilder } from './txn';
import { LeaseKeeper, type KeepAliveOptions } from './lease-keeper';
import { IncrRefusedError, LeaseExistsError, LeaseNotFoundError, ResponseProtocolError, TooLargeError, errorForResponse } from './errors';
import type { ClientSession } from './session';

/**
 * What `get` resolves for an existing key. `value` may be a view of a received chunk. The
 * metadata is etcd's (docs/protocol.md "Per-key metadata"): `revision` is the mod revision.
 */
export interface GetResult {
  value: Buffer;
  /** Mod revision: the Raft index of the write that set this value. */
  revision: number;
  /** Raft index of the write that created the key (absent: the gateway sent no metadata). */
  createRevision?: number;
  /** Writes since the key was created, 1 = the creating write; a delete resets it (absent: no metadata sent). */
  version?: number;
}

/** Per-request options of CairnClient and CairnPool calls. */
export interface RequestOptions {
  /** Timeout of this request, ms, from the call (waiting for a slot included); default the client's `requestTimeoutMs`. */
  timeoutMs?: number;
  /** Aborting rejects the call with AbortError and frees its in-flight slot at once. */
  signal?: AbortSignal;
}

/** SET options: at most one condition, evaluated atomically where the write is applied (request flags IF_ABSENT / IF_PRESENT). */
export interface SetOptions extends RequestOptions {
  /** Write only if the key does not exist (Redis SET NX). */
  ifAbsent?: boolean;
  /** Write only if the key exists (Redis SET XX). */
  ifPresent?: boolean;
  /** Compare-and-swap: write only if the key's mod revision is this (0 = the key must be missing); request flag IF_REVISION. Excludes ifAbsent / ifPresent. */
  ifRevision?: number;
  /** Attach the key to this lease (etcd put `lease`): it goes when the lease is revoked or expires; request flag LEASE. @throws LeaseNotFoundError when the lease is not live. */
  lease?: number;
  /** A TTL from now, ms (Redis SET PX): the key expires then; request flag LEASE. */
  ttlMs?: number;
}

/** A DEL's options. */
export interface DelOptions extends RequestOptions {
  /** Delete only if the key's mod revision is this (request flag IF_REVISION); `applied` false otherwise. */
  ifRevision?: number;
}

/** The value of a request with IF_REVISION: `u64 revision | value`. @throws RangeError on a revision outside 0..2^53-1. */
export function ifRevisionValue(revision: number, value: Uint8Array): Buffer {
  if (!Number.isSafeInteger(revision) || revision < 0) throw new RangeError(`ifRevision must be an integer in 0..2^53-1, got ${revision}`);
  const b = Buffer.alloc(IF_REVISION_OPERAND_BYTES + value.length);
  b.writeUInt32BE(Math.floor(revision / 2 ** 32), 0);
  b.writeUInt32BE(revision >>> 0, 4);
  b.set(value, IF_REVISION_OPERAND_BYTES);
  return b;
}

/** What `set` resolves: `applied` is false only for a conditional SET whose condition was false (nothing written); `revision` is then the index it was evaluated at. */
export interface SetResult {
  revision: number;
  applied: boolean;
}

export interface GetOptions extends RequestOptions {
  /** Skip the read-your-writes wait (request flag STALE). */
  stale?: boolean;
}

/** A range read: `[start, end)`, or every key starting with `prefix` (docs/protocol.md "RANGE"). */
export interface RangeReadOptions extends RequestOptions, RangePageOptions {
  /** First key (inclusive); default the first key. Excludes `prefix`. */
  start?: string | Uint8Array;
  /** End (exclusive); default no upper bound. Excludes `prefix`. */
  end?: string | Uint8Array;
  /** Every key starting with these bytes. */
  prefix?: string | Uint8Array;
}

/** Options of `pages` / `scan`: a range read's options without `token` (they page themselves) or `countOnly`. */
export interface ScanOptions extends Omit<RangeReadOptions, 'token' | 'countOnly'> {
  /** Stop after this many keys over all pages (etcd's `--limit`, a positive integer); default every key of the range. */
  keysMax?: number;
}

/** One key of a range read (the wire item, protocol's RangeItemWire); `key` and `value` may be views of a received chunk. */
export interface RangeItem extends RangeItemWire {
  key: Buffer;
  /** Empty with `keysOnly`. */
  value: Buffer;
}

/** One page: consistent at `revision`; `count` = keys in the whole range; `token` (null when no more) continues it. */
export interface RangePage {
  revision: number;
  count: number;
  more: boolean;
  token: Buffer | null;
  items: RangeItem[];
}

/** RANGE request flags and value of `opts`. @throws RangeError when `prefix` is mixed with start / end. */
export function rangeRequest(opts: RangeReadOptions): { key: Buffer; value: Buffer; flags: number } {
  if (opts.prefix !== undefined && (opts.start !== undefined || opts.end !== undefined)) throw new RangeError('prefix excludes start and end');
  const options = (opts.prefix !== undefined ? RangeOptions.Prefix : 0) | (opts.keysOnly ? RangeOptions.KeysOnly : 0) | (opts.countOnly ? RangeOptions.CountOnly : 0) | (opts.reverse ? RangeOptions.Reverse : 0);
  const value = encodeRangeSpec({ options, limit: opts.limit ?? 0, end: opts.end === undefined ? undefined : toBuffer(opts.end), token: opts.token });
  return { key: toBuffer(opts.prefix ?? opts.start ?? EMPTY), value, flags: opts.stale ? RequestFlags.Stale : 0 };
}

/** RANGE: the page. @throws the typed error of a non-OK status; ResponseProtocolError on a malformed payload. */
export function rangeResult(res: Response): RangePage {
  expectOk(res);
  try {
    const p = decodeRangePage(res.payload);
    return { revision: res.revision, count: p.count, more: p.more, token: p.more ? p.token : null, items: p.items as RangeItem[] };
  } catch (e) {
    throw new ResponseProtocolError(`RANGE payload: ${(e as Error).message}`, e);
  }
}

/** A committed txn (etcd TxnResponse): whether every compare held, one response per op of the branch that ran, and its revision. */
export interface TxnCommitResult {
  revision: number;
  succeeded: boolean;
  responses: TxnOpResponse[];
}

/**
 * TXN: the decoded TxnResult. CONDITION_FAILED with response flag LEASE_NOT_FOUND →
 * LeaseNotFoundError, LEASE_KEYS_FULL → TooLargeError (a put's lease, at apply: nothing applied).
 * @throws the typed error of any other non-OK status (TOO_LARGE, BAD_REQUEST, UNAVAILABLE…),
 * ResponseProtocolError on a malformed payload.
 */
export function txnResult(res: Response): TxnCommitResult {
  if (res.status === Status.ConditionFailed) {
    const why = res.payload.toString('utf8');
    if (res.flags & ResponseFlags.LeaseKeysFull) throw new TooLargeError(why || 'lease full');
    if (res.flags & ResponseFlags.LeaseNotFound) throw new LeaseNotFoundError(why || 'lease not found');
  }
  expectOk(res);
  try {
    const t = decodeTxnResult(res.payload);
    return { revision: res.revision, succeeded: t.succeeded, responses: t.responses };
  } catch (e) {
    throw new ResponseProtocolError(`TXN payload: ${(e as Error).message}`, e);
  }
}

// The status → result mapping shared by CairnClient and CairnPool (one definition of each reply's meaning).

/** @throws the typed error of a non-OK response. */
export function expectOk(res: Response): Response {
  if (res.status !== Status.Ok) throw errorForResponse(res);
  return res;
}

/** GET: the value and revision, or null on NOT_FOUND. @throws the typed error of any other non-OK status. */
export function getResult(res: Response): GetResult | null {
  if (res.status === Status.NotFound) return null;
  expectOk(res);
  if ((res.flags & ResponseFlags.Meta) === 0) return { value: res.payload, revision: res.revision };
  let m: ReturnType<typeof decodeGetMeta>;
  try {
    m = decodeGetMeta(res.payload);
  } catch (e) {
    throw new ResponseProtocolError((e as Error).message, e);
  }
  return { value: m.value, revision: res.revision, createRevision: m.createRevision, version: m.version };
}

/** The reason text of a CONDITION_FAILED SET with LEASE whose IF_ABSENT / IF_PRESENT / IF_REVISION was false (docs/protocol.md "Status codes"); read only from a gateway that predates the LEASE_NOT_FOUND / LEASE_KEYS_FULL response flags. */
export const SET_CONDITION_NOT_MET = 'condition not met';

/**
 * SET: OK → applied; CONDITION_FAILED → not applied, unless the lease refused it: response flag
 * LEASE_NOT_FOUND → LeaseNotFoundError, LEASE_KEYS_FULL → TooLargeError (docs/protocol.md
 * "Response flags"). A gateway from before those flags says it only in the reason text: a SET with
 * LEASE whose reason is not SET_CONDITION_NOT_MET (or that had no condition) is then taken for a
 * lease refusal. @throws the typed error of any other non-OK status.
 */
export function setResult(res: Response, withLease = false, conditional = false): SetResult {
  if (res.status === Status.ConditionFailed && withLease) {
    const why = res.payload.toString('utf8');
    if (res.flags & ResponseFlags.LeaseKeysFull) throw new TooLargeError(why || 'lease full');
    if (res.flags & ResponseFlags.LeaseNotFound) throw new LeaseNotFoundError(why || 'lease not found');
    // No flag: a false condition, or a lease refusal from a gateway that predates the flags (its reason says which).
    if (!conditional || (why !== '' && why !== SET_CONDITION_NOT_MET)) throw new LeaseNotFoundError(why || 'lease not found');
  }
  if (res.status === Status.ConditionFailed) return { revision: res.revision, applied: false };
  expectOk(res);
  return { revision: res.revision, applied: true };
}

/** Request flags of a SET's options. @throws RangeError when both conditions are given. */
export function setFlags(opts: SetOptions): number {
  if (opts.ifAbsent && opts.ifPresent) throw new RangeError('ifAbsent and ifPresent exclude each other');
  if (opts.ifRevision !== undefined) {
    if (opts.ifAbsent || opts.ifPresent) throw new RangeError('ifRevision excludes ifAbsent and ifPresent');
    return RequestFlags.IfRevision;
  }
  return opts.ifAbsent ? RequestFlags.IfAbsent : opts.ifPresent ? RequestFlags.IfPresent : 0;
}

/** What `incr` / `incrBy` resolve: the key's new value and the revision (index) the increment took effect at. */
export interface IncrResult {
  value: bigint;
  revision: number;
}

/** INCR: OK → the new value; CONDITION_FAILED → IncrRefusedError (Redis's reason). @throws the typed error of any other non-OK status; ResponseProtocolError on a malformed payload. */
export function incrResult(res: Response): IncrResult {
  if (res.status === Status.ConditionFailed) throw new IncrRefusedError(res.payload.toString('utf8') || 'increment refused', res.revision);
  expectOk(res);
  try {
    return { value: decodeIncrReply(res.payload), revision: res.revision };
  } catch (e) {
    throw new ResponseProtocolError((e as Error).message, e);
  }
}

/** PING: @throws ResponseProtocolError when the echo differs from what was sent. */
export function checkPingEcho(res: Response, sent: Buffer): void {
  expectOk(res);
  if (!res.payload.equals(sent)) throw new ResponseProtocolError(`PING echo of ${res.payload.length} bytes does not match the ${sent.length} bytes sent`);
}

/** STATUS: the parsed JSON payload. @throws ResponseProtocolError when it is not JSON. */
export function parseStatus(res: Response): unknown {
  expectOk(res);
  try {
    return JSON.parse(res.payload.toString('utf8'));
  } catch (e) {
    throw new ResponseProtocolError(`STATUS payload is not JSON: ${(e as Error).message}`, e);
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * The typed commands over one `request` primitive: CairnClient sends on its connection, CairnPool
 * adds routing, retries and failover. Each maps the reply with the functions above.
 */
export abstract class KvCommands {
  /** The session INCRs are numbered in (docs/protocol.md "INCR"). */
  protected abstract readonly session: ClientSession;

  /** Sends one request; resolves the raw response whatever its status. */
  abstract request(opcode: Opcode, key: string | Uint8Array, value: string | Uint8Array, flags?: number, opts?: RequestOptions): Promise<Response>;

  /** PING: resolves when the echo arrives (measure the round trip around it). @throws ResponseProtocolError on a wrong echo. */
  async ping(payload?: Uint8Array, opts?: RequestOptions): Promise<void> {
    const sent = payload ? toBuffer(payload) : EMPTY;
    checkPingEcho(await this.request(Opcode.Ping, EMPTY, sent, 0, opts), sent);
  }

  /**
   * GET: the value, its mod revision, create revision and version (request flag META), or null
   * when the key does not exist. `stale` skips the read-your-writes wait.
   */
  async get(key: string | Uint8Array, opts: GetOptions = {}): Promise<GetResult | null> {
    return getResult(await this.request(Opcode.Get, key, EMPTY, RequestFlags.Meta | (opts.stale ? RequestFlags.Stale : 0), opts));
  }

  /**
   * SET: resolves with the revision (Raft log index) the write committed at and `applied: true`.
   * With `ifAbsent` / `ifPresent` the write is conditional (atomic: evaluated in log order where it
   * is applied); `applied: false` when the condition was false. @throws RangeError when both are set.
   */
  async set(key: string | Uint8Array, value: string | Uint8Array, opts: SetOptions = {}): Promise<SetResult> {
    const withLease = opts.lease !== undefined || opts.ttlMs !== undefined;
    const proper = withLease ? encodeLeaseOperand({ leaseId: opts.lease ?? 0, ttlMs: opts.ttlMs ?? 0 }, toBuffer(value)) : value;
    const sent = opts.ifRevision === undefined ? proper : ifRevisionValue(opts.ifRevision, toBuffer(proper));
    return setResult(await this.request(Opcode.Set, key, sent, setFlags(opts) | (withLease ? RequestFlags.Lease : 0), opts), withLease, opts.ifAbsent === true || opts.ifPresent === true || opts.ifRevision !== undefined);
  }

  // ---- leases (etcd Lease API, docs/protocol.md "Leases") ----------------------------------------

  /**
   * LEASE_GRANT: a lease of `ttlMs` (etcd LeaseGrant; keys attached with `set(k, v, { lease })` go
   * when it is revoked or expires). `id` 0 / absent: the gateway picks one. Not re-sent by a pool
   * after an unknown outcome (a write). @throws LeaseExistsError when `id` is live; TooLargeError
   * at consensus.leasesMax live leases.
   */
  async leaseGrant(ttlMs: number, opts: RequestOptions & { id?: number } = {}): Promise<LeaseGrantResult> {
    const res = await this.request(Opcode.LeaseGrant, EMPTY, encodeLeaseGrantRequest({ ttlMs, leaseId: opts.id ?? 0 }), 0, opts);
    if (res.status === Status.ConditionFailed) throw new LeaseExistsError(res.payload.toString('utf8') || `lease ${opts.id} already exists`);
    expectOk(res);
    return { ...decodePayload('LEASE_GRANT', () => decodeLeaseGrantReply(res.payload)), revision: res.revision };
  }

  /** LEASE_REVOKE: deletes the lease and every key attached, at one revision (resolved). @throws LeaseNotFoundError when it is not live. */
  async leaseRevoke(leaseId: number, opts?: RequestOptions): Promise<{ revision: number }> {
    const res = await this.request(Opcode.LeaseRevoke, EMPTY, encodeLeaseU64(leaseId), 0, opts);
    throwLeaseNotFound(res, leaseId);
    return { revision: expectOk(res).revision };
  }

  /** LEASE_KEEPALIVE, once: the leader renews the lease to now + TTL; resolves the TTL, ms. @throws LeaseNotFoundError when it is not live (expired or revoked). See `keepAlive` for the loop. */
  async leaseKeepAliveOnce(leaseId: number, opts?: RequestOptions): Promise<number> {
    const res = await this.request(Opcode.LeaseKeepAlive, EMPTY, encodeLeaseU64(leaseId), 0, opts);
    throwLeaseNotFound(res, leaseId);
    expectOk(res);
    return decodePayload('LEASE_KEEPALIVE', () => decodeLeaseU64(res.payload));
  }

  /**
   * Keeps `leaseId` alive until `signal` aborts or `stop()` (etcd clientv3 KeepAlive): renews it
   * every TTL / 3, retrying failures; the handle's `closed` rejects with LeaseLostError when the
   * lease is lost (expired or revoked, or no renewal acknowledged for a whole TTL).
   */
  keepAlive(leaseId: number, opts: KeepAliveOptions = {}): LeaseKeeper {
    return new LeaseKeeper((id, o) => this.leaseKeepAliveOnce(id, o), leaseId, opts);
  }

  /** LEASE_TTL (etcd LeaseTimeToLive): granted TTL, ms left, and with `keys` the attached keys (at most the gateway's bound; `more` when cut); null when the lease is not live. */
  async leaseTimeToLive(leaseId: number, opts: RequestOptions & { keys?: boolean } = {}): Promise<LeaseTtl | null> {
    const res = await this.request(Opcode.LeaseTtl, EMPTY, encodeLeaseTtlRequest({ leaseId, keys: opts.keys ?? false }), 0, opts);
    if (res.status === Status.NotFound) return null;
    expectOk(res);
    return decodePayload('LEASE_TTL', () => decodeLeaseTtlReply(res.payload));
  }

  /** LEASE_LIST (etcd LeaseLeases): every live lease id, ascending, page after page (LEASE_LIST_PAGE_MAX per request). */
  async leases(opts?: RequestOptions): Promise<number[]> {
    const out: number[] = [];
    for (let afterId = 0; ; ) {
      const res = expectOk(await this.request(Opcode.LeaseList, EMPTY, encodeLeaseListRequest({ afterId, limit: LEASE_LIST_PAGE_MAX }), 0, opts));
      const page = decodePayload('LEASE_LIST', () => decodeLeaseListReply(res.payload));
      out.push(...page.ids);
      if (!page.more || page.ids.length === 0) return out;
      afterId = page.ids[page.ids.length - 1];
    }
  }

  /**
   * DEL: resolves with the revision of the tombstone; OK also for a missing key (protocol v1 does
   * not say whether it existed, so `found` is left undefined). With `ifRevision` (compare-and-swap)
   * `applied` is set: false when the key's mod revision was not that (nothing deleted).
   */
  async del(key: string | Uint8Array, opts: DelOptions = {}): Promise<{ revision: number; found?: boolean; applied?: boolean }> {
    if (opts.ifRevision === undefined) return { revision: expectOk(await this.request(Opcode.Del, key, EMPTY, 0, opts)).revision };
    return setResult(await this.request(Opcode.Del, key, ifRevisionValue(opts.ifRevision, EMPTY), RequestFlags.IfRevision, opts));
  }

  /**
   * RANGE: one page of a range read (keys in unsigned byte order), linearizable unless `stale`.
   * Pass `token` of the previous page (with the same options) for the next one; `scan` does that.
   */
  async range(opts: RangeReadOptions = {}): Promise<RangePage> {
    const q = rangeRequest(opts);
    return rangeResult(await this.request(Opcode.Range, q.key, q.value, q.flags, opts));
  }

  /**
   * TXN (etcd Txn): `client.txn().if(compare.value('k', '=', 'v')).then(op.put('k', 'w')).else(op.get('k')).commit()`.
   * Applied atomically at one revision; the commit resolves with whether the compares held and the
   * ops' responses. Not re-sent by a pool after an unknown outcome (a write).
   */
  txn(): TxnBuilder<TxnCommitResult> {
    return new TxnBuilder((request, opts) => this.commitTxn(request, opts));
  }

  /** Sends one TxnRequest (what `txn().commit()` does). @throws as `txnResult`; RangeError on a malformed request. */
  async commitTxn(request: TxnRequest, opts?: RequestOptions): Promise<TxnCommitResult> {
    return txnResult(await this.request(Opcode.Txn, EMPTY, encodeTxnRequest(request), 0, opts));
  }

  /**
   * The pages of a range read, one RANGE request each, every page after the first sent with the
   * previous page's continuation token (docs/protocol.md "RANGE", "Paging"). Each page is
   * linearizable at its own revision (`page.revision`) unless `stale`, and holds at most `limit`
   * keys (0 / absent: the gateway's `rangeKeysMax`) and the gateway's `rangeBytesMax`, so memory
   * stays bounded whatever the range. With `keysMax` (etcd's `--limit`) the pages stop after that
   * many keys: the last page asks only for the keys still wanted, and its `more` says whether
   * keys of the range follow. Stops early when the loop breaks.
   * @throws RangeError on a bad `keysMax`; the errors of `range`.
   */
  async *pages(opts: ScanOptions = {}): AsyncGenerator<RangePage, void, undefined> {
    const { keysMax, ...rest } = opts;
    if (keysMax !== undefined) positiveInt('keysMax', keysMax);
    let token: Uint8Array | undefined;
    let left = keysMax ?? Infinity;
    for (;;) {
      const limit = left === Infinity ? (rest.limit ?? 0) : Math.min(left, rest.limit || left);
      const page = await this.range({ ...rest, limit, token });
      left -= page.items.length;
      yield page;
      if (!page.token || left <= 0) return;
      token = page.token;
    }
  }

  /**
   * Every key of a range, page after page (`pages`; each page linearizable at its own revision; a
   * key present throughout the scan is yielded exactly once):
   * `for await (const item of client.scan({ prefix: 'user/' })) …`. Stops early when the loop breaks.
   */
  async *scan(opts: ScanOptions = {}): AsyncGenerator<RangeItem, void, undefined> {
    for await (const page of this.pages(opts)) yield* page.items;
  }

  /** INCR: `incrBy(key, 1)`. */
  incr(key: string | Uint8Array, opts?: RequestOptions): Promise<IncrResult> {
    return this.incrBy(key, 1n, opts);
  }

  /**
   * INCRBY (TLV opcode INCR): adds `delta` (a signed 64-bit integer; negative = DECRBY) to the key's
   * value read as a decimal integer (missing = 0), atomically where the write is applied; resolves
   * the new value. Sent in this client's session with its own seq, so CairnPool's retries of it
   * (on any retryable error, `retryWrites: 'safe'`) apply it at most once, through any gateway.
   * A call that still rejects with a retryable error may have been applied.
   * @throws IncrRefusedError when the value is not an integer or the sum overflows (nothing
   * written); RangeError when `delta` is outside i64; the typed error of other failures.
   */
  async incrBy(key: string | Uint8Array, delta: bigint | number, opts?: RequestOptions): Promise<IncrResult> {
    const ticket = this.session.begin();
    try {
      const value = encodeIncrRequest({ delta: BigInt(delta), session: { sessionId: this.session.sessionId, seq: ticket.seq, firstPendingSeq: ticket.firstPendingSeq } });
      return incrResult(await this.request(Opcode.Incr, key, value, 0, opts));
    } finally {
      ticket.end();
    }
  }

  /** STATUS: the cluster status, parsed from the JSON payload. */
  async status(opts?: RequestOptions): Promise<unknown> {
    return parseStatus(await this.request(Opcode.Status, EMPTY, EMPTY, 0, opts));
  }
}

/** What `leaseGrant` resolves: the lease's id and TTL, and the grant's revision. */
export interface LeaseGrantResult {
  leaseId: number;
  ttlMs: number;
  revision: number;
}

function throwLeaseNotFound(res: Response, leaseId: number): void {
  if (res.status === Status.NotFound) throw new LeaseNotFoundError(res.payload.toString('utf8') || `lease ${leaseId} not found`);
}

function decodePayload<T>(what: string, decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    throw new ResponseProtocolError(`${what} payload: ${(e as Error).message}`, e);
  }
}

export function toBuffer(b: string | Uint8Array): Buffer {
  if (typeof b === 'string') return Buffer.from(b, 'utf8');
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

export function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  return v;
}
