/**
 * `@cairn/engine`: the Bitcask-style storage engine on `@cairn/log`. Layout, keydir, merge and
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
} from './bitcask-engine';
export { EngineOp, RECORD_HEADER_BYTES, encodeRecord, decodeRecord, type DataRecord } from './record';
export { EngineEntryTooLargeError, EngineGapError, MergeAbortedError } from './errors';
export { hintFileName, mergedDataFileName } from './merged-file';
export { MANIFEST_FILE_NAME } from './manifest';
export type { KeydirEntry } from './keydir';
export type { FsyncPolicy } from '@cairn/log';
