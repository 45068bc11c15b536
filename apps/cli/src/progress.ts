import { SingleBar } from 'cli-progress';
import type { ProgressSink } from './transfer';

export interface ProgressOptions {
  /** What the rows are doing, e.g. "import" or "verify". */
  label: string;
  /** Input file size, bytes: the bar and ETA follow bytes consumed, so no pre-counting pass is needed. */
  totalBytes: number;
  stream: NodeJS.WriteStream;
  /** Non-TTY: one progress line per this many ms. */
  lineIntervalMs?: number;
}

export interface ProgressReporter extends ProgressSink {
  stop(): void;
}

/** Rows/s and ETA text for a plain progress line. */
export function progressLine(label: string, rows: number, bytes: number, totalBytes: number, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? (rows * 1000) / elapsedMs : 0;
  const pct = totalBytes > 0 ? Math.min(100, (bytes * 100) / totalBytes) : 0;
  const etaS = bytes > 0 && totalBytes > bytes ? ((totalBytes - bytes) * elapsedMs) / bytes / 1000 : 0;
  return `${label}: ${rows} rows, ${pct.toFixed(1)}%, ${Math.round(rate)} rows/s, ETA ${Math.ceil(etaS)}s`;
}

/**
 * A progress bar (rows, rows/s, ETA) on a TTY, else a plain line every `lineIntervalMs` (5 s):
 * progress output never mixes into stdout, which carries the command's result.
 */
export function createProgress(opts: ProgressOptions): ProgressReporter {
  const started = Date.now();
  let rows = 0;
  let bytes = 0;
  if (opts.stream.isTTY) {
    const bar = new SingleBar({
      stream: opts.stream,
      format: `${opts.label} [{bar}] {percentage}% | {rows} rows | {rate} rows/s | ETA {eta_formatted}`,
      hideCursor: true,
      etaBuffer: 200,
      fps: 5,
    });
    bar.start(Math.max(1, opts.totalBytes), 0, { rows: 0, rate: 0 });
    return {
      update(r, b) {
        rows = r;
        bytes = b;
        const elapsed = Date.now() - started;
        bar.update(Math.min(bytes, opts.totalBytes), { rows, rate: elapsed > 0 ? Math.round((rows * 1000) / elapsed) : 0 });
      },
      stop() {
        bar.stop();
      },
    };
  }
  const timer = setInterval(
    () => opts.stream.write(progressLine(opts.label, rows, bytes, opts.totalBytes, Date.now() - started) + '\n'),
    opts.lineIntervalMs ?? 5_000,
  );
  timer.unref();
  return {
    update(r, b) {
      rows = r;
      bytes = b;
    },
    stop() {
      clearInterval(timer);
    },
  };
}
