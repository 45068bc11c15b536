import { VerifyFailedError } from './exit-codes';
import { runPipelined, type ResilientConnection } from './retry';
import type { TsvRow } from './tsv';

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

/**
 * SETs every row (key → value), `windowMax` in flight; each row is retried through `conn` on
 * retryable errors (a SET is idempotent). @throws the first non-retryable error, or a retryable one
 * that outlived the retry deadline, with the row's line number prefixed.
 */
export async function importRows(
  rows: AsyncIterable<TsvRow>,
  conn: ResilientConnection,
  opts: { windowMax: number; progress?: ProgressSink; now?: () => number },
): Promise<ImportResult> {
  const now = opts.now ?? Date.now;
  const started = now();
  const t = tracker(opts.progress);
  await runPipelined(rows, opts.windowMax, async (row) => {
    await conn.call((c) => c.set(row.key, row.value)).catch((e: unknown) => {
      throw withLine(e, row);
    });
    t.done(row);
  });
  const seconds = (now() - started) / 1000;
  return { rows: t.rows, seconds, rowsPerSecond: seconds > 0 ? t.rows / seconds : t.rows };
}

/** Equal as UTF-8 bytes (the client may return a Buffer/Uint8Array or a string). */
export function sameValue(expected: string, actual: string | Uint8Array): boolean {
  if (typeof actual === 'string') return actual === expected;
  return Buffer.from(expected, 'utf8').equals(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength));
}

/** GETs every row's key and compares with the row's value; same pipelining and retries as import. */
export async function verifyRows(
  rows: AsyncIterable<TsvRow>,
  conn: ResilientConnection,
  opts: { windowMax: number; progress?: ProgressSink; examplesMax?: number },
): Promise<VerifyResult> {
  const r: VerifyResult = { rows: 0, ok: 0, missing: 0, mismatched: 0, examples: [] };
  const examplesMax = opts.examplesMax ?? 10;
  const t = tracker(opts.progress);
  await runPipelined(rows, opts.windowMax, async (row) => {
    const got = await conn.call((c) => c.get(row.key)).catch((e: unknown) => {
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
