import { build, type Histogram } from 'hdr-histogram-js';
import { performance } from 'node:perf_hooks';
import type { Workload } from './options';
import type { RoundResult } from './report';
import type { Conn } from './stores';

/** `key_` + 12 digits: a key every store accepts (NATS KV keys allow no `:`). */
export function keyName(i: number): string {
  return 'key_' + String(i).padStart(12, '0');
}

/** Failures in a row after which a client of a point stops (its connection is likely gone). */
export const ERRORS_IN_A_ROW_MAX = 100;
/** Requests in flight per connection while loading the key space. */
export const LOAD_INFLIGHT_MAX = 8;

function newHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
}

/** What one round of a point measured, plus its first error's message. */
export interface Measured {
  result: RoundResult;
  firstError?: string;
}

/**
 * One point's round: every connection in `conns` issues `w` on a uniformly random key of
 * [0, keys), one request at a time (closed loop), until `durationMs` has passed; latency from
 * issue to answer in µs into an HDR histogram (3 significant digits). An aborted `signal` ends it early.
 */
export async function measure(conns: readonly Conn[], w: Workload, keys: number, value: Buffer, durationMs: number, signal?: AbortSignal): Promise<Measured> {
  const h = newHistogram();
  let ok = 0;
  let errors = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const end = start + durationMs;
  await Promise.all(
    conns.map(async (c) => {
      let inARow = 0;
      while (performance.now() < end && inARow < ERRORS_IN_A_ROW_MAX && signal?.aborted !== true) {
        const t0 = performance.now();
        try {
          await c.op(w, keyName(Math.floor(Math.random() * keys)), value);
          h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
          ok++;
          inARow = 0;
        } catch (e) {
          errors++;
          inARow++;
          firstError ??= e instanceof Error ? e.message : String(e);
        }
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const at = (p: number) => (h.totalCount === 0 ? 0 : Math.min(h.getValueAtPercentile(p), h.maxValue) / 1000);
  const result = { opsPerSec: ok / seconds, p50Ms: at(50), p99Ms: at(99), errors };
  h.destroy();
  return firstError === undefined ? { result } : { result, firstError };
}

/**
 * Puts every key of [0, keys) once, LOAD_INFLIGHT_MAX at a time per connection, so the reads find
 * values; an aborted `signal` ends it early. @throws the first error (a store that cannot take the load is not benchmarked).
 */
export async function loadKeys(conns: readonly Conn[], keys: number, value: Buffer, signal?: AbortSignal): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (c: Conn) => {
    try {
      while (!failed && next < keys && signal?.aborted !== true) await c.op('put', keyName(next++), value);
    } catch (e) {
      // The other workers stop too: the store is about to be stopped.
      failed = true;
      throw e;
    }
  };
  await Promise.all(conns.flatMap((c) => Array.from({ length: LOAD_INFLIGHT_MAX }, () => worker(c))));
}
