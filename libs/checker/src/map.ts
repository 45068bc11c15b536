/**
 * The map model: linearizability of operations that span keys (etcd Txn, range reads) or compute
 * (Redis INCRBY), over ONE component of the key space (check.ts partitions the history into
 * components: keys linked by an operation that touches both). Porcupine's approach (a sequential
 * model as a step function, P-compositionality for the partition); Knossos' multi-register model
 * for the txns; Jepsen's counter model for incr with the returned value kept as an observation.
 *
 * State: one value or null (absent) per key of the component, initially all absent.
 * - put / delete / get / cas: as the register and the cas register (cas.ts), on one key.
 * - incr(delta): absent counts as 0; the value must be a decimal integer (else an ok incr cannot
 *   take effect there: Redis answers an error, recorded as fail); it becomes value + delta, and an
 *   ok incr must have returned exactly that. A retried incr carrying its session applies at most
 *   once: recorded as ONE operation, a copy applied twice shows as a returned value or a later
 *   read one delta too high.
 * - txn (etcd Txn): every compare holds (the key's value is the compare's; null = absent) → the
 *   success branch, else the failure branch; an ok txn must have run the branch it reports
 *   (`succeeded`). The branch's ops apply in order, each seeing the ones before it, atomically at
 *   one point; each get must have returned what the key held at its place in the branch.
 * - range [start, end): must return exactly the keys of the component in the range that are
 *   present, with their values, in key order (the state at its linearization point).
 * Info operations are deterministic wherever they are linearized, or never take effect; info
 * gets and ranges (output unknown) are dropped, as are fail operations.
 */
import type { Operation, TxnStepSpec } from './history';
import type { RegisterBudget, RegisterResult, Violation } from './register';
import { searchLinearization, type SearchCall } from './search';

type State = readonly (string | null)[];

interface MapCall extends SearchCall {
  op: Operation;
}

const INTEGER = /^-?\d+$/;

/** Keys an operation names (a range: its start only; its range is resolved against the history's keys by `rangeKeys`). */
export function namedKeys(op: Operation): string[] {
  if (op.kind === 'txn') return [...(op.txn?.compares ?? []), ...(op.txn?.success ?? []), ...(op.txn?.failure ?? [])].map((c) => c.key);
  if (op.kind === 'range') return (op.entries ?? []).map(([k]) => k);
  return [op.key];
}

/** The keys of `sortedKeys` in [start, end) (JS string order: byte order for ASCII keys). */
export function rangeKeys(sortedKeys: readonly string[], start: string, end: string): string[] {
  let lo = 0;
  let hi = sortedKeys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sortedKeys[mid]! < start) lo = mid + 1;
    else hi = mid;
  }
  const out: string[] = [];
  for (let i = lo; i < sortedKeys.length && sortedKeys[i]! < end; i++) out.push(sortedKeys[i]!);
  return out;
}

/**
 * Checks one component: `keys` (sorted) are all its keys, `ops` every operation touching them
 * (fail ones and info reads are dropped here). `label` names the component in a violation.
 */
export function checkMap(label: string, keys: readonly string[], ops: readonly Operation[], budget: RegisterBudget): RegisterResult {
  const index = new Map(keys.map((k, i) => [k, i]));
  const slot = (k: string): number => {
    const i = index.get(k);
    if (i === undefined) throw new Error(`KeyPartitionInvariant: ${JSON.stringify(k)} is not a key of component ${label}`);
    return i;
  };
  const calls: MapCall[] = [];
  for (const op of ops) {
    if (op.outcome === 'fail') continue;
    if (op.outcome === 'info' && (op.kind === 'get' || op.kind === 'range' || (op.kind === 'txn' && !writes(op)))) continue;
    for (const k of namedKeys(op)) slot(k);
    const ok = op.outcome === 'ok';
    calls.push({ op, invokeMs: op.invokeMs, completeMs: ok ? op.completeMs! : Infinity, ok });
  }
  const step = (i: number, state: State): State | undefined => mapStep(calls[i]!.op, calls[i]!.ok, state, slot, keys);
  const init: State = keys.map(() => null);
  const r = searchLinearization<State>(calls, init, { step, encode: (s) => JSON.stringify(s) }, budget);
  if (r.kind !== 'violation') return r;
  const b = calls[r.blocked]!;
  const state = Object.fromEntries(keys.flatMap((k, i) => (r.state[i] === null ? [] : [[k, r.state[i]]])));
  const violation: Violation = {
    key: label,
    message: `no linearization: ${describeOp(b.op)} at [${b.invokeMs}, ${b.completeMs}] cannot take effect; the longest linearizable prefix has ${r.depth} operations and leaves ${JSON.stringify(state)}`,
    operations: [b.op],
  };
  return { kind: 'violation', violation, steps: r.steps };
}

function writes(op: Operation): boolean {
  return [...op.txn!.success, ...op.txn!.failure].some((s) => s.kind !== 'get');
}

/** The state after `op` from `state`, or undefined when `op` (ok: with its observed output) cannot take effect there. */
export function mapStep(op: Operation, ok: boolean, state: State, slot: (key: string) => number, keys: readonly string[]): State | undefined {
  const set = (k: string, v: string | null): State => {
    const next = state.slice();
    next[slot(k)] = v;
    return next;
  };
  switch (op.kind) {
    case 'put':
      return set(op.key, op.value!);
    case 'delete':
      return set(op.key, null);
    case 'get':
      return (op.value ?? null) === state[slot(op.key)] ? state : undefined;
    case 'cas': {
      const holds = (op.expected ?? null) === state[slot(op.key)];
      if (!ok) return holds ? set(op.key, op.value!) : state;
      if (op.applied) return holds ? set(op.key, op.value!) : undefined;
      return holds ? undefined : state;
    }
    case 'incr': {
      const cur = state[slot(op.key)] ?? '0';
      if (!INTEGER.test(cur)) return ok ? undefined : state;
      const next = (BigInt(cur) + BigInt(op.delta!)).toString();
      return ok && next !== op.value ? undefined : set(op.key, next);
    }
    case 'txn':
      return txnStep(op, ok, state, slot);
    case 'range': {
      const got = op.entries!;
      const want = rangeKeys(keys, op.key, op.end!).flatMap((k) => (state[slot(k)] === null ? [] : [[k, state[slot(k)]!]]));
      return got.length === want.length && got.every(([k, v], i) => k === want[i]![0] && v === want[i]![1]) ? state : undefined;
    }
  }
}

function txnStep(op: Operation, ok: boolean, state: State, slot: (key: string) => number): State | undefined {
  const t = op.txn!;
  const holds = t.compares.every((c) => state[slot(c.key)] === c.value);
  if (ok && holds !== op.succeeded) return undefined;
  const branch: TxnStepSpec[] = holds ? t.success : t.failure;
  let next: (string | null)[] | null = null;
  let g = 0;
  for (const s of branch) {
    const cur = next ?? state;
    if (s.kind === 'get') {
      if (ok && (op.results![g++] ?? null) !== cur[slot(s.key)]) return undefined;
      continue;
    }
    next ??= state.slice();
    next[slot(s.key)] = s.kind === 'put' ? s.value : null;
  }
  return next ?? state;
}

function describeOp(op: Operation): string {
  const out = op.outcome === 'ok' ? '' : ' (info)';
  switch (op.kind) {
    case 'incr':
      return `incr ${JSON.stringify(op.key)} by ${op.delta}${op.outcome === 'ok' ? ` → ${op.value}` : ''}${out}`;
    case 'txn':
      return `txn ${JSON.stringify(op.txn)}${op.outcome === 'ok' ? ` → ${op.succeeded ? 'succeeded' : 'failed'} ${JSON.stringify(op.results)}` : ''}${out}`;
    case 'range':
      return `range [${JSON.stringify(op.key)}, ${JSON.stringify(op.end)})${op.outcome === 'ok' ? ` → ${JSON.stringify(op.entries)}` : ''}`;
    case 'cas':
      return `cas ${JSON.stringify(op.key)} if ${JSON.stringify(op.expected ?? null)} → ${JSON.stringify(op.value)} (${op.applied ? 'applied' : 'not applied'})${out}`;
    default:
      return `${op.kind} ${JSON.stringify(op.key)}${op.value !== undefined ? ` ${JSON.stringify(op.value)}` : ''}${out}`;
  }
}
