/** Typed errors of `@cairn/engine`, each with a stable `code`. */

import { CodedError } from '@cairn/protocol';

/**
 * `apply` was handed an entry that does not directly follow the last applied (or in-flight)
 * index: applying it would skip Raft log entries, so the state machine would diverge.
 */
export class EngineGapError extends CodedError {
  readonly code = 'ENGINE_GAP';
  constructor(
    /** The index `apply` needed next. */
    readonly expectedIndex: number,
    /** The index it was given instead. */
    readonly gotIndex: number,
  ) {
    super(`engine apply gap: expected entry index ${expectedIndex}, got ${gotIndex}`);
  }
}

/** A key or value is longer than `EngineOptions.keyBytesMax` / `valueBytesMax`; nothing of that apply was written. */
export class EngineEntryTooLargeError extends CodedError {
  readonly code = 'ENGINE_ENTRY_TOO_LARGE';
  constructor(
    readonly index: number,
    readonly field: 'key' | 'value',
    readonly sizeBytes: number,
    readonly bytesMax: number,
  ) {
    super(`entry ${index}: ${field} of ${sizeBytes} bytes exceeds ${field}BytesMax ${bytesMax}`);
  }
}

/** `close()` was called while a merge was copying records: the merge stopped before its commit point and left nothing behind. */
export class MergeAbortedError extends CodedError {
  readonly code = 'ENGINE_MERGE_ABORTED';
  constructor() {
    super('merge aborted: the engine is closing');
  }
}

/**
 * A snapshot (its manifest, a chunk message or a file) does not hold what its manifest and CRC32s
 * say: a flipped byte, a truncated or oversized file. `file` is the file's name inside the
 * snapshot (`snapshot.manifest` for the manifest); `offset` the byte offset in that file of the
 * bad part when it is known (a chunk or a manifest field), null for a whole-file CRC32 mismatch.
 */
export class SnapshotCorruptionError extends CodedError {
  readonly code = 'ENGINE_SNAPSHOT_CORRUPT';
  constructor(
    readonly file: string,
    readonly offset: number | null,
    readonly reason: string,
  ) {
    super(`snapshot corruption in ${file}${offset === null ? '' : ` at byte offset ${offset}`}: ${reason}`);
  }
}

/**
 * A chunk handed to a `SnapshotInstaller` is not the one it needs next (another snapshot, file or
 * offset, a chunk after the last), or `finish()` was called before the last chunk. Nothing of it
 * was written; the install must restart from scratch (installs do not resume).
 */
export class SnapshotSequenceError extends CodedError {
  readonly code = 'ENGINE_SNAPSHOT_SEQUENCE';
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`snapshot chunk out of sequence at ${file} byte offset ${offset}: ${reason}`);
  }
}

/** `createSnapshot` was interrupted by `close()`: the half-written snapshot was removed. */
export class SnapshotAbortedError extends CodedError {
  readonly code = 'ENGINE_SNAPSHOT_ABORTED';
  constructor() {
    super('snapshot aborted: the engine is closing');
  }
}

/** The snapshot asked for is not (or no longer) on disk: retention deleted it, or it never existed. */
export class SnapshotNotFoundError extends CodedError {
  readonly code = 'ENGINE_SNAPSHOT_NOT_FOUND';
  constructor(readonly appliedIndex: number | null) {
    super(appliedIndex === null ? 'no snapshot' : `no snapshot at applied index ${appliedIndex}`);
  }
}

/** `SnapshotInstaller.finish()` refused to replace a directory that a `BitcaskEngine` of this process still has open (close it first). */
export class SnapshotTargetOpenError extends CodedError {
  readonly code = 'ENGINE_SNAPSHOT_TARGET_OPEN';
  constructor(readonly dir: string) {
    super(`cannot install a snapshot into ${dir}: an engine has it open`);
  }
}
