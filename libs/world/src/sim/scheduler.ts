import type { Clock, TimerHandle } from '../clock';
import { seededRandom, type Random } from '../random';

interface SimEvent {
  atMs: number;
  seq: number;
  fn: () => void;
  /** The process incarnation the event belongs to; its death cancels the event. Null: the network's own. */
  owner: Incarnation | null;
  cancelled: boolean;
}

/** Virtual time at which every simulation starts, ms (any origin works; not 0, which some code reads as "unset"). */
export const SIM_EPOCH_MS = 1_000_000;

/**
 * One run of a simulated process (FoundationDB's "process", TigerBeetle's "replica"): its clock,
 * timers and network handles. `kill()` is a crash: every timer it set and every subscription it
 * made vanish at once and its pending requests never settle; a restart is a new incarnation.
 */
export class Incarnation {
  alive = true;
  readonly clock: Clock;
  constructor(
    readonly scheduler: SimScheduler,
    readonly host: string,
  ) {
    this.clock = new IncarnationClock(scheduler, this);
  }

  kill(): void {
    this.alive = false;
  }
}

class IncarnationClock implements Clock {
  constructor(
    private readonly s: SimScheduler,
    private readonly owner: Incarnation,
  ) {}
  nowMs(): number {
    return this.s.nowMs;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    return { __timer: this.s.schedule(this.s.nowMs + Math.max(0, ms), fn, this.owner) };
  }
  setInterval(fn: () => void, ms: number): TimerHandle {
    const period = Math.max(1, ms);
    const handle = { __timer: null as SimEvent | null };
    const fire = (): void => {
      handle.__timer = this.s.schedule(this.s.nowMs + period, fire, this.owner);
      fn();
    };
    handle.__timer = this.s.schedule(this.s.nowMs + period, fire, this.owner);
    return handle;
  }
  clearTimer(h: TimerHandle | undefined): void {
    const ev = h?.__timer as SimEvent | null | undefined;
    if (ev) ev.cancelled = true;
  }
  defer(fn: () => void): void {
    this.s.schedule(this.s.nowMs, fn, this.owner);
  }
}

/**
 * The simulation's single source of time and randomness: a priority queue of events ordered by
 * (virtual time, insertion order). `step()` runs the earliest event and moves virtual time to it;
 * nothing else advances time, so a seed replays a run exactly as long as every component reaches
 * time and randomness only through `Incarnation.clock` and `random`.
 */
export class SimScheduler {
  nowMs = SIM_EPOCH_MS;
  readonly random: Random;
  /** Events run so far. */
  steps = 0;
  private heap: SimEvent[] = [];
  private seq = 0;

  constructor(readonly seed: number) {
    this.random = seededRandom(seed);
  }

  /** A new incarnation of process `host` (a start or a restart). */
  incarnation(host: string): Incarnation {
    return new Incarnation(this, host);
  }

  /** Queues `fn` at virtual time `atMs` (not before now). @returns the event (set `cancelled` to drop it). */
  schedule(atMs: number, fn: () => void, owner: Incarnation | null = null): SimEvent {
    const ev: SimEvent = { atMs: Math.max(atMs, this.nowMs), seq: this.seq++, fn, owner, cancelled: false };
    this.push(ev);
    return ev;
  }

  /** Virtual time of the next live event, or Infinity. */
  nextAtMs(): number {
    this.dropDead();
    return this.heap.length ? this.heap[0].atMs : Infinity;
  }

  /** Runs the next live event (exceptions propagate: a callback that throws fails the simulation). @returns false when none is left. */
  step(): boolean {
    this.dropDead();
    const ev = this.pop();
    if (!ev) return false;
    this.nowMs = ev.atMs;
    this.steps++;
    ev.fn();
    return true;
  }

  /** Events queued (live or not yet swept). */
  size(): number {
    return this.heap.length;
  }

  private dropDead(): void {
    while (this.heap.length && (this.heap[0].cancelled || (this.heap[0].owner && !this.heap[0].owner.alive))) this.pop();
  }

  private less(a: SimEvent, b: SimEvent): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
  }

  private push(ev: SimEvent): void {
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  private pop(): SimEvent | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l], h[m])) m = l;
        if (r < h.length && this.less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}
