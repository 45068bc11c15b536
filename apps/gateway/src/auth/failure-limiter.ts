/** Addresses whose failures are tracked at most; beyond, the oldest entry is forgotten. */
export const FAILURE_ADDRESSES_MAX = 10_000;

/**
 * Failed authentications per client address in a fixed window (gateway.auth.failuresPerAddressMax
 * per failureWindowMs): once an address reached the bound, every further attempt from it is
 * refused unchecked until its window ends, so password guessing costs the guesser time and the
 * gateway no scrypt work. Bounded: FAILURE_ADDRESSES_MAX addresses, oldest first out.
 */
export class FailureLimiter {
  private readonly windows = new Map<string, { startMs: number; failures: number }>();

  constructor(
    private readonly failuresMax: number,
    private readonly windowMs: number,
    private readonly now: () => number,
    private readonly addressesMax = FAILURE_ADDRESSES_MAX,
  ) {}

  private current(address: string): { startMs: number; failures: number } | undefined {
    const w = this.windows.get(address);
    if (w && this.now() - w.startMs >= this.windowMs) {
      this.windows.delete(address);
      return undefined;
    }
    return w;
  }

  /** Whether `address` used up its failures for now. */
  blocked(address: string): boolean {
    return (this.current(address)?.failures ?? 0) >= this.failuresMax;
  }

  fail(address: string): void {
    const w = this.current(address) ?? { startMs: this.now(), failures: 0 };
    w.failures++;
    this.windows.delete(address);
    this.windows.set(address, w);
    if (this.windows.size > this.addressesMax) this.windows.delete(this.windows.keys().next().value as string);
  }

  size(): number {
    return this.windows.size;
  }
}
