import * as fs from 'node:fs';
import * as os from 'node:os';
import { BitcaskEngine, EngineOp } from '@cairn/engine';
import {
  ApplyOutcome,
  CommandOp,
  CompareResult,
  CompareTarget,
  TxnOpFlags,
  TxnOpKind,
  TxnRefusal,
  WatchEventType,
  decodeTxnResult,
  encodeTxnCommandValue,
  type Command,
  type CommandSession,
  type TxnCompare,
  type TxnOp,
  type TxnRequest,
  type WatchEvent,
  type WireEntry,
} from '@cairn/protocol';
import { entriesOf, useTempDir } from './apply.spec-helpers';
import { CommandApplier } from './command-applier';
import { SessionTable } from './session-table';
import { realClock } from '@cairn/world';

const b = (s: string): Buffer => Buffer.from(s);
const set = (key: string, value: string): Command => ({ op: CommandOp.Set, key: b(key), value: b(value) });
const LIMITS = { resultBytesMax: 64 * 1024, keysMax: 1000 };
const txn = (request: Partial<TxnRequest>, session?: CommandSession, limits = LIMITS): Command => ({
  op: CommandOp.Txn,
  key: Buffer.alloc(0),
  value: encodeTxnCommandValue({ limits, request: { compares: [], success: [], failure: [], ...request } }),
  ...(session ? { session } : {}),
});
const cmp = (key: string, target: CompareTarget, result: CompareResult, x: string | number): TxnCompare =>
  typeof x === 'string' ? { key: b(key), target, result, value: b(x) } : { key: b(key), target, result, operand: x };
const put = (key: string, value: string, flags = 0): TxnOp => ({ kind: TxnOpKind.Put, key: b(key), value: b(value), flags });
const get = (key: string): TxnOp => ({ kind: TxnOpKind.Get, key: b(key) });

/** A storage node's apply loop in miniature (real engine, session table): parts end before each txn, as StorageNode.applyLoop. */
async function node(dir: string, opts: { txnResultsHeldBytesMax?: number } = {}) {
  const engine = await BitcaskEngine.open({ clock: realClock, dir });
  const applier = new CommandApplier({ get: (k) => engine.get(k), range: (q) => engine.range(q), sessions: new SessionTable(), ...opts });
  const events: WatchEvent[] = [];
  return {
    engine,
    applier,
    events,
    async apply(batch: WireEntry[]) {
      let applying: Promise<number> = Promise.resolve(0);
      for (let rest = batch; rest.length > 0; ) {
        const part = applier.toEngineEntries(rest);
        events.push(...part.events);
        applying = engine.apply(part.engine);
        rest = rest.slice(part.consumed);
      }
      return applying;
    },
    result(index: number) {
      const r = applier.outcome(index);
      return { ...r, txn: r.txn && decodeTxnResult(r.txn) };
    },
    meta(k: string) {
      const g = engine.get(b(k));
      return g && { value: g.value.toString(), mod: g.revision, create: g.createRevision, version: g.version };
    },
  };
}

describe('Txn apply (etcd Txn semantics)', () => {
  const dir = useTempDir();

  it('compares value, mod revision, create revision and version with =, !=, >, <; a missing key is revision/version 0 and has no value', async () => {
    const n = await node(dir());
    await n.apply(entriesOf(1, [set('k', 'b'), set('k', 'b')])); // k: create 1, mod 2, version 2
    const cases: [TxnCompare, boolean][] = [
      [cmp('k', CompareTarget.Value, CompareResult.Equal, 'b'), true],
      [cmp('k', CompareTarget.Value, CompareResult.Greater, 'a'), true],
      [cmp('k', CompareTarget.Value, CompareResult.Less, 'a'), false],
      [cmp('k', CompareTarget.Value, CompareResult.NotEqual, 'b'), false],
      [cmp('k', CompareTarget.ModRevision, CompareResult.Equal, 2), true],
      [cmp('k', CompareTarget.CreateRevision, CompareResult.Equal, 1), true],
      [cmp('k', CompareTarget.Version, CompareResult.Greater, 1), true],
      [cmp('k', CompareTarget.Version, CompareResult.Less, 2), false],
      [cmp('none', CompareTarget.ModRevision, CompareResult.Equal, 0), true],
      [cmp('none', CompareTarget.Version, CompareResult.Equal, 0), true],
      [cmp('none', CompareTarget.CreateRevision, CompareResult.Greater, 0), false],
      [cmp('none', CompareTarget.Value, CompareResult.Equal, ''), false],
      [cmp('none', CompareTarget.Value, CompareResult.NotEqual, ''), true],
    ];
    await n.apply(entriesOf(3, cases.map(([c]) => txn({ compares: [c] }))));
    expect(cases.map((_, i) => n.result(3 + i).txn?.succeeded)).toEqual(cases.map(([, want]) => want));
    // every compare must hold
    await n.apply(entriesOf(3 + cases.length, [txn({ compares: [cases[0][0], cases[2][0]] })]));
    expect(n.result(3 + cases.length).txn?.succeeded).toBe(false);
  });

  it('applies all of the chosen branch at ONE revision (create revision, version as a SET), ops seeing earlier ops; a failed compare applies the failure branch only', async () => {
    const n = await node(dir());
    await n.apply(entriesOf(1, [set('a', '1'), set('d1', 'x'), set('d2', 'y'), set('e', 'z')]));
    const branch = [put('a', '2', TxnOpFlags.PrevKv), put('b', 'new'), get('b'), { kind: TxnOpKind.Delete, key: b('d'), flags: TxnOpFlags.Prefix | TxnOpFlags.PrevKv }, { kind: TxnOpKind.Range, key: b('a'), end: b('\0'), limit: 2 }];
    await n.apply(entriesOf(5, [txn({ compares: [cmp('a', CompareTarget.Value, CompareResult.Equal, '1')], success: branch, failure: [put('failed', 'yes')] })]));
    expect(n.meta('a')).toEqual({ value: '2', mod: 5, create: 1, version: 2 });
    expect(n.meta('b')).toEqual({ value: 'new', mod: 5, create: 5, version: 1 });
    expect(n.meta('d1')).toBeNull();
    expect(n.meta('d2')).toBeNull();
    expect(n.meta('failed')).toBeNull();
    const r = n.result(5);
    expect(r.outcome).toBe(ApplyOutcome.Applied);
    expect(r.revision).toBe(5);
    expect(r.txn?.succeeded).toBe(true);
    const kv = (key: string, value: string, mod: number, create: number, version: number) => ({ key: b(key), value: b(value), modRevision: mod, createRevision: create, version });
    expect(r.txn?.responses).toEqual([
      { kind: TxnOpKind.Put, prev: kv('a', '1', 1, 1, 1) },
      { kind: TxnOpKind.Put },
      { kind: TxnOpKind.Get, kv: kv('b', 'new', 5, 5, 1) },
      { kind: TxnOpKind.Delete, deleted: 2, prev: [kv('d1', 'x', 2, 2, 1), kv('d2', 'y', 3, 3, 1)] },
      // a, b (this txn's), e: d1/d2 deleted by the op before; limit 2 of count 3
      { kind: TxnOpKind.Range, count: 3, more: true, kvs: [kv('a', '2', 5, 1, 2), kv('b', 'new', 5, 5, 1)] },
    ]);
    expect(n.engine.appliedIndex()).toBe(5);
    // the same compare now fails: the failure branch alone applies
    await n.apply(entriesOf(6, [txn({ compares: [cmp('a', CompareTarget.Value, CompareResult.Equal, '1')], success: [put('a', 'no')], failure: [put('failed', 'yes')] })]));
    expect(n.result(6).txn).toEqual({ succeeded: false, responses: [{ kind: TxnOpKind.Put }] });
    expect(n.meta('a')?.value).toBe('2');
    expect(n.meta('failed')).toEqual({ value: 'yes', mod: 6, create: 6, version: 1 });
  });

  it("a put over a key it has not read gives that key's create revision and version to the ops after it that read it (looked up late, the store unchanged)", async () => {
    const n = await node(dir());
    await n.apply(entriesOf(1, [set('x', '1'), set('x', '1b'), set('y', '1')]));
    const branch = [put('x', '2'), get('x'), put('x', '3', TxnOpFlags.PrevKv), { kind: TxnOpKind.Range, key: b('x'), end: b('\0'), limit: 0 }, put('y', '2'), put('z', '1'), get('z')];
    await n.apply(entriesOf(4, [txn({ compares: [], success: branch, failure: [] })]));
    const kv = (key: string, value: string, mod: number, create: number, version: number) => ({ key: b(key), value: b(value), modRevision: mod, createRevision: create, version });
    expect(n.result(4).txn?.responses).toEqual([
      { kind: TxnOpKind.Put },
      { kind: TxnOpKind.Get, kv: kv('x', '2', 4, 1, 3) },
      { kind: TxnOpKind.Put, prev: kv('x', '2', 4, 1, 3) },
      { kind: TxnOpKind.Range, count: 2, more: false, kvs: [kv('x', '3', 4, 1, 4), kv('y', '1', 3, 3, 1)] },
      { kind: TxnOpKind.Put },
      { kind: TxnOpKind.Put },
      { kind: TxnOpKind.Get, kv: kv('z', '1', 4, 4, 1) },
    ]);
    expect(n.meta('x')).toEqual({ value: '3', mod: 4, create: 1, version: 4 });
    expect(n.meta('y')).toEqual({ value: '2', mod: 4, create: 3, version: 2 });
  });

  it('never reaches the empty key (the auth state): a range from the empty key starts at 00', async () => {
    const n = await node(dir());
    await n.engine.apply([{ index: 1, op: EngineOp.Set, key: Buffer.alloc(0), value: b('auth') }]);
    await n.apply(entriesOf(2, [set('a', '1'), txn({ success: [{ kind: TxnOpKind.Range, key: Buffer.alloc(0), flags: TxnOpFlags.Prefix }, { kind: TxnOpKind.Delete, key: Buffer.alloc(0), end: b('\0') }] })]));
    expect(n.result(3).txn?.responses).toEqual([
      { kind: TxnOpKind.Range, count: 1, more: false, kvs: [{ key: b('a'), value: b('1'), modRevision: 2, createRevision: 2, version: 1 }] },
      { kind: TxnOpKind.Delete, deleted: 1, prev: [] },
    ]);
    expect(n.engine.get(Buffer.alloc(0))?.value.toString()).toBe('auth');
    expect(() => encodeTxnCommandValue({ limits: LIMITS, request: { compares: [], success: [put('', 'x')], failure: [] } })).toThrow(/empty key/);
  });

  it('sees the writes before it in the same batch (however the log is batched) and is seen by those after', async () => {
    const cmds = [set('x', '1'), txn({ compares: [cmp('x', CompareTarget.Value, CompareResult.Equal, '1')], success: [put('y', 'from-txn'), { kind: TxnOpKind.Range, key: b('x'), end: b('z'), flags: TxnOpFlags.CountOnly }] }), set('x', '2'), txn({ success: [get('y'), get('x')] })];
    const one = await node(dir());
    await one.apply(entriesOf(1, cmds));
    const dir2 = fs.mkdtempSync(os.tmpdir() + '/cairn-');
    try {
      const two = await node(dir2);
      for (let i = 0; i < cmds.length; i++) await two.apply(entriesOf(1 + i, [cmds[i]]));
      for (const n of [one, two]) {
        expect(n.result(2).txn?.succeeded).toBe(true);
        expect(n.result(2).txn?.responses[1]).toEqual({ kind: TxnOpKind.Range, count: 2, more: false, kvs: [] });
        const last = n.result(4).txn?.responses;
        expect(last?.map((x) => (x.kind === TxnOpKind.Get ? x.kv?.value.toString() : null))).toEqual(['from-txn', '2']);
      }
      await two.engine.close();
    } finally {
      fs.rmSync(dir2, { recursive: true, force: true });
    }
  });

  it('emits one watch event per mutation of a txn, at its revision, with etcd create revision and version', async () => {
    const n = await node(dir());
    await n.apply(entriesOf(1, [set('a', '1'), txn({ success: [put('a', '2'), put('b', 'x'), { kind: TxnOpKind.Delete, key: b('a') }, put('b', 'y')] }), set('b', 'z')]));
    const show = n.events.map((e) => `${e.type} ${Buffer.from(e.key).toString()}=${Buffer.from(e.value).toString()}@${e.modRevision} c${e.createRevision} v${e.version} prev=${e.prevValue ? Buffer.from(e.prevValue).toString() : '-'}`);
    expect(show).toEqual([
      `${WatchEventType.Put} a=1@1 c1 v1 prev=-`,
      `${WatchEventType.Put} a=2@2 c1 v2 prev=1`,
      `${WatchEventType.Put} b=x@2 c2 v1 prev=-`,
      `${WatchEventType.Delete} a=@2 c0 v0 prev=2`,
      `${WatchEventType.Put} b=y@2 c2 v2 prev=x`,
      `${WatchEventType.Put} b=z@3 c2 v3 prev=y`,
    ]);
    expect(n.meta('b')).toEqual({ value: 'z', mod: 3, create: 2, version: 3 });
  });

  it('answers a duplicate session seq with the original result and does not apply it again', async () => {
    const n = await node(dir());
    const s = { sessionId: 7n, seq: 1, firstPendingSeq: 1 };
    const t = txn({ compares: [cmp('c', CompareTarget.Version, CompareResult.Equal, 0)], success: [put('c', 'first')], failure: [put('c', 'again')] }, s);
    await n.apply(entriesOf(1, [t, t]));
    expect(n.meta('c')).toEqual({ value: 'first', mod: 1, create: 1, version: 1 });
    expect(n.result(2)).toEqual(n.result(1));
    expect(n.result(2).txn?.succeeded).toBe(true);
    expect(n.applier.outcomeOf(99, { sessionId: 7n, seq: 1 }).txn).toEqual(n.applier.outcome(1).txn);
  });

  it('refuses a txn whose result or keys exceed its bounds (TOO_LARGE, nothing applied), and forgets the oldest results beyond txnResultsHeldBytesMax', async () => {
    const n = await node(dir(), { txnResultsHeldBytesMax: 100 });
    await n.apply(entriesOf(1, [set('big', 'v'.repeat(300)), set('k1', '1'), set('k2', '2')]));
    await n.apply(
      entriesOf(4, [
        txn({ success: [put('w', 'written'), get('big')] }, undefined, { resultBytesMax: 100, keysMax: 10 }),
        txn({ success: [put('w', 'written'), { kind: TxnOpKind.Delete, key: b('k'), flags: TxnOpFlags.Prefix }] }, undefined, { resultBytesMax: 1000, keysMax: 2 }),
        txn({ success: [get('k1')] }),
        txn({ success: [get('k2')] }),
      ]),
    );
    for (const i of [4, 5]) expect(n.applier.outcome(i)).toEqual({ outcome: ApplyOutcome.ConditionFailed, revision: i, txnRefusal: TxnRefusal.TooLarge });
    expect(n.meta('w')).toBeNull();
    expect(n.meta('k1')?.value).toBe('1');
    // the results of 6 and 7 (40 bytes each) fit in 100 bytes; an eighth pushes the oldest out
    expect(n.applier.outcome(6).txn).toBeDefined();
    await n.apply(entriesOf(8, [txn({ success: [get('k1')] })]));
    expect(n.applier.outcome(6)).toEqual({ outcome: ApplyOutcome.Applied, revision: 6 });
    expect(n.applier.outcome(7).txn).toBeDefined();
    expect(n.applier.outcome(8).txn).toBeDefined();
  });
});
