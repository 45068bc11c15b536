import { CompareResult, CompareTarget, TxnOpFlags, TxnOpKind, decodeTxnRequest, encodeTxnRequest, type TxnRequest } from '@cairn/protocol';
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
});
