import { CommandCondition, CommandOp, type LeaseRefusal, RESERVED_KEY_MESSAGE, Status, encodeExpire, isReservedKey, type ExpireCondition, TxnOpFlags, TxnOpKind, encodeIncrDelta, encodeLeaseGrant, encodeU64Operand, encodeTxnCommandValue, isRangeOp, prefixEnd, txnOpsCount, type Command, type CommandMeta, type CommandSession, type CounterRefusal, type FrameLimits, type TxnLimits, type TxnRequest, type TxnResult } from '@cairn/protocol';
import { RANGE_LIMITS_DEFAULT, planRange, rangeFailure, rangeResult, type KvRangeQuery, type KvRangeResult, type RangeLimits } from './kv-range';
import type { ReadIndexClient } from './read-index';
import type { LeaseClient } from './lease-client';
import type { ReadPath, ReadResult } from './read-path';
import type { WritePath } from './write-path';
import type { ReadReservation } from '../server/flow';

/**
 * The outcome of one key-value request, whatever front door it came through: a read's fields
 * (ReadResult: GET's value, mod revision — 0 when not found —, create revision and version; an
 * error status's reason in `message`); for SET/DEL `revision` is the index the write committed at
 * (CONDITION_FAILED: the index it was evaluated at); and INCR's.
 */
export interface KvResult extends ReadResult {
  /** Lease requests (docs/leases.md "Doors"): the lease's fields on OK (see `KvLease`). */
  lease?: KvLease;
  /** CONDITION_FAILED of a SET on a lease: why (not live, or full); `message` says it. */
  leaseRefusal?: LeaseRefusal;
  /** INCR OK: the key's new value (signed 64-bit). */
  counter?: bigint;
  /** INCR CONDITION_FAILED: why it was refused (not an integer, or overflow); `message` in Redis's words. */
  refusal?: CounterRefusal;
  /** TXN OK: etcd TxnResponse (succeeded + one response per op of the branch that ran); `revision` = the txn's revision. */
  txn?: TxnResult;
}

/**
 * A lease request's answer: LEASE_GRANT `leaseId` and `ttlMs`; keep-alive `ttlMs`; time to live
 * `ttlMs`, `remainingMs` and (asked) `keys` with `more`; list `ids` with `more`.
 */
export interface KvLease {
  leaseId?: number;
  ttlMs?: number;
  remainingMs?: number;
  keys?: Buffer[];
  ids?: number[];
  more?: boolean;
}

/** What a session asks of the leader's lease table (LeaseClient) and of storage about a lease's keys. */
export interface KvLeasePaths {
  client: Pick<LeaseClient, 'keepAlive' | 'timeToLive' | 'list'>;
  /** A fresh lease id in 1..2^53-1 (random: two gateways pick the same one with odds ~n²/2^54). */
  newLeaseId(): number;
  /** The keys attached to `leaseId` read linearizably at `minIndex` or later, at most `keysMax`; absent: LEASE_TTL with keys is answered UNAVAILABLE. */
  keys?(leaseId: number, minIndex: number, keysMax: number): Promise<{ status: Status; message: string; keys: Buffer[]; more: boolean }>;
  /** Keys one LEASE_TTL answer lists at most (default 1000). */
  keysMax?: number;
}

/**
 * A gateway's transaction bounds (config `gateway.txnOpsMax`, `txnKeysMax`, `txnResultBytesMax`;
 * docs/protocol.md "TXN"): `opsMax` compares plus ops of both branches, checked before proposing
 * (BAD_REQUEST); `resultBytesMax` and `keysMax` travel in every Txn command (TxnLimits) so every
 * storage node applies the same bounds.
 */
export interface TxnBounds extends TxnLimits {
  opsMax: number;
}

/**
 * The config defaults: 128 compares and ops (etcd's default --max-txn-ops); a TxnResult of at most
 * 1 MiB less 8 KiB (so an outcome reply holding it fits nats-server's default 1 MiB max_payload
 * with the start-up check's 4 KiB headroom); 10,000 keys.
 */
export const TXN_BOUNDS_DEFAULT: TxnBounds = { opsMax: 128, resultBytesMax: 1024 * 1024 - 8192, keysMax: 10_000 };

/** The gateway config's transaction bounds. */
export function txnBoundsOf(g: { txnOpsMax: number; txnResultBytesMax: number; txnKeysMax: number }): TxnBounds {
  return { opsMax: g.txnOpsMax, resultBytesMax: g.txnResultBytesMax, keysMax: g.txnKeysMax };
}

/** What every session shares: the gateway's read and write paths (only the calls a session makes) and its request limits. */
export interface KvPaths {
  reads: Pick<ReadPath, 'get'> & Partial<Pick<ReadPath, 'range'>>;
  /**
   * Absent: reads are read-your-writes only (no ReadIndex round), as a `stale` read.
   * `readAlongside` (config `gateway.readAlongsideReadIndex`; absent: false): a linearizable GET or
   * range page sends its storage read together with the ReadIndex request (KvSession).
   */
  readIndex?: Pick<ReadIndexClient, 'readIndex'> & { readonly readAlongside?: boolean };
  writes: Pick<WritePath, 'submit'>;
  limits: FrameLimits;
  /** Range page bounds; default RANGE_LIMITS_DEFAULT. */
  rangeLimits?: RangeLimits;
  /** Transaction bounds; default TXN_BOUNDS_DEFAULT. */
  txnBounds?: TxnBounds;
  /** Lease keep-alive / time to live / list; absent: those answer UNAVAILABLE. */
  leases?: KvLeasePaths;
}

const EMPTY = new Uint8Array(0);

/**
 * Authorization of one session's key operations (GatewayAuth.guardFor, docs/security.md): null =
 * allowed, else the refusal (UNAUTHENTICATED, PERMISSION_DENIED, or UNAVAILABLE while the auth
 * state is not known). Absent: everything is allowed (tests, and no auth wiring).
 */
export interface KvGuard {
  key(key: Uint8Array, write: boolean): Promise<{ status: Status; message: string } | null>;
  /** `key` decided now, without waiting: undefined when it cannot be yet (the auth state is not known: ask `key`). Absent: always ask `key`. */
  keyNow?(key: Uint8Array, write: boolean): { status: Status; message: string } | null | undefined;
  /** A range read `[start, end)`, `end` null = no upper bound: it must lie inside what the user may read (`write`: write, a txn's range delete). */
  range(start: Uint8Array, end: Uint8Array | null, write?: boolean): Promise<{ status: Status; message: string } | null>;
  /** A request on no key (lease grant, keep-alive, revoke, time to live, list): any authenticated user (etcd's default for leases). Absent: allowed. */
  authenticated?(): Promise<{ status: Status; message: string } | null>;
}

/**
 * One client's session with the store, shared by every front door (binary protocol, and the RESP
 * and HTTP doors to come) so they behave identically: same limits, same errors, same consistency.
 * Reads are linearizable by default: the read index comes from the leader (ReadIndex, Raft thesis
 * §6.4) and the storage node serving the read has applied at least that index and this session's
 * last acknowledged write. A `stale` read skips both: any live storage node answers at once, so it
 * may return a value older than writes other clients (or this one) saw acknowledged.
 */
export class KvSession {
  private lastWriteIndex = 0;
  /** Guard checks of this session still waiting for their answer (`guarded`). */
  private guardsWaiting = 0;

  constructor(
    private readonly paths: KvPaths,
    private readonly guard?: KvGuard,
  ) {}

  /** Index of the last write this session saw acknowledged (0 before any). */
  lastAcknowledgedIndex(): number {
    return this.lastWriteIndex;
  }

  /**
   * Checks a key (and value) against the limits: a BAD_REQUEST/TOO_LARGE result, or null when fine.
   * BAD_REQUEST for the empty key (the auth state's) and for a key in the reserved keyspace (eight
   * 0xff bytes first: storage nodes' lease and expiry records, docs/leases.md), reads included.
   */
  check(key: Uint8Array, value?: Uint8Array): KvResult | null {
    const { keyBytesMax, valueBytesMax } = this.paths.limits;
    if (key.length === 0) return fail(Status.BadRequest, 'empty key');
    if (isReservedKey(key)) return fail(Status.BadRequest, RESERVED_KEY_MESSAGE);
    if (key.length > keyBytesMax) return fail(Status.TooLarge, `key is ${key.length} bytes; keyBytesMax is ${keyBytesMax}`);
    if (value && value.length > valueBytesMax) return fail(Status.TooLarge, `value is ${value.length} bytes; valueBytesMax is ${valueBytesMax}`);
    return null;
  }

  /** `reservation`: the value bytes the door reserved for the answer (read flow control, ReadPath). */
  get(key: Uint8Array, opts: { stale?: boolean; reservation?: ReadReservation } = {}): Promise<KvResult> {
    const bad = this.check(key);
    if (bad) return Promise.resolve(bad);
    const run = () => (opts.stale ? this.paths.reads.get(key, 0, opts.reservation) : this.linearizableGet(key, opts.reservation));
    return this.guarded(key, false, run);
  }

  /**
   * Runs `fn` once the guard allows `key`; with no guard, or with a guard that decides at once
   * (`keyNow`: the auth state is known) while no earlier check of this session waits, at once: no
   * extra turn, and pipelined requests keep their order.
   */
  private guarded<T extends KvResult>(key: Uint8Array, write: boolean, fn: () => Promise<T>): Promise<T | KvResult> {
    const guard = this.guard;
    if (!guard) return fn();
    if (this.guardsWaiting === 0 && guard.keyNow) {
      const now = guard.keyNow(key, write);
      if (now === null) return fn();
      if (now) return Promise.resolve(fail(now.status, now.message));
    }
    this.guardsWaiting++;
    return guard.key(key, write).then(
      (denied) => {
        this.guardsWaiting--;
        return denied ? fail(denied.status, denied.message) : fn();
      },
      (e: unknown) => {
        this.guardsWaiting--;
        throw e;
      },
    );
  }

  private async linearizableGet(key: Uint8Array, reservation: ReadReservation | undefined): Promise<KvResult> {
    if (this.paths.readIndex?.readAlongside) {
      return this.alongsideReadIndex(
        (minIndex) => this.paths.reads.get(key, minIndex, reservation),
        (read) => (read.status === Status.Unavailable ? 'final' : read.appliedIndex),
        (failure) => failure,
      );
    }
    const minIndex = await this.linearizableIndex();
    if (typeof minIndex !== 'number') return minIndex;
    return this.paths.reads.get(key, minIndex, reservation);
  }

  /**
   * A linearizable read with its storage read sent together with the ReadIndex request (config
   * `gateway.readAlongsideReadIndex`; Raft thesis §6.4 with the read moved up, one bus round trip
   * fewer). The first read goes out with `minIndex` = this session's last acknowledged write (L),
   * in the same event-loop turn as the ReadIndex request, both after this request arrived at the
   * gateway. Once both have answered: the read index failed → its failure; the read is final
   * (`appliedOf` says 'final': UNAVAILABLE after readTimeoutMs, the client gone) → the read's
   * answer; the node's applied index A at that read (`appliedOf`) is at least R = max(read index,
   * L) → the read's answer; else the read goes again with `minIndex` R, as without the switch.
   *
   * Why the kept answer is linearizable: the node read after the request arrived (it got the read
   * request after the gateway had the client's request) in one synchronous step, from a state
   * holding every committed entry up to A and only committed entries. Every write acknowledged
   * before the request arrived committed before it, so its index is ≤ the leader's read index
   * (the leader's commit index when it got the ReadIndex request, which left after the request
   * arrived) ≤ R ≤ A: the answer reflects it. Every entry it reflects committed before the node
   * read it, i.e. before the answer. So the read takes effect at the node's read, inside its
   * interval, after every write that completed before it started, as a read at minIndex R would.
   * A later read's R is at least A too (the leader's commit index covers every entry committed
   * before its ReadIndex request), so reads never go back. Expired keys are hidden by the node
   * the same way (its clock at the read).
   */
  private async alongsideReadIndex<T>(read: (minIndex: number) => Promise<T>, appliedOf: (r: T) => number | undefined | 'final', failed: (f: KvResult) => T): Promise<T> {
    const [index, first] = await Promise.all([this.linearizableIndex(), read(this.lastWriteIndex)]);
    if (typeof index !== 'number') return failed(index);
    const applied = appliedOf(first);
    if (applied === 'final' || (applied !== undefined && applied >= index)) return first;
    return read(index);
  }

  /** The index a linearizable read must see: the leader's read index and this session's last acknowledged write. */
  private async linearizableIndex(): Promise<number | KvResult> {
    let minIndex = this.lastWriteIndex;
    if (this.paths.readIndex) {
      const ri = await this.paths.readIndex.readIndex();
      if (!ri.ok) return fail(ri.status, ri.message);
      if (ri.index > minIndex) minIndex = ri.index;
    }
    return minIndex;
  }

  /**
   * One page of an ordered range read (docs/protocol.md "RANGE"): linearizable like a GET (a read
   * index, then a storage node that applied it), or `stale`. The page is read by one storage node
   * in one step, so it is the store at one revision (`revision`); pages of one scan may be at
   * different revisions. At most the gateway's rangeKeysMax keys and rangeBytesMax bytes.
   */
  async range(q: KvRangeQuery): Promise<KvRangeResult> {
    const plan = planRange(q, this.paths.limits.keyBytesMax, this.paths.rangeLimits ?? RANGE_LIMITS_DEFAULT);
    if ('status' in plan) return plan;
    const denied = this.guard ? await this.guard.range(plan.start, plan.end) : null;
    if (denied) return rangeFailure(denied.status, denied.message);
    const reads = this.paths.reads;
    if (!reads.range) return rangeFailure(Status.Unavailable, 'range reads are not served by this gateway');
    const range = reads.range.bind(reads);
    if (!q.stale && this.paths.readIndex?.readAlongside) {
      // A page answered OK is read at its revision (the node's applied index); other answers are
      // read again at the read index, except UNAVAILABLE (after readTimeoutMs), which is final.
      return this.alongsideReadIndex(
        async (minIndex) => rangeResult(await range({ ...plan, minIndex })),
        (page) => (page.status === Status.Unavailable ? 'final' : page.status === Status.Ok ? page.revision : undefined),
        (failure) => rangeFailure(failure.status, failure.message),
      );
    }
    let minIndex = 0;
    if (!q.stale) {
      const index = await this.linearizableIndex();
      if (typeof index !== 'number') return rangeFailure(index.status, index.message);
      minIndex = index;
    }
    return rangeResult(await reads.range({ ...plan, minIndex }));
  }

  /**
   * SET. With a `condition` (IF_ABSENT = SET NX, IF_PRESENT = SET XX) the condition is evaluated
   * atomically where the write is applied, in log order: OK when it held and the value was
   * written, CONDITION_FAILED (nothing written) when it did not. `ifRevision` (compare-and-swap,
   * etcd's `mod_revision ==` compare) writes only when the key's mod revision equals it (0 = the
   * key must be missing); it excludes `condition`. `meta`: the key's lease and absolute expiry
   * (docs/protocol.md "Lease and TTL commands"); without it the key has neither afterwards.
   */
  set(key: Uint8Array, value: Uint8Array, opts: { condition?: CommandCondition; ifRevision?: number; meta?: CommandMeta } = {}): Promise<KvResult> {
    return this.write(CommandOp.Set, key, value, opts.condition ?? CommandCondition.None, opts.ifRevision, opts.meta);
  }

  /**
   * Sets (`expiresAtMs` > 0) or removes (0) a live key's absolute expiry without writing its value
   * (Redis EXPIRE/PEXPIREAT/PERSIST; command op Expire, docs/protocol.md "Lease and TTL
   * commands"), `condition` (Redis 7 NX/XX/GT/LT) evaluated where the write is applied, in log
   * order, against the key's expiry then; `nowMs` is the gateway's clock: a key whose expiry is at
   * or before it counts as absent. OK when it applied, CONDITION_FAILED when the key was absent or
   * the condition did not hold (nothing changed).
   */
  expire(key: Uint8Array, expiresAtMs: number, condition: ExpireCondition, nowMs: number): Promise<KvResult> {
    const bad = this.check(key);
    if (bad) return Promise.resolve(bad);
    let value: Buffer;
    try {
      value = encodeExpire({ expiresAtMs, condition, nowMs });
    } catch (e) {
      return Promise.resolve(fail(Status.BadRequest, (e as Error).message));
    }
    return this.guarded(key, true, () => this.submit({ op: CommandOp.Expire, key, value }));
  }

  /** DEL; with `ifRevision` only when the key's mod revision equals it (evaluated like a conditional SET). */
  del(key: Uint8Array, opts: { ifRevision?: number } = {}): Promise<KvResult> {
    return this.write(CommandOp.Delete, key, EMPTY, CommandCondition.None, opts.ifRevision);
  }

  /**
   * INCRBY: adds `delta` (a signed 64-bit integer) to the key's value read as a decimal integer (a
   * missing key counts as 0), evaluated atomically where the write is applied, in log order. OK:
   * `counter` = the new value (stored as its decimal text); CONDITION_FAILED with `refusal` when
   * the value is not an integer or the sum overflows (nothing written). `clientSession`: the
   * client's own session (TLV INCR, docs/protocol.md "INCR"), so a copy re-sent through another
   * gateway applies at most once; absent, the gateway's session is used.
   */
  incr(key: Uint8Array, delta: bigint, clientSession?: CommandSession): Promise<KvResult> {
    const bad = this.check(key);
    if (bad) return Promise.resolve(bad);
    const command: Command = { op: CommandOp.Incr, key, value: encodeIncrDelta(delta) };
    if (clientSession) command.session = clientSession;
    return this.guarded(key, true, () => this.submit(command));
  }

  /**
   * An etcd Txn (libs/protocol txn.ts): `if` every compare holds `then` the success ops `else` the
   * failure ops, evaluated and applied atomically at one revision where the write is applied, in
   * log order. OK: `txn` = its TxnResult (also when the compares failed), `revision` = its
   * revision. BAD_REQUEST: more than txnBounds.opsMax compares and ops, an empty key outside a range
   * start; TOO_LARGE: a key or value over the limits, or refused at apply (result over
   * resultBytesMax, more than keysMax keys, writes over the largest engine record);
   * CONDITION_FAILED with `leaseRefusal`: a put's lease (flag LEASE) does not exist or is full at
   * apply (etcd ErrLeaseNotFound), nothing applied.
   */
  txn(request: TxnRequest): Promise<KvResult> {
    const count = txnOpsCount(request);
    const { opsMax } = this.txnBounds();
    if (count > opsMax) return Promise.resolve(fail(Status.BadRequest, `a transaction holds at most ${opsMax} compares and ops (txnOpsMax), got ${count}`));
    for (const c of request.compares) {
      const bad = this.check(c.key, c.value);
      if (bad) return Promise.resolve(bad);
    }
    for (const o of [...request.success, ...request.failure]) {
      // A range's start key may be empty (from the first key); every other key may not.
      const bad = o.key.length === 0 && isRangeOp(o) ? null : this.check(o.key, o.kind === TxnOpKind.Put ? o.value : undefined);
      if (bad) return Promise.resolve(bad);
    }
    // With no guard, at once (no extra turn: pipelined requests keep their order).
    if (!this.guard) return this.submitTxn(request);
    return this.txnAuthorized(this.guard, request).then((denied) => denied ?? this.submitTxn(request));
  }

  /**
   * etcd's txn permission check: read on every compared, got or ranged key, write on every put or
   * deleted key (a range delete: write on the whole range, read too with PREV_KV). Null = allowed.
   */
  private async txnAuthorized(guard: KvGuard, request: TxnRequest): Promise<KvResult | null> {
    const checks: (() => Promise<{ status: Status; message: string } | null>)[] = request.compares.map((c) => () => guard.key(c.key, false));
    for (const o of [...request.success, ...request.failure]) {
      const write = o.kind === TxnOpKind.Put || o.kind === TxnOpKind.Delete;
      if (!isRangeOp(o)) {
        checks.push(() => guard.key(o.key, write));
        if (o.kind === TxnOpKind.Delete && (o.flags ?? 0) & TxnOpFlags.PrevKv) checks.push(() => guard.key(o.key, false));
        continue;
      }
      const end = (o.flags ?? 0) & TxnOpFlags.Prefix ? prefixEnd(o.key) : o.end!.length === 1 && o.end![0] === 0 ? null : o.end!;
      checks.push(() => guard.range(o.key, end, write));
      if (o.kind === TxnOpKind.Delete && (o.flags ?? 0) & TxnOpFlags.PrevKv) checks.push(() => guard.range(o.key, end, false));
    }
    for (const check of checks) {
      const denied = await check();
      if (denied) return fail(denied.status, denied.message);
    }
    return null;
  }

  private txnBounds(): TxnBounds {
    return this.paths.txnBounds ?? TXN_BOUNDS_DEFAULT;
  }

  private submitTxn(request: TxnRequest): Promise<KvResult> {
    let value: Buffer;
    try {
      const { resultBytesMax, keysMax } = this.txnBounds();
      value = encodeTxnCommandValue({ limits: { resultBytesMax, keysMax }, request });
    } catch (e) {
      return Promise.resolve(fail(Status.BadRequest, `malformed transaction: ${(e as Error).message}`));
    }
    return this.submit({ op: CommandOp.Txn, key: EMPTY, value });
  }

  private write(op: CommandOp, key: Uint8Array, value: Uint8Array, condition: CommandCondition, ifRevision: number | undefined, meta?: CommandMeta): Promise<KvResult> {
    const bad = this.check(key, value);
    if (bad) return Promise.resolve(bad);
    if (ifRevision !== undefined) {
      if (condition !== CommandCondition.None) return Promise.resolve(fail(Status.BadRequest, 'a revision condition excludes IF_ABSENT / IF_PRESENT'));
      if (!Number.isSafeInteger(ifRevision) || ifRevision < 0) return Promise.resolve(fail(Status.BadRequest, `revision condition must be an integer in 0..2^53-1, got ${ifRevision}`));
    }
    const c: Command = ifRevision !== undefined ? { op, key, value, condition: CommandCondition.IfRevision, revision: ifRevision } : condition === CommandCondition.None ? { op, key, value } : { op, key, value, condition };
    if (meta) c.meta = meta;
    return this.guarded(key, true, () => this.submit(c));
  }

  // ---- leases (etcd Lease API; docs/leases.md "Doors") ----------------------------------------

  /**
   * LeaseGrant: a lease of `ttlMs` with id `leaseId`, or (0) a fresh id the gateway picks, through
   * the log. OK: `lease.leaseId`, `lease.ttlMs`, revision = the grant's. CONDITION_FAILED: that id
   * is live (a picked id is tried once more). TOO_LARGE: consensus.leasesMax leases are live.
   */
  async leaseGrant(ttlMs: number, leaseId = 0): Promise<KvResult> {
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) return fail(Status.BadRequest, `lease TTL must be an integer in 1..2^53-1 ms, got ${ttlMs}`);
    const denied = await this.authenticated();
    if (denied) return denied;
    const paths = this.paths.leases;
    for (let attempt = 0; ; attempt++) {
      const id = leaseId || (paths ? paths.newLeaseId() : 0);
      if (id === 0) return fail(Status.Unavailable, 'this gateway serves no leases');
      const r = await this.submit({ op: CommandOp.LeaseGrant, key: EMPTY, value: encodeLeaseGrant(id, ttlMs) });
      if (r.status === Status.Ok) return { ...r, lease: { leaseId: id, ttlMs } };
      if (r.status === Status.ConditionFailed && leaseId === 0 && attempt === 0) continue;
      return r.status === Status.ConditionFailed ? { ...r, message: `lease ${id} already exists` } : r;
    }
  }

  /** LeaseRevoke through the log: the lease and every key attached go at one revision. OK: revision = the revoke's. NOT_FOUND: no such lease. */
  async leaseRevoke(leaseId: number): Promise<KvResult> {
    const bad = checkLeaseId(leaseId);
    if (bad) return bad;
    const denied = await this.authenticated();
    if (denied) return denied;
    const r = await this.submit({ op: CommandOp.LeaseRevoke, key: EMPTY, value: encodeU64Operand(leaseId) });
    return r.status === Status.ConditionFailed ? fail(Status.NotFound, `lease ${leaseId} not found`) : r;
  }

  /** LeaseKeepAlive at the leader: OK with `lease.ttlMs` (the deadline is now + ttl), NOT_FOUND when not live. */
  async leaseKeepAlive(leaseId: number): Promise<KvResult> {
    const bad = checkLeaseId(leaseId) ?? (await this.authenticated());
    if (bad) return bad;
    if (!this.paths.leases) return fail(Status.Unavailable, 'this gateway serves no leases');
    const r = await this.paths.leases.client.keepAlive(leaseId);
    return r.status === Status.Ok ? { ...ok(), lease: { leaseId, ttlMs: r.ttlMs } } : fail(r.status, r.message);
  }

  /**
   * LeaseTimeToLive: OK with `lease.ttlMs` (granted), `lease.remainingMs` (before the leader
   * expires it); with `keys`, the attached keys (at most leaseKeysMax; `more` when cut), read
   * from a storage node at the leader's read index. NOT_FOUND when not live.
   */
  async leaseTimeToLive(leaseId: number, keys: boolean): Promise<KvResult> {
    const bad = checkLeaseId(leaseId) ?? (await this.authenticated());
    if (bad) return bad;
    const paths = this.paths.leases;
    if (!paths) return fail(Status.Unavailable, 'this gateway serves no leases');
    const r = await paths.client.timeToLive(leaseId);
    if (r.status !== Status.Ok) return fail(r.status, r.message);
    const lease: KvLease = { leaseId, ttlMs: r.ttlMs, remainingMs: r.remainingMs };
    if (!keys) return { ...ok(), lease };
    if (!paths.keys) return fail(Status.Unavailable, 'this gateway does not list a lease\'s keys');
    const index = await this.linearizableIndex();
    if (typeof index !== 'number') return index;
    const k = await paths.keys(leaseId, index, paths.keysMax ?? 1000);
    if (k.status !== Status.Ok) return fail(k.status, k.message);
    return { ...ok(), lease: { ...lease, keys: k.keys, more: k.more } };
  }

  /** LeaseLeases, paged: live ids > `afterId`, ascending, at most `limit`; `lease.more` when others follow. */
  async leaseList(afterId: number, limit: number): Promise<KvResult> {
    const denied = await this.authenticated();
    if (denied) return denied;
    if (!this.paths.leases) return fail(Status.Unavailable, 'this gateway serves no leases');
    const r = await this.paths.leases.client.list(afterId, limit);
    return r.status === Status.Ok ? { ...ok(), lease: { ids: r.ids, more: r.more } } : fail(r.status, r.message);
  }

  private async authenticated(): Promise<KvResult | null> {
    const denied = this.guard?.authenticated ? await this.guard.authenticated() : null;
    return denied ? fail(denied.status, denied.message) : null;
  }

  private async submit(command: Command): Promise<KvResult> {
    const w = await this.paths.writes.submit(command);
    // A failed condition was evaluated at its index: later reads must not see an older state either.
    if ((w.status === Status.Ok || w.status === Status.ConditionFailed) && w.revision > this.lastWriteIndex) this.lastWriteIndex = w.revision;
    const r: KvResult = { status: w.status, revision: w.revision, value: EMPTY, message: w.message };
    if (w.counter !== undefined) r.counter = w.counter;
    if (w.refusal !== undefined) r.refusal = w.refusal;
    if (w.txn !== undefined) r.txn = w.txn;
    if (w.leaseRefusal !== undefined) r.leaseRefusal = w.leaseRefusal;
    return r;
  }
}

function fail(status: Status, message: string): KvResult {
  return { status, revision: 0, value: EMPTY, message };
}

function ok(): KvResult {
  return { status: Status.Ok, revision: 0, value: EMPTY, message: '' };
}

function checkLeaseId(leaseId: number): KvResult | null {
  return Number.isSafeInteger(leaseId) && leaseId >= 1 ? null : fail(Status.BadRequest, `lease id must be an integer in 1..2^53-1, got ${leaseId}`);
}
