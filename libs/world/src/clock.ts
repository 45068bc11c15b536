/**
 * Time as a process sees it: the one place below a process shell that reads the clock or starts a
 * timer. Production passes `realClock` (Node's timers and `Date.now`); the simulator passes a
 * virtual clock driven by its seeded scheduler (`SimScheduler.clock`), so a run is replayable and
 * a test never waits on wall-clock time.
 */

/** An opaque timer handle from `Clock.setTimeout` / `setInterval`. */
export interface TimerHandle {
  readonly __timer: unknown;
}

export interface Clock {
  /** Milliseconds since the Unix epoch (real clock) or since the simulation began (virtual clock). */
  nowMs(): number;
  /** Runs `fn` once after `ms` milliseconds (≥ 0). */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Runs `fn` every `ms` milliseconds (> 0) until cleared. */
  setInterval(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer from either call; a handle already fired or cleared, or undefined, is ignored. */
  clearTimer(handle: TimerHandle | undefined): void;
  /** Runs `fn` after the current callback and its promise jobs, before later timers (`setImmediate`). */
  defer(fn: () => void): void;
}

/** Resolves after `ms` milliseconds on `clock`. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, Math.max(0, ms)));
}

type NodeTimer = { kind: 'timeout' | 'interval'; t: NodeJS.Timeout };

/** Node's timers and `Date.now`: what every process shell passes. */
export const realClock: Clock = {
  nowMs: () => Date.now(),
  setTimeout: (fn, ms) => ({ __timer: { kind: 'timeout', t: setTimeout(fn, ms) } satisfies NodeTimer }),
  setInterval: (fn, ms) => ({ __timer: { kind: 'interval', t: setInterval(fn, ms) } satisfies NodeTimer }),
  clearTimer: (h) => {
    const n = h?.__timer as NodeTimer | undefined;
    if (!n) return;
    if (n.kind === 'interval') clearInterval(n.t);
    else clearTimeout(n.t);
  },
  defer: (fn) => {
    setImmediate(fn);
  },
};
