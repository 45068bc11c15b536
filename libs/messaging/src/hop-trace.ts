import { appendFile, appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Opt-in per-hop timestamps for a request's latency breakdown (docs/benchmarks.md "Where one
 * request's time goes"). Off unless the environment names a directory in CAIRN_HOP_TRACE_DIR
 * (then every Cairn process started with that environment records); off, `mark` is one boolean
 * test.
 *
 * On, each `mark(hop)` records (µs on CLOCK_MONOTONIC, hop) in a fixed buffer of
 * HOP_TRACE_EVENTS_MAX events, appended every HOP_TRACE_FLUSH_MS (without blocking the loop) and
 * at exit to `<dir>/<role>-<id>-<pid>.hops.tsv` as lines `µs<TAB>role:hop`; events past the bound
 * between two flushes are dropped and counted (`# dropped N` lines). A process stopped by a signal
 * (Nest re-raises SIGINT/SIGTERM) loses the last interval's marks only. The monotonic clock
 * (`process.hrtime`) is one clock for every process of the box, so marks of different processes
 * compare directly.
 * `tools/bench/dist/hop-breakdown.js DIR` turns the files of one run into the breakdown.
 */
export const HOP_TRACE_EVENTS_MAX = 1_000_000;
/** How often the buffered marks are appended to the file, ms. */
export const HOP_TRACE_FLUSH_MS = 500;
/** Distinct hop names one process may record (they are a fixed set in code; the bound guards a bug). */
export const HOP_TRACE_NAMES_MAX = 4096;

class HopTrace {
  readonly enabled: boolean;
  private readonly dir: string;
  private timesUs: Float64Array | null = null;
  private hops: Uint16Array | null = null;
  private count = 0;
  private dropped = 0;
  private readonly names: string[] = [];
  private readonly ids = new Map<string, number>();
  private tag = `process`;
  private file = '';

  constructor(dir: string | undefined) {
    this.dir = dir ?? '';
    this.enabled = this.dir !== '';
  }

  /** Names this process in its hops (`<role>:<hop>`) and file; registers the write at exit. No-op when off. */
  start(role: string, id: string): void {
    if (!this.enabled || this.timesUs) return;
    this.tag = role;
    this.timesUs = new Float64Array(HOP_TRACE_EVENTS_MAX);
    this.hops = new Uint16Array(HOP_TRACE_EVENTS_MAX);
    this.file = join(this.dir, `${role}-${id}-${process.pid}.hops.tsv`);
    try {
      mkdirSync(this.dir, { recursive: true });
    } catch (e) {
      process.stderr.write(`hop trace directory ${this.dir} not made: ${(e as Error).message}\n`);
    }
    setInterval(() => {
      const text = this.take();
      if (text) appendFile(this.file, text, (e) => e && process.stderr.write(`hop trace not written to ${this.file}: ${e.message}\n`));
    }, HOP_TRACE_FLUSH_MS).unref();
    process.once('exit', () => {
      const text = this.take();
      try {
        if (text) appendFileSync(this.file, text);
      } catch (e) {
        process.stderr.write(`hop trace not written to ${this.file}: ${(e as Error).message}\n`);
      }
    });
  }

  /** Records `hop` now (when on and started). */
  mark(hop: string): void {
    if (!this.timesUs) return;
    if (this.count >= HOP_TRACE_EVENTS_MAX) {
      this.dropped++;
      return;
    }
    let h = this.ids.get(hop);
    if (h === undefined) {
      if (this.names.length >= HOP_TRACE_NAMES_MAX) {
        this.dropped++;
        return;
      }
      h = this.names.length;
      this.names.push(`${this.tag}:${hop}`);
      this.ids.set(hop, h);
    }
    const [s, ns] = process.hrtime();
    this.timesUs[this.count] = s * 1e6 + ns / 1e3;
    this.hops![this.count++] = h;
  }

  /** The buffered marks as file lines (empty when none), emptying the buffer. */
  private take(): string {
    if (!this.timesUs || (this.count === 0 && this.dropped === 0)) return '';
    const lines: string[] = [];
    for (let i = 0; i < this.count; i++) lines.push(`${this.timesUs[i].toFixed(1)}\t${this.names[this.hops![i]]}`);
    if (this.dropped > 0) lines.push(`# dropped ${this.dropped}`);
    this.count = 0;
    this.dropped = 0;
    return lines.join('\n') + '\n';
  }
}

/** The process's hop trace (one per process; configured from the environment at load). */
export const hopTrace = new HopTrace(process.env['CAIRN_HOP_TRACE_DIR']);

/**
 * A subject's kind for a hop name: `cairn.<cluster>.propose.c1` → `propose`, `cairn.<cluster>.ship`
 * → `ship`, `cairn.<cluster>.log.fetch.c1` → `log.fetch`, a reply inbox → `inbox`.
 */
export function subjectKind(subject: string): string {
  if (subject.startsWith('_INBOX')) return 'inbox';
  const parts = subject.split('.');
  if (parts.length <= 3) return parts.slice(2).join('.');
  return parts.slice(2, -1).join('.');
}
