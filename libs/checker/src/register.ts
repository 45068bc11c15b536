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
import { zobrist } from './search';

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

interface MemoEntry {
  bits: Uint32Array;
  state: number;
}

function search(key: string, calls: Call[], names: string[], budget: RegisterBudget): RegisterResult {
  return new WglSearch(key, calls, names, budget).run();
}

/** Returned by a search step that moved on without reaching a dead end. */
const CONTINUE = -2;

/**
 * A choice on the stack: op `i`, preceded by info write `w` (NIL if none). `forced`: a read the
 * state already satisfied, linearized without branching: a read changes no state and, its call
 * being before every pending return, can move to the front of any completion (a partial-order
 * reduction), so if the configuration with it fails, the one without it fails too.
 */
interface Choice {
  i: number;
  w: number;
  prevState: number;
  forced: boolean;
}

/** One run of the search on one key (the state of `search`, with each part of it a method). */
class WglSearch {
  private readonly okCount: number;
  // Doubly linked list over event slots 1..E, slot 0 = head sentinel.
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly slotOp: Int32Array;
  private readonly slotIsCall: Uint8Array;
  private readonly callSlot: Int32Array;
  private readonly returnSlot: Int32Array;
  // The linearized set as a bitset, with two Zobrist hashes of its ok operations.
  private readonly words: number;
  private readonly bits: Uint32Array;
  private readonly z1: Uint32Array;
  private readonly z2: Uint32Array;
  private readonly okMask: Uint32Array;
  private h1 = 0;
  private h2 = 0;
  private readonly memo = new Map<number, MemoEntry[]>();
  private readonly memoEntryBytes: number;
  private memoBytes = 0;
  private readonly infoWriters = new Map<number, { writers: number[]; used: number }>();
  private readonly pendingReads: Int32Array;
  private readonly pendingWrites: Int32Array;
  private readonly readsOf: number[][];
  private readonly starved = new Set<number>();
  private readonly stack: Choice[] = [];
  private state = 0;
  private linearizedOk = 0;
  private steps = 0;
  // The deepest point at which the search got stuck, for the explanation.
  private bestDepth = -1;
  private bestBlocking = NIL;
  private bestBits = new Uint32Array(0);
  private bestState = 0;
  private bestContext: Call[] = [];
  // The scan: the current slot; `eager`: first pass after each choice, taking every read the
  // state satisfies; `stuck`: the configuration is starved (see `dead`).
  private s: number;
  private eager = true;
  private stuck = false;

  constructor(
    private readonly key: string,
    private readonly calls: Call[],
    private readonly names: string[],
    private readonly budget: RegisterBudget,
  ) {
    const n = calls.length;
    this.okCount = calls.reduce((k, c) => k + (c.ok ? 1 : 0), 0);
    const slots = this.countEvents() + 1;
    this.next = new Int32Array(slots);
    this.prev = new Int32Array(slots);
    this.slotOp = new Int32Array(slots);
    this.slotIsCall = new Uint8Array(slots);
    this.callSlot = new Int32Array(n);
    this.returnSlot = new Int32Array(n).fill(NIL);
    this.linkEvents();
    this.words = (n + 31) >>> 5;
    this.bits = new Uint32Array(this.words);
    this.z1 = zobrist(n, 0x243f6a88);
    this.z2 = zobrist(n, 0x85a308d3);
    this.okMask = new Uint32Array(this.words);
    calls.forEach((c, i) => {
      if (c.ok) this.okMask[i >>> 5] |= 1 << (i & 31);
      else this.z1[i] = this.z2[i] = 0; // the hash covers the ok operations only: see `remember`
    });
    this.memoEntryBytes = this.words * 4 + BYTES_PER_MEMO_OVERHEAD;
    this.indexInfoWriters();
    this.pendingReads = new Int32Array(names.length);
    this.pendingWrites = new Int32Array(names.length);
    this.readsOf = names.map(() => []);
    this.indexStarvation();
    this.s = this.next[0];
  }

  private countEvents(): number {
    return this.calls.length + this.calls.reduce((k, c) => k + (c.ok ? 1 : 0), 0);
  }

  /**
   * Events: a call per operation, a return per ok operation (info operations never return, so they
   * never force the search to backtrack). Calls sort before returns at equal times: concurrent.
   */
  private linkEvents(): void {
    const { next, prev, slotOp, slotIsCall, callSlot, returnSlot } = this;
    const events: { t: number; call: boolean; i: number }[] = [];
    this.calls.forEach((c, i) => {
      events.push({ t: c.invokeMs, call: true, i });
      if (c.ok) events.push({ t: c.completeMs, call: false, i });
    });
    events.sort((a, b) => a.t - b.t || Number(b.call) - Number(a.call) || a.i - b.i);
    const slots = events.length + 1;
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
  }

  /**
   * Info writes are never linearized on their own, only as the immediate predecessor of a get
   * that reads their value: any linearization can be rewritten so (an info write followed by a
   * write, or by nothing, can be dropped: it may never have taken effect). And info writes of one
   * value can be used in invocation order (swapping two keeps every real-time constraint: an info
   * write never returns), so the candidate for a get is the earliest unused one. This keeps the
   * search from trying every subset of the indeterminate writes.
   */
  private indexInfoWriters(): void {
    this.calls.forEach((c, i) => {
      if (c.ok || !c.write) return;
      const entry = this.infoWriters.get(c.state);
      if (entry) entry.writers.push(i);
      else this.infoWriters.set(c.state, { writers: [i], used: 0 });
    });
    for (const entry of this.infoWriters.values()) entry.writers.sort((a, b) => this.callSlot[a] - this.callSlot[b]);
  }

  /**
   * Starvation: a pending read of v with no pending write of v left (ok, or unused info) can be
   * satisfied only if the state is v now and stays v, so a configuration where two values starve,
   * or one other than the state does, is a dead end. Detecting it at once, instead of at the read's
   * return, stops the search from trying every subset of the writes concurrent with the read.
   */
  private indexStarvation(): void {
    this.calls.forEach((c, i) => {
      if (c.write) this.pendingWrites[c.state]++;
      else {
        this.pendingReads[c.state]++;
        this.readsOf[c.state].push(i);
      }
    });
    this.names.forEach((_, v) => {
      if (this.pendingReads[v] > 0 && this.pendingWrites[v] === 0) this.starved.add(v);
    });
  }

  private count(c: Call, delta: number): void {
    if (c.write) this.pendingWrites[c.state] += delta;
    else this.pendingReads[c.state] += delta;
    if (this.pendingReads[c.state] > 0 && this.pendingWrites[c.state] === 0) this.starved.add(c.state);
    else this.starved.delete(c.state);
  }

  private dead(): boolean {
    return this.starved.size > 1 || (this.starved.size === 1 && !this.starved.has(this.state));
  }

  private unlink(s: number): void {
    const { next, prev } = this;
    next[prev[s]!] = next[s]!;
    if (next[s] !== NIL) prev[next[s]!] = prev[s]!;
  }

  private relink(s: number): void {
    const { next, prev } = this;
    next[prev[s]!] = s;
    if (next[s] !== NIL) prev[next[s]!] = s;
  }

  /** Lifts an operation out of the list (its call and return); `unlift` puts it back in reverse order. */
  private lift(i: number): void {
    this.unlink(this.callSlot[i]!);
    if (this.returnSlot[i] !== NIL) this.unlink(this.returnSlot[i]!);
  }

  private unlift(i: number): void {
    if (this.returnSlot[i] !== NIL) this.relink(this.returnSlot[i]!);
    this.relink(this.callSlot[i]!);
  }

  /**
   * Adds (bits, state) to the memo; false if it is dominated by a configuration already there:
   * the same ok operations and state, with a subset of the info writes. Every completion of the
   * new one is a completion of that one (an info write need never take effect), so if that one is
   * a dead end, or is being explored further up the stack, this one adds nothing (Lowe's memo,
   * extended to indeterminate operations).
   */
  private remember(state: number): boolean {
    const { bits, okMask, words } = this;
    const slot = ((this.h1 ^ Math.imul(state + 1, 0x9e3779b1)) >>> 0) * 0x200000 + ((this.h2 ^ state) & 0x1fffff);
    let list = this.memo.get(slot);
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
      this.memo.set(slot, (list = []));
    }
    list.push({ bits: bits.slice(), state });
    this.memoBytes += this.memoEntryBytes;
    return true;
  }

  private isSet(i: number): boolean {
    return ((this.bits[i >>> 5] >>> (i & 31)) & 1) === 1;
  }

  private flip(i: number): void {
    this.bits[i >>> 5] ^= 1 << (i & 31);
    this.h1 ^= this.z1[i];
    this.h2 ^= this.z2[i];
  }

  private choose(i: number, w: number, after: number, forced: boolean): void {
    this.stack.push({ i, w, prevState: this.state, forced });
    this.state = after;
    this.linearizedOk++;
    if (w !== NIL) {
      this.infoWriters.get(this.calls[w].state)!.used++;
      this.count(this.calls[w], -1);
      this.lift(w);
    }
    this.count(this.calls[i], -1);
    this.lift(i);
  }

  run(): RegisterResult {
    while (this.linearizedOk < this.okCount) {
      this.steps++;
      const over = this.overBudget();
      if (over) return { kind: 'unknown', reason: over, steps: this.steps };
      const blocking = this.step();
      if (blocking === CONTINUE) continue;
      if (blocking !== NIL && this.stack.length > this.bestDepth) this.recordDeadEnd(blocking);
      if (!this.backtrack()) {
        const violation = explainStuck(this.key, this.calls, this.names, this.bestBlocking, this.bestBits, this.bestState, this.bestDepth, this.bestContext);
        return { kind: 'violation', violation, steps: this.steps };
      }
    }
    return { kind: 'ok', steps: this.steps };
  }

  /** The reason the budget is exhausted, or null. */
  private overBudget(): string | null {
    const { steps, budget } = this;
    if (steps > budget.stepsMax) return `search budget of ${budget.stepsMax} steps exhausted (stepsMax)`;
    if (steps % DEADLINE_CHECK_EVERY === 0 && budget.clock() > budget.deadlineMs) return `timed out after ${steps} search steps (timeoutMs)`;
    if (this.memoBytes > budget.memoBytesMax) return `memo exceeded ${budget.memoBytesMax} bytes (memoBytesMax)`;
    return null;
  }

  /** One step of the scan: CONTINUE, or a dead end (the op blocking there, or NIL) to backtrack from. */
  private step(): number {
    const { s } = this;
    const atCall = !this.stuck && s !== NIL && this.slotIsCall[s] === 1;
    if (this.stuck) return this.starvedBlocker();
    if (atCall && this.eager) return this.takeSatisfiedRead() ? CONTINUE : NIL;
    if (atCall) {
      this.tryCall();
      return CONTINUE;
    }
    if (this.eager) {
      // The eager pass reached the first return: unless starved, branch on the writes.
      this.s = this.next[0];
      this.eager = false;
      this.stuck = this.dead();
      return CONTINUE;
    }
    // A return: the operation returning here could not be linearized before its response given
    // the choices on the stack.
    return s !== NIL ? this.slotOp[s] : NIL;
  }

  /** Starved: blames the earliest pending read of a starved value other than the state. */
  private starvedBlocker(): number {
    let blocking = NIL;
    for (const v of this.starved) {
      if (v === this.state) continue; // reads of the state itself can still be taken now
      const r = this.readsOf[v].find((g) => !this.isSet(g));
      if (r !== undefined && (blocking === NIL || this.calls[r].completeMs < this.calls[blocking].completeMs)) blocking = r;
    }
    return blocking;
  }

  /** Eager pass at a call: takes it if it is a read the state satisfies; false at a known configuration (a dead end). */
  private takeSatisfiedRead(): boolean {
    const s = this.s;
    const i = this.slotOp[s];
    const c = this.calls[i];
    if (!(c.ok && !c.write && c.state === this.state)) {
      this.s = this.next[s];
      return true;
    }
    this.flip(i);
    if (this.remember(this.state)) {
      const before = this.prev[s]; // still linked: the scan only passed calls
      this.choose(i, NIL, this.state, true);
      this.s = this.next[before];
      return true; // a read cannot starve anything
    }
    this.flip(i); // a known configuration: dead end, backtrack
    return false;
  }

  /** Branching pass at a call: linearizes it next if it can be (a read possibly after an info write of its value), else moves on. */
  private tryCall(): void {
    const s = this.s;
    const i = this.slotOp[s];
    const c = this.calls[i];
    const w = c.ok && !c.write && c.state !== this.state ? this.infoWriterFor(c) : NIL;
    if (c.ok && (c.write || c.state === this.state || w !== NIL)) {
      if (w !== NIL) this.flip(w);
      this.flip(i);
      if (this.remember(c.state)) {
        this.choose(i, w, c.state, false); // a write sets its value; a read keeps (or its info write sets) it
        this.s = this.next[0]; // just-in-time: restart from the earliest pending call
        this.eager = true;
        return;
      }
      this.flip(i);
      if (w !== NIL) this.flip(w);
    }
    this.s = this.next[s];
  }

  /** The earliest unused info write of what read `c` returns, if invoked before the first pending return; else NIL. */
  private infoWriterFor(c: Call): number {
    const entry = this.infoWriters.get(c.state);
    let w = entry && entry.used < entry.writers.length ? entry.writers[entry.used] : NIL;
    // w must be invoked before the first pending return (the list before s holds only calls).
    let firstReturn = this.s;
    while (w !== NIL && firstReturn !== NIL && this.slotIsCall[firstReturn]) firstReturn = this.next[firstReturn];
    if (w !== NIL && firstReturn !== NIL && this.callSlot[w] > firstReturn) w = NIL;
    return w;
  }

  /** Remembers the deepest dead end for the explanation, with the write that set the state and the latest choice after it if it is a read. */
  private recordDeadEnd(blocking: number): void {
    const { stack, calls } = this;
    this.bestDepth = stack.length;
    this.bestBlocking = blocking;
    this.bestBits = this.bits.slice();
    this.bestState = this.state;
    this.bestContext = [];
    for (let d = stack.length - 1; d >= 0; d--) {
      const f = stack[d];
      if (f.w !== NIL) this.bestContext.push(calls[f.w]);
      if (calls[f.i].write || f.w !== NIL || d === stack.length - 1) this.bestContext.push(calls[f.i]);
      if (calls[f.i].write || f.w !== NIL) break;
    }
  }

  /** Undoes choices up to the latest one that had alternatives, then resumes after it; false when none is left. */
  private backtrack(): boolean {
    this.stuck = false;
    for (;;) {
      const top = this.stack.pop();
      if (!top) return false;
      this.state = top.prevState;
      this.linearizedOk--;
      this.unlift(top.i);
      this.flip(top.i);
      this.count(this.calls[top.i], +1);
      if (top.w !== NIL) {
        this.unlift(top.w);
        this.flip(top.w);
        this.count(this.calls[top.w], +1);
        this.infoWriters.get(this.calls[top.w].state)!.used--;
      }
      if (!top.forced) {
        this.s = this.next[this.callSlot[top.i]];
        this.eager = false;
        return true;
      }
    }
  }
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
