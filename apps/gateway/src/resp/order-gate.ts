/** What a command does to the store: reads, writes, both (DEL: reads then writes), or neither. */
export type Effect = 'read' | 'write' | 'both' | 'none';

interface Group {
  effect: Effect;
  /** Members not finished yet (started or waiting to start). */
  pending: number;
  /** Resolves when the group before this one has finished: members start then. */
  start: Promise<void>;
  /** `start` has resolved (or there was nothing to wait for): members start at once, in the caller's turn. */
  started: boolean;
  idleWaiters: (() => void)[];
}

/**
 * Makes one connection's pipelined commands take effect in the order they arrived, as Redis
 * clients expect (a GET pipelined behind a SET of the same key sees it; a SET behind a GET does
 * not change what the GET returns), while keeping concurrency where order cannot be observed:
 * consecutive reads run together, and so do consecutive writes (the write path proposes them in
 * submission order). A command of another effect waits for the whole group before it; a `both`
 * command is a group of its own. `none` commands (PING, INFO) are not gated.
 */
export class OrderGate {
  private current: Group | null = null;

  /**
   * Runs `fn` in its turn. A result with a `done` promise (a PartedReply) keeps its group open
   * until `done` resolves: the reply's later parts still read the store.
   */
  run<T>(effect: Effect, fn: () => Promise<T> | T): Promise<T> | T {
    if (effect === 'none') return fn();
    let g = this.current;
    if (!g || g.effect !== effect || effect === 'both') {
      const prev = g;
      const waitFor = prev && prev.pending > 0 ? prev : null;
      const group: Group = { effect, pending: 0, start: waitFor ? idle(waitFor) : Promise.resolve(), started: waitFor === null, idleWaiters: [] };
      // Registered before any member's reaction: members that join once it has run start at once,
      // and the ones queued before it run in the same microtask checkpoint, first.
      if (waitFor) void group.start.then(() => (group.started = true));
      g = group;
      this.current = g;
    }
    const group = g;
    group.pending++;
    const done = () => {
      if (--group.pending === 0) {
        const ws = group.idleWaiters;
        group.idleWaiters = [];
        for (const w of ws) w();
      }
    };
    if (!group.started) {
      const p = group.start.then(fn);
      p.then((v) => (hasDone(v) ? v.done.then(done, done) : done()), done);
      return p;
    }
    // Nothing before this group is left: run now (no extra turn; members start in arrival order either way).
    let v: Promise<T> | T;
    try {
      v = fn();
    } catch (e) {
      done();
      throw e;
    }
    if (v instanceof Promise) v.then((x) => (hasDone(x) ? x.done.then(done, done) : done()), done);
    else if (hasDone(v)) v.done.then(done, done);
    else done();
    return v;
  }
}

/** Resolves once every member of `g` has finished (members join only while it is the current group). */
function idle(g: Group): Promise<void> {
  return g.pending === 0 ? Promise.resolve() : new Promise((resolve) => g.idleWaiters.push(resolve));
}

function hasDone(v: unknown): v is { done: Promise<void> } {
  return typeof v === 'object' && v !== null && !Buffer.isBuffer(v) && (v as { done?: unknown }).done instanceof Promise;
}
