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
 * Search: searchLinearization (search.ts), Wing & Gong / Lowe as Porcupine's `checkSingle`.
 */
import type { Operation } from './history';
import type { RegisterBudget, RegisterResult } from './register';
import { searchLinearization, type SearchCall } from './search';

interface CasCall extends SearchCall {
  op: Operation;
}

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
    default:
      return undefined; // incr, txn, range: the map model's (map.ts)
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
  const r = searchLinearization<string | null>(calls, null, { step: (i, state) => casStep(calls[i]!.op, calls[i]!.ok, state), encode: (state) => (state === null ? '\u0000' : '=' + state) }, budget);
  if (r.kind !== 'violation') return r;
  return { kind: 'violation', violation: casViolation(key, { depth: r.depth, blocked: calls[r.blocked]!, state: r.state }), steps: r.steps };
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
