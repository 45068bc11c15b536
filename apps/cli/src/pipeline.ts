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
