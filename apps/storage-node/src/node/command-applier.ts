import { EngineOp, type EngineEntry } from '@cairn/engine';
import { ApplyOutcome, CommandCondition, CommandOp, decodeCommand, type Command, type WireEntry } from '@cairn/protocol';
import type { ApplyResult, SessionRecord } from './apply-result';
import type { SessionTable } from './session-table';

/** Raft entry type of a leader's no-op (libs/raft EntryType.Noop). */
export const ENTRY_TYPE_NOOP = 1;
/** Default bound of the per-index results table (entries). */
export const APPLY_RESULTS_MAX = 65_536;

export type { ApplyResult } from './apply-result';

export interface CommandApplierOptions {
  /** The mod revision of `key` in the engine's state (everything handed to the engine so far), 0 when it does not exist. */
  modRevision(key: Uint8Array): number;
  /** Bound of the results table; the oldest result is forgotten first (then answered Unknown). */
  resultsMax?: number;
  /** Called for a committed entry whose data does not decode (it is applied as a no-op). */
  onUndecodable?(index: number, err: unknown): void;
  /** Client sessions (Raft thesis §6.3): a write carrying a session is applied at most once per (session, seq). */
  sessions?: SessionTable;
}

/** One batch turned into engine entries, plus its session writes for the session journal. */
export interface AppliedBatch {
  engine: EngineEntry[];
  sessionRecords: SessionRecord[];
}

const EMPTY = new Uint8Array(0);

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
 */
export class CommandApplier {
  private readonly results = new Map<number, ApplyResult>();
  private readonly resultsMax: number;

  constructor(private readonly opts: CommandApplierOptions) {
    this.resultsMax = opts.resultsMax ?? APPLY_RESULTS_MAX;
    if (!Number.isSafeInteger(this.resultsMax) || this.resultsMax < 1) throw new RangeError(`resultsMax must be a positive integer, got ${opts.resultsMax}`);
  }

  /** Engine entries for `entries` (contiguous, in index order), outcomes recorded. Call once per entry, in log order. */
  toEngineEntries(entries: WireEntry[]): AppliedBatch {
    // Mod revisions of keys written earlier in this batch (0 = deleted): the engine sees them only once the batch is applied.
    const batchState = new Map<string, number>();
    const modRevision = (key: Uint8Array): number => {
      const s = batchState.get(Buffer.from(key).toString('latin1'));
      return s ?? this.opts.modRevision(key);
    };
    const out: EngineEntry[] = new Array(entries.length);
    const sessionRecords: SessionRecord[] = [];
    for (let i = 0; i < entries.length; i++) {
      const ee = this.toEngineEntry(entries[i], modRevision, sessionRecords);
      if (ee.op === EngineOp.Set || ee.op === EngineOp.Delete) batchState.set(Buffer.from(ee.key).toString('latin1'), ee.op === EngineOp.Set ? ee.index : 0);
      out[i] = ee;
    }
    return { engine: out, sessionRecords };
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

  private toEngineEntry(e: WireEntry, modRevision: (key: Uint8Array) => number, sessionRecords: SessionRecord[]): EngineEntry {
    const noop: EngineEntry = { index: e.index, op: EngineOp.Noop, key: EMPTY, value: EMPTY };
    if (e.type === ENTRY_TYPE_NOOP) return noop;
    let c;
    try {
      c = decodeCommand(e.data);
    } catch (err) {
      // Every node decodes the same committed bytes the same way, so treating an undecodable
      // command as a no-op keeps the nodes identical; reported loudly because it is a bug.
      this.opts.onUndecodable?.(e.index, err);
      return noop;
    }
    const sessions = this.opts.sessions;
    if (c.session && sessions) {
      const d = sessions.apply(e.index, c.session, () => evaluate(c, e.index, modRevision));
      sessionRecords.push({ index: e.index, session: c.session, result: d.kind === 'new' ? d.result : null });
      if (d.kind === 'stale') return noop;
      if (c.condition || d.kind === 'duplicate') this.record(e.index, d.result);
      return d.kind === 'new' && d.result.outcome === ApplyOutcome.Applied ? write(c, e.index) : noop;
    }
    if (!c.condition) return write(c, e.index);
    const r = evaluate(c, e.index, modRevision);
    this.record(e.index, r);
    return r.outcome === ApplyOutcome.Applied ? write(c, e.index) : noop;
  }

  private record(index: number, r: ApplyResult): void {
    this.results.delete(index); // re-recording an index (never in practice) keeps insertion order = index order
    this.results.set(index, r);
    if (this.results.size > this.resultsMax) {
      const oldest = this.results.keys().next().value as number;
      this.results.delete(oldest);
    }
  }
}

/**
 * Whether `c` applies at `index` given the state right before it: its condition (if any) against
 * the key's mod revision (0 = missing; a live key's revision is the index that wrote it, ≥ 1).
 */
function evaluate(c: Command, index: number, modRevision: (key: Uint8Array) => number): ApplyResult {
  const holds = conditionHolds(c, modRevision);
  return { outcome: holds ? ApplyOutcome.Applied : ApplyOutcome.ConditionFailed, revision: index };
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

function write(c: Command, index: number): EngineEntry {
  if (c.op === CommandOp.Set) return { index, op: EngineOp.Set, key: c.key, value: c.value };
  return { index, op: EngineOp.Delete, key: c.key, value: EMPTY };
}
