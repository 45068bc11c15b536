import type { Clock, TimerHandle } from '../clock';

interface VirtualTimer {
  atMs: number;
  seq: number;
  fn: () => void;
  /** > 0: an interval of this period. */
  periodMs: number;
  cleared: boolean;
}

/**
 * A virtual `Clock` for unit tests of the log, the engine and what is built on them: time moves
 * only when a timer runs, never with the wall clock, so durations are exact and a wait never
 * waits. `advance(ms)` runs the timers due within `ms`, in due order. With `autoAdvance`, a timer
 * runs on its own (on the next turn of the event loop, the clock jumping to its due time), so a
 * paced merge runs at once; keep intervals off such a clock (they would run without end). `defer`
 * runs on the next turn of the event loop (Node's `setImmediate`) in both modes.
 */
export class VirtualClock implements Clock {
  private now: number;
  private timers: VirtualTimer[] = [];
  private seq = 0;
  private draining = false;

  constructor(
    startMs = 0,
    private readonly autoAdvance = false,
  ) {
    this.now = startMs;
  }

  nowMs(): number {
    return this.now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, Math.max(0, ms), 0);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    const periodMs = Math.max(1, ms);
    return this.add(fn, periodMs, periodMs);
  }

  clearTimer(handle: TimerHandle | undefined): void {
    const t = handle?.__timer as VirtualTimer | undefined;
    if (t) t.cleared = true;
  }

  defer(fn: () => void): void {
    setImmediate(fn);
  }

  /** Moves time forward by `ms`, running every timer due by then in due order (an interval as often as it falls due). */
  advance(ms: number): void {
    const until = this.now + ms;
    for (let t = this.next(until); t; t = this.next(until)) this.run(t);
    this.now = until;
  }

  /** Timers not yet run nor cleared. */
  pending(): number {
    return this.timers.filter((t) => !t.cleared).length;
  }

  private add(fn: () => void, delayMs: number, periodMs: number): TimerHandle {
    const t: VirtualTimer = { atMs: this.now + delayMs, seq: this.seq++, fn, periodMs, cleared: false };
    this.timers.push(t);
    if (this.autoAdvance && !this.draining) {
      this.draining = true;
      setImmediate(() => this.drainOne());
    }
    return { __timer: t };
  }

  private drainOne(): void {
    this.draining = false;
    const t = this.next(Infinity);
    if (!t) return;
    this.run(t);
    if (this.pending() > 0 && !this.draining) {
      this.draining = true;
      setImmediate(() => this.drainOne());
    }
  }

  /** The earliest live timer due by `untilMs` (removed from the list), or undefined. */
  private next(untilMs: number): VirtualTimer | undefined {
    this.timers = this.timers.filter((t) => !t.cleared);
    let best: VirtualTimer | undefined;
    for (const t of this.timers) if (t.atMs <= untilMs && (!best || t.atMs < best.atMs || (t.atMs === best.atMs && t.seq < best.seq))) best = t;
    if (best) this.timers.splice(this.timers.indexOf(best), 1);
    return best;
  }

  private run(t: VirtualTimer): void {
    this.now = Math.max(this.now, t.atMs);
    if (t.periodMs > 0) {
      t.atMs += t.periodMs;
      t.seq = this.seq++;
      this.timers.push(t);
    }
    t.fn();
  }
}
