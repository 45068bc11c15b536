import { fullJitterBackoffMs } from '@cairn/client';
import { VerifyFailedError, isRetryable } from './exit-codes';
import { runPipelined } from './pipeline';
import { TxnOpKind, type TxnOp, type TxnRequest } from '@cairn/protocol';
import type { TsvRow } from './tsv';

/** What import/verify need from the connection (CairnPool satisfies it; tests pass fakes). */
export interface KvConnection {
  /** `revision` is the key's mod revision; `createRevision` and `version` (etcd's metadata) when the gateway sends them. */
  get(key: string): Promise<{ value: string | Uint8Array; revision: number | bigint; createRevision?: number; version?: number } | null>;
  set(key: string, value: string): Promise<{ revision: number | bigint }>;
  /** One etcd Txn (TLV TXN); absent: import SETs row by row. */
  commitTxn?(request: TxnRequest): Promise<unknown>;
}

/**
 * How a row is retried. CairnPool sends a write at most once when its outcome is unknown (an
 * UNAVAILABLE reply, a timeout or a lost connection after sending): it cannot know the write is
 * safe to repeat. A row of import is (same key, same value, written again: the same end state),
 * and a GET always is; so import/verify retry a row themselves on any retryable error until
 * `retryMs` after its first attempt. The pool still does the connecting: endpoint failover and
 * background reconnects.
 */
export interface RowRetry {
  /** How long one row may keep retrying, ms, counted from its first attempt. */
  retryMs: number;
  /** Backoff ceiling of the first retry, ms, doubling per retry up to `backoffMaxMs` (full jitter below it); defaults 50 and 2000. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Injected for tests (no real waiting, a clock that the waits advance); defaults setTimeout, Date.now, Math.random. */
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  random?: () => number;
  /** Told about every retry (for a warning line), with the error and the retry number (1 = first). */
  onRetry?: (err: unknown, retry: number) => void;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Runs `op` until it resolves, retrying retryable errors (exit-codes `isRetryable`) with
 * full-jitter backoff (`fullJitterBackoffMs`). @throws a non-retryable error at once, or the last
 * retryable one once `retryMs` have passed since the first attempt.
 */
export async function retryRow<T>(op: () => Promise<T>, r: RowRetry): Promise<T> {
  const now = r.now ?? Date.now;
  const sleep = r.sleep ?? realSleep;
  const deadline = now() + r.retryMs;
  for (let retry = 0; ; retry++) {
    try {
      return await op();
    } catch (e) {
      if (!isRetryable(e) || now() >= deadline) throw e;
      r.onRetry?.(e, retry + 1);
      const waitMs = fullJitterBackoffMs(retry, r.backoffBaseMs ?? 50, r.backoffMaxMs ?? 2_000, r.random ?? Math.random);
      await sleep(Math.max(0, Math.min(waitMs, deadline - now())));
    }
  }
}

/** Receives progress after each finished row; `bytes` counts the input consumed so far. */
export interface ProgressSink {
  update(rows: number, bytes: number): void;
}

export interface ImportResult {
  rows: number;
  seconds: number;
  rowsPerSecond: number;
}

export interface VerifyResult {
  rows: number;
  ok: number;
  missing: number;
  mismatched: number;
  /** First few problem keys (at most `examplesMax`), for the report. */
  examples: { key: string; problem: 'missing' | 'mismatched'; lineNo: number }[];
}

function tracker(progress: ProgressSink | undefined) {
  let rows = 0;
  let bytes = 0;
  return {
    done(row: TsvRow) {
      rows++;
      bytes += row.bytes;
      progress?.update(rows, bytes);
    },
    get rows() {
      return rows;
    },
  };
}

export interface TransferOptions {
  /** Rows in flight (the pipelining window). */
  windowMax: number;
  retry: RowRetry;
  progress?: ProgressSink;
}

/**
 * SETs every row (key → value), `windowMax` in flight; each row is retried on retryable errors
 * (`retryRow`: a SET of the same value is idempotent). With `batch` (rowsMax > 1) and a connection
 * that commits TXNs, the rows go as etcd Txns of puts (`importBatches`), `batch.inflightMax` in
 * flight, each retried whole (puts of the same values: idempotent too); a TXN refused with a
 * non-retryable error is done again row by row, so the error names its row. @throws the first
 * non-retryable error, or a retryable one that outlived the retry deadline, with the (first) row's
 * line number prefixed.
 */
export async function importRows(rows: AsyncIterable<TsvRow>, conn: KvConnection, opts: TransferOptions & { now?: () => number; batch?: ImportBatch }): Promise<ImportResult> {
  const now = opts.now ?? Date.now;
  const started = now();
  const t = tracker(opts.progress);
  const setRow = async (row: TsvRow) => {
    await retryRow(() => conn.set(row.key, row.value), opts.retry).catch((e: unknown) => {
      throw withLine(e, row);
    });
    t.done(row);
  };
  const batch = opts.batch;
  const commitTxn = conn.commitTxn?.bind(conn);
  if (!batch || batch.rowsMax <= 1 || !commitTxn) await runPipelined(rows, opts.windowMax, setRow);
  else {
    await runPipelined(importBatches(rows, batch), batch.inflightMax, async (b) => {
      try {
        await retryRow(() => commitTxn({ compares: [], success: b.map(putOp), failure: [] }), opts.retry);
      } catch (e) {
        // Refused whole (a key or value over the gateway's limits, fewer txn ops allowed, no TXN):
        // row by row, so the row at fault is the one named, as without batches.
        if (isRetryable(e)) throw withLine(e, b[0]);
        for (const row of b) await setRow(row);
        return;
      }
      for (const row of b) t.done(row);
    });
  }
  const seconds = (now() - started) / 1000;
  return { rows: t.rows, seconds, rowsPerSecond: seconds > 0 ? t.rows / seconds : t.rows };
}

/**
 * How import groups rows into transactions (etcd Txn of puts, docs/cli.md "import"): at most
 * `rowsMax` rows (within the gateway's txnOpsMax, 128 by default) and `bytesMax` bytes of keys and
 * values (within its valueBytesMax, 1 MiB by default) per TXN. A batch ends before a key it holds
 * already, so a key's later row is a later write, as row by row.
 */
export interface ImportBatch {
  rowsMax: number;
  bytesMax: number;
  /** TXNs in flight at once (the pipelining window of a batched import). */
  inflightMax: number;
}

/** The default: 128 rows (gateway.txnOpsMax's default), 256 KiB, 32 TXNs in flight (4,096 rows). */
export const IMPORT_BATCH_DEFAULT: ImportBatch = { rowsMax: 128, bytesMax: 256 * 1024, inflightMax: 32 };

/** Bytes a row adds to a TxnRequest: its key and value (UTF-8) and each op's fixed fields, counted generously. */
const TXN_OP_OVERHEAD_BYTES = 32;

function putOp(row: TsvRow): TxnOp {
  return { kind: TxnOpKind.Put, key: row.keyBytes, value: row.valueBytes, flags: 0 };
}

/** Groups `rows` into batches under `b` (ImportBatch); a row alone always forms a batch. */
export async function* importBatches(rows: AsyncIterable<TsvRow>, b: ImportBatch): AsyncGenerator<TsvRow[]> {
  let batch: TsvRow[] = [];
  let keys = new Set<string>();
  let bytes = 0;
  for await (const row of rows) {
    const size = row.bytes + TXN_OP_OVERHEAD_BYTES;
    if (batch.length > 0 && (batch.length >= b.rowsMax || bytes + size > b.bytesMax || keys.has(row.key))) {
      yield batch;
      batch = [];
      keys = new Set();
      bytes = 0;
    }
    batch.push(row);
    keys.add(row.key);
    bytes += size;
  }
  if (batch.length > 0) yield batch;
}

/** Equal as UTF-8 bytes (the client may return a Buffer/Uint8Array or a string). */
export function sameValue(expected: string, actual: string | Uint8Array): boolean {
  if (typeof actual === 'string') return actual === expected;
  return Buffer.from(expected, 'utf8').equals(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength));
}

/** GETs every row's key and compares with the row's value; same pipelining and retries as import. */
export async function verifyRows(rows: AsyncIterable<TsvRow>, conn: KvConnection, opts: TransferOptions & { examplesMax?: number }): Promise<VerifyResult> {
  const r: VerifyResult = { rows: 0, ok: 0, missing: 0, mismatched: 0, examples: [] };
  const examplesMax = opts.examplesMax ?? 10;
  const t = tracker(opts.progress);
  await runPipelined(rows, opts.windowMax, async (row) => {
    const got = await retryRow(() => conn.get(row.key), opts.retry).catch((e: unknown) => {
      throw withLine(e, row);
    });
    r.rows++;
    const problem = got === null ? 'missing' : sameValue(row.value, got.value) ? null : 'mismatched';
    if (problem === null) r.ok++;
    else {
      r[problem]++;
      if (r.examples.length < examplesMax) r.examples.push({ key: row.key, problem, lineNo: row.lineNo });
    }
    t.done(row);
  });
  return r;
}

/** `rows=N ok=N missing=N mismatched=N` */
export function formatVerify(r: VerifyResult): string {
  return `rows=${r.rows} ok=${r.ok} missing=${r.missing} mismatched=${r.mismatched}`;
}

/** @throws VerifyFailedError when any key is missing or mismatched. */
export function assertVerified(r: VerifyResult): void {
  if (r.missing > 0 || r.mismatched > 0) throw new VerifyFailedError(`verify failed: ${formatVerify(r)}`);
}

/** Prefixes the row's line number to an error's message, keeping its class and code (for the exit code). */
function withLine(e: unknown, row: TsvRow): unknown {
  if (e instanceof Error && !e.message.startsWith('line ')) e.message = `line ${row.lineNo} (key ${JSON.stringify(row.key)}): ${e.message}`;
  return e;
}
