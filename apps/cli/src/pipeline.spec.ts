import { ResilientConnection, runPipelined, type KvConnection } from './retry';

const coded = (code: string, extra: object = {}) => Object.assign(new Error(code), { code, ...extra });

/** A fake clock that only moves when the code under test "sleeps". */
function fakeTime() {
  let t = 0;
  const sleeps: number[] = [];
  return {
    now: () => t,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      t += ms;
    },
    sleeps,
  };
}

function fakeConn(set: KvConnection['set']): KvConnection & { closed: boolean } {
  return {
    closed: false,
    get: async () => null,
    set,
    close() {
      this.closed = true;
    },
  };
}

describe('ResilientConnection', () => {
  it('retries UNAVAILABLE on the same connection, then succeeds', async () => {
    const time = fakeTime();
    let calls = 0;
    let connects = 0;
    const conn = fakeConn(async () => {
      if (++calls < 3) throw coded('UNAVAILABLE', { retryable: true });
      return { revision: 7 };
    });
    const rc = new ResilientConnection(async () => (connects++, conn), { retryMs: 10_000, ...time });
    await expect(rc.call((c) => c.set('k', 'v'))).resolves.toEqual({ revision: 7 });
    expect(calls).toBe(3);
    expect(connects).toBe(1);
    expect(conn.closed).toBe(false);
    expect(time.sleeps).toHaveLength(2);
  });

  it('reconnects after a connection error and closes the broken connection', async () => {
    const time = fakeTime();
    const broken = fakeConn(async () => {
      throw coded('ECONNRESET');
    });
    const good = fakeConn(async () => ({ revision: 1 }));
    const conns = [broken, good];
    const rc = new ResilientConnection(async () => conns.shift()!, { retryMs: 10_000, ...time });
    await expect(rc.call((c) => c.set('k', 'v'))).resolves.toEqual({ revision: 1 });
    await Promise.resolve();
    expect(broken.closed).toBe(true);
    expect(rc.reconnects).toBe(2);
  });

  it('retries a refused connect and shares one connect among concurrent callers', async () => {
    const time = fakeTime();
    let connects = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const rc = new ResilientConnection(
      async () => {
        connects++;
        if (connects === 1) throw coded('ECONNREFUSED');
        await gate;
        return fakeConn(async () => ({ revision: 2 }));
      },
      { retryMs: 10_000, ...time },
    );
    const a = rc.call((c) => c.set('a', '1'));
    const b = rc.call((c) => c.set('b', '1'));
    release();
    await expect(Promise.all([a, b])).resolves.toEqual([{ revision: 2 }, { revision: 2 }]);
    // One failed connect, then one connect shared by both callers (not one per caller).
    expect(connects).toBe(2);
  });

  it('throws a non-retryable error at once', async () => {
    const time = fakeTime();
    const rc = new ResilientConnection(async () => fakeConn(async () => Promise.reject(coded('VALUE_TOO_LARGE', { retryable: false }))), {
      retryMs: 10_000,
      ...time,
    });
    await expect(rc.call((c) => c.set('k', 'v'))).rejects.toMatchObject({ code: 'VALUE_TOO_LARGE' });
    expect(time.sleeps).toHaveLength(0);
  });

  it('gives up with the last retryable error after retryMs', async () => {
    const time = fakeTime();
    const rc = new ResilientConnection(async () => fakeConn(async () => Promise.reject(coded('UNAVAILABLE', { retryable: true }))), {
      retryMs: 5_000,
      ...time,
    });
    await expect(rc.call((c) => c.set('k', 'v'))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(time.now()).toBe(5_000);
  });
});

describe('runPipelined', () => {
  it('never has more than windowMax in flight and runs every item', async () => {
    const pending: (() => void)[] = [];
    let inflight = 0;
    let peak = 0;
    const done: number[] = [];
    const run = runPipelined([1, 2, 3, 4, 5, 6, 7], 3, (n) => {
      inflight++;
      peak = Math.max(peak, inflight);
      return new Promise<void>((r) =>
        pending.push(() => {
          inflight--;
          done.push(n);
          r();
        }),
      );
    });
    while (done.length < 7) {
      await new Promise((r) => setImmediate(r));
      pending.shift()?.();
    }
    await run;
    expect(peak).toBe(3);
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('stops taking items after a failure and rethrows it', async () => {
    const started: number[] = [];
    await expect(
      runPipelined([1, 2, 3, 4, 5], 1, async (n) => {
        started.push(n);
        if (n === 2) throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(started).toEqual([1, 2]);
  });

  it('rejects a bad window', async () => {
    await expect(runPipelined([], 0, async () => undefined)).rejects.toThrow(RangeError);
  });
});
