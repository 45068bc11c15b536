import { LeaseKeeper } from './lease-keeper';
import { LeaseLostError, LeaseNotFoundError, UnavailableError } from './errors';

describe('LeaseKeeper (keepAlive)', () => {
  it('renews until stopped; closed resolves', async () => {
    let calls = 0;
    let keeper: LeaseKeeper | null = null;
    keeper = new LeaseKeeper(
      async () => {
        if (++calls === 3) keeper!.stop();
        return 30;
      },
      7,
      { intervalMs: 1 },
    );
    await expect(keeper.closed).resolves.toBeUndefined();
    expect(keeper.renewals).toBe(3);
  });

  it('retries a failed renewal and rejects with LeaseLostError once the lease is not found', async () => {
    const answers: (() => number)[] = [
      () => 3000,
      () => {
        throw new UnavailableError('no leader');
      },
      () => {
        throw new LeaseNotFoundError('lease 7 not found');
      },
    ];
    const keeper = new LeaseKeeper(async () => answers.shift()!(), 7, { intervalMs: 1 });
    const err = await keeper.closed.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseLostError);
    expect(err).toMatchObject({ code: 'LEASE_LOST', leaseId: 7 });
    expect(keeper.renewals).toBe(1);
  });

  it('an aborted signal stops it before the first renewal', async () => {
    let calls = 0;
    const keeper = new LeaseKeeper(
      async () => {
        calls++;
        return 10;
      },
      1,
      { signal: AbortSignal.abort() },
    );
    await keeper.closed;
    expect(calls).toBe(0);
  });
});
