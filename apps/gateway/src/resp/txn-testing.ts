import { CompareResult, CompareTarget, Status, TxnOpFlags, TxnOpKind, decodeTxnCommandValue, type Command, type CommandMeta, type TxnCompare, type TxnKv, type TxnOp, type TxnOpResponse } from '@cairn/protocol';
import type { WriteResult } from '../paths/write-path';

/** A fake store's key: its value and mod revision (fakeStore's map entries). */
export interface FakeEntry {
  value: Buffer;
  revision: number;
  /** The key's expiry (fakeStore's TTL Sets). */
  meta?: CommandMeta;
}

/**
 * The storage node's txn evaluation in miniature (apps/storage-node txn-apply.ts is the real one),
 * for the fake store: compares on mod / create revision (a live key's create revision is taken as
 * its mod revision: enough for `= 0` / `> 0`) and value; put, delete and get of single keys, in
 * order, each seeing the ops before it; every write at `revision`. Ranges are not modelled.
 */
export function txnInMap(data: Map<string, FakeEntry>, c: Command, revision: number): WriteResult {
  const { request } = decodeTxnCommandValue(c.value);
  const local = new Map(data);
  const kvOf = (key: Uint8Array): TxnKv | undefined => {
    const e = local.get(Buffer.from(key).toString('latin1'));
    return e && { key, value: e.value, modRevision: e.revision, createRevision: e.revision, version: 1 };
  };
  const succeeded = request.compares.every((cmp) => holds(cmp, kvOf(cmp.key)));
  const responses = (succeeded ? request.success : request.failure).map((op) => runOp(op, local, kvOf, revision));
  data.clear();
  for (const [k, e] of local) data.set(k, e);
  return { status: Status.Ok, revision, message: '', txn: { succeeded, responses } };
}

function holds(c: TxnCompare, kv: TxnKv | undefined): boolean {
  if (c.target === CompareTarget.Value) {
    if (!kv) return c.result === CompareResult.NotEqual;
    const d = Buffer.compare(Buffer.from(kv.value), Buffer.from(c.value!));
    return [d === 0, d !== 0, d > 0, d < 0][c.result];
  }
  const x = !kv ? 0 : c.target === CompareTarget.Version ? kv.version : c.target === CompareTarget.CreateRevision ? kv.createRevision : kv.modRevision;
  const y = c.operand ?? 0;
  return [x === y, x !== y, x > y, x < y][c.result];
}

function runOp(op: TxnOp, local: Map<string, FakeEntry>, kvOf: (key: Uint8Array) => TxnKv | undefined, revision: number): TxnOpResponse {
  if ((op.kind === TxnOpKind.Delete && (op.end?.length ?? 0) > 0) || op.kind === TxnOpKind.Range) throw new Error('FakeTxnRanges: the fake store models single-key ops only');
  const prev = kvOf(op.key);
  const k = Buffer.from(op.key).toString('latin1');
  const wantPrev = ((op.flags ?? 0) & TxnOpFlags.PrevKv) !== 0;
  if (op.kind === TxnOpKind.Put) {
    // KEEP_TTL keeps the key's expiry (the storage nodes' rule: lease-apply); a plain put clears it.
    const kept = (op.flags ?? 0) & TxnOpFlags.KeepTtl ? local.get(k)?.meta : undefined;
    local.set(k, { value: Buffer.from(op.value!), revision, ...(kept ? { meta: kept } : {}) });
    return wantPrev && prev ? { kind: TxnOpKind.Put, prev } : { kind: TxnOpKind.Put };
  }
  if (op.kind === TxnOpKind.Delete) {
    local.delete(k);
    return { kind: TxnOpKind.Delete, deleted: prev ? 1 : 0, prev: wantPrev && prev ? [prev] : [] };
  }
  return prev ? { kind: TxnOpKind.Get, kv: prev } : { kind: TxnOpKind.Get };
}
