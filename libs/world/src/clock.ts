/**
 * Time as a process sees it: the one place below a process shell that reads the clock or starts a
 * timer. Production passes `realClock` (Node's timers and `Date.now`); the simulator passes a
 * virtual clock driven by its seeded scheduler (`SimScheduler.clock`), so a run is replayable and
 * a test never waits on wall-clock time.
 */

import type { Clock, TimerHandle, TimerOptions } from '@cairn/log';

export type { Clock, TimerHandle, TimerOptions };

/** Resolves after `ms` milliseconds on `clock`. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, Math.max(0, ms)));
}

type NodeTimer = { kind: 'timeout' | 'interval'; t: NodeJS.Timeout };

function unrefIf(t: NodeJS.Timeout, options: TimerOptions | undefined): NodeJS.Timeout {
  if (options?.unref) t.unref();
  return t;
}

/** Node's timers and `Date.now`: what every process shell passes. */
export const realClock: Clock = {
  nowMs: () => Date.now(),
  monotonicMs: () => performance.now(),
  setTimeout: (fn, ms, options) => ({ __timer: { kind: 'timeout', t: unrefIf(setTimeout(fn, ms), options) } satisfies NodeTimer }),
  setInterval: (fn, ms, options) => ({ __timer: { kind: 'interval', t: unrefIf(setInterval(fn, ms), options) } satisfies NodeTimer }),
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
