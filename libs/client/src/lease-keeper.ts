import { LeaseLostError, LeaseNotFoundError } from './errors';
import type { RequestOptions } from './commands';

/** Options of `keepAlive` (etcd clientv3 KeepAlive; nats.js-style handle). */
export interface KeepAliveOptions {
  /** Aborting stops the loop: `closed` resolves (the lease is left to expire, or revoke it). */
  signal?: AbortSignal;
  /** Between renewals, ms; default a third of the lease's TTL (etcd's client does the same). */
  intervalMs?: number;
  /** Called after each acknowledged renewal with the lease's TTL, ms. */
  onRenewed?: (ttlMs: number) => void;
}

/** What the loop needs: one LEASE_KEEPALIVE (resolves the TTL, ms; rejects LeaseNotFoundError when the lease is not live). */
export type KeepAliveOnce = (leaseId: number, opts: RequestOptions) => Promise<number>;

/** Wait after a failed renewal before the next attempt, ms (at most; a third of the TTL when shorter). */
const RETRY_AFTER_FAILURE_MS_MAX = 500;

/**
 * A running keep-alive of one lease: renews it at the leader every `intervalMs` (default TTL / 3)
 * until stopped. A failed renewal (no gateway, no leader) is retried; the lease is **lost** when
 * the gateway answers NOT_FOUND (it expired or was revoked) or no renewal was acknowledged for a
 * whole TTL (the leader may have expired it): `closed` then rejects with LeaseLostError and the
 * loop ends. `stop()` or the AbortSignal ends it quietly (`closed` resolves).
 */
export class LeaseKeeper {
  /** Resolves when stopped; rejects with LeaseLostError when the lease is lost. */
  readonly closed: Promise<void>;
  /** Renewals acknowledged so far. */
  renewals = 0;
  private readonly abort = new AbortController();
  private wake: (() => void) | null = null;

  constructor(
    private readonly once: KeepAliveOnce,
    readonly leaseId: number,
    private readonly opts: KeepAliveOptions = {},
  ) {
    if (opts.signal?.aborted) this.abort.abort();
    opts.signal?.addEventListener('abort', () => this.stop(), { once: true });
    this.closed = this.run();
    // The caller may never await `closed`; a loss must not be an unhandled rejection.
    this.closed.catch(() => undefined);
  }

  /** Ends the loop after the request in flight; `closed` resolves. */
  stop(): void {
    this.abort.abort();
    this.wake?.();
  }

  private async run(): Promise<void> {
    let ttlMs = 0;
    let lastAckMs = Date.now();
    while (!this.abort.signal.aborted) {
      let waitMs: number;
      try {
        ttlMs = await this.once(this.leaseId, { signal: this.abort.signal, ...(ttlMs ? { timeoutMs: ttlMs } : {}) });
        lastAckMs = Date.now();
        this.renewals++;
        this.opts.onRenewed?.(ttlMs);
        waitMs = this.opts.intervalMs ?? Math.max(1, Math.floor(ttlMs / 3));
      } catch (e) {
        if (this.abort.signal.aborted) return;
        if (e instanceof LeaseNotFoundError) throw new LeaseLostError(this.leaseId, e.message, e);
        if (ttlMs && Date.now() - lastAckMs >= ttlMs) throw new LeaseLostError(this.leaseId, `no renewal acknowledged within its TTL of ${ttlMs} ms (last error: ${(e as Error).message})`, e);
        waitMs = Math.min(RETRY_AFTER_FAILURE_MS_MAX, ttlMs ? Math.floor(ttlMs / 3) : RETRY_AFTER_FAILURE_MS_MAX);
      }
      await this.sleep(waitMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.abort.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }
}
