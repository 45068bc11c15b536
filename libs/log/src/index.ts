/**
 * `@cairn/log`: the durable segmented append-only log under the Raft log and the storage engine.
 * Format and recovery rules: docs/log.md and `format.ts`.
 */
export {
  SegmentedLog,
  type FsyncPolicy,
  type LogStats,
  type RecordPosition,
  type RecoveryReport,
  type SegmentInfo,
  type SegmentedLogOptions,
} from './segmented-log';
export type { TornTail } from './recovery';
export { LogClosedError, LogCorruptionError, RecordTooLargeError } from './errors';
export {
  FRAME_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
  SEGMENT_MAGIC,
  SEGMENT_FORMAT_VERSION,
  FILE_HEADER_BYTES,
  segmentFileName,
  parseSegmentFileName,
  encodeFrame,
  decodeFrame,
  frameCrc,
  encodeFileHeader,
  decodeFileHeader,
  readU64,
  writeU64,
} from './format';
export { fsyncDir, writeFileAtomic, writeNewFileDurable } from './files';
export type { Clock, TimerHandle, TimerOptions } from './clock';
export { nodeDisk, type Disk, type DiskFile, type DiskOpenFlags, type DiskStat } from './disk';
// A consensus replica's small durable Raft state files (also written by `cairn snapshot restore`).
export { CHECKSUMMED_HEADER_BYTES, ChecksummedFile } from './raft-state/checksummed-file';
export { HardStateCorruptionError, HardStateFile } from './raft-state/hard-state-file';
export { SnapshotFile, SnapshotFileCorruptionError } from './raft-state/snapshot-file';
export {
  LeaseStateFile,
  LeaseStateFileCorruptionError,
  decodeLeaseState,
  encodeLeaseState,
  encodeLeaseStateSlices,
  type LeaseStateContent,
  type LeaseStateSliceReader,
  type LeaseStateSnapshot,
  type SavedLeaseState,
} from './raft-state/lease-state-file';
