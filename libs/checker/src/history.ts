/**
 * Histories of key-value operations as seen by clients: the input of the linearizability checker.
 *
 * The model follows Jepsen/Knossos histories: every operation is an invocation and a completion,
 * and a completion is `ok` (it happened, with this output), `fail` (it definitely did not happen)
 * or `info` (indeterminate: a timeout or a lost connection; it may take effect at any time after
 * its invocation, or never).
 */

/**
 * Operation kinds of the key-value model: one register per key; `cas` = write `value` only if the
 * key holds `expected` (cas.ts); `incr` = add `delta` to a decimal integer (Redis INCRBY, absent =
 * 0); `txn` = an etcd Txn over several keys; `range` = every key in [key, end) at one point
 * (map.ts).
 */
export type OperationKind = 'put' | 'get' | 'delete' | 'cas' | 'incr' | 'txn' | 'range';

/**
 * One compare of a txn: the key holds exactly `value` (`null`: the key is absent). A compare on a
 * mod revision is recorded as this compare on the value written at that revision, as a cas is
 * (docs/checker.md "Compare-and-swap"): every written value must then be unique.
 */
export interface TxnCompareSpec {
  key: string;
  value: string | null;
}

/** One op of a txn branch (etcd RequestOp): a get answers one entry of the txn's `results`. */
export type TxnStepSpec = { kind: 'get'; key: string } | { kind: 'put'; key: string; value: string } | { kind: 'delete'; key: string };

/** A txn (etcd Txn): if every compare holds, `success` runs, else `failure`; applied atomically, each op seeing the ones before it. */
export interface TxnSpec {
  compares: TxnCompareSpec[];
  success: TxnStepSpec[];
  failure: TxnStepSpec[];
}

/** How an operation completed (Jepsen's `:ok` / `:fail` / `:info`). */
export type Outcome = 'ok' | 'fail' | 'info';

/**
 * One client operation on one key.
 * - `value`: a put's input; a get's output (`null`/`undefined` = not found); unused for delete.
 * - `invokeMs` / `completeMs`: when the client sent the request and saw its answer, on one clock
 *   shared by all clients (milliseconds, any origin). Equal instants count as concurrent.
 * - `outcome`: `ok` = happened; `fail` = definitely did not happen (the checker drops it);
 *   `info` = indeterminate: the checker treats it as pending forever (`completeMs` is ignored,
 *   read as +Infinity) and drops info gets, whose output is unknown and so constrains nothing.
 *   `completeMs` is `null` for an operation that never completed (recorded as info).
 */
export interface Operation {
  clientId: number;
  kind: OperationKind;
  key: string;
  value?: string | null;
  invokeMs: number;
  completeMs: number | null;
  outcome: Outcome;
  /** cas: the value the key must hold for the write to apply (`null` = absent: mod revision 0). */
  expected?: string | null;
  /** An ok cas: whether its compare held and `value` was written (false: the key held something else; nothing written). */
  applied?: boolean;
  /** incr: the amount added, a safe integer (negative: DECRBY). Its output (ok) is `value`: the new value in decimal. */
  delta?: number;
  /** txn: the request; `key` is then its first key (for reading only). */
  txn?: TxnSpec;
  /** An ok txn: whether its compares held (the success branch ran). */
  succeeded?: boolean;
  /** An ok txn: the output of each get of the branch that ran, in order (`null` = not found). */
  results?: (string | null)[];
  /** range: the end of [key, end) (exclusive; a prefix p is [p, p with its last character + 1)). */
  end?: string;
  /** An ok range: every key of the range with its value, in key order. */
  entries?: [string, string][];
}

/** Thrown for a malformed history: a missing field, an ok operation without completion, completion before invocation, a bad JSON line. */
export class HistoryError extends Error {
  readonly code = 'HISTORY_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'HistoryError';
  }
}

const KINDS: ReadonlySet<string> = new Set<OperationKind>(['put', 'get', 'delete', 'cas', 'incr', 'txn', 'range']);
const INTEGER = /^-?\d+$/;
const OUTCOMES: ReadonlySet<string> = new Set<Outcome>(['ok', 'fail', 'info']);

/**
 * Asserts that `op` is a well-formed Operation (the invariant the checker relies on).
 * @throws HistoryError naming the field, prefixed by `where` (e.g. `line 3`).
 */
export function assertOperation(op: unknown, where: string): asserts op is Operation {
  const bad = (what: string): never => {
    throw new HistoryError(`${where}: ${what}`);
  };
  if (typeof op !== 'object' || op === null || Array.isArray(op)) bad('expected an operation object');
  const o = op as Record<string, unknown>;
  if (!Number.isInteger(o.clientId)) bad('clientId must be an integer');
  if (typeof o.kind !== 'string' || !KINDS.has(o.kind)) bad(`kind must be put, get, delete, cas, incr, txn or range, got ${JSON.stringify(o.kind)}`);
  if (typeof o.key !== 'string') bad('key must be a string');
  if (typeof o.outcome !== 'string' || !OUTCOMES.has(o.outcome)) bad(`outcome must be ok, fail or info, got ${JSON.stringify(o.outcome)}`);
  if (typeof o.invokeMs !== 'number' || !Number.isFinite(o.invokeMs)) bad('invokeMs must be a finite number');
  if (o.completeMs !== null && (typeof o.completeMs !== 'number' || Number.isNaN(o.completeMs))) bad('completeMs must be a number or null');
  if (o.value !== undefined && o.value !== null && typeof o.value !== 'string') bad('value must be a string, null or absent');
  if ((o.kind === 'put' || o.kind === 'cas') && typeof o.value !== 'string') bad(`a ${o.kind} needs a string value`);
  if (o.kind === 'cas' && o.expected !== null && typeof o.expected !== 'string') bad('a cas needs expected: a string, or null for an absent key');
  if (o.kind === 'cas' && o.outcome === 'ok' && typeof o.applied !== 'boolean') bad('an ok cas needs applied: true or false');
  if (o.kind === 'incr') assertIncr(o, bad);
  if (o.kind === 'txn') assertTxn(o, bad);
  if (o.kind === 'range') assertRange(o, bad);
  if (o.outcome === 'ok') {
    if (o.completeMs === null) bad('an ok operation needs completeMs');
    if ((o.completeMs as number) < (o.invokeMs as number)) bad(`completeMs ${String(o.completeMs)} is before invokeMs ${String(o.invokeMs)}`);
  }
}

function assertIncr(o: Record<string, unknown>, bad: (what: string) => never): void {
  if (!Number.isSafeInteger(o.delta)) bad('an incr needs delta: a safe integer');
  if (o.outcome === 'ok' && (typeof o.value !== 'string' || !INTEGER.test(o.value))) bad('an ok incr needs value: the new value in decimal');
}

function assertTxn(o: Record<string, unknown>, bad: (what: string) => never): void {
  const t = o.txn as Partial<TxnSpec> | undefined;
  if (typeof t !== 'object' || t === null || !Array.isArray(t.compares) || !Array.isArray(t.success) || !Array.isArray(t.failure)) bad('a txn needs txn: { compares, success, failure }');
  for (const c of t!.compares!) if (typeof c?.key !== 'string' || (c.value !== null && typeof c.value !== 'string')) bad('a txn compare needs key and value (a string, or null for absent)');
  for (const step of [...t!.success!, ...t!.failure!]) {
    const ok = typeof step?.key === 'string' && (step.kind === 'get' || step.kind === 'delete' || (step.kind === 'put' && typeof step.value === 'string'));
    if (!ok) bad(`a txn op must be get, put (with a string value) or delete of a key, got ${JSON.stringify(step)}`);
  }
  if (o.outcome !== 'ok') return;
  if (typeof o.succeeded !== 'boolean') bad('an ok txn needs succeeded: true or false');
  const gets = (o.succeeded ? t!.success! : t!.failure!).filter((step) => step.kind === 'get').length;
  const results = o.results as unknown[];
  if (!Array.isArray(results) || results.length !== gets || results.some((r) => r !== null && typeof r !== 'string')) bad(`an ok txn needs results: ${gets} values (string or null), one per get of the branch that ran`);
}

function assertRange(o: Record<string, unknown>, bad: (what: string) => never): void {
  if (typeof o.end !== 'string') bad('a range needs end: a string');
  if (o.outcome !== 'ok') return;
  const entries = o.entries as unknown[];
  if (!Array.isArray(entries) || entries.some((e) => !Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || typeof e[1] !== 'string')) bad('an ok range needs entries: [key, value] pairs');
}

/** Serialises a history as JSON lines: one Operation object per line, in the given order. */
export function historyToJsonLines(ops: readonly Operation[]): string {
  // JSON has no Infinity: a non-finite completeMs (only meaningful for info) is written as null.
  return ops.map((op) => JSON.stringify({ ...op, completeMs: op.completeMs !== null && Number.isFinite(op.completeMs) ? op.completeMs : null }) + '\n').join('');
}

/**
 * Parses JSON lines written by `historyToJsonLines` / `HistoryRecorder.toJSON` (blank lines skipped).
 * @throws HistoryError naming the line of the first malformed operation.
 */
export function parseHistoryJsonLines(text: string): Operation[] {
  const ops: Operation[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (e) {
      throw new HistoryError(`line ${i + 1}: not JSON (${(e as Error).message})`);
    }
    assertOperation(parsed, `line ${i + 1}`);
    ops.push(parsed);
  }
  return ops;
}

/**
 * Records a history event by event, the way a test client sees it: `invoke` before sending a
 * request, then exactly one of `ok` / `fail` / `info` when the outcome is known. Times come from
 * the injected clock (default `performance.now`), which must be shared by all recorded clients.
 * Operations still pending when the history is read are reported as `info` with `completeMs: null`.
 */
export class HistoryRecorder {
  private readonly ops: Operation[] = [];
  private readonly pending: boolean[] = [];

  constructor(private readonly clock: () => number = () => performance.now()) {}

  /** Rebuilds a recorder from JSON lines (see `toJSON`); its operations are all completed. */
  static fromJSON(text: string, clock?: () => number): HistoryRecorder {
    const recorder = new HistoryRecorder(clock);
    for (const op of parseHistoryJsonLines(text)) {
      recorder.ops.push(op);
      recorder.pending.push(false);
    }
    return recorder;
  }

  /** Records the invocation; `value` is a put's input. Returns the operation id for ok/fail/info. */
  invoke(clientId: number, kind: OperationKind, key: string, value?: string): number {
    const op: Operation = { clientId, kind, key, invokeMs: this.clock(), completeMs: null, outcome: 'info' };
    if (value !== undefined) op.value = value;
    assertOperation({ ...op, outcome: 'info' }, `invoke(${clientId}, ${kind}, ${JSON.stringify(key)})`);
    this.ops.push(op);
    this.pending.push(true);
    return this.ops.length - 1;
  }

  /** Records the invocation of a cas: write `value` only if `key` holds `expected` (null: only if absent). Returns the id for okCas / fail / info. */
  invokeCas(clientId: number, key: string, expected: string | null, value: string): number {
    const op: Operation = { clientId, kind: 'cas', key, value, expected, invokeMs: this.clock(), completeMs: null, outcome: 'info' };
    assertOperation(op, `invokeCas(${clientId}, ${JSON.stringify(key)})`);
    this.ops.push(op);
    this.pending.push(true);
    return this.ops.length - 1;
  }

  /** A cas was answered: `applied` = its compare held and it wrote (false: not applied, an observation of another value). */
  okCas(id: number, applied: boolean): void {
    if (this.ops[id]?.kind !== 'cas') throw new HistoryError(`okCas(${id}): not a cas`);
    this.ops[id]!.applied = applied;
    this.complete(id, 'ok');
  }

  /** Records the invocation of an incr of `key` by `delta` (INCRBY; DECRBY = a negative delta). Returns the id for okIncr / fail / info. */
  invokeIncr(clientId: number, key: string, delta: number): number {
    return this.push({ clientId, kind: 'incr', key, delta, invokeMs: this.clock(), completeMs: null, outcome: 'info' }, `invokeIncr(${clientId}, ${JSON.stringify(key)})`);
  }

  /** An incr was answered with the key's new value. */
  okIncr(id: number, value: bigint | number | string): void {
    if (this.ops[id]?.kind !== 'incr') throw new HistoryError(`okIncr(${id}): not an incr`);
    this.ops[id]!.value = String(value);
    this.complete(id, 'ok');
  }

  /** Records the invocation of a txn; its `key` is its first key. Returns the id for okTxn / fail / info. */
  invokeTxn(clientId: number, txn: TxnSpec): number {
    const key = txn.compares[0]?.key ?? txn.success[0]?.key ?? txn.failure[0]?.key ?? '';
    return this.push({ clientId, kind: 'txn', key, txn, invokeMs: this.clock(), completeMs: null, outcome: 'info' }, `invokeTxn(${clientId})`);
  }

  /** A txn was answered: which branch ran, and the output of each of its gets (null = not found). */
  okTxn(id: number, succeeded: boolean, results: (string | null)[]): void {
    const op = this.ops[id];
    if (op?.kind !== 'txn') throw new HistoryError(`okTxn(${id}): not a txn`);
    assertOperation({ ...op, outcome: 'ok', completeMs: op.invokeMs, succeeded, results }, `okTxn(${id})`); // before recording it
    Object.assign(op, { succeeded, results });
    this.complete(id, 'ok');
  }

  /** Records the invocation of a range read of [start, end). Returns the id for okRange / fail. */
  invokeRange(clientId: number, start: string, end: string): number {
    return this.push({ clientId, kind: 'range', key: start, end, invokeMs: this.clock(), completeMs: null, outcome: 'info' }, `invokeRange(${clientId})`);
  }

  /** A range read was answered: its keys and values in key order. */
  okRange(id: number, entries: [string, string][]): void {
    if (this.ops[id]?.kind !== 'range') throw new HistoryError(`okRange(${id}): not a range`);
    this.ops[id]!.entries = entries;
    this.complete(id, 'ok');
  }

  /** The operation happened; `value` is a get's output (`null`/`undefined` = not found), not allowed for put/delete. */
  ok(id: number, value?: string | null): void {
    const kind = this.ops[id]?.kind;
    if (kind === 'cas' || kind === 'incr' || kind === 'txn' || kind === 'range') throw new HistoryError(`ok(${id}): a ${kind} completes with ok${kind[0]!.toUpperCase()}${kind.slice(1)}`);
    const op = this.complete(id, 'ok');
    if (op.kind === 'get') op.value = value ?? null;
    else if (value !== undefined) throw new HistoryError(`ok(${id}): only a get has an output value`);
  }

  /** The operation definitely did not happen. */
  fail(id: number): void {
    this.complete(id, 'fail');
  }

  /** The outcome is unknown (timeout, lost connection): the operation may take effect later, or never. */
  info(id: number): void {
    this.complete(id, 'info');
  }

  /** The history so far (copies), in invocation order; pending operations appear as info. */
  operations(): Operation[] {
    return this.ops.map((op) => ({ ...op }));
  }

  /** The history as JSON lines (one operation per line), for a file that `checkHistoryFile` reads. */
  toJSON(): string {
    return historyToJsonLines(this.ops);
  }

  private push(op: Operation, where: string): number {
    assertOperation(op, where);
    this.ops.push(op);
    this.pending.push(true);
    return this.ops.length - 1;
  }

  private complete(id: number, outcome: Outcome): Operation {
    if (!Number.isInteger(id) || id < 0 || id >= this.ops.length) throw new HistoryError(`${outcome}(${id}): unknown operation id`);
    if (!this.pending[id]) throw new HistoryError(`${outcome}(${id}): operation already completed`);
    const op = this.ops[id]!;
    op.completeMs = this.clock();
    op.outcome = outcome;
    this.pending[id] = false;
    assertOperation(op, `${outcome}(${id})`); // a clock running backwards would make completeMs < invokeMs
    return op;
  }
}
