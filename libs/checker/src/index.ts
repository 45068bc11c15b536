export {
  HistoryError,
  HistoryRecorder,
  assertOperation,
  historyToJsonLines,
  parseHistoryJsonLines,
  type Operation,
  type OperationKind,
  type Outcome,
  type TxnCompareSpec,
  type TxnSpec,
  type TxnStepSpec,
} from './history';
export type { Violation } from './register';
export { casStep } from './cas';
export {
  CHECK_DEFAULTS,
  checkHistory,
  checkHistoryFile,
  partition,
  formatCheckResult,
  type CheckOptions,
  type CheckResult,
  type UnknownKey,
} from './check';
export {
  WatchHistoryError,
  checkCommittedHistory,
  checkWatchStream,
  checkWatchStreams,
  checkWritesCommitted,
  committedHistory,
  formatWatchCheckResult,
  inWatchRange,
  type CommittedHistory,
  type CommittedWrite,
  type WatchCheckOptions,
  type WatchCheckResult,
  type WatchEvent,
  type WatchItem,
  type WatchRange,
  type WatchStream,
  type WatchViolation,
  type WriteOutcome,
} from './watch';
export { mapStep } from './map';
export { checkLeases, type KeptLease, type LeaseCheckResult, type LeaseViolation, type TtlRead, type TtlWrite } from './lease';
