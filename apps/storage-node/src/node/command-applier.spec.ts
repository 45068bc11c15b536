import { BitcaskEngine, EngineOp } from '@cairn/engine';
import { ApplyOutcome, CommandCondition, CommandOp, CounterRefusal, encodeIncrDelta, type Command, type WireEntry } from '@cairn/protocol';
import { entriesOf, useTempDir } from './apply.spec-helpers';
import { CommandApplier, parseI64 } from './command-applier';
import { realClock } from '@cairn/world';

const set = (key: string, value: string, condition?: CommandCondition): Command => ({ op: CommandOp.Set, key: Buffer.from(key), value: Buffer.from(value), ...(condition ? { condition } : {}) });
const del = (key: string): Command => ({ op: CommandOp.Delete, key: Buffer.from(key), value: Buffer.alloc(0) });

/** A storage node's apply loop in miniature: a real engine, the applier in front of it. */
async function node(dir: string) {
  const engine = await BitcaskEngine.open({ clock: realClock, dir });
  const applier = new CommandApplier({ get: (k) => engine.get(k) });
  return {
    engine,
    applier,
    async apply(batch: WireEntry[]) {
      return engine.apply(applier.toEngineEntries(batch).engine);
    },
    value: (k: string) => engine.get(Buffer.from(k))?.value.toString() ?? null,
  };
}

describe('CommandApplier', () => {
  const dir = useTempDir();

  it('applies IF_ABSENT only to a missing key and IF_PRESENT only to an existing one, within and across batches', async () => {
    const n = await node(dir());
    // one batch: the second NX sees the first (not yet in the engine), XX sees it too; DEL then NX again
    await n.apply(entriesOf(1, [set('lock', 'a', CommandCondition.IfAbsent), set('lock', 'b', CommandCondition.IfAbsent), set('lock', 'c', CommandCondition.IfPresent), set('x', 'x', CommandCondition.IfPresent)]));
    expect(n.value('lock')).toBe('c');
    expect(n.value('x')).toBeNull();
    await n.apply(entriesOf(5, [del('lock'), 'noop']));
    await n.apply(entriesOf(7, [set('lock', 'd', CommandCondition.IfPresent), set('lock', 'e', CommandCondition.IfAbsent), set('plain', 'p')]));
    expect(n.value('lock')).toBe('e');
    expect([1, 2, 3, 4, 7, 8].map((i) => n.applier.outcome(i))).toEqual([
      { outcome: ApplyOutcome.Applied, revision: 1 },
      { outcome: ApplyOutcome.ConditionFailed, revision: 2 },
      { outcome: ApplyOutcome.Applied, revision: 3 },
      { outcome: ApplyOutcome.ConditionFailed, revision: 4 },
      { outcome: ApplyOutcome.ConditionFailed, revision: 7 },
      { outcome: ApplyOutcome.Applied, revision: 8 },
    ]);
    // plain writes and no-ops are not recorded: their commit reply is their outcome
    expect(n.applier.outcome(9)).toEqual({ outcome: ApplyOutcome.Unknown, revision: 0 });
    expect(n.applier.outcome(6)).toEqual({ outcome: ApplyOutcome.Unknown, revision: 0 });
    // a failed condition still advances the applied index (a no-op record), so revisions stay contiguous
    expect(n.engine.appliedIndex()).toBe(9);
    expect(n.engine.get(Buffer.from('lock'))?.revision).toBe(8);
    await n.engine.close();
  });

  it('gives the same outcomes on every node and on a replay after a restart, however the log is batched', async () => {
    const cmds: Command[] = [];
    for (let i = 0; i < 200; i++) {
      const key = `k${i % 7}`;
      const r = (i * 7919) % 5;
      cmds.push(r === 0 ? del(key) : r < 3 ? set(key, `v${i}`, CommandCondition.IfAbsent) : r === 3 ? set(key, `v${i}`, CommandCondition.IfPresent) : set(key, `v${i}`));
    }
    const log = entriesOf(1, cmds);
    const run = async (sub: string, batchSizes: number[]) => {
      const n = await node(`${dir()}/${sub}`);
      for (let at = 0, b = 0; at < log.length; b++) {
        const size = batchSizes[b % batchSizes.length];
        await n.apply(log.slice(at, at + size));
        at += size;
      }
      const outcomes = log.map((e) => n.applier.outcome(e.index).outcome);
      const state = [...Array(7).keys()].map((i) => n.value(`k${i}`));
      return { n, outcomes, state };
    };
    const a = await run('a', [200]);
    const b = await run('b', [1, 3, 17]);
    expect(b.outcomes).toEqual(a.outcomes);
    expect(b.state).toEqual(a.state);
    expect(a.outcomes.filter((o) => o === ApplyOutcome.ConditionFailed).length).toBeGreaterThan(0);
    expect(a.outcomes.filter((o) => o === ApplyOutcome.Applied).length).toBeGreaterThan(0);
    await b.n.engine.close();

    // crash after index 120: reopen, replay the rest from the engine's applied index on
    await a.n.engine.close();
    const c1 = await node(`${dir()}/c`);
    await c1.apply(log.slice(0, 120));
    await c1.engine.close();
    const c2 = await node(`${dir()}/c`);
    expect(c2.engine.appliedIndex()).toBe(120);
    await c2.apply(log.slice(120));
    expect(log.slice(120).map((e) => c2.applier.outcome(e.index).outcome)).toEqual(a.outcomes.slice(120));
    expect([...Array(7).keys()].map((i) => c2.value(`k${i}`))).toEqual(a.state);
    await c2.engine.close();
  });

  it('applies IF_REVISION (compare-and-swap on the mod revision) to SET and DEL, a missing key comparing as 0, within and across batches', async () => {
    const n = await node(dir());
    const cas = (op: CommandOp, key: string, value: string, revision: number): Command => ({ op, key: Buffer.from(key), value: Buffer.from(value), condition: CommandCondition.IfRevision, revision });
    // 1: create only if missing (rev 0); 2: stale CAS on 0 fails; 3: CAS on 1 (written in this same batch) holds; 4: CAS on 1 again fails (now 3)
    await n.apply(entriesOf(1, [cas(CommandOp.Set, 'c', 'a', 0), cas(CommandOp.Set, 'c', 'b', 0), cas(CommandOp.Set, 'c', 'c', 1), cas(CommandOp.Set, 'c', 'd', 1)]));
    expect(n.value('c')).toBe('c');
    expect(n.engine.get(Buffer.from('c'))?.revision).toBe(3);
    // across batches (read from the engine): DEL on a stale revision fails, on the current one deletes; then the key compares as 0 again
    await n.apply(entriesOf(5, [cas(CommandOp.Delete, 'c', '', 1)]));
    await n.apply(entriesOf(6, [cas(CommandOp.Delete, 'c', '', 3), cas(CommandOp.Set, 'c', 'e', 3), cas(CommandOp.Set, 'c', 'f', 0)]));
    expect(n.value('c')).toBe('f');
    const outcomes = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => n.applier.outcome(i).outcome);
    const { Applied: A, ConditionFailed: F } = ApplyOutcome;
    expect(outcomes).toEqual([A, F, A, F, F, A, F, A]);
    expect(n.engine.appliedIndex()).toBe(8);
    await n.engine.close();
  });

  it('applies INCR at apply time: a missing key is 0, within and across batches, refusing non-integers and overflow without writing', async () => {
    const n = await node(dir());
    const incr = (key: string, delta: bigint): Command => ({ op: CommandOp.Incr, key: Buffer.from(key), value: encodeIncrDelta(delta) });
    const max = (1n << 63n) - 1n;
    await n.apply(entriesOf(1, [incr('n', 1n), incr('n', 41n), set('s', 'abc'), incr('s', 1n), set('big', String(max - 1n)), incr('big', 1n), incr('big', 1n)]));
    await n.apply(entriesOf(8, [incr('n', -50n), del('n'), incr('n', -3n), set('z', '-0'), incr('z', 1n), set('m', String(-max - 1n)), incr('m', -1n)]));
    expect(n.value('n')).toBe('-3');
    expect(n.value('s')).toBe('abc');
    expect(n.value('big')).toBe(String(max));
    expect(n.value('m')).toBe(String(-max - 1n));
    const r = (i: number) => n.applier.outcome(i);
    expect([r(1), r(2), r(4), r(6), r(7)]).toEqual([
      { outcome: ApplyOutcome.Applied, revision: 1, counter: 1n },
      { outcome: ApplyOutcome.Applied, revision: 2, counter: 42n },
      { outcome: ApplyOutcome.ConditionFailed, revision: 4, refusal: CounterRefusal.NotInteger },
      { outcome: ApplyOutcome.Applied, revision: 6, counter: max },
      { outcome: ApplyOutcome.ConditionFailed, revision: 7, refusal: CounterRefusal.Overflow },
    ]);
    expect([r(8), r(10), r(12), r(14)]).toEqual([
      { outcome: ApplyOutcome.Applied, revision: 8, counter: -8n },
      { outcome: ApplyOutcome.Applied, revision: 10, counter: -3n },
      { outcome: ApplyOutcome.ConditionFailed, revision: 12, refusal: CounterRefusal.NotInteger },
      { outcome: ApplyOutcome.ConditionFailed, revision: 14, refusal: CounterRefusal.Overflow },
    ]);
    expect(n.engine.appliedIndex()).toBe(14);
    await n.engine.close();
  });

  it('reads integers as Redis string2ll does', () => {
    const p = (s: string) => parseI64(Buffer.from(s));
    expect(['0', '-1', '9223372036854775807', '-9223372036854775808'].map(p)).toEqual([0n, -1n, (1n << 63n) - 1n, -(1n << 63n)]);
    for (const bad of ['', '-0', '01', '+1', ' 1', '1 ', '1.0', '9223372036854775808', '-9223372036854775809', 'abc', '00000000000000000000001']) expect(p(bad)).toBeNull();
  });

  it('bounds the results table: the oldest result is forgotten first and then answered Unknown', () => {
    const present = new Set<string>();
    const applier = new CommandApplier({ get: (k) => (present.has(Buffer.from(k).toString()) ? { value: Buffer.alloc(0), revision: 1 } : null), resultsMax: 3 });
    const out = applier.toEngineEntries(entriesOf(1, [set('a', '1', CommandCondition.IfAbsent), set('b', '1', CommandCondition.IfAbsent), set('a', '2', CommandCondition.IfAbsent), set('c', '1', CommandCondition.IfPresent)]));
    expect(out.engine.map((e) => e.op)).toEqual([EngineOp.Set, EngineOp.Set, EngineOp.Noop, EngineOp.Noop]);
    expect(applier.resultsSize()).toBe(3);
    expect(applier.outcome(1)).toEqual({ outcome: ApplyOutcome.Unknown, revision: 0 });
    expect(applier.outcome(2)).toEqual({ outcome: ApplyOutcome.Applied, revision: 2 });
    expect(() => new CommandApplier({ get: () => null, resultsMax: 0 })).toThrow(/resultsMax/);
  });

  it('applies an undecodable command as a no-op and reports it', () => {
    const bad: number[] = [];
    const applier = new CommandApplier({ get: () => null, onUndecodable: (i) => bad.push(i) });
    const out = applier.toEngineEntries([{ index: 1, term: 1, type: 0, data: Buffer.from('0101ff', 'hex') }]);
    expect(out.engine[0].op).toBe(EngineOp.Noop);
    expect(bad).toEqual([1]);
  });
});
