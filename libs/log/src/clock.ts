/**
 * Time as the log, the storage engine and every process component see it: the clock and timers,
 * injected so that nothing below a process shell reads the real clock. Declared here, the lowest
 * lib that needs time (as `Disk` is); @cairn/world re-exports it with `realClock` (Node's timers,
 * what process shells pass) and the simulator's virtual clock (`SimScheduler`).
 */

/** An opaque timer handle from `Clock.setTimeout` / `setInterval`. */
export interface TimerHandle {
  readonly __timer: unknown;
}

/** `unref`: the timer does not keep the process alive (Node's `timer.unref()`), for background chores (a poll, a sampler, a pacing wait); the virtual clock has no process to keep and ignores it. */
export interface TimerOptions {
  unref?: boolean;
}

export interface Clock {
  /** Milliseconds since the Unix epoch (real clock) or since the simulation began (virtual clock). */
  nowMs(): number;
  /**
   * Milliseconds on a clock that never steps back or jumps (real clock: `performance.now()`, may be
   * fractional), for measuring elapsed time; absent (the virtual clock), `nowMs` is that clock.
   */
  monotonicMs?(): number;
  /** Runs `fn` once after `ms` milliseconds (≥ 0). */
  setTimeout(fn: () => void, ms: number, options?: TimerOptions): TimerHandle;
  /** Runs `fn` every `ms` milliseconds (> 0) until cleared. */
  setInterval(fn: () => void, ms: number, options?: TimerOptions): TimerHandle;
  /** Cancels a timer from either call; a handle already fired or cleared, or undefined, is ignored. */
  clearTimer(handle: TimerHandle | undefined): void;
  /** Runs `fn` after the current callback and its promise jobs, before later timers (`setImmediate`). */
  defer(fn: () => void): void;
}
