/**
 * `@cairn/engine`: the Bitcask-style storage engine on `@cairn/log`. Layout, keydir, merge, snapshots and
 * hint files: docs/engine.md, `record.ts` and `merged-file.ts`.
 */
export {
  BitcaskEngine,
  ENGINE_DEFAULTS,
  type EngineEntry,
  type EngineOpenReport,
  type EngineOptions,
  type EngineStats,
  type GetResult,
  type MergeReport,
  type MergeStep,
  type LogHintStep,
  type SnapshotStep,
  type CreateSnapshotOptions,
} from './bitcask-engine';
export { readRange, type RangeItem, type RangePage, type RangeQuery } from './range';
export { EngineOp, COMPANION_KEY_EXTRA_BYTES, COMPANION_VALUE_BYTES, RECORD_HEADER_BYTES, RECORD_META_HEADER_BYTES, recordBytesMaxOf, RECORD_OP_SET_META, RECORD_OP_BATCH, encodeRecord, decodeRecord, encodeBatchRecord, batchRecordBytes, type DataRecord, type BatchRecord, type BatchMutation, type KeyMeta } from './record';
export {
  EngineEntryTooLargeError,
  EngineGapError,
  MergeAbortedError,
  SnapshotAbortedError,
  SnapshotCorruptionError,
  SnapshotNotFoundError,
  SnapshotSequenceError,
  SnapshotTargetOpenError,
} from './errors';
export { hintFileName, logHintFileName, mergedDataFileName } from './merged-file';
export { MANIFEST_FILE_NAME } from './manifest';
export type { KeydirEntry } from './keydir';
export type { FsyncPolicy } from '@cairn/log';
export {
  SnapshotReader,
  SnapshotInstaller,
  installSnapshot,
  verifySnapshot,
  SNAPSHOTS_DIR_NAME,
  INSTALL_STAGING_DIR_NAME,
  INSTALL_READY_DIR_NAME,
  type EngineSnapshot,
  type InstallStep,
  type SnapshotInstallerOptions,
  type SnapshotInstallReport,
} from './snapshot';
export {
  SNAPSHOT_MANIFEST_FILE_NAME,
  SNAPSHOT_CHUNK_OVERHEAD_BYTES,
  encodeSnapshotChunk,
  decodeSnapshotChunk,
  encodeSnapshotManifest,
  decodeSnapshotManifest,
  type SnapshotChunk,
  type SnapshotFile,
  type SnapshotManifest,
} from './snapshot-format';
export {
  BACKUP_CHUNK_OVERHEAD_BYTES,
  BACKUP_HEADER_BYTES,
  BACKUP_RECORD_BYTES_MAX,
  BackupCorruptionError,
  BackupReader,
  BackupRecordKind,
  BackupTruncatedError,
  encodeBackupEnd,
  encodeBackupHeader,
  encodeBackupMeta,
  encodeBackupRecord,
  type BackupEvent,
  type BackupMeta,
} from './backup-format';
