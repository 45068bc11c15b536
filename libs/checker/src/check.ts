import { readFileSync } from 'node:fs';
import { assertOperation, parseHistoryJsonLines, type Operation } from './history';
import { checkRegister, type Violation } from './register';
import { checkCasRegister } from './cas';

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
  const byKey = new Map<string, Operation[]>();
  history.forEach((op, i) => {
    assertOperation(op, `operation ${i}`);
    const list = byKey.get(op.key);
    if (list) list.push(op);
    else byKey.set(op.key, [op]);
  });
  const violations: Violation[] = [];
  const unknownKeys: UnknownKey[] = [];
  for (const [key, ops] of byKey) {
    if (clock() > deadlineMs) {
      unknownKeys.push({ key, reason: 'not checked: timeoutMs reached on earlier keys' });
      continue;
    }
    // A key with cas operations goes to the cas register's search (cas.ts); the others keep the register's, with its prechecks.
    const search = ops.some((op) => op.kind === 'cas') ? checkCasRegister : checkRegister;
    const r = search(key, ops, {
      stepsMax: options.stepsMax ?? CHECK_DEFAULTS.stepsMax,
      memoBytesMax: options.memoBytesMax ?? CHECK_DEFAULTS.memoBytesMax,
      deadlineMs,
      clock,
      precheck: options.precheck ?? true,
    });
    if (r.kind === 'violation') violations.push(r.violation);
    else if (r.kind === 'unknown') unknownKeys.push({ key, reason: r.reason });
  }
  const result: CheckResult = {
    ok: violations.length === 0 && unknownKeys.length === 0,
    keysChecked: byKey.size,
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
