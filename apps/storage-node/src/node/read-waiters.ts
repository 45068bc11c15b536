import { realClock, type Clock, type TimerHandle } from '@cairn/world';

/**
 * Reads parked until the applied index reaches their index (read-your-writes: a gateway asks for
 * at least the index of the client's last acknowledged write). Bounded by `waitingMax`; each
 * waiter has its own deadline.
 */
export class ReadWaiters {
  private waiters: { minIndex: number; wake: (ok: boolean) => void; timer: TimerHandle }[] = [];

  constructor(
    private readonly waitingMax: number,
    private readonly waitMs: number,
    private readonly clock: Clock = realClock,
  ) {}

  size(): number {
    return this.waiters.length;
  }

  /** Resolves true once `notify(applied)` reports applied >= minIndex, false on timeout or when full. */
  wait(minIndex: number): Promise<boolean> {
    if (this.waiters.length >= this.waitingMax) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const w = {
        minIndex,
        wake: (ok: boolean) => {
          this.clock.clearTimer(w.timer);
          resolve(ok);
        },
        timer: this.clock.setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          resolve(false);
        }, this.waitMs),
      };
      this.waiters.push(w);
    });
  }

  notify(appliedIndex: number): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.minIndex <= appliedIndex) w.wake(true);
      else still.push(w);
    }
    this.waiters = still;
  }

  cancelAll(): void {
    for (const w of this.waiters) w.wake(false);
    this.waiters = [];
  }
}
