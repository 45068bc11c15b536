import { EngineOp, batchRecordBytes, type BatchMutation, type RangePage, type RangeQuery } from '@cairn/engine';
import {
  CompareResult,
  CompareTarget,
  TXN_KV_OVERHEAD_BYTES,
  TXN_RESULT_BASE_BYTES,
  TxnOpFlags,
  TxnOpKind,
  prefixEnd,
  txnResponseBytes,
  type TxnCommandValue,
  type TxnCompare,
  type TxnKv,
  type TxnOp,
  type TxnOpResponse,
  type TxnResult,
} from '@cairn/protocol';

/** A key's state as a txn reads it (etcd mvccpb.KeyValue without the key). */
export interface TxnKeyState {
  value: Uint8Array;
  revision: number;
  createRevision?: number;
  version?: number;
}

/** The store a txn reads: the engine's state with every earlier entry applied (the applier makes sure of it). */
export interface TxnStore {
  get(key: Uint8Array): TxnKeyState | null;
  range(q: RangeQuery): RangePage;
}

/**
 * An evaluated txn: its result, the mutations to apply at its index (empty when it writes
 * nothing), the keys whose lease and expiry it clears (`detached`: its last write of the key, KEEP_TTL
 * puts aside, is a delete or a put without LEASE; a key only ever put with KEEP_TTL keeps them) and
 * the keys it attaches to a lease (`leased`: that last write is a put with LEASE; the key loses
 * any expiry of its own, etcd put with a lease), and every lease a put of the branch that ran
 * names (`leasesNamed`: each must exist, etcd `checkRequestPut`, even one whose key a later op
 * deletes).
 */
export type TxnEvaluation = { result: TxnResult; mutations: BatchMutation[]; detached: Buffer[]; leased: LeasedKey[]; leasesNamed: number[] } | { tooLarge: string };

/** A key a txn's put attaches to lease `leaseId`. */
export interface LeasedKey {
  key: Buffer;
  leaseId: number;
}

/**
 * A key within a txn: its latest state (null = deleted) and the key bytes. A put over a key the
 * txn has not touched yet leaves `fromStore` set and its create revision and version unknown: they
 * follow from the store's state of the key, looked up only when an op reads the key again
 * (`resolve`). The store does not change while a txn is evaluated, so the late lookup gives what
 * an eager one would have, and a txn of plain puts (an import's) reads no key at all.
 */
interface Local {
  key: Buffer;
  state: TxnKeyState | null;
  fromStore: boolean;
}

const latin1 = (k: Uint8Array): string => Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('latin1');
const EMPTY = Buffer.alloc(0);
/** A put with KEEP_TTL: the key's lease and expiry stay as they are (a lease id is ≥ 1). */
const KEEP = -1;
/** The smallest client key (the storage node's range reads start there too). */
const RANGE_START_MIN = Buffer.from([0]);

class TooLarge extends Error {
  readonly code = 'TXN_TOO_LARGE';
}

/**
 * Evaluates one txn (etcd Txn: apply/txn.go) at `index` against `store`: every compare on the
 * state before it; then the chosen branch's ops in order, each seeing the writes of the ops before
 * it (as etcd's write txn does); every write takes effect at `index` (create revision / version as
 * a plain SET or DEL gives them). Deterministic: depends only on the store, the command and
 * `mutationBytesMax`. TOO_LARGE (nothing applied) when the TxnResult would exceed
 * `limits.resultBytesMax`, the ranges, deletes and puts touch more than `limits.keysMax` keys, or
 * the writes plus `companionBytes` of them (the bytes the applier adds to the same record: the
 * written keys' lease/expiry records) exceed `mutationBytesMax` (the largest engine record).
 */
export function evaluateTxn(
  v: TxnCommandValue,
  index: number,
  store: TxnStore,
  mutationBytesMax: number,
  companionBytes: (mutations: BatchMutation[], leased: readonly LeasedKey[]) => number = () => 0,
): TxnEvaluation {
  const t = new TxnRun(v, index, store);
  try {
    const succeeded = v.request.compares.every((c) => t.holds(c));
    const responses = (succeeded ? v.request.success : v.request.failure).map((op) => t.run(op));
    const detached: Buffer[] = [];
    const leased: LeasedKey[] = [];
    for (const m of t.metas.values()) {
      if (m.leaseId === 0) detached.push(m.key);
      else leased.push(m);
    }
    const bytes = t.mutations.length > 0 ? batchRecordBytes(t.mutations) + companionBytes(t.mutations, leased) : 0;
    if (bytes > mutationBytesMax) throw new TooLarge(`its writes take ${bytes} bytes; one entry's writes take at most ${mutationBytesMax}`);
    return { result: { succeeded, responses }, mutations: t.mutations, detached, leased, leasesNamed: [...t.leasesNamed] };
  } catch (e) {
    if (e instanceof TooLarge) return { tooLarge: e.message };
    throw e;
  }
}

class TxnRun {
  readonly mutations: BatchMutation[] = [];
  /** Keys (latin1 →) whose lease and expiry this txn sets: `leaseId` 0 = none (deleted or put without KEEP_TTL or LEASE), else attached to it (put with LEASE). */
  readonly metas = new Map<string, LeasedKey>();
  /** Leases named by the puts run. */
  readonly leasesNamed = new Set<number>();
  private readonly local = new Map<string, Local>();
  private resultBytes = TXN_RESULT_BASE_BYTES;
  private keys = 0;

  constructor(
    private readonly v: TxnCommandValue,
    private readonly index: number,
    private readonly store: TxnStore,
  ) {}

  holds(c: TxnCompare): boolean {
    const s = this.get(c.key);
    if (c.target === CompareTarget.Value) {
      // A missing key has no value: only "not equal" holds (etcd fails every value compare on a missing key; docs/data-model.md).
      if (!s) return c.result === CompareResult.NotEqual;
      return matches(Buffer.compare(Buffer.from(s.value), Buffer.from(c.value ?? EMPTY)), c.result);
    }
    const figure = !s ? 0 : c.target === CompareTarget.ModRevision ? s.revision : c.target === CompareTarget.CreateRevision ? (s.createRevision ?? s.revision) : (s.version ?? 1);
    return matches(figure - (c.operand ?? 0), c.result);
  }

  run(op: TxnOp): TxnOpResponse {
    const r = this.runOp(op);
    this.resultBytes += txnResponseBytes(r);
    if (this.resultBytes > this.v.limits.resultBytesMax) throw new TooLarge(`its result exceeds resultBytesMax ${this.v.limits.resultBytesMax} bytes`);
    return r;
  }

  private runOp(op: TxnOp): TxnOpResponse {
    const flags = op.flags ?? 0;
    switch (op.kind) {
      case TxnOpKind.Put: {
        const k = latin1(op.key);
        const l = this.local.get(k);
        this.touch(1);
        const value = op.value ?? EMPTY;
        const meta = flags & TxnOpFlags.KeepTtl ? KEEP : flags & TxnOpFlags.Lease ? (op.lease ?? 0) : 0;
        if (meta > 0) this.leasesNamed.add(meta);
        // The previous state is needed now only for PREV_KV or when this txn wrote the key before; else later, if ever (Local).
        const prev = l ? this.resolve(l) : flags & TxnOpFlags.PrevKv ? this.store.get(op.key) : undefined;
        const state: TxnKeyState = { value, revision: this.index };
        if (prev !== undefined) Object.assign(state, after(prev, this.index));
        this.write(op.key, state, meta, k, prev === undefined);
        return prev && flags & TxnOpFlags.PrevKv ? { kind: op.kind, prev: kv(op.key, prev, false) } : { kind: op.kind };
      }
      case TxnOpKind.Delete: {
        const prevKv = (flags & TxnOpFlags.PrevKv) !== 0;
        const found = this.select(op, { keysOnly: !prevKv, limit: 0 }).kvs;
        for (const x of found) this.write(x.key, null);
        return { kind: op.kind, deleted: found.length, prev: prevKv ? found : [] };
      }
      case TxnOpKind.Get: {
        const s = this.get(op.key);
        if (!s) return { kind: op.kind };
        this.touch(1);
        return { kind: op.kind, kv: kv(op.key, s, (flags & TxnOpFlags.KeysOnly) !== 0) };
      }
      case TxnOpKind.Range: {
        const r = this.select(op, { keysOnly: (flags & TxnOpFlags.KeysOnly) !== 0, countOnly: (flags & TxnOpFlags.CountOnly) !== 0, reverse: (flags & TxnOpFlags.Reverse) !== 0, limit: op.limit ?? 0 });
        return { kind: op.kind, count: r.count, more: r.more, kvs: r.kvs };
      }
    }
  }

  private touch(n: number): void {
    this.keys += n;
    if (this.keys > this.v.limits.keysMax) throw new TooLarge(`it touches more than keysMax ${this.v.limits.keysMax} keys`);
  }

  private get(key: Uint8Array): TxnKeyState | null {
    const l = this.local.get(latin1(key));
    return l ? this.resolve(l) : this.store.get(key);
  }

  /** `l`'s state with its create revision and version (looked up in the store once, for a put over a key untouched before it). */
  private resolve(l: Local): TxnKeyState | null {
    if (l.fromStore && l.state) {
      Object.assign(l.state, after(this.store.get(l.key), this.index));
      l.fromStore = false;
    }
    return l.state;
  }

  /**
   * `leaseId`: the key's lease from now on (0: none and no expiry), or KEEP (KEEP_TTL: as it is);
   * `k`: the key as latin1 when known; `fromStore`: a put whose create revision and version follow
   * from the store's state of the key (Local).
   */
  private write(key: Uint8Array, state: TxnKeyState | null, leaseId: number = 0, k: string = latin1(key), fromStore = false): void {
    const copy = Buffer.from(key);
    this.local.set(k, { key: copy, state, fromStore });
    if (leaseId !== KEEP) this.metas.set(k, { key: copy, leaseId });
    this.mutations.push(state ? { op: EngineOp.Set, key: copy, value: state.value } : { op: EngineOp.Delete, key: copy, value: EMPTY });
  }

  /**
   * The keys an op's range selects, with this txn's earlier writes over the store's: `count` = all
   * of them, `kvs` = the first `limit` (0: all), within the keysMax and resultBytesMax budgets.
   */
  private select(op: TxnOp, o: { keysOnly: boolean; countOnly?: boolean; reverse?: boolean; limit: number }): { count: number; more: boolean; kvs: TxnKv[] } {
    const flags = op.flags ?? 0;
    const end = op.end ?? EMPTY;
    // etcd's range_end: empty = the single key; "\0" = every key >= key; PREFIX = keys starting with key.
    if (!(flags & TxnOpFlags.Prefix) && end.length === 0) {
      const s = this.get(op.key);
      if (!s) return { count: 0, more: false, kvs: [] };
      if (o.countOnly) return { count: 1, more: false, kvs: [] };
      this.touch(1);
      return { count: 1, more: false, kvs: [kv(op.key, s, o.keysOnly)] };
    }
    const key = Buffer.from(op.key);
    const stop = flags & TxnOpFlags.Prefix ? prefixEnd(key) : end.length === 1 && end[0] === 0 ? null : Buffer.from(end);
    // A range starts at 00 at the earliest: the empty key is the auth state's (AUTH_STATE_KEY).
    const start = key.length === 0 ? RANGE_START_MIN : key;
    return this.mergedRange(start, stop, o);
  }

  /** [start, stop) over the store with this txn's writes laid over it, exactly (see `evaluateTxn`). */
  private mergedRange(start: Buffer, stop: Buffer | null, o: { keysOnly: boolean; countOnly?: boolean; reverse?: boolean; limit: number }): { count: number; more: boolean; kvs: TxnKv[] } {
    const inRange = (k: Buffer) => Buffer.compare(k, start) >= 0 && (stop === null || Buffer.compare(k, stop) < 0);
    const overlay = [...this.local.values()].filter((l) => inRange(l.key)).sort((a, b) => Buffer.compare(a.key, b.key) * (o.reverse ? -1 : 1));
    let count = this.store.range({ start, end: stop, limit: 1, bytesMax: 1, countOnly: true }).count;
    let shadowedBytes = 0;
    for (const l of overlay) {
      const below = this.store.get(l.key);
      if (below) shadowedBytes += TXN_KV_OVERHEAD_BYTES + l.key.length + below.value.length;
      if (l.state && !below) count++;
      if (!l.state && below) count--;
    }
    if (o.countOnly || count === 0) return { count, more: false, kvs: [] };
    const keysLeft = this.v.limits.keysMax - this.keys;
    const want = Math.min(o.limit > 0 ? o.limit : count, count);
    if (want > keysLeft) throw new TooLarge(`it touches more than keysMax ${this.v.limits.keysMax} keys`);
    // Bytes the result may still take, plus what the overlay may take away from the store's page.
    const budget = this.v.limits.resultBytesMax - this.resultBytes;
    const page = this.store.range({ start, end: stop, limit: want + overlay.length, bytesMax: budget + shadowedBytes + 1, itemOverheadBytes: TXN_KV_OVERHEAD_BYTES, keysOnly: o.keysOnly, reverse: o.reverse });
    const kvs: TxnKv[] = [];
    let i = 0;
    let j = 0;
    const sign = o.reverse ? -1 : 1;
    while (kvs.length < want && (i < page.items.length || j < overlay.length)) {
      const item = page.items[i];
      const l = overlay[j];
      const c = !item ? 1 : !l ? -1 : Buffer.compare(item.key, l.key) * sign;
      if (c < 0) {
        i++;
        if (!this.local.has(latin1(item.key))) kvs.push(kv(item.key, item, o.keysOnly));
      } else {
        j++;
        if (c === 0) i++;
        const st = this.resolve(l);
        if (st) kvs.push(kv(l.key, st, o.keysOnly));
      }
    }
    // The store cut its page by bytes before `want` keys: the whole answer exceeds the budget.
    if (kvs.length < want) throw new TooLarge(`its result exceeds resultBytesMax ${this.v.limits.resultBytesMax} bytes`);
    this.touch(kvs.length);
    return { count, more: count > kvs.length, kvs };
  }
}

function matches(diff: number, result: CompareResult): boolean {
  switch (result) {
    case CompareResult.Equal:
      return diff === 0;
    case CompareResult.NotEqual:
      return diff !== 0;
    case CompareResult.Greater:
      return diff > 0;
    case CompareResult.Less:
      return diff < 0;
  }
}

/** The create revision and version of a put at `index` over `prev` (etcd mvcc: a live key keeps its create revision, its version + 1; else created here, version 1). */
function after(prev: TxnKeyState | null, index: number): { createRevision: number; version: number } {
  return prev ? { createRevision: prev.createRevision ?? prev.revision, version: (prev.version ?? 1) + 1 } : { createRevision: index, version: 1 };
}

function kv(key: Uint8Array, s: TxnKeyState, keysOnly: boolean): TxnKv {
  return { key, value: keysOnly ? EMPTY : s.value, modRevision: s.revision, createRevision: s.createRevision ?? s.revision, version: s.version ?? 1 };
}
