/**
 * The etcd-style transaction builder of @cairn/client (etcd clientv3 `Txn().If().Then().Else().Commit()`):
 * compares (`compare.*`) and ops (`op.*`) build a TxnRequest (libs/protocol txn.ts, docs/protocol.md
 * "Txn"); `commit` sends it as one TXN request.
 */
import { CompareResult, CompareTarget, TxnOpFlags, TxnOpKind, type TxnCompare, type TxnOp, type TxnRequest } from '@cairn/protocol';
import type { RequestOptions } from './commands';

type Bytes = string | Uint8Array;
/** How a compare compares: the key's figure `op` the operand. */
export type CompareOperator = '=' | '!=' | '>' | '<';

const RESULTS: Record<CompareOperator, CompareResult> = { '=': CompareResult.Equal, '!=': CompareResult.NotEqual, '>': CompareResult.Greater, '<': CompareResult.Less };
const bytes = (b: Bytes): Buffer => (typeof b === 'string' ? Buffer.from(b) : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** Compares (etcd clientv3.Compare): a missing key has mod / create revision and version 0 and no value (only `!=` holds on its value). */
export const compare = {
  value: (key: Bytes, operator: CompareOperator, value: Bytes): TxnCompare => ({ key: bytes(key), target: CompareTarget.Value, result: RESULTS[operator], value: bytes(value) }),
  modRevision: (key: Bytes, operator: CompareOperator, revision: number): TxnCompare => ({ key: bytes(key), target: CompareTarget.ModRevision, result: RESULTS[operator], operand: revision }),
  createRevision: (key: Bytes, operator: CompareOperator, revision: number): TxnCompare => ({ key: bytes(key), target: CompareTarget.CreateRevision, result: RESULTS[operator], operand: revision }),
  version: (key: Bytes, operator: CompareOperator, version: number): TxnCompare => ({ key: bytes(key), target: CompareTarget.Version, result: RESULTS[operator], operand: version }),
};

/** A range's keys: `prefix` (every key starting with the key), `end` ([key, end); "\0" = every key >= key), or the single key. */
export interface TxnRangeOptions {
  prefix?: boolean;
  end?: Bytes;
}

/** Ops (etcd clientv3.Op); each answers a response in the TxnResult, in order. */
export const op = {
  /**
   * `keepTtl`: keep the key's lease and expiry (KEEP_TTL, etcd's ignore_lease); `lease`: attach the
   * key to that lease (LEASE, etcd put with a lease; a lease that does not exist when the txn
   * applies fails the whole txn: the commit throws LeaseNotFoundError, nothing applied); with
   * neither the put clears them. @throws RangeError with both.
   */
  put: (key: Bytes, value: Bytes, o: { prevKv?: boolean; keepTtl?: boolean; lease?: number } = {}): TxnOp => {
    if (o.lease !== undefined && o.keepTtl) throw new RangeError('a txn put takes lease or keepTtl, not both');
    const put: TxnOp = { kind: TxnOpKind.Put, key: bytes(key), value: bytes(value), flags: (o.prevKv ? TxnOpFlags.PrevKv : 0) | (o.keepTtl ? TxnOpFlags.KeepTtl : 0) | (o.lease !== undefined ? TxnOpFlags.Lease : 0) };
    if (o.lease !== undefined) put.lease = o.lease;
    return put;
  },
  get: (key: Bytes, o: { keysOnly?: boolean } = {}): TxnOp => ({ kind: TxnOpKind.Get, key: bytes(key), flags: o.keysOnly ? TxnOpFlags.KeysOnly : 0 }),
  delete: (key: Bytes, o: TxnRangeOptions & { prevKv?: boolean } = {}): TxnOp => ({
    kind: TxnOpKind.Delete,
    key: bytes(key),
    end: bytes(o.end ?? ''),
    flags: (o.prevKv ? TxnOpFlags.PrevKv : 0) | (o.prefix ? TxnOpFlags.Prefix : 0),
  }),
  range: (key: Bytes, o: TxnRangeOptions & { limit?: number; keysOnly?: boolean; countOnly?: boolean; reverse?: boolean } = {}): TxnOp => ({
    kind: TxnOpKind.Range,
    key: bytes(key),
    end: bytes(o.end ?? ''),
    limit: o.limit ?? 0,
    flags: (o.prefix ? TxnOpFlags.Prefix : 0) | (o.keysOnly ? TxnOpFlags.KeysOnly : 0) | (o.countOnly ? TxnOpFlags.CountOnly : 0) | (o.reverse ? TxnOpFlags.Reverse : 0),
  }),
};

/** Collects compares and both branches, then commits them as one request. */
export class TxnBuilder<R> {
  private readonly request: TxnRequest = { compares: [], success: [], failure: [] };

  constructor(private readonly send: (request: TxnRequest, opts?: RequestOptions) => Promise<R>) {}

  /** Adds compares; the success branch runs when all of them hold. */
  if(...compares: TxnCompare[]): this {
    this.request.compares.push(...compares);
    return this;
  }

  /** Adds ops to the branch run when every compare holds. */
  then(...ops: TxnOp[]): this {
    this.request.success.push(...ops);
    return this;
  }

  /** Adds ops to the branch run otherwise. */
  else(...ops: TxnOp[]): this {
    this.request.failure.push(...ops);
    return this;
  }

  /** The TxnRequest built so far. */
  build(): TxnRequest {
    return { compares: [...this.request.compares], success: [...this.request.success], failure: [...this.request.failure] };
  }

  commit(opts?: RequestOptions): Promise<R> {
    return this.send(this.build(), opts);
  }
}
