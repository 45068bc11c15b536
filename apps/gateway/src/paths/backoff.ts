/** Exponential backoff with full jitter: attempt 0 → up to 5 ms, doubling, capped at `capMs`. */
export function backoffMs(attempt: number, capMs = 200): number {
  return Math.random() * Math.min(capMs, 5 * 2 ** Math.min(attempt, 16));
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
