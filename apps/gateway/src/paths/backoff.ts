import { realClock, systemRandom, type Clock, type Random } from '@cairn/world';

/** Exponential backoff with full jitter: attempt 0 → up to 5 ms, doubling, capped at `capMs`. */
export function backoffMs(attempt: number, capMs = 200, random: Random = systemRandom): number {
  return random.float() * Math.min(capMs, 5 * 2 ** Math.min(attempt, 16));
}

export function delay(ms: number, clock: Clock = realClock): Promise<void> {
  return new Promise((r) => clock.setTimeout(r, ms));
}
