/**
 * Typed errors of `@cairn/log`. Each carries a stable `code` string so callers (and the apps'
 * error mapping) can switch on it without `instanceof` across package copies.
 */

import { CodedError } from '@cairn/protocol';

/**
 * A segment file does not hold what the format says it must: a garbled or foreign header, a
 * record whose CRC32 or length is wrong with valid data after it, a bad record in a non-last
 * segment, or a gap between segment first indexes. Never raised for a torn tail of the last
 * segment (that is truncated at open and reported in `SegmentedLog.recovery.tornTail`).
 */
export class LogCorruptionError extends CodedError {
  readonly code = 'LOG_CORRUPTION';
  constructor(
    /** Path of the segment file holding the bad bytes. */
    readonly segmentPath: string,
    /** Byte offset in that file of the bad segment header (0) or record frame. */
    readonly offset: number,
    /** What is wrong, e.g. `record CRC32 mismatch`. */
    readonly reason: string,
  ) {
    super(`log corruption in ${segmentPath} at byte offset ${offset}: ${reason}`);
  }
}

/** An appended payload is longer than `SegmentedLogOptions.recordBytesMax`. Nothing of that append was assigned an index. */
export class RecordTooLargeError extends CodedError {
  readonly code = 'RECORD_TOO_LARGE';
  constructor(
    readonly sizeBytes: number,
    readonly recordBytesMax: number,
  ) {
    super(`record payload of ${sizeBytes} bytes exceeds recordBytesMax ${recordBytesMax}`);
  }
}

/** The log was closed (or is closing): every later call throws this. */
export class LogClosedError extends CodedError {
  readonly code = 'LOG_CLOSED';
  constructor(operation: string) {
    super(`log is closed: cannot ${operation}`);
  }
}
