import { Opcode } from '@cairn/protocol';
import { CairnError, ClientOverloadedError, ConnectionClosedError, NoGatewayError, NotLeaderError, TimeoutError } from './errors';

/**
 * Which writes CairnPool may send again after a failed attempt:
 * - `'never'`: a SET/DEL gets exactly one attempt; every failure goes to the caller.
 * - `'safe'`: a SET/DEL is re-sent only when the failure proves the gateway never received it
 *   (see `provablyNotSent`). Never after an UNAVAILABLE reply, a timeout or a lost connection
 *   once the frame was written: the write may have been applied, and re-sending it could
 *   overwrite a later write of another client (or double-count its revision). An INCR carries
 *   the client's session, so under `'safe'` it is re-sent on any retryable error (at most once).
 */
export type RetryWrites = 'never' | 'safe';

/** Idempotent requests: sending them twice has the effect of sending them once (reads: GET, RANGE; PING, STATUS; LEASE_KEEPALIVE, LEASE_TTL, LEASE_LIST: a second renewal sets the same deadline give or take the delay). */
export function isIdempotent(opcode: Opcode): boolean {
  return opcode === Opcode.Get || opcode === Opcode.Range || opcode === Opcode.Ping || opcode === Opcode.Status || opcode === Opcode.LeaseKeepAlive || opcode === Opcode.LeaseTtl || opcode === Opcode.LeaseList;
}

/**
 * True when the request provably never reached a gateway's write path, so its outcome is
 * "not applied": no live connection (NoGatewayError), too many callers waiting
 * (ClientOverloadedError), a connection that closed or a timeout that fired before the frame was
 * written (`requestSent: false`), or NOT_LEADER (a replica refuses a proposal before appending it).
 * UNAVAILABLE is *not* one of them: the gateway also sends it when a proposed write was not
 * acknowledged in time (docs/protocol.md, Statuses).
 */
export function provablyNotSent(err: unknown): boolean {
  if (err instanceof NoGatewayError || err instanceof ClientOverloadedError || err instanceof NotLeaderError) return true;
  if (err instanceof ConnectionClosedError || err instanceof TimeoutError) return !err.requestSent;
  return false;
}

/**
 * Whether a failed attempt of `opcode` may be retried: idempotent requests on any retryable
 * CairnError (`retryable: true`); SET/DEL per `retryWrites`; a write `inClientSession` (an INCR
 * carrying the client's session, docs/protocol.md "INCR") on any retryable error under `'safe'`. AbortError and non-retryable
 * errors (BAD_REQUEST, TOO_LARGE, ERROR, protocol violations) never.
 */
export function mayRetry(opcode: Opcode, err: unknown, retryWrites: RetryWrites, inClientSession = false): boolean {
  if (!(err instanceof CairnError) || !err.retryable) return false;
  if (isIdempotent(opcode)) return true;
  // A write numbered in the client's own session applies at most once however often it is re-sent.
  return retryWrites === 'safe' && (inClientSession || provablyNotSent(err));
}

/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter":
 * full jitter draws from [0, ceiling); "equal jitter" would draw from [ceiling/2, ceiling)):
 * `floor(random() * min(capMs, baseMs * 2^attempt))`, ms. Attempt 0 is the first retry. Always
 * within [0, capMs]. The one backoff of Cairn: CairnPool (and so the CLI) and the gateway's retries
 * towards the cluster use it, each with its own base and cap. `random` is injected (a float in
 * [0, 1): `Math.random`, or a seeded one so a simulation replays).
 * @throws RangeError on a negative attempt or bounds.
 */
export function fullJitterBackoffMs(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  if (!(attempt >= 0) || !(baseMs >= 0) || !(capMs >= 0)) throw new RangeError(`backoff needs attempt, baseMs, capMs >= 0, got ${attempt}, ${baseMs}, ${capMs}`);
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 52));
  return Math.floor(random() * ceiling);
}

/**
 * A retry budget as a token bucket (after gRPC's retry throttling): it starts full with
 * `tokensMax` tokens; a retry spends one; a success gives back `ratio` (e.g. 0.1 → in steady
 * state at most one retry per ten successes, plus a burst of `tokensMax`). With the bucket empty
 * failures go straight to the caller, so a sick cluster is not hit by a retry storm.
 */
export class RetryBudget {
  private tokens: number;

  constructor(
    readonly tokensMax: number,
    readonly ratio: number,
  ) {
    if (!(tokensMax >= 0) || !(ratio >= 0)) throw new RangeError(`retry budget needs tokensMax >= 0 and ratio >= 0, got ${tokensMax}, ${ratio}`);
    this.tokens = tokensMax;
  }

  /** Takes one token for a retry; false when fewer than one is left. */
  trySpend(): boolean {
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  onSuccess(): void {
    this.tokens = Math.min(this.tokensMax, this.tokens + this.ratio);
  }

  available(): number {
    return this.tokens;
  }
}
