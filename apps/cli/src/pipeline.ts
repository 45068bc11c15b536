import { fullJitterBackoffMs } from '@cairn/client';
import { isConnectionError, isRetryable } from './exit-codes';

/** What the CLI needs from a Cairn connection (`CairnClient` satisfies it; tests pass fakes). */
export interface KvConnection {
  get(key: string): Promise<{ value: string | Uint8Array; revision: number | bigint } | null>;
  set(key: string, value: string): Promise<{ revision: number | bigint }>;
  close(): Promise<void> | void;
}

export interface RetryOptions {
  /** How long one operation may keep retrying, ms, counted from its first attempt. */
  retryMs: number;
  /** Backoff ceiling of the first retry, ms; doubles per attempt up to `backoffMaxMs` (full jitter below it). */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** Injected for tests (no real waiting); default setTimeout. */
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  /** Told about every retry (for a warning line), with the error and the attempt number. */
  onRetry?: (err: unknown, attempt: number) => void;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A connection that survives gateway restarts: operations run through `call`, which retries
 * retryable errors (UNAVAILABLE, refused/closed connections, timeouts) with backoff until
 * `retryMs` after the first attempt, reconnecting (one connect shared by all callers) when the
 * connection is broken. Non-retryable errors are thrown at once.
 * Safe for SET (idempotent: same key, same value) and GET; not meant for DEL revisions.
 */
export class ResilientConnection {
  private current: KvConnection | null = null;
  private connecting: Promise<KvConnection> | null = null;
  private closed = false;
  /** Number of successful (re)connects, for the summary line. */
  reconnects = 0;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;

  constructor(
    private readonly connect: () => Promise<KvConnection>,
    private readonly opts: RetryOptions,
  ) {
    this.sleep = opts.sleep ?? realSleep;
    this.now = opts.now ?? Date.now;
  }

  /** Runs `op` on a live connection, retrying per the rules above. @throws the last error when out of time or not retryable. */
  async call<T>(op: (c: KvConnection) => Promise<T>): Promise<T> {
    const deadline = this.now() + this.opts.retryMs;
    for (let attempt = 0; ; attempt++) {
      let conn: KvConnection | null = null;
      try {
        conn = await this.connection();
        return await op(conn);
      } catch (e) {
        if (this.closed || !isRetryable(e) || this.now() >= deadline) throw e;
        if (conn && isConnectionError(e)) this.drop(conn);
        this.opts.onRetry?.(e, attempt + 1);
        const wait = fullJitterBackoffMs(attempt, this.opts.backoffMinMs ?? 50, this.opts.backoffMaxMs ?? 2_000, Math.random);
        await this.sleep(Math.max(0, Math.min(wait, deadline - this.now())));
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.current;
    this.current = null;
    if (c) await c.close();
  }

  private connection(): Promise<KvConnection> {
    if (this.closed) return Promise.reject(new Error('connection closed by the caller'));
    if (this.current) return Promise.resolve(this.current);
    if (!this.connecting) {
      this.connecting = this.connect().then(
        (c) => {
          this.connecting = null;
          this.current = c;
          this.reconnects++;
          return c;
        },
        (e: unknown) => {
          this.connecting = null;
          throw e;
        },
      );
    }
    return this.connecting;
  }

  /** Forgets a broken connection (only if it is still the current one: others may have reconnected already). */
  private drop(conn: KvConnection): void {
    if (this.current !== conn) return;
    this.current = null;
    Promise.resolve()
      .then(() => conn.close())
      .catch(() => undefined);
  }
}

/**
 * Runs `op` over `items` with at most `windowMax` operations in flight, in input order of start.
 * Stops taking new items after the first failure and rethrows it once in-flight ones settle.
 */
export async function runPipelined<T>(items: AsyncIterable<T> | Iterable<T>, windowMax: number, op: (item: T) => Promise<void>): Promise<void> {
  if (!Number.isInteger(windowMax) || windowMax < 1) throw new RangeError(`windowMax must be a positive integer, got ${windowMax}`);
  let inflight = 0;
  let failure: { err: unknown } | null = null;
  let wake: (() => void) | null = null;
  const settled = () => {
    inflight--;
    const w = wake;
    wake = null;
    w?.();
  };
  for await (const item of items) {
    while (inflight >= windowMax) await new Promise<void>((r) => (wake = r));
    if (failure) break;
    inflight++;
    op(item).then(settled, (err: unknown) => {
      failure ??= { err };
      settled();
    });
  }
  while (inflight > 0) await new Promise<void>((r) => (wake = r));
  if (failure) throw (failure as { err: unknown }).err;
}
