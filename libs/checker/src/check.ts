import { readFileSync } from 'node:fs';
import { assertOperation, parseHistoryJsonLines, type Operation } from './history';
import { checkRegister, type Violation } from './register';
import { checkCasRegister } from './cas';
import { checkMap, namedKeys, rangeKeys } from './map';

/** Bounds of one check. The answer is `unknown` for a key whose search exceeds them, never a hang. */
export interface CheckOptions {
  /** Wall-clock budget of the whole check, on `clock` (default 60 000). Keys not decided by then are unknown. */
  timeoutMs?: number;
  /** Search steps per key (default 20 000 000). */
  stepsMax?: number;
  /** Memo bytes per key (default 256 MiB): the search keeps one linearized-set bitset per configuration. */
  memoBytesMax?: number;
  /** Run the O(n log n) necessary-condition checks before the search (default true); false = search only. */
  precheck?: boolean;
  /** Time source in ms (default `performance.now`). */
  clock?: () => number;
}

/** A key the checker could not decide within its budget. */
export interface UnknownKey {
  key: string;
  reason: string;
}

/**
 * The verdict on a history.
 * - `ok`: true only if every key was proved linearizable.
 * - `unknown`: set when some key hit a budget (see `unknownKeys`); `ok` is then false.
 * - `violations`: one per non-linearizable key (the first violation found on it).
 * - `operations`: operations in the history (fail and info included); `keysChecked`: distinct keys.
 */
export interface CheckResult {
  ok: boolean;
  unknown?: boolean;
  keysChecked: number;
  operations: number;
  violations: Violation[];
  unknownKeys?: UnknownKey[];
}

export const CHECK_DEFAULTS = { timeoutMs: 60_000, stepsMax: 20_000_000, memoBytesMax: 256 * 1024 * 1024 } as const;

/**
 * Checks a key-value history for linearizability (Herlihy & Wing 1990). Keys are independent
 * registers, so the history is partitioned by key and each key is checked alone: linearizability
 * is compositional (Herlihy & Wing's locality; Porcupine's P-compositionality). Each key runs the
 * prechecks, then the Wing & Gong / Lowe search (see register.ts); a key with `cas` operations
 * runs the compare-and-swap register's search (cas.ts) instead.
 * @throws HistoryError if an operation is malformed (see `assertOperation`).
 */
export function checkHistory(history: readonly Operation[], options: CheckOptions = {}): CheckResult {
  const clock = options.clock ?? (() => performance.now());
  const deadlineMs = clock() + (options.timeoutMs ?? CHECK_DEFAULTS.timeoutMs);
  history.forEach((op, i) => assertOperation(op, `operation ${i}`));
  const components = partition(history);
  const violations: Violation[] = [];
  const unknownKeys: UnknownKey[] = [];
  for (const { keys, ops } of components) {
    const label = keys.length === 1 ? keys[0]! : keys.join(',');
    if (clock() > deadlineMs) {
      unknownKeys.push({ key: label, reason: 'not checked: timeoutMs reached on earlier keys' });
      continue;
    }
    const budget = {
      stepsMax: options.stepsMax ?? CHECK_DEFAULTS.stepsMax,
      memoBytesMax: options.memoBytesMax ?? CHECK_DEFAULTS.memoBytesMax,
      deadlineMs,
      clock,
      precheck: options.precheck ?? true,
    };
    // One key of put/get/delete: the register's search with its prechecks; with cas: the cas
    // register's (cas.ts); anything else (incr, txn, range, several keys): the map model (map.ts).
    const kinds = new Set(ops.map((op) => op.kind));
    const register = keys.length === 1 && [...kinds].every((k) => k === 'put' || k === 'get' || k === 'delete' || k === 'cas');
    const r = !register ? checkMap(label, keys, ops, budget) : kinds.has('cas') ? checkCasRegister(label, ops, budget) : checkRegister(label, ops, budget);
    if (r.kind === 'violation') violations.push(r.violation);
    else if (r.kind === 'unknown') unknownKeys.push({ key: label, reason: r.reason });
  }
  const keysChecked = components.reduce((n, c) => n + c.keys.length, 0);
  const result: CheckResult = {
    ok: violations.length === 0 && unknownKeys.length === 0,
    keysChecked,
    operations: history.length,
    violations,
  };
  if (unknownKeys.length) {
    result.unknown = true;
    result.unknownKeys = unknownKeys;
  }
  return result;
}

/**
 * The history split into independent components (linearizability is local: Herlihy & Wing; the
 * partition of Porcupine's P-compositionality): keys are linked when one operation touches both
 * (a txn's keys, a range read's keys: every key of the history inside its range). Components come
 * in order of their first operation, keys sorted. A range read with no key of the history in its
 * range is vacuous (it must return nothing; map.ts would check it against an empty state) and
 * joins no component.
 */
export function partition(history: readonly Operation[]): { keys: string[]; ops: Operation[] }[] {
  const all = new Set<string>();
  for (const op of history) for (const k of namedKeys(op)) all.add(k);
  for (const op of history) if (op.kind !== 'range' && op.kind !== 'txn') all.add(op.key);
  const sorted = [...all].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const parent = new Map(sorted.map((k) => [k, k]));
  const find = (k: string): string => {
    let r = k;
    while (parent.get(r) !== r) r = parent.get(r)!;
    for (let x = k; x !== r; ) {
      const up = parent.get(x)!;
      parent.set(x, r);
      x = up;
    }
    return r;
  };
  const footprint = (op: Operation): string[] => (op.kind === 'range' ? [...new Set([...rangeKeys(sorted, op.key, op.end!), ...namedKeys(op)])] : op.kind === 'txn' ? namedKeys(op) : [op.key]);
  const footprints = history.map(footprint);
  for (const keys of footprints) for (const k of keys.slice(1)) parent.set(find(k), find(keys[0]!));
  const byRoot = new Map<string, { keys: string[]; ops: Operation[] }>();
  history.forEach((op, i) => {
    const first = footprints[i]![0];
    if (first === undefined) return;
    const root = find(first);
    const c = byRoot.get(root);
    if (c) c.ops.push(op);
    else byRoot.set(root, { keys: [], ops: [op] });
  });
  for (const k of sorted) byRoot.get(find(k))?.keys.push(k);
  return [...byRoot.values()];
}

/**
 * Reads a JSON-lines history file (as written by `HistoryRecorder.toJSON`) and checks it.
 * @throws HistoryError on a malformed line; the fs error if the file cannot be read.
 */
export function checkHistoryFile(path: string, options?: CheckOptions): CheckResult {
  return checkHistory(parseHistoryJsonLines(readFileSync(path, 'utf8')), options);
}

/** A human-readable report: one verdict line, then each violation with its operations. */
export function formatCheckResult(result: CheckResult): string {
  const verdict = result.ok ? 'linearizable' : result.violations.length ? 'NOT linearizable' : 'unknown';
  const lines = [`${verdict}: ${result.operations} operations on ${result.keysChecked} keys`];
  for (const v of result.violations) {
    lines.push(`key ${JSON.stringify(v.key)}: ${v.message}`);
    for (const op of v.operations) lines.push(`  ${JSON.stringify(op)}`);
  }
  for (const u of result.unknownKeys ?? []) lines.push(`key ${JSON.stringify(u.key)}: unknown (${u.reason})`);
  return lines.join('\n');
}
