/**
 * `@cairn/engine`: the Bitcask-style storage engine on `@cairn/log`. Layout and keydir:
 * docs/engine.md and `record.ts`.
 */
export { BitcaskEngine, type EngineEntry, type EngineOptions, type EngineStats, type GetResult } from './bitcask-engine';
export { EngineOp, RECORD_HEADER_BYTES, encodeRecord, decodeRecord, type DataRecord } from './record';
export { EngineEntryTooLargeError, EngineGapError } from './errors';
export type { KeydirEntry } from './keydir';
export type { FsyncPolicy } from '@cairn/log';
