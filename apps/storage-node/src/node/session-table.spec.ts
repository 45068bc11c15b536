import * as fs from 'node:fs';
import { BitcaskEngine } from '@cairn/engine';
import { ApplyOutcome, CommandCondition, CommandOp, type Command, type CommandSession, type WireEntry } from '@cairn/protocol';
import { entriesOf, useTempDir } from './apply.spec-helpers';
import { CommandApplier } from './command-applier';
import { SessionStore, decodeJournal } from './session-store';
import { SessionTable } from './session-table';
import { realClock } from '@cairn/world';

const S1 = 0xfeedface_cafef00dn;
const S2 = 7n;
const sess = (sessionId: bigint, seq: number, firstPendingSeq = 0): CommandSession => ({ sessionId, seq, firstPendingSeq });
const setCmd = (key: string, value: string, session?: CommandSession, condition?: CommandCondition): Command => ({
  op: CommandOp.Set,
  key: Buffer.from(key),
  value: Buffer.from(value),
  ...(session ? { session } : {}),
  ...(condition ? { condition } : {}),
});
const applied = (revision: number) => ({ outcome: ApplyOutcome.Applied, revision });

describe('SessionTable', () => {
  it('applies each (session, seq) once; a duplicate returns the original outcome; a copy below firstPendingSeq is stale', () => {
    const t = new SessionTable();
    let evaluated = 0;
    const ev = (i: number) => () => (evaluated++, applied(i));
    expect(t.apply(1, sess(S1, 1), ev(1))).toEqual({ kind: 'new', result: applied(1) });
    expect(t.apply(2, sess(S2, 1), ev(2))).toEqual({ kind: 'new', result: applied(2) }); // same seq, other session
    expect(t.apply(3, sess(S1, 2, 1), ev(3))).toEqual({ kind: 'new', result: applied(3) });
    expect(t.apply(4, sess(S1, 1), ev(4))).toEqual({ kind: 'duplicate', result: applied(1) }); // re-sent copy
    expect(evaluated).toBe(3);
    // the client acknowledged seqs < 3: their results go, and a late copy of seq 1 or 2 is never applied
    expect(t.apply(5, sess(S1, 3, 3), ev(5)).kind).toBe('new');
    expect(t.result(S1, 1)).toBeNull();
    expect(t.apply(6, sess(S1, 2, 1), ev(6))).toEqual({ kind: 'stale' });
    expect(t.size()).toEqual({ sessions: 2, results: 2 });
  });

  it('bounds: the least recently active session is evicted; past resultsPerSessionMax the lowest seq is forgotten and its copies become stale', () => {
    const t = new SessionTable({ sessionsMax: 2, resultsPerSessionMax: 2 });
    t.apply(1, sess(1n, 1), () => applied(1));
    t.apply(2, sess(2n, 1), () => applied(2));
    t.apply(3, sess(1n, 2), () => applied(3)); // session 1 active again
    t.apply(4, sess(3n, 1), () => applied(4)); // evicts session 2 (last active at 2)
    expect(t.result(2n, 1)).toBeNull();
    expect(t.result(1n, 1)).toEqual(applied(1));
    t.apply(5, sess(1n, 3), () => applied(5)); // 3 results > 2: seq 1 forgotten
    expect(t.result(1n, 1)).toBeNull();
    expect(t.apply(6, sess(1n, 1), () => applied(6))).toEqual({ kind: 'stale' });
    expect(t.apply(7, sess(1n, 2), () => applied(7))).toEqual({ kind: 'duplicate', result: applied(3) });
    expect(() => new SessionTable({ sessionsMax: 0, resultsPerSessionMax: 1 })).toThrow(/sessionsMax/);
  });

  it('encodes and decodes to the same decisions', () => {
    const t = new SessionTable();
    t.apply(10, sess(S1, 4, 2), () => applied(10));
    t.apply(11, sess(S1, 5, 2), () => ({ outcome: ApplyOutcome.ConditionFailed, revision: 11 }));
    t.apply(12, sess(S2, 1), () => applied(12));
    const u = SessionTable.decode(t.encode());
    expect(u.encode()).toEqual(t.encode());
    expect(u.apply(13, sess(S1, 5, 2), () => applied(13))).toEqual({ kind: 'duplicate', result: { outcome: ApplyOutcome.ConditionFailed, revision: 11 } });
    expect(u.apply(14, sess(S1, 1, 2), () => applied(14))).toEqual({ kind: 'stale' });
  });
});

describe('session writes on a storage node (applier + engine + session store)', () => {
  const dir = useTempDir();

  /** The storage node's apply order: journal, then engine, then maybe compact. */
  async function open(sub = 'n') {
    const engine = await BitcaskEngine.open({ clock: realClock, dir: `${dir()}/${sub}/engine` });
    const store = await SessionStore.open({ dir: `${dir()}/${sub}/sessions`, fsync: true, appliedIndex: engine.appliedIndex() });
    const applier = new CommandApplier({ get: (k) => engine.get(k), sessions: store.table });
    return {
      engine,
      store,
      applier,
      async apply(batch: WireEntry[], opts: { crashBeforeEngine?: boolean } = {}) {
        const b = applier.toEngineEntries(batch);
        await store.append(b.sessionRecords);
        if (opts.crashBeforeEngine) return;
        const a = await engine.apply(b.engine);
        await store.maybeCompact(a);
      },
      value: (k: string) => engine.get(Buffer.from(k))?.value.toString() ?? null,
      async close() {
        await engine.close();
        await store.close();
      },
    };
  }

  it('a re-sent write (same session and seq) is applied once, even after another client overwrote the key', async () => {
    const n = await open();
    await n.apply(entriesOf(1, [setCmd('k', 'mine', sess(S1, 1)), setCmd('k', 'theirs', sess(S2, 1)), setCmd('k', 'mine', sess(S1, 1))]));
    expect(n.value('k')).toBe('theirs');
    expect(n.engine.get(Buffer.from('k'))?.revision).toBe(2);
    // the duplicate's index answers the original outcome, by index and by session
    expect(n.applier.outcomeOf(3)).toEqual(applied(1));
    expect(n.applier.outcomeOf(3, { sessionId: S1, seq: 1 })).toEqual(applied(1));
    // a conditional duplicate answers the original condition result, not a re-evaluation
    await n.apply(entriesOf(4, [setCmd('lock', 'a', sess(S1, 2), CommandCondition.IfAbsent), setCmd('lock', 'a', sess(S1, 2), CommandCondition.IfAbsent)]));
    expect(n.applier.outcomeOf(5)).toEqual(applied(4));
    await n.close();
  });

  it('survives a restart: the table is rebuilt as of the engine applied index, also when the journal is ahead of the engine or torn', async () => {
    const a = await open();
    await a.apply(entriesOf(1, [setCmd('k', 'v1', sess(S1, 1)), setCmd('x', 'x', sess(S2, 1), CommandCondition.IfPresent)]));
    // a batch journaled but never applied by the engine (crash between the two)
    await a.apply(entriesOf(3, [setCmd('k', 'v2', sess(S1, 2))]), { crashBeforeEngine: true });
    await a.close();
    // plus a torn frame at the journal's end (crash in the middle of a journal write)
    fs.appendFileSync(`${dir()}/n/sessions/sessions.journal`, Buffer.from([0, 0, 0, 40, 1, 2, 3]));
    expect(decodeJournal(fs.readFileSync(`${dir()}/n/sessions/sessions.journal`)).map((r) => r.index)).toEqual([1, 2, 3]);

    const b = await open();
    expect(b.engine.appliedIndex()).toBe(2);
    expect(b.store.table.result(S1, 1)).toEqual(applied(1));
    expect(b.store.table.result(S2, 1)).toEqual({ outcome: ApplyOutcome.ConditionFailed, revision: 2 });
    expect(b.store.table.result(S1, 2)).toBeNull(); // index 3 is past the engine: dropped, and applied afresh below
    expect(fs.statSync(`${dir()}/n/sessions/sessions.journal`).size).toBe(0); // compacted into the base at open
    await b.apply(entriesOf(3, [setCmd('k', 'v2', sess(S1, 2)), setCmd('k', 'v1', sess(S1, 1)), setCmd('x', 'x', sess(S2, 1), CommandCondition.IfPresent)]));
    expect(b.value('k')).toBe('v2'); // the re-sent seq 1 after the restart is still a duplicate
    expect(b.value('x')).toBeNull();
    await b.close();

    // a node applying the same log without any restart ends in the same state and table
    const c = await open('other');
    await c.apply(entriesOf(1, [setCmd('k', 'v1', sess(S1, 1)), setCmd('x', 'x', sess(S2, 1), CommandCondition.IfPresent)]));
    await c.apply(entriesOf(3, [setCmd('k', 'v2', sess(S1, 2)), setCmd('k', 'v1', sess(S1, 1)), setCmd('x', 'x', sess(S2, 1), CommandCondition.IfPresent)]));
    const b2 = await open();
    expect(b2.store.table.encode()).toEqual(c.store.table.encode());
    expect(b2.value('k')).toBe(c.value('k'));
    await b2.close();
    await c.close();
  });

  it('refuses a corrupt base and warns about a base past the engine', async () => {
    const a = await open();
    await a.apply(entriesOf(1, [setCmd('k', 'v', sess(S1, 1))]));
    await a.close();
    const base = `${dir()}/n/sessions/sessions.base`;
    const good = fs.readFileSync(base);
    const bad = Buffer.from(good);
    bad[bad.length - 1] ^= 0xff;
    fs.writeFileSync(base, bad);
    await expect(SessionStore.open({ dir: `${dir()}/n/sessions`, fsync: false, appliedIndex: 1 })).rejects.toThrow(/CRC/);
    fs.writeFileSync(base, good);
    await (await SessionStore.open({ dir: `${dir()}/n/sessions`, fsync: false, appliedIndex: 1 })).close(); // base now at index 1
    const warnings: string[] = [];
    const s = await SessionStore.open({ dir: `${dir()}/n/sessions`, fsync: false, appliedIndex: 0, onWarning: (m) => warnings.push(m) });
    expect(warnings[0]).toMatch(/past the engine's applied index 0/);
    expect(s.table.size()).toEqual({ sessions: 0, results: 0 });
    await s.close();
  });
});
