/**
 * Linearizability of the history of ONE key, modelled as a register: state = value | null
 * (null = not found, the initial state); put v sets v, delete sets null, get must return the state.
 *
 * Two stages:
 * 1. `precheck`: sound necessary conditions, O(n log n + n·w) (w = writes of one value): a get of
 *    a value that no write could have produced, or a get that real-time-follows an operation which
 *    saw/wrote another value with no write of its own value able to take effect in between. These
 *    catch stale reads, lost writes and phantom reads without search and with a direct explanation.
 * 2. `search`: the Wing & Gong (1993) backtracking search with Lowe's "just-in-time" linearization
 *    and memoisation of (linearized set, state) (G. Lowe, "Testing for linearizability", 2017; the
 *    same algorithm as Porcupine's `checkSingle` and Knossos' `wgl`). It decides linearizability,
 *    bounded by a step, memory and time budget (then the answer is `unknown`). Four reductions,
 *    each argued where it is coded and cross-checked against brute force in property.spec.ts:
 *    reads the state satisfies are taken without branching; info writes are used only right
 *    before a read of their value, earliest-invoked first; a configuration is dominated by one
 *    with the same ok operations and fewer info writes; a configuration where a pending read can
 *    no longer be satisfied (its value is not the state and no write of it is left) is cut at once.
 */
import type { Operation } from './history';

/** Search budget for one key; exceeded → `unknown`, never a hang. */
export interface RegisterBudget {
  /** Search steps (one call tried or one backtrack) for this key. */
  stepsMax: number;
  /** Bytes of memo entries (linearized bitset + state) for this key. */
  memoBytesMax: number;
  /** Absolute deadline on `clock`. */
  deadlineMs: number;
  clock: () => number;
  precheck: boolean;
}

/**
 * A definite violation on one key. `message` explains it; `operations` is the window that shows it,
 * in invocation order: the read that cannot be linearized and the operations it conflicts with.
 */
export interface Violation {
  key: string;
  message: string;
  operations: Operation[];
}

export type RegisterResult =
  | { kind: 'ok'; steps: number }
  | { kind: 'violation'; violation: Violation; steps: number }
  | { kind: 'unknown'; reason: string; steps: number };

/** An operation prepared for the search: states interned as integers (0 = null). */
interface Call {
  op: Operation;
  write: boolean;
  /** put: its value; delete: 0; get: its output. */
  state: number;
  invokeMs: number;
  /** +Infinity for info operations: they stay pending forever. */
  completeMs: number;
  ok: boolean;
}

const NIL = -1;
const BYTES_PER_MEMO_OVERHEAD = 96; // Map slot + array slot + object header, roughly
const DEADLINE_CHECK_EVERY = 1024;

/** Checks the history of one key; `ops` are all operations on `key` (fail and info gets included: they are dropped here). */
export function checkRegister(key: string, ops: readonly Operation[], budget: RegisterBudget): RegisterResult {
  const ids = new Map<string, number>();
  const intern = (v: string | null | undefined): number => {
    if (v === null || v === undefined) return 0;
    let id = ids.get(v);
    if (id === undefined) ids.set(v, (id = ids.size + 1));
    return id;
  };
  const calls: Call[] = [];
  for (const op of ops) {
    if (op.key !== key) throw new Error(`KeyPartitionInvariant: operation on ${JSON.stringify(op.key)} in the history of ${JSON.stringify(key)}`);
    if (op.outcome === 'fail') continue; // definitely did not happen
    if (op.outcome === 'info' && op.kind === 'get') continue; // unknown output: constrains nothing
    const ok = op.outcome === 'ok';
    calls.push({
      op,
      write: op.kind !== 'get',
      state: op.kind === 'delete' ? 0 : intern(op.value),
      invokeMs: op.invokeMs,
      completeMs: ok ? op.completeMs! : Infinity,
      ok,
    });
  }
  const names = ['null', ...ids.keys()];
  if (budget.precheck) {
    const violation = precheck(key, calls, names);
    if (violation) return { kind: 'violation', violation, steps: 0 };
  }
  return search(key, calls, names, budget);
}

// ---------------------------------------------------------------------------------------------
// Explanations

const fmtMs = (t: number): string => (Number.isFinite(t) ? String(Math.round(t * 1000) / 1000) : '?');
const quote = (names: string[], state: number): string => (state === 0 ? 'not found' : `'${names[state]}'`);

function describe(c: Call, names: string[]): string {
  const at = `at [${fmtMs(c.invokeMs)}, ${fmtMs(c.completeMs)}]${c.ok ? '' : ' (info)'}`;
  if (c.op.kind === 'get') return `get ${c.op.key} → ${quote(names, c.state)} ${at}`;
  if (c.op.kind === 'delete') return `delete ${c.op.key} ${at}`;
  return `put ${c.op.key} ${quote(names, c.state)} ${at}`;
}

const writesOf = (key: string, names: string[], state: number): string => (state === 0 ? `delete of ${key}` : `put of ${quote(names, state)}`);

function window(calls: Iterable<Call>): Operation[] {
  return [...new Set(calls)].sort((a, b) => a.invokeMs - b.invokeMs || a.completeMs - b.completeMs).map((c) => c.op);
}

/** Writes of `state` that could take effect inside [afterMs, beforeMs] (equal instants are concurrent). */
function writersBetween(writers: readonly Call[] | undefined, afterMs: number, beforeMs: number): Call | undefined {
  return writers?.find((w) => w.completeMs >= afterMs && w.invokeMs <= beforeMs);
}

/**
 * Sound necessary conditions for every ok get X of state v:
 * - some write of v (ok or info) must be invoked no later than X completes (unless v is null);
 * - for every ok operation O that completed before X was invoked and saw or wrote a state u ≠ v,
 *   a write of v must be able to take effect after O's linearization point (≥ O.invoke) and
 *   before X's (≤ X.complete). Checking the O with the latest invocation suffices.
 * Returns the violation of the earliest-completing get that breaks one, else undefined.
 */
function precheck(key: string, calls: readonly Call[], names: string[]): Violation | undefined {
  const writers = new Map<number, Call[]>();
  for (const c of calls) {
    if (!c.write) continue;
    const list = writers.get(c.state);
    if (list) list.push(c);
    else writers.set(c.state, [c]);
  }
  // Witnesses: ok operations with a known state at their point, by completion time. For each
  // prefix keep the latest-invoked witness and the latest-invoked one of a different state.
  const witnesses = calls.filter((c) => c.ok).sort((a, b) => a.completeMs - b.completeMs);
  const best1: (Call | undefined)[] = [];
  const best2: (Call | undefined)[] = [];
  let b1: Call | undefined;
  let b2: Call | undefined;
  for (const w of witnesses) {
    if (!b1 || w.invokeMs > b1.invokeMs) {
      if (b1 && b1.state !== w.state) b2 = b1;
      else if (b2 && b2.state === w.state) b2 = undefined;
      b1 = w;
    } else if (w.state !== b1.state && (!b2 || w.invokeMs > b2.invokeMs)) {
      b2 = w;
    }
    best1.push(b1);
    best2.push(b2);
  }
  const gets = calls.filter((c) => c.ok && !c.write).sort((a, b) => a.completeMs - b.completeMs);
  for (const x of gets) {
    const xs = writers.get(x.state);
    if (x.state !== 0 && !writersBetween(xs, -Infinity, x.completeMs)) {
      const reason = xs
        ? `${quote(names, x.state)} is first written by ${describe(xs[0]!, names)}, after the get completed`
        : `${quote(names, x.state)} was never written to ${key}`;
      return { key, message: `${describe(x, names)} but no linearization: ${reason}`, operations: window([x, ...(xs ? [xs[0]!] : [])]) };
    }
    // Witnesses that completed strictly before x was invoked: a prefix of `witnesses`.
    let lo = 0;
    let hi = witnesses.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (witnesses[mid]!.completeMs < x.invokeMs) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) continue;
    const o = best1[lo - 1]!.state !== x.state ? best1[lo - 1] : best2[lo - 1];
    if (!o || writersBetween(xs, o.invokeMs, x.completeMs)) continue;
    const earlier = xs?.filter((w) => w.completeMs < o.invokeMs).sort((a, b) => b.completeMs - a.completeMs)[0];
    const tail = earlier
      ? ` (the last one, ${describe(earlier, names)}, completed before that ${o.write ? 'write' : 'read'} was invoked)`
      : x.state === 0
        ? ` (${key} is never deleted)`
        : '';
    return {
      key,
      message:
        `${describe(x, names)} but no linearization: ${describe(o, names)} completed before it was invoked, ` +
        `and no ${writesOf(key, names, x.state)} can take effect after that ${o.write ? 'write' : 'read'}${tail}`,
      operations: window([o, x, ...(earlier ? [earlier] : [])]),
    };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Wing & Gong / Lowe search

/** splitmix32: deterministic Zobrist keys, so results and step counts do not depend on Math.random. */
function zobrist(n: number, seed: number): Uint32Array {
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

interface MemoEntry {
  bits: Uint32Array;
  state: number;
}

function search(key: string, calls: Call[], names: string[], budget: RegisterBudget): RegisterResult {
  const n = calls.length;
  const okCount = calls.reduce((k, c) => k + (c.ok ? 1 : 0), 0);
  // Events: a call per operation, a return per ok operation (info operations never return, so they
  // never force the search to backtrack). Calls sort before returns at equal times: concurrent.
  const events: { t: number; call: boolean; i: number }[] = [];
  calls.forEach((c, i) => {
    events.push({ t: c.invokeMs, call: true, i });
    if (c.ok) events.push({ t: c.completeMs, call: false, i });
  });
  events.sort((a, b) => a.t - b.t || Number(b.call) - Number(a.call) || a.i - b.i);
  // Doubly linked list over event slots 1..E, slot 0 = head sentinel.
  const slots = events.length + 1;
  const next = new Int32Array(slots);
  const prev = new Int32Array(slots);
  const slotOp = new Int32Array(slots);
  const slotIsCall = new Uint8Array(slots);
  const callSlot = new Int32Array(n);
  const returnSlot = new Int32Array(n).fill(NIL);
  for (let s = 0; s < slots; s++) {
    next[s] = s + 1 < slots ? s + 1 : NIL;
    prev[s] = s - 1;
  }
  events.forEach((e, k) => {
    const s = k + 1;
    slotOp[s] = e.i;
    slotIsCall[s] = e.call ? 1 : 0;
    if (e.call) callSlot[e.i] = s;
    else returnSlot[e.i] = s;
  });
  const unlink = (s: number): void => {
    next[prev[s]!] = next[s]!;
    if (next[s] !== NIL) prev[next[s]!] = prev[s]!;
  };
  const relink = (s: number): void => {
    next[prev[s]!] = s;
    if (next[s] !== NIL) prev[next[s]!] = s;
  };
  // Lift an operation out of the list (its call and return), and put it back in reverse order.
  const lift = (i: number): void => {
    unlink(callSlot[i]!);
    if (returnSlot[i] !== NIL) unlink(returnSlot[i]!);
  };
  const unlift = (i: number): void => {
    if (returnSlot[i] !== NIL) relink(returnSlot[i]!);
    relink(callSlot[i]!);
  };

  const words = (n + 31) >>> 5;
  const bits = new Uint32Array(words);
  const z1 = zobrist(n, 0x243f6a88);
  const z2 = zobrist(n, 0x85a308d3);
  const okMask = new Uint32Array(words);
  calls.forEach((c, i) => {
    if (c.ok) okMask[i >>> 5] |= 1 << (i & 31);
    else z1[i] = z2[i] = 0; // the hash covers the ok operations only: see `remember`
  });
  let h1 = 0;
  let h2 = 0;
  const memo = new Map<number, MemoEntry[]>();
  const memoEntryBytes = words * 4 + BYTES_PER_MEMO_OVERHEAD;
  let memoBytes = 0;
  /**
   * Adds (bits, state) to the memo; false if it is dominated by a configuration already there:
   * the same ok operations and state, with a subset of the info writes. Every completion of the
   * new one is a completion of that one (an info write need never take effect), so if that one is
   * a dead end, or is being explored further up the stack, this one adds nothing (Lowe's memo,
   * extended to indeterminate operations).
   */
  const remember = (state: number): boolean => {
    const slot = ((h1 ^ Math.imul(state + 1, 0x9e3779b1)) >>> 0) * 0x200000 + ((h2 ^ state) & 0x1fffff);
    let list = memo.get(slot);
    if (list) {
      for (const e of list) {
        if (e.state !== state) continue;
        let dominated = true;
        for (let w = 0; w < words && dominated; w++) {
          const old = e.bits[w];
          const cur = bits[w];
          dominated = (old & ~cur) === 0 && ((old ^ cur) & okMask[w]) === 0;
        }
        if (dominated) return false;
      }
    } else {
      memo.set(slot, (list = []));
    }
    list.push({ bits: bits.slice(), state });
    memoBytes += memoEntryBytes;
    return true;
  };
  const isSet = (i: number): boolean => ((bits[i >>> 5] >>> (i & 31)) & 1) === 1;
  const flip = (i: number): void => {
    bits[i >>> 5] ^= 1 << (i & 31);
    h1 ^= z1[i];
    h2 ^= z2[i];
  };

  // Info writes are never linearized on their own, only as the immediate predecessor of a get
  // that reads their value: any linearization can be rewritten so (an info write followed by a
  // write, or by nothing, can be dropped: it may never have taken effect). And info writes of one
  // value can be used in invocation order (swapping two keeps every real-time constraint: an info
  // write never returns), so the candidate for a get is the earliest unused one. This keeps the
  // search from trying every subset of the indeterminate writes.
  const infoWriters = new Map<number, { writers: number[]; used: number }>();
  calls.forEach((c, i) => {
    if (c.ok || !c.write) return;
    const entry = infoWriters.get(c.state);
    if (entry) entry.writers.push(i);
    else infoWriters.set(c.state, { writers: [i], used: 0 });
  });
  for (const entry of infoWriters.values()) entry.writers.sort((a, b) => callSlot[a] - callSlot[b]);
  // Starvation: a pending read of v with no pending write of v left (ok, or unused info) can be
  // satisfied only if the state is v now and stays v, so a configuration where two values starve,
  // or one other than the state does, is a dead end. Detecting it at once, instead of at the read's
  // return, stops the search from trying every subset of the writes concurrent with the read.
  const pendingReads = new Int32Array(names.length);
  const pendingWrites = new Int32Array(names.length);
  const readsOf: number[][] = names.map(() => []);
  calls.forEach((c, i) => {
    if (c.write) pendingWrites[c.state]++;
    else {
      pendingReads[c.state]++;
      readsOf[c.state].push(i);
    }
  });
  const starved = new Set<number>();
  names.forEach((_, v) => {
    if (pendingReads[v] > 0 && pendingWrites[v] === 0) starved.add(v);
  });
  const count = (c: Call, delta: number): void => {
    if (c.write) pendingWrites[c.state] += delta;
    else pendingReads[c.state] += delta;
    if (pendingReads[c.state] > 0 && pendingWrites[c.state] === 0) starved.add(c.state);
    else starved.delete(c.state);
  };
  const dead = (): boolean => starved.size > 1 || (starved.size === 1 && !starved.has(state));

  /**
   * A choice on the stack: op `i`, preceded by info write `w` (NIL if none). `forced`: a read the
   * state already satisfied, linearized without branching: a read changes no state and, its call
   * being before every pending return, can move to the front of any completion (a partial-order
   * reduction), so if the configuration with it fails, the one without it fails too.
   */
  const stack: { i: number; w: number; prevState: number; forced: boolean }[] = [];
  const choose = (i: number, w: number, after: number, forced: boolean): void => {
    stack.push({ i, w, prevState: state, forced });
    state = after;
    linearizedOk++;
    if (w !== NIL) {
      infoWriters.get(calls[w].state)!.used++;
      count(calls[w], -1);
      lift(w);
    }
    count(calls[i], -1);
    lift(i);
  };
  let state = 0;
  let linearizedOk = 0;
  let steps = 0;
  // The deepest point at which the search got stuck, for the explanation.
  let bestDepth = -1;
  let bestBlocking = NIL;
  let bestBits = new Uint32Array(0);
  let bestState = 0;
  let bestContext: Call[] = [];

  let s = next[0];
  let eager = true; // first pass after each choice: take every read the state satisfies
  let stuck = false;
  while (linearizedOk < okCount) {
    steps++;
    if (steps > budget.stepsMax) return { kind: 'unknown', reason: `search budget of ${budget.stepsMax} steps exhausted (stepsMax)`, steps };
    if (steps % DEADLINE_CHECK_EVERY === 0 && budget.clock() > budget.deadlineMs) {
      return { kind: 'unknown', reason: `timed out after ${steps} search steps (timeoutMs)`, steps };
    }
    if (memoBytes > budget.memoBytesMax) return { kind: 'unknown', reason: `memo exceeded ${budget.memoBytesMax} bytes (memoBytesMax)`, steps };
    const atCall = !stuck && s !== NIL && slotIsCall[s] === 1;
    let blocking = NIL;
    if (stuck) {
      // Starved: blame the earliest pending read of a starved value other than the state.
      for (const v of starved) {
        if (v === state) continue; // reads of the state itself can still be taken now
        const r = readsOf[v].find((g) => !isSet(g));
        if (r !== undefined && (blocking === NIL || calls[r].completeMs < calls[blocking].completeMs)) blocking = r;
      }
    } else if (atCall && eager) {
      const i = slotOp[s];
      const c = calls[i];
      if (!(c.ok && !c.write && c.state === state)) {
        s = next[s];
        continue;
      }
      flip(i);
      if (remember(state)) {
        const before = prev[s]; // still linked: the scan only passed calls
        choose(i, NIL, state, true);
        s = next[before];
        continue; // a read cannot starve anything
      }
      flip(i); // a known configuration: dead end, backtrack below
    } else if (atCall) {
      const i = slotOp[s];
      const c = calls[i];
      let w = NIL;
      if (c.ok && !c.write && c.state !== state) {
        const entry = infoWriters.get(c.state);
        w = entry && entry.used < entry.writers.length ? entry.writers[entry.used] : NIL;
        // w must be invoked before the first pending return (the list before s holds only calls).
        let firstReturn = s;
        while (w !== NIL && firstReturn !== NIL && slotIsCall[firstReturn]) firstReturn = next[firstReturn];
        if (w !== NIL && firstReturn !== NIL && callSlot[w] > firstReturn) w = NIL;
      }
      if (c.ok && (c.write || c.state === state || w !== NIL)) {
        if (w !== NIL) flip(w);
        flip(i);
        if (remember(c.state)) {
          choose(i, w, c.state, false); // a write sets its value; a read keeps (or its info write sets) it
          s = next[0]; // just-in-time: restart from the earliest pending call
          eager = true;
          continue;
        }
        flip(i);
        if (w !== NIL) flip(w);
      }
      s = next[s];
      continue;
    } else if (eager) {
      // The eager pass reached the first return: unless starved, branch on the writes.
      s = next[0];
      eager = false;
      stuck = dead();
      continue;
    } else if (s !== NIL) {
      // A return: the operation returning here could not be linearized before its response given
      // the choices on the stack.
      blocking = slotOp[s];
    }
    if (blocking !== NIL && stack.length > bestDepth) {
      // Remember the deepest dead end for the explanation, with the write that set the state and
      // the latest choice after it if it is a read.
      bestDepth = stack.length;
      bestBlocking = blocking;
      bestBits = bits.slice();
      bestState = state;
      bestContext = [];
      for (let d = stack.length - 1; d >= 0; d--) {
        const f = stack[d];
        if (f.w !== NIL) bestContext.push(calls[f.w]);
        if (calls[f.i].write || f.w !== NIL || d === stack.length - 1) bestContext.push(calls[f.i]);
        if (calls[f.i].write || f.w !== NIL) break;
      }
    }
    // Backtrack: undo choices up to the latest one that had alternatives, then try the next call.
    stuck = false;
    for (;;) {
      const top = stack.pop();
      if (!top) return { kind: 'violation', violation: explainStuck(key, calls, names, bestBlocking, bestBits, bestState, bestDepth, bestContext), steps };
      state = top.prevState;
      linearizedOk--;
      unlift(top.i);
      flip(top.i);
      count(calls[top.i], +1);
      if (top.w !== NIL) {
        unlift(top.w);
        flip(top.w);
        count(calls[top.w], +1);
        infoWriters.get(calls[top.w].state)!.used--;
      }
      if (!top.forced) {
        s = next[callSlot[top.i]];
        eager = false;
        break;
      }
    }
  }
  return { kind: 'ok', steps };
}

function explainStuck(
  key: string,
  calls: readonly Call[],
  names: string[],
  blocking: number,
  linearized: Uint32Array,
  state: number,
  depth: number,
  context: Call[],
): Violation {
  if (blocking === NIL) throw new Error('SearchInvariant: the search failed without reaching a return');
  const x = calls[blocking];
  const isLinearized = (i: number): boolean => ((linearized[i >>> 5] >>> (i & 31)) & 1) === 1;
  // Operations still unlinearized at the deepest point and concurrent with the blocked one: the
  // candidates no order of which explains it. Info writes count only if they write what x reads.
  const pending = calls.filter(
    (c, i) => i !== blocking && !isLinearized(i) && c.invokeMs <= x.completeMs && (c.ok || (!x.write && c.write && c.state === x.state)),
  );
  const lastWrite = context.find((c) => c.write);
  const message =
    `${describe(x, names)} but no linearization: no order of the ${pending.length} operations concurrent with it explains it ` +
    `(the longest linearizable prefix, ${depth} operations, leaves ${key} = ${quote(names, state)}` +
    `${lastWrite ? `, last written by ${describe(lastWrite, names)}` : ''})`;
  return { key, message, operations: window([...context, ...pending, x]) };
}
