/**
 * @cairn/raft: the Raft consensus algorithm as a pure deterministic state machine (etcd raft
 * style: tick/step/propose in, Ready out, advance). The test harness (simulator, fixtures) is
 * the separate entry point `@cairn/raft/testing`.
 */
export {
  CONTEXT_CAMPAIGN_TRANSFER,
  ConfChangeInProgressError,
  ConfChangeInvalidError,
  EntryType,
  decodeConfState,
  encodeConfState,
  type ConfChange,
  type ConfState,
  LeadershipTransferInProgressError,
  MessageType,
  NotLeaderError,
  ReadIndexPendingFullError,
  isRaftMessage,
  makeMessage,
  type Entry,
  type HardState,
  type LogCache,
  type LogOnDisk,
  type LogStorage,
  type Message,
  type NodeId,
  type ProgressStatus,
  type RaftConfig,
  type RaftStatus,
  type ReadContext,
  type ReadState,
  type ReadStateFailed,
  type Ready,
  type Role,
  type SoftState,
  type Snapshot,
  type TermRun,
} from './types';
export { ENTRY_OVERHEAD_BYTES, type LogCacheStats } from './raft-log';
export { RaftNode, applyConfChange } from './raft-node';
export { mulberry32 } from './prng';
