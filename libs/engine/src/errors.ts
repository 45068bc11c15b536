/** Typed errors of `@cairn/engine`, each with a stable `code`. */

/**
 * `apply` was handed an entry that does not directly follow the last applied (or in-flight)
 * index: applying it would skip Raft log entries, so the state machine would diverge.
 */
export class EngineGapError extends Error {
  readonly code = 'ENGINE_GAP';
  constructor(
    /** The index `apply` needed next. */
    readonly expectedIndex: number,
    /** The index it was given instead. */
    readonly gotIndex: number,
  ) {
    super(`engine apply gap: expected entry index ${expectedIndex}, got ${gotIndex}`);
    this.name = 'EngineGapError';
  }
}

/** A key or value is longer than `EngineOptions.keyBytesMax` / `valueBytesMax`; nothing of that apply was written. */
export class EngineEntryTooLargeError extends Error {
  readonly code = 'ENGINE_ENTRY_TOO_LARGE';
  constructor(
    readonly index: number,
    readonly field: 'key' | 'value',
    readonly sizeBytes: number,
    readonly bytesMax: number,
  ) {
    super(`entry ${index}: ${field} of ${sizeBytes} bytes exceeds ${field}BytesMax ${bytesMax}`);
    this.name = 'EngineEntryTooLargeError';
  }
}

/** `close()` was called while a merge was copying records: the merge stopped before its commit point and left nothing behind. */
export class MergeAbortedError extends Error {
  readonly code = 'ENGINE_MERGE_ABORTED';
  constructor() {
    super('merge aborted: the engine is closing');
    this.name = 'MergeAbortedError';
  }
}
