import { EngineOp, recordBytesMaxOf, type BatchMutation, type EngineEntry, type RangePage, type RangeQuery } from '@cairn/engine';
import {
  AUTH_STATE_KEY,
  ApplyOutcome,
  CommandCondition,
  CommandOp,
  CounterRefusal,
  DEFAULT_LIMITS,
  TxnRefusal,
  applyAuthChange,
  authChangeOf,
  decodeAuthState,
  decodeCommand,
  decodeIncrDelta,
  decodeTxnCommandValue,
  emptyAuthState,
  encodeAuthState,
  encodeTxnResult,
  isAuthOp,
  WatchEventType,
  type WatchEvent,
  peekCommandOp,
  type Command,
  type TxnCommandValue,
  type WireEntry,
} from '@cairn/protocol';
import type { ApplyResult, SessionRecord } from './apply-result';
import { LeaseIndex, isReservedKey, latin1 } from './lease-index';
import { LEASE_OPS, attachWrites, clientView, isExpiryCommand, detachBytes, detachWrites, txnWritesReserved, evaluateLeaseOp, leaseWrites, refuseLeaseOnSet, refuseLeasedTxn, targetsReservedKey } from './lease-apply';
import type { SessionTable } from './session-table';
import { evaluateTxn, type LeasedKey } from './txn-apply';

/** Raft entry type of a leader's no-op (libs/raft EntryType.Noop). */
export const ENTRY_TYPE_NOOP = 1;
/** Default bound of the per-index results table (entries). */
export const APPLY_RESULTS_MAX = 65_536;
/** Default bound of the TxnResult bytes held for outcome queries (results table and session table together), bytes (64 MiB; config `storage.txnResultsHeldBytesMax`). */
export const TXN_RESULTS_HELD_BYTES_MAX = 64 * 1024 * 1024;

export type { ApplyResult } from './apply-result';

export interface CommandApplierOptions {
  /** `key`'s live value, mod revision (create revision and version: a txn compares them) in the engine's state (everything handed to the engine so far), null when it does not exist. */
  get(key: Uint8Array): KeyState | null;
  /** One range page of the engine's state (as `get`): a txn's ranges and delete ranges. Required to apply a txn (the storage node passes `engine.range`). */
  range?(q: RangeQuery): RangePage;
  /** The largest batch of writes one entry may make, bytes (`batchRecordBytes`): the engine's largest record; default for the default key and value bounds. A txn over it is refused TOO_LARGE; a lease's revoke must fit it (docs/leases.md). */
  mutationBytesMax?: number;
  /** Bound of the TxnResult bytes held for outcome queries; beyond it the oldest txn's result is dropped (its outcome then says "applied, result no longer known"). Default TXN_RESULTS_HELD_BYTES_MAX (the storage node passes `storage.txnResultsHeldBytesMax`). */
  txnResultsHeldBytesMax?: number;
  /** Bound of the results table; the oldest result is forgotten first (then answered Unknown). */
  resultsMax?: number;
  /** Called for a committed entry whose data does not decode (it is applied as a no-op). */
  onUndecodable?(index: number, err: unknown): void;
  /** Called for an auth change refused at apply (ConditionFailed), with why (never a secret: names and rules only). */
  onAuthRefused?(index: number, reason: string): void;
  /** Client sessions (Raft thesis §6.3): a write carrying a session is applied at most once per (session, seq). */
  sessions?: SessionTable;
  /** Leases and key expiries (docs/leases.md "Storage"); default: an empty index (tests of plain writes). */
  leases?: LeaseIndex;
  /** Keys one lease holds at most (a put beyond: ConditionFailed, LeaseRefusal.KeysFull); default KEYS_PER_LEASE_MAX. */
  keysPerLeaseMax?: number;
}

/** Default bound of the keys attached to one lease (storage.keysPerLeaseMax). */
export const KEYS_PER_LEASE_MAX = 1000;

/**
 * A prefix of a batch turned into engine entries, plus its session writes for the session journal
 * and its watch events. `consumed`: how many of the given entries it covers (all, unless a Txn
 * that is not the first came: a txn reads the engine directly, so the entries before it go to the
 * engine first).
 */
export interface AppliedBatch {
  engine: EngineEntry[];
  sessionRecords: SessionRecord[];
  /** One per key mutation, in order (`watchEventOf`; docs/watch.md "Event source"). */
  events: WatchEvent[];
  consumed: number;
}
/** A key's value and mod revision as the applier sees it; create revision and version when known (the engine's keydir has them). */
export interface KeyState {
  value: Uint8Array;
  revision: number;
  createRevision?: number;
  version?: number;
}

const EMPTY = new Uint8Array(0);
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/**
 * The deterministic part of applying committed entries: turns Raft entries into engine entries,
 * evaluating each conditional write (IF_ABSENT / IF_PRESENT on Set; IF_REVISION, compare-and-swap
 * on the key's mod revision, on Set and Delete) against the state right before it: the
 * engine's state plus the entries earlier in the same batch. The same log order therefore gives
 * the same outcome on every storage node, and a replay after a restart gives it again.
 *
 * The outcome of every conditional write is recorded by index in a results table bounded by
 * `resultsMax` (oldest forgotten first); the gateway asks for it after the leader's commit reply.
 * A forgotten or never-recorded index is answered `Unknown` (the gateway then reports the outcome
 * as unknown, as for a lost reply). Plain writes are not recorded: the commit reply is their outcome.
 *
 * A write that carries a session goes through the SessionTable first: a duplicate (same session
 * and seq as a write already applied) or a stale copy is applied as a no-op, and the index of a
 * duplicate records the original outcome.
 *
 * An auth change (ops 9..12, libs/protocol auth.ts) rewrites the whole auth state, the engine's
 * empty key AUTH_STATE_KEY (unreachable by client keys), at its index: that key's mod revision is
 * the auth revision. Its outcome is always recorded (Applied, or ConditionFailed when the change
 * is refused or malformed). A key command on the empty key is never applied.
 */
export class CommandApplier {
  private readonly results = new Map<number, ApplyResult>();
  private readonly resultsMax: number;
  /** Results holding a TxnResult, oldest first, and their bytes (bounded by txnResultsHeldBytesMax). */
  private readonly txnHeld = new Set<ApplyResult>();
  private txnHeldBytes = 0;
  /** The lease and expiry state, kept equal to the engine's reserved records (docs/leases.md "Storage"). */
  readonly leases: LeaseIndex;
  private readonly keysPerLeaseMax: number;
  private readonly mutationBytesMax: number;

  constructor(private readonly opts: CommandApplierOptions) {
    this.resultsMax = opts.resultsMax ?? APPLY_RESULTS_MAX;
    this.leases = opts.leases ?? new LeaseIndex();
    this.keysPerLeaseMax = opts.keysPerLeaseMax ?? KEYS_PER_LEASE_MAX;
    this.mutationBytesMax = opts.mutationBytesMax ?? recordBytesMaxOf(DEFAULT_LIMITS.keyBytesMax, DEFAULT_LIMITS.valueBytesMax);
    if (!Number.isSafeInteger(this.resultsMax) || this.resultsMax < 1) throw new RangeError(`resultsMax must be a positive integer, got ${opts.resultsMax}`);
  }

  /**
   * Engine entries for `entries` (contiguous, in index order), outcomes recorded. Call once per
   * entry, in log order, handing each batch to the engine (BitcaskEngine.apply) before converting
   * the next, then `leases.handedToEngine()`: until then reads see the engine's expiries, not the
   * ones this batch set (LeaseIndex).
   */
  toEngineEntries(entries: WireEntry[]): AppliedBatch {
    // The previous batch was handed to the engine before this one (log order): what the index kept for it is stale.
    this.leases.handedToEngine();
    // Keys written earlier in this batch (null = deleted): the engine sees them only once the batch is applied.
    const batchState = new Map<string, KeyState | null>();
    const get = (key: Uint8Array): KeyState | null => {
      const s = batchState.get(latin1(key));
      return s !== undefined ? s : this.opts.get(key);
    };
    const out: EngineEntry[] = [];
    const sessionRecords: SessionRecord[] = [];
    const events: WatchEvent[] = [];
    // THE watch hook: every key mutation reaches the engine as a Set or Delete engine entry or as a
    // mutation of a Batch entry (a txn), so deriving events here covers every path (SET/DEL, INCR,
    // txn ops, and any later op that emits engine entries). New ops need no watch code of their own.
    const mutate = (index: number, m: { op: EngineOp; key: Uint8Array; value: Uint8Array }, expiry: boolean): void => {
      // The empty key holds the auth state (AUTH_STATE_KEY), the reserved keyspace the lease state
      // (docs/leases.md): not client keys, so no event.
      const k = latin1(m.key);
      const before = batchState.get(k);
      const ev = m.key.length === 0 || isReservedKey(m.key) ? null : watchEventOf({ index, op: m.op, key: m.key, value: m.value }, before !== undefined ? before : this.opts.get(m.key));
      // An ExpireKey's or an expired lease's delete is time passing (Redis reports it `expired`, not `del`).
      if (ev && expiry && ev.type === WatchEventType.Delete) ev.expired = true;
      if (ev) events.push(ev);
      batchState.set(k, m.op === EngineOp.Set ? { value: m.value, revision: index, createRevision: ev?.createRevision, version: ev?.version } : null);
    };
    let i = 0;
    for (; i < entries.length; i++) {
      // A txn reads ranges of the engine: everything before it must be handed to the engine first.
      if (i > 0 && entries[i].type !== ENTRY_TYPE_NOOP && peekCommandOp(entries[i].data) === CommandOp.Txn) break;
      const ee = this.toEngineEntry(entries[i], get, sessionRecords);
      const expiry = entries[i].type !== ENTRY_TYPE_NOOP && isExpiryCommand(entries[i].data);
      if (ee.op === EngineOp.Set || ee.op === EngineOp.Delete) mutate(ee.index, ee, expiry);
      else if (ee.op === EngineOp.Batch) for (const m of ee.mutations!) mutate(ee.index, m, expiry);
      out.push(ee);
    }
    return { engine: out, sessionRecords, events, consumed: i };
  }

  /**
   * The outcome of the write at `index`: from the session table when `session` is given and it
   * holds that seq (it survives restarts), else from the per-index results, else Unknown.
   */
  outcomeOf(index: number, session?: { sessionId: bigint; seq: number }): ApplyResult {
    const r = session && this.opts.sessions?.result(session.sessionId, session.seq);
    return r ?? this.outcome(index);
  }

  /** The recorded outcome of the entry at `index`, or Unknown when none is recorded (see the class doc). */
  outcome(index: number): ApplyResult {
    return this.results.get(index) ?? { outcome: ApplyOutcome.Unknown, revision: 0 };
  }

  /** Results currently held (≤ resultsMax). */
  resultsSize(): number {
    return this.results.size;
  }

  private toEngineEntry(e: WireEntry, get: (key: Uint8Array) => KeyState | null, sessionRecords: SessionRecord[]): EngineEntry {
    const noop: EngineEntry = { index: e.index, op: EngineOp.Noop, key: EMPTY, value: EMPTY };
    if (e.type === ENTRY_TYPE_NOOP) return noop;
    let c: Command;
    let txn: TxnCommandValue | undefined;
    try {
      c = decodeCommand(e.data);
      if (c.op === CommandOp.Txn) txn = decodeTxnCommandValue(c.value);
    } catch (err) {
      // Every node decodes the same committed bytes the same way, so treating an undecodable
      // command as a no-op keeps the nodes identical; reported loudly because it is a bug.
      this.opts.onUndecodable?.(e.index, err);
      return noop;
    }
    // An applied auth change's new encoded state, a txn's writes (set by the evaluation below, read by write()).
    let authValue: Uint8Array = EMPTY;
    let mutations: BatchMutation[] = [];
    let detached: Buffer[] = [];
    let leased: LeasedKey[] = [];
    const evaluateIt = (): ApplyResult => {
      if (txn) {
        if (txnWritesReserved(txn.request)) return { outcome: ApplyOutcome.ConditionFailed, revision: e.index };
        const t = evaluateTxn(txn, e.index, clientView(get, (q) => this.range(q)), this.mutationBytesMax, (ms, l) => detachBytes(ms, this.leases, l));
        if ('tooLarge' in t) return { outcome: ApplyOutcome.ConditionFailed, revision: e.index, txnRefusal: TxnRefusal.TooLarge };
        const leaseRefusal = refuseLeasedTxn(t, this.leases, this.keysPerLeaseMax, this.mutationBytesMax);
        if (leaseRefusal !== null) return { outcome: ApplyOutcome.ConditionFailed, revision: e.index, leaseRefusal };
        mutations = t.mutations;
        detached = t.detached;
        leased = t.leased;
        return { outcome: ApplyOutcome.Applied, revision: e.index, txn: encodeTxnResult(t.result) };
      }
      if (!isAuthOp(c.op)) return this.evaluate(c, e.index, get);
      const a = this.evaluateAuth(c, e.index, get);
      authValue = a.value;
      return a.result;
    };
    const recorded = c.condition !== undefined || c.op === CommandOp.Incr || c.op === CommandOp.Txn || isAuthOp(c.op) || c.meta !== undefined || LEASE_OPS.has(c.op);
    const sessions = this.opts.sessions;
    if (c.session && sessions) {
      const d = sessions.apply(e.index, c.session, evaluateIt);
      sessionRecords.push({ index: e.index, session: c.session, result: d.kind === 'new' ? d.result : null });
      if (d.kind === 'stale') return noop;
      if (recorded || d.kind === 'duplicate') this.record(e.index, d.result);
      return d.kind === 'new' && d.result.outcome === ApplyOutcome.Applied ? this.write(c, e.index, d.result, authValue, { mutations, detached, leased }, get) : noop;
    }
    const r = evaluateIt();
    if (recorded) this.record(e.index, r);
    return r.outcome === ApplyOutcome.Applied ? this.write(c, e.index, r, authValue, { mutations, detached, leased }, get) : noop;
  }

  /** `evaluate` plus the lease rules: lease/TTL ops, a Set naming a missing or full lease, a write to the reserved keyspace. */
  private evaluate(c: Command, index: number, get: (key: Uint8Array) => KeyState | null): ApplyResult {
    if (LEASE_OPS.has(c.op)) return evaluateLeaseOp(c, index, get, this.leases);
    if (targetsReservedKey(c)) return { outcome: ApplyOutcome.ConditionFailed, revision: index };
    const r = evaluate(c, index, get);
    return r.outcome === ApplyOutcome.Applied ? (refuseLeaseOnSet(c, index, this.leases, this.keysPerLeaseMax, this.mutationBytesMax) ?? r) : r;
  }

  /**
   * The engine entry of an applied command: its key's write plus its lease writes (the key's
   * metadata record; for a revoke, every attached key and its record) in ONE batch record, so they
   * take effect together at `index`.
   */
  private write(c: Command, index: number, r: ApplyResult, authValue: Uint8Array, txn: { mutations: BatchMutation[]; detached: Buffer[]; leased: LeasedKey[] }, get: (key: Uint8Array) => KeyState | null): EngineEntry {
    if (isAuthOp(c.op)) return { index, op: EngineOp.Set, key: AUTH_STATE_KEY, value: authValue };
    // A txn's writes are one batch record (atomic); a txn's put (without KEEP_TTL) or delete
    // detaches its key from any lease and clears its expiry (etcd put without a lease), a put with
    // LEASE attaches it (etcd put with a lease), in the same record.
    const mutations: BatchMutation[] = c.op === CommandOp.Txn ? [...txn.mutations] : LEASE_OPS.has(c.op) ? [] : [kvWrite(c, r)];
    if (c.op === CommandOp.Txn) {
      for (const k of txn.detached) mutations.push(...detachWrites(k, this.leases));
      for (const l of txn.leased) mutations.push(...attachWrites(l, this.leases));
    }
    else mutations.push(...leaseWrites(c, index, get, this.leases));
    if (mutations.length === 0) return { index, op: EngineOp.Noop, key: EMPTY, value: EMPTY };
    if (mutations.length === 1) return { index, ...mutations[0] };
    return { index, op: EngineOp.Batch, key: EMPTY, value: EMPTY, mutations };
  }

  /** An auth change against the auth state right before it: the new encoded state, or a refusal (ConditionFailed). */
  private evaluateAuth(c: Command, index: number, get: (key: Uint8Array) => KeyState | null): { result: ApplyResult; value: Uint8Array } {
    let reason: string;
    try {
      const current = get(AUTH_STATE_KEY);
      const r = applyAuthChange(current ? decodeAuthState(current.value) : emptyAuthState(), authChangeOf(c));
      if (r.ok) return { result: { outcome: ApplyOutcome.Applied, revision: index }, value: encodeAuthState(r.state) };
      reason = r.reason;
    } catch (err) {
      reason = `malformed auth change: ${(err as Error).message}`;
    }
    this.opts.onAuthRefused?.(index, reason);
    return { result: { outcome: ApplyOutcome.ConditionFailed, revision: index }, value: EMPTY };
  }

  private range(q: RangeQuery): RangePage {
    if (!this.opts.range) throw new Error('TxnNeedsRange: CommandApplierOptions.range is required to apply transactions');
    return this.opts.range(q);
  }

  private record(index: number, r: ApplyResult): void {
    this.results.delete(index); // re-recording an index (never in practice) keeps insertion order = index order
    this.results.set(index, r);
    if (r.txn && !this.txnHeld.has(r)) {
      this.txnHeld.add(r);
      this.txnHeldBytes += r.txn.length;
      // Held results are shared with the session table: dropping `txn` frees it in both.
      for (const old of this.txnHeld) {
        if (this.txnHeldBytes <= (this.opts.txnResultsHeldBytesMax ?? TXN_RESULTS_HELD_BYTES_MAX)) break;
        this.txnHeld.delete(old);
        this.txnHeldBytes -= old.txn!.length;
        delete old.txn;
      }
    }
    if (this.results.size > this.resultsMax) {
      const oldest = this.results.keys().next().value as number;
      this.results.delete(oldest);
    }
  }
}

/**
 * Whether `c` applies at `index` given the state right before it: its condition (if any) against
 * the key's mod revision (0 = missing; a live key's revision is the index that wrote it, ≥ 1), or
 * for an Incr the new value (or why there is none).
 */
function evaluate(c: Command, index: number, get: (key: Uint8Array) => KeyState | null): ApplyResult {
  // The empty key is the auth state's (AUTH_STATE_KEY): gateways refuse it, and so does the applier.
  if (c.key.length === 0) return { outcome: ApplyOutcome.ConditionFailed, revision: index };
  if (c.op === CommandOp.Incr) return incr(c, index, get);
  const holds = conditionHolds(c, (key) => get(key)?.revision ?? 0);
  return { outcome: holds ? ApplyOutcome.Applied : ApplyOutcome.ConditionFailed, revision: index };
}

/** Redis INCRBY (t_string.c incrDecrCommand): a missing key is 0; the value must be a decimal i64 (`parseI64`); the sum must stay an i64. */
function incr(c: Command, index: number, get: (key: Uint8Array) => KeyState | null): ApplyResult {
  const current = get(c.key);
  const base = current ? parseI64(current.value) : 0n;
  if (base === null) return { outcome: ApplyOutcome.ConditionFailed, revision: index, refusal: CounterRefusal.NotInteger };
  const sum = base + decodeIncrDelta(c.value);
  if (sum < I64_MIN || sum > I64_MAX) return { outcome: ApplyOutcome.ConditionFailed, revision: index, refusal: CounterRefusal.Overflow };
  return { outcome: ApplyOutcome.Applied, revision: index, counter: sum };
}

/** Longest decimal i64 (`-9223372036854775808`), bytes. */
const I64_DECIMAL_BYTES_MAX = 20;

/**
 * A value read as Redis's string2ll does: optional `-`, no `+`, no leading zeros or spaces, "0"
 * but not "-0", within the signed 64-bit range; null otherwise.
 */
export function parseI64(value: Uint8Array): bigint | null {
  if (value.length === 0 || value.length > I64_DECIMAL_BYTES_MAX) return null;
  const s = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('latin1');
  if (!/^(0|-?[1-9][0-9]*)$/.test(s)) return null;
  const n = BigInt(s);
  return n < I64_MIN || n > I64_MAX ? null : n;
}

function conditionHolds(c: Command, modRevision: (key: Uint8Array) => number): boolean {
  switch (c.condition ?? CommandCondition.None) {
    case CommandCondition.None:
      return true;
    case CommandCondition.IfAbsent:
      return modRevision(c.key) === 0;
    case CommandCondition.IfPresent:
      return modRevision(c.key) !== 0;
    case CommandCondition.IfRevision:
      return modRevision(c.key) === c.revision;
  }
}

/**
 * The watch event of one engine mutation given the key's state right before it (etcd mvcc: a put
 * keeps the create revision and adds 1 to the version of a live key, creates it at this revision
 * with version 1 otherwise; a delete of a missing key is no event). Null for a no-op delete.
 */
export function watchEventOf(ee: EngineEntry, prior: KeyState | null): WatchEvent | null {
  const prevValue = prior ? prior.value : null;
  if (ee.op === EngineOp.Delete) {
    return prior ? { type: WatchEventType.Delete, key: ee.key, value: EMPTY, modRevision: ee.index, createRevision: 0, version: 0, prevValue } : null;
  }
  const live = prior && prior.createRevision !== undefined && prior.version !== undefined ? { createRevision: prior.createRevision, version: prior.version + 1 } : { createRevision: ee.index, version: 1 };
  return { type: WatchEventType.Put, key: ee.key, value: ee.value, modRevision: ee.index, ...live, prevValue };
}

function kvWrite(c: Command, r: ApplyResult): BatchMutation {
  // Stored as Redis stores a counter: its decimal text, so GET and INCR agree on every door.
  if (c.op === CommandOp.Incr) return { op: EngineOp.Set, key: c.key, value: Buffer.from(String(r.counter), 'latin1') };
  if (c.op === CommandOp.Set) return { op: EngineOp.Set, key: c.key, value: c.value };
  return { op: EngineOp.Delete, key: c.key, value: EMPTY };
}
