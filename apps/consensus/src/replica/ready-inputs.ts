/**
 * Requests waiting for the replica's Ready loop (etcd raft's Ready cycle): those that arrive while
 * a Ready is being persisted are handed to the state machine together, before the next Ready.
 * `push` queues one and wakes the loop; the loop's `drain` hands each to `handle` in arrival
 * order; `takeAll` empties the queue (shutdown, leadership lost). The owner bounds what it admits.
 */
export class ReadyInputs<T> {
  private items: T[] = [];

  constructor(private readonly kick: () => void) {}

  push(item: T): void {
    this.items.push(item);
    this.kick();
  }

  /** Inputs are waiting for the Ready loop. */
  hasQueued(): boolean {
    return this.items.length > 0;
  }

  /** Hands every queued input to `handle`, oldest first; inputs pushed meanwhile wait for the next drain. */
  drain(handle: (item: T) => void): void {
    for (const item of this.takeAll()) handle(item);
  }

  /** Empties the queue; @returns what was in it, oldest first. */
  takeAll(): T[] {
    const items = this.items;
    this.items = [];
    return items;
  }
}
