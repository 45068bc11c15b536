import { EngineOp, type EngineEntry } from '@cairn/engine';
import { ApplyOutcome, CommandCondition, CommandOp, decodeCommand, type WireEntry } from '@cairn/protocol';

/** Raft entry type of a leader's no-op (libs/raft EntryType.Noop). */
export const ENTRY_TYPE_NOOP = 1;
/** Default bound of the per-index results table (entries). */
export const APPLY_RESULTS_MAX = 65_536;

/** What applying one entry did (docs/protocol.md, "Outcomes"). */
export interface ApplyResult {
  outcome: ApplyOutcome;
  /** Applied: the index it took effect at; ConditionFailed: the index it was evaluated at. */
  revision: number;
}

export interface CommandApplierOptions {
  /** Whether `key` exists in the engine's state (everything handed to the engine so far). */
  exists(key: Uint8Array): boolean;
  /** Bound of the results table; the oldest result is forgotten first (then answered Unknown). */
  resultsMax?: number;
  /** Called for a committed entry whose data does not decode (it is applied as a no-op). */
  onUndecodable?(index: number, err: unknown): void;
}

const EMPTY = new Uint8Array(0);

/**
 * The deterministic part of applying committed entries: turns Raft entries into engine entries,
 * evaluating each conditional Set (IF_ABSENT / IF_PRESENT) against the state right before it: the
 * engine's state plus the entries earlier in the same batch. The same log order therefore gives
 * the same outcome on every storage node, and a replay after a restart gives it again.
 *
 * The outcome of every conditional write is recorded by index in a results table bounded by
 * `resultsMax` (oldest forgotten first); the gateway asks for it after the leader's commit reply.
 * A forgotten or never-recorded index is answered `Unknown` (the gateway then reports the outcome
 * as unknown, as for a lost reply). Plain writes are not recorded: the commit reply is their outcome.
 */
export class CommandApplier {
  private readonly results = new Map<number, ApplyResult>();
  private readonly resultsMax: number;

  constructor(private readonly opts: CommandApplierOptions) {
    this.resultsMax = opts.resultsMax ?? APPLY_RESULTS_MAX;
    if (!Number.isSafeInteger(this.resultsMax) || this.resultsMax < 1) throw new RangeError(`resultsMax must be a positive integer, got ${opts.resultsMax}`);
  }

  /** Engine entries for `entries` (contiguous, in index order), outcomes recorded. Call once per entry, in log order. */
  toEngineEntries(entries: WireEntry[]): EngineEntry[] {
    // Keys written earlier in this batch: the engine sees them only once the batch is applied.
    const batchState = new Map<string, boolean>();
    const exists = (key: Uint8Array): boolean => {
      const s = batchState.get(Buffer.from(key).toString('latin1'));
      return s ?? this.opts.exists(key);
    };
    const out: EngineEntry[] = new Array(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const ee = this.toEngineEntry(entries[i], exists);
      if (ee.op === EngineOp.Set || ee.op === EngineOp.Delete) batchState.set(Buffer.from(ee.key).toString('latin1'), ee.op === EngineOp.Set);
      out[i] = ee;
    }
    return out;
  }

  /** The recorded outcome of the entry at `index`, or Unknown when none is recorded (see the class doc). */
  outcome(index: number): ApplyResult {
    return this.results.get(index) ?? { outcome: ApplyOutcome.Unknown, revision: 0 };
  }

  /** Results currently held (≤ resultsMax). */
  resultsSize(): number {
    return this.results.size;
  }

  private toEngineEntry(e: WireEntry, exists: (key: Uint8Array) => boolean): EngineEntry {
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
    const condition = c.condition ?? CommandCondition.None;
    if (condition !== CommandCondition.None) {
      const holds = exists(c.key) === (condition === CommandCondition.IfPresent);
      this.record(e.index, holds ? { outcome: ApplyOutcome.Applied, revision: e.index } : { outcome: ApplyOutcome.ConditionFailed, revision: e.index });
      if (!holds) return noop;
    }
    if (c.op === CommandOp.Set) return { index: e.index, op: EngineOp.Set, key: c.key, value: c.value };
    return { index: e.index, op: EngineOp.Delete, key: c.key, value: EMPTY };
  }

  private record(index: number, r: ApplyResult): void {
    this.results.set(index, r);
    if (this.results.size > this.resultsMax) {
      const oldest = this.results.keys().next().value as number;
      this.results.delete(oldest);
    }
  }
}
