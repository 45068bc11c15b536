import { CompareResult, CompareTarget, TxnOpFlags, TxnOpKind } from '@cairn/protocol';
import { UsageError } from './exit-codes';
import { kvJson, parseTxnScript, txnText, words } from './txn';

const b = (s: string) => Buffer.from(s);
const EMPTY = Buffer.alloc(0);

describe('cairn txn scripts (etcdctl txn syntax)', () => {
  it('splits words on blanks; a double-quoted word is a JSON string', () => {
    expect(words('put "a key" "line\\nbreak" --prev-kv', 'f:1')).toEqual(['put', 'a key', 'line\nbreak', '--prev-kv']);
    expect(words('  put  k ""  ', 'f:1')).toEqual(['put', 'k', '']);
    expect(() => words('put "k v', 'f:1')).toThrow(new UsageError('f:1: unterminated quote in "k'));
    expect(() => words('put "\\q" v', 'f:2')).toThrow(/^f:2: bad quoted word/);
  });

  it('reads every compare target and operator, quoted or bare operands', () => {
    const t = parseTxnScript(['value("k") = "v 1"', 'mod("k") != "3"', 'create("a b") > 0', 'version("k") < "2"', 'ver("k") == 7'], 'f');
    expect(t).toEqual({
      compares: [
        { key: b('k'), target: CompareTarget.Value, result: CompareResult.Equal, value: b('v 1') },
        { key: b('k'), target: CompareTarget.ModRevision, result: CompareResult.NotEqual, operand: 3 },
        { key: b('a b'), target: CompareTarget.CreateRevision, result: CompareResult.Greater, operand: 0 },
        { key: b('k'), target: CompareTarget.Version, result: CompareResult.Less, operand: 2 },
        { key: b('k'), target: CompareTarget.Version, result: CompareResult.Equal, operand: 7 },
      ],
      success: [],
      failure: [],
    });
  });

  it('reads get / del ranges and options; a blank first line means no compares; CRLF is fine', () => {
    const t = parseTxnScript(['', 'get a z --keys-only --limit 10 --order DESCEND\r', 'get a --from-key --count-only', 'del p/ --prefix --prev-kv', 'delete x', '', 'put k "" --prev-kv', ''], 'f');
    expect(t).toEqual({
      compares: [],
      success: [
        { kind: TxnOpKind.Range, key: b('a'), end: b('z'), flags: TxnOpFlags.KeysOnly | TxnOpFlags.Reverse, limit: 10 },
        { kind: TxnOpKind.Range, key: b('a'), end: Buffer.from([0]), flags: TxnOpFlags.CountOnly, limit: 0 },
        { kind: TxnOpKind.Delete, key: b('p/'), end: EMPTY, flags: TxnOpFlags.Prefix | TxnOpFlags.PrevKv },
        { kind: TxnOpKind.Delete, key: b('x'), end: EMPTY, flags: 0 },
      ],
      failure: [{ kind: TxnOpKind.Put, key: b('k'), value: EMPTY, flags: TxnOpFlags.PrevKv }],
    });
  });

  it('put --lease ID (decimal) is op flag LEASE with the id, --ignore-lease is KEEP_TTL; not both', () => {
    const t = parseTxnScript(['', 'put k v --lease 4660', 'put k v --lease=9007199254740991 --prev-kv', 'put n 1 --ignore-lease'], 'f');
    expect(t.success).toEqual([
      { kind: TxnOpKind.Put, key: b('k'), value: b('v'), flags: TxnOpFlags.Lease, lease: 4660 },
      { kind: TxnOpKind.Put, key: b('k'), value: b('v'), flags: TxnOpFlags.Lease | TxnOpFlags.PrevKv, lease: 2 ** 53 - 1 },
      { kind: TxnOpKind.Put, key: b('n'), value: b('1'), flags: TxnOpFlags.KeepTtl },
    ]);
    expect(() => parseTxnScript(['', 'put k v --lease 7 --ignore-lease'], 'f')).toThrow(/f:2: --lease and --ignore-lease exclude each other/);
    for (const id of ['0', '0x1234', '9007199254740992', '-1']) expect(() => parseTxnScript(['', `put k v --lease ${id}`], 'f')).toThrow(/f:2: --lease takes a lease id/);
  });

  it('names the line of anything malformed', () => {
    const bad: [string[], string][] = [
      [['mod(k) = 1'], 'f:1: a compare is TARGET("KEY") OP "OPERAND"'],
      [['lease("k") = "1"'], 'f:1: unknown compare target lease'],
      [['mod("k") = "-1"'], 'f:1: mod compares an integer in 0..2^53-1, got -1'],
      [['', 'get'], 'f:2: get takes KEY [END]'],
      [['', 'get a b --prefix'], 'f:2: END, --prefix and --from-key exclude each other'],
      [['', 'get a --limit'], 'f:2: --limit needs a value'],
      [['', 'get a --limit x'], 'f:2: --limit takes an integer in 0..2^32-1, got x'],
      [['', 'get a --order up'], 'f:2: --order is ASCEND or DESCEND, got up'],
      [['', 'put a b --prefix'], 'f:2: unknown option --prefix'],
      [['', 'txn a'], 'f:2: an op is put, get or del'],
      [['', '', '', 'put a b'], 'f:4: a txn has three sections'],
    ];
    for (const [lines, message] of bad) expect(() => parseTxnScript(lines, 'f')).toThrow(expect.objectContaining({ code: 'USAGE', message: expect.stringContaining(message) }));
  });

  it('prints as etcdctl: count-only counts, keys-only keys, missing keys nothing; JSON kvs name key or keyBase64', () => {
    const kv = { key: Buffer.from([0xff]), value: b('v'), modRevision: 3, createRevision: 2, version: 1 };
    const ops = [
      { kind: TxnOpKind.Range, key: b('a'), flags: TxnOpFlags.CountOnly },
      { kind: TxnOpKind.Range, key: b('a'), flags: TxnOpFlags.KeysOnly },
      { kind: TxnOpKind.Range, key: b('a'), flags: 0 },
      { kind: TxnOpKind.Put, key: b('a'), flags: 0 },
    ];
    const text = txnText(false, [{ kind: TxnOpKind.Range, count: 5, more: true, kvs: [] }, { kind: TxnOpKind.Range, count: 1, more: false, kvs: [kv] }, { kind: TxnOpKind.Range, count: 0, more: false, kvs: [] }, { kind: TxnOpKind.Put }], ops);
    expect(text).toEqual(Buffer.concat([b('FAILURE\n\n5\n\n'), Buffer.from([0xff]), b('\n\n\nOK\n')]));
    expect(kvJson(kv)).toEqual({ keyBase64: '/w==', value: 'v', revision: 3, createRevision: 2, version: 1 });
    expect(kvJson({ ...kv, key: b('k') }, true)).toEqual({ key: 'k', revision: 3, createRevision: 2, version: 1 });
  });
});
