/**
 * The linearizability search shared by the compare-and-swap register (cas.ts) and the map model
 * (map.ts): Wing & Gong's backtracking (1993) with Lowe's just-in-time linearization and
 * memoisation of (linearized set, state) (G. Lowe, "Testing for linearizability", 2017), the loop
 * of Porcupine's `checkSingle` over a model given as a step function (Porcupine's `Model.Step`).
 *
 * Walk the events in time order; at a call, try to linearize it (its step is legal in the state
 * and the configuration is new); at a return whose call is not linearized, undo the latest choice.
 * Info operations never return (+Infinity): they may be linearized anywhere after their
 * invocation, or never; the history is linearizable once every ok operation is linearized.
 *
 * Two choices keep it tractable:
 * - An info operation is linearized only where it changes the state. An info operation has no
 *   observed output, so one that takes effect as a no-op (a txn whose compare fails, a cas on
 *   another value) can be dropped from any linearization; skipping it stops the search from
 *   exploring every subset of the indeterminate no-ops.
 * - The memo keys a configuration by two 32-bit Zobrist hashes of its linearized set plus the
 *   encoded state, not by the set itself (which is n bits per entry: 2.5 KB at 20,000 operations).
 *   A hash collision can only prune a configuration that was in fact new, so it can turn a pass
 *   into a reported violation (with probability about entries² / 2^65), never hide one.
 */

/** One operation as the search sees it: `completeMs` is +Infinity for an info operation. */
export interface SearchCall {
  ok: boolean;
  invokeMs: number;
  completeMs: number;
}

/** The sequential specification (Porcupine's Model): a pure step function and a canonical state encoding. */
export interface SearchModel<S> {
  /** The state after call `i` from `state`, or undefined when call `i` cannot take effect there (its observed output contradicts it). Must not modify `state`. */
  step(i: number, state: S): S | undefined;
  /** A string equal for equal states and different for different ones (the memo's state part). */
  encode(state: S): string;
}

/** Bounds of one search; exceeded → `unknown`, never a hang. */
export interface SearchBudget {
  stepsMax: number;
  memoBytesMax: number;
  /** Absolute deadline on `clock`. */
  deadlineMs: number;
  clock: () => number;
}

/**
 * `ok`: a linearization exists. `violation`: none does; `blocked` is the call whose return was
 * reached unlinearized at the deepest point of the search, `depth` the operations linearized
 * there and `state` the state they left. `unknown`: a budget ran out.
 */
export type SearchResult<S> =
  | { kind: 'ok'; steps: number }
  | { kind: 'violation'; blocked: number; depth: number; state: S; steps: number }
  | { kind: 'unknown'; reason: string; steps: number };

interface Event {
  /** Index into `calls`. */
  id: number;
  isCall: boolean;
  prev: Event | null;
  next: Event | null;
  /** The call's return event (calls only). */
  match: Event | null;
}

const BYTES_PER_MEMO_OVERHEAD = 96; // Set slot + string header, roughly
const DEADLINE_CHECK_EVERY = 1024;

/** splitmix32: deterministic Zobrist keys, so results and step counts do not depend on Math.random. */
export function zobrist(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    out[i] = (z ^ (z >>> 16)) >>> 0;
  }
  return out;
}

/** Searches a linearization of `calls` from `init` under `model` (see the file comment). */
export function searchLinearization<S>(calls: readonly SearchCall[], init: S, model: SearchModel<S>, budget: SearchBudget): SearchResult<S> {
  const head = eventList(calls);
  const lift = (call: Event) => {
    for (const e of [call, call.match!]) {
      e.prev!.next = e.next;
      if (e.next) e.next.prev = e.prev;
    }
  };
  const unlift = (call: Event) => {
    for (const e of [call.match!, call]) {
      e.prev!.next = e;
      if (e.next) e.next.prev = e;
    }
  };
  const z1 = zobrist(calls.length, 0x243f6a88);
  const z2 = zobrist(calls.length, 0x85a308d3);
  let h1 = 0;
  let h2 = 0;
  const memo = new Set<string>();
  let memoBytes = 0;
  const stack: { call: Event; state: S; encoded: string }[] = [];
  let okLeft = calls.filter((c) => c.ok).length;
  let state = init;
  let encoded = model.encode(init);
  let steps = 0;
  let deepest: { depth: number; blocked: number; state: S } = { depth: -1, blocked: -1, state: init };
  let e = head.next;
  while (okLeft > 0) {
    if (++steps > budget.stepsMax) return { kind: 'unknown', reason: `stepsMax ${budget.stepsMax} reached`, steps };
    if (steps % DEADLINE_CHECK_EVERY === 0 && budget.clock() > budget.deadlineMs) return { kind: 'unknown', reason: 'timeoutMs reached', steps };
    if (e === null) throw new Error('SearchInvariant: the event list ended with ok operations left');
    if (e.isCall) {
      const c = calls[e.id]!;
      const next = model.step(e.id, state);
      const nextEncoded = next === undefined ? '' : model.encode(next);
      if (next !== undefined && (c.ok || nextEncoded !== encoded)) {
        const memoKey = `${(h1 ^ z1[e.id]!) >>> 0}.${(h2 ^ z2[e.id]!) >>> 0}|${nextEncoded}`;
        if (!memo.has(memoKey)) {
          memo.add(memoKey);
          memoBytes += memoKey.length * 2 + BYTES_PER_MEMO_OVERHEAD;
          if (memoBytes > budget.memoBytesMax) return { kind: 'unknown', reason: `memoBytesMax ${budget.memoBytesMax} reached`, steps };
          stack.push({ call: e, state, encoded });
          h1 ^= z1[e.id]!;
          h2 ^= z2[e.id]!;
          state = next;
          encoded = nextEncoded;
          if (c.ok) okLeft--;
          lift(e);
          e = head.next;
          continue;
        }
      }
      e = e.next;
      continue;
    }
    // A return whose call is not linearized: no order of what is left works from here; undo the latest choice.
    if (stack.length > deepest.depth) deepest = { depth: stack.length, blocked: e.id, state };
    const top = stack.pop();
    if (!top) return { kind: 'violation', ...deepest, steps };
    if (calls[top.call.id]!.ok) okLeft++;
    h1 ^= z1[top.call.id]!;
    h2 ^= z2[top.call.id]!;
    state = top.state;
    encoded = top.encoded;
    unlift(top.call);
    e = top.call.next;
  }
  return { kind: 'ok', steps };
}

/** The doubly linked list of call and return events in time order (at equal instants calls first: equal instants are concurrent), behind a sentinel head. */
function eventList(calls: readonly SearchCall[]): Event {
  const events: Event[] = [];
  calls.forEach((_, id) => {
    const ret: Event = { id, isCall: false, prev: null, next: null, match: null };
    events.push({ id, isCall: true, prev: null, next: null, match: ret }, ret);
  });
  const at = (e: Event) => (e.isCall ? calls[e.id]!.invokeMs : calls[e.id]!.completeMs);
  events.sort((a, b) => at(a) - at(b) || (a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1));
  const head: Event = { id: -1, isCall: false, prev: null, next: null, match: null };
  let last = head;
  for (const e of events) {
    e.prev = last;
    last.next = e;
    last = e;
  }
  return head;
}
