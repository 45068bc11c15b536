import { CompareResult, CompareTarget, ResponseFlags, Status, TxnOpFlags, TxnOpKind, decodeTxnRequest, encodeTxnRequest, encodeTxnResult, type Response, type TxnRequest } from '@cairn/protocol';
import { txnResult } from './commands';
import { LeaseNotFoundError, TooLargeError } from './errors';
import { TxnBuilder, compare, op } from './txn';

describe('TxnBuilder (etcd clientv3 Txn)', () => {
  it('builds the TxnRequest of if/then/else and commits it once', async () => {
    const sent: TxnRequest[] = [];
    const b = new TxnBuilder(async (r) => (sent.push(r), 'done'));
    const result = await b
      .if(compare.value('k', '!=', 'x'), compare.modRevision('k', '<', 9), compare.createRevision('k', '>', 0), compare.version('k', '=', 2))
      .then(op.put('k', 'v', { prevKv: true }), op.delete('d/', { prefix: true }), op.put('n', '2', { keepTtl: true }))
      .else(op.get('k', { keysOnly: true }), op.range('a', { end: 'c', limit: 3, reverse: true }))
      .commit();
    expect(result).toBe('done');
    expect(sent).toHaveLength(1);
    const r = decodeTxnRequest(encodeTxnRequest(sent[0]));
    expect(r.compares.map((c) => [c.target, c.result])).toEqual([
      [CompareTarget.Value, CompareResult.NotEqual],
      [CompareTarget.ModRevision, CompareResult.Less],
      [CompareTarget.CreateRevision, CompareResult.Greater],
      [CompareTarget.Version, CompareResult.Equal],
    ]);
    expect(r.success.map((o) => [o.kind, o.flags])).toEqual([
      [TxnOpKind.Put, TxnOpFlags.PrevKv],
      [TxnOpKind.Delete, TxnOpFlags.Prefix],
      [TxnOpKind.Put, TxnOpFlags.KeepTtl],
    ]);
    expect(r.failure.map((o) => [o.kind, o.flags, o.limit])).toEqual([
      [TxnOpKind.Get, TxnOpFlags.KeysOnly, undefined],
      [TxnOpKind.Range, TxnOpFlags.Reverse, 3],
    ]);
    expect(Buffer.from(r.failure[1].end!).toString()).toBe('c');
  });

  it('op.put with lease is op flag LEASE with the lease id (etcd put with a lease); lease and keepTtl exclude each other', () => {
    const r = decodeTxnRequest(encodeTxnRequest({ compares: [], success: [op.put('k', 'v', { lease: 0x1234, prevKv: true })], failure: [] }));
    expect(r.success[0]).toMatchObject({ kind: TxnOpKind.Put, flags: TxnOpFlags.Lease | TxnOpFlags.PrevKv, lease: 0x1234 });
    expect(op.put('k', 'v').lease).toBeUndefined();
    expect(() => op.put('k', 'v', { lease: 7, keepTtl: true })).toThrow(RangeError);
  });
});

describe('txnResult (a TXN answer)', () => {
  const answer = (status: Status, flags: number, payload: Buffer = Buffer.alloc(0)): Response => ({ status, flags, requestId: 1, revision: 64, payload });
  it('CONDITION_FAILED with LEASE_NOT_FOUND / LEASE_KEYS_FULL is LeaseNotFoundError / TooLargeError (a put\'s lease, nothing applied); OK is the result', () => {
    expect(() => txnResult(answer(Status.ConditionFailed, ResponseFlags.LeaseNotFound, Buffer.from("transaction refused: a put's lease not found")))).toThrow(LeaseNotFoundError);
    expect(() => txnResult(answer(Status.ConditionFailed, ResponseFlags.LeaseKeysFull))).toThrow(TooLargeError);
    expect(txnResult(answer(Status.Ok, 0, encodeTxnResult({ succeeded: false, responses: [] })))).toEqual({ revision: 64, succeeded: false, responses: [] });
  });
});
