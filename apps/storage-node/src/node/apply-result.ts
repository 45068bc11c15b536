import type { ApplyOutcome, CommandSession, CounterRefusal, LeaseRefusal, TxnRefusal } from '@cairn/protocol';

/**
 * The types the applier, the session table and its journal share. A leaf module: the three import
 * it and not each other's types (no import cycle command-applier ↔ session-table ↔ session-store).
 */

/** What applying one entry did (docs/protocol.md, "Outcomes"). */
export interface ApplyResult {
  outcome: ApplyOutcome;
  /** Applied: the index it took effect at; ConditionFailed: the index it was evaluated at. */
  revision: number;
  /** An applied Incr: the key's new value. Kept in memory only (the session journal stores outcome and revision), so it is lost with a restart. */
  counter?: bigint;
  /** An Incr not applied (outcome ConditionFailed): why. In memory only, as `counter`. */
  refusal?: CounterRefusal;
  /** An applied Txn: its encoded TxnResult (libs/protocol txn.ts). In memory only, as `counter`, and dropped when the applier's txnResultsHeldBytesMax is reached. */
  txn?: Uint8Array;
  /** A Txn not applied (outcome ConditionFailed): why. */
  txnRefusal?: TxnRefusal;
  /** A lease-related write not applied (outcome ConditionFailed): why. In memory only, as `counter`. */
  leaseRefusal?: LeaseRefusal;
}

/**
 * One session write as applied: enough to replay the table's decision without the engine (the
 * outcome of a new write is recorded; a duplicate or stale one is re-derived by the table).
 */
export interface SessionRecord {
  index: number;
  session: CommandSession;
  /** The evaluated result of a new write; null for a duplicate or stale one. */
  result: ApplyResult | null;
}
