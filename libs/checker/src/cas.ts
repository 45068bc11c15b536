/**
 * The compare-and-swap register: the linearizability search for a key whose history has `cas`
 * operations (Jepsen's cas-register model, with a CAS that answered "not applied" kept as an
 * observation instead of dropped as `fail`).
 *
 * Model, per key: the state is a value or not found (null), initially not found.
 * - put v → v; delete → null; get → must return the state (unchanged).
 * - cas(expected, v) (write v only if the state is `expected`; null = only if absent). An ok cas
 *   with `applied: true` needs state = expected and sets v; with `applied: false` it needs
 *   state ≠ expected and changes nothing (the compare failed at its linearization point: a
 *   constraint too). An info cas is deterministic wherever it is linearized (sets v when the state
 *   is `expected` there, else nothing), or never takes effect.
 * Compare-and-swap on a mod revision (etcd's `mod_revision` compare, Cairn's IF_REVISION) is a cas
 * on a value when every write of the key writes a unique value: the key's mod revision is r exactly
 * when its value is the one written at r (0: absent). Record it with `expected` = that value.
 *
 * Search: Wing & Gong's backtracking with Lowe's memoisation of (linearized set, state), the loop
 * of Porcupine's `checkSingle`: walk the events in time order; at a call, try to linearize it
 * (its step is legal in the state and the configuration is new); at a return whose call is not
 * linearized, undo the latest choice. Info operations never return (+Infinity), so they are tried
 * anywhere after their invocation; the history is linearizable once every ok operation is
 * linearized (info ones may stay out: they never took effect).
 */
import type { Operation } from './history';
import type { RegisterBudget, RegisterResult } from './register';

interface Event {
  /** Index into `calls`. */
  id: number;
  isCall: boolean;
  prev: Event | null;
  next: Event | null;
  /** The call's return event (calls only). */
  match: Event | null;
}

interface CasCall {
  op: Operation;
  invokeMs: number;
  completeMs: number;
  ok: boolean;
}

const BYTES_PER_MEMO_OVERHEAD = 96; // Map slot + string header, roughly
const DEADLINE_CHECK_EVERY = 1024;

/** The state after `op` from `state`, or undefined when `op` cannot take effect there (its observed output contradicts it). */
export function casStep(op: Operation, ok: boolean, state: string | null): string | null | undefined {
  switch (op.kind) {
    case 'put':
      return op.value!;
    case 'delete':
      return null;
    case 'get':
      return (op.value ?? null) === state ? state : undefined;
    case 'cas': {
      const holds = (op.expected ?? null) === state;
      if (!ok) return holds ? op.value! : state;
      if (op.applied) return holds ? op.value! : undefined;
      return holds ? undefined : state;
    }
  }
}

/** Checks one key with cas operations; `ops` are every operation on `key` (fail ones and info gets are dropped here: they did not happen / constrain nothing). */
export function checkCasRegister(key: string, ops: readonly Operation[], budget: RegisterBudget): RegisterResult {
  const calls: CasCall[] = [];
  for (const op of ops) {
    if (op.key !== key) throw new Error(`KeyPartitionInvariant: operation on ${JSON.stringify(op.key)} in the history of ${JSON.stringify(key)}`);
    if (op.outcome === 'fail' || (op.outcome === 'info' && op.kind === 'get')) continue;
    const ok = op.outcome === 'ok';
    calls.push({ op, invokeMs: op.invokeMs, completeMs: ok ? op.completeMs! : Infinity, ok });
  }
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

  const words = Math.ceil(calls.length / 32);
  const linearized = new Uint32Array(words);
  const memo = new Set<string>();
  let memoBytes = 0;
  const stack: { call: Event; state: string | null }[] = [];
  let okLeft = calls.filter((c) => c.ok).length;
  let state: string | null = null;
  let steps = 0;
  let deepest = { depth: -1, blocked: null as CasCall | null, state: null as string | null };
  let e = head.next;
  while (okLeft > 0) {
    if (++steps > budget.stepsMax) return { kind: 'unknown', reason: `stepsMax ${budget.stepsMax} reached`, steps };
    if (steps % DEADLINE_CHECK_EVERY === 0 && budget.clock() > budget.deadlineMs) return { kind: 'unknown', reason: 'timeoutMs reached', steps };
    if (e === null) throw new Error('CasSearchInvariant: the event list ended with ok operations left');
    if (e.isCall) {
      const c = calls[e.id]!;
      const next = casStep(c.op, c.ok, state);
      if (next !== undefined) {
        linearized[e.id >>> 5]! ^= 1 << (e.id & 31);
        const memoKey = `${linearized.join(',')}|${next === null ? '\u0000' : '=' + next}`;
        if (!memo.has(memoKey)) {
          memo.add(memoKey);
          memoBytes += memoKey.length * 2 + BYTES_PER_MEMO_OVERHEAD;
          if (memoBytes > budget.memoBytesMax) return { kind: 'unknown', reason: `memoBytesMax ${budget.memoBytesMax} reached`, steps };
          stack.push({ call: e, state });
          state = next;
          if (c.ok) okLeft--;
          lift(e);
          e = head.next;
          continue;
        }
        linearized[e.id >>> 5]! ^= 1 << (e.id & 31);
      }
      e = e.next;
      continue;
    }
    // A return whose call is not linearized: no order of what is left works from here; undo the latest choice.
    if (stack.length > deepest.depth) deepest = { depth: stack.length, blocked: calls[e.id]!, state };
    const top = stack.pop();
    if (!top) return { kind: 'violation', violation: casViolation(key, deepest), steps };
    const c = calls[top.call.id]!;
    if (c.ok) okLeft++;
    linearized[top.call.id >>> 5]! ^= 1 << (top.call.id & 31);
    state = top.state;
    unlift(top.call);
    e = top.call.next;
  }
  return { kind: 'ok', steps };
}

/** The doubly linked list of call and return events in time order (at equal instants calls first: equal instants are concurrent), behind a sentinel head. */
function eventList(calls: readonly CasCall[]): Event {
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

function casViolation(key: string, deepest: { depth: number; blocked: CasCall | null; state: string | null }) {
  const b = deepest.blocked!;
  const what = b.op.kind === 'cas' ? `cas ${JSON.stringify(key)} if ${JSON.stringify(b.op.expected ?? null)} → ${JSON.stringify(b.op.value)} (${b.op.applied ? 'applied' : 'not applied'})` : `${b.op.kind} ${JSON.stringify(key)}${b.op.value !== undefined ? ` ${JSON.stringify(b.op.value)}` : ''}`;
  return {
    key,
    message: `no linearization: ${what} at [${b.invokeMs}, ${b.completeMs}] cannot take effect; the longest linearizable prefix has ${deepest.depth} operations and leaves the key ${JSON.stringify(deepest.state)}`,
    operations: [b.op],
  };
}
