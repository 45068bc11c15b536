import { AbortError, CandidatesMaxError, LeaseLostError } from './errors';
import { campaign, lock, observeLeader, type Held, type LeaderObservation } from './recipes';
import { MemoryKv } from './testing/memory-kv';

/** Resolves once `s` has `n` watches open on `key` (a waiter has reached its wait). */
async function watching(s: MemoryKv, key: string, n = 1): Promise<void> {
  while ((s.watching.get(key) ?? 0) < n) await s.changedOnce();
}

/** A lock call whose holding the test can check without awaiting it. */
function contend(s: MemoryKv, name: string, signal?: AbortSignal): { held: Promise<Held>; done: () => Held | null } {
  let h: Held | null = null;
  const held = lock(s, name, { ttlSec: 1, signal }).then((x) => (h = x));
  held.catch(() => undefined);
  return { held, done: () => h };
}

/** A holds lock 'l', B waits on A, C waits on B (B may leave by `leaveB`). */
async function queueOfThree(s: MemoryKv, leaveB?: AbortSignal) {
  const a = await lock(s, 'l', { ttlSec: 1 });
  const b = contend(s, 'l', leaveB);
  await watching(s, a.key);
  const c = contend(s, 'l');
  const bKey = `l/${(a.leaseId + 1).toString(16)}`;
  await watching(s, bKey); // C waits on B, not on A
  return { a, b, c, bKey };
}

describe('recipes: lock (etcd concurrency.Mutex: one key per contender, the oldest holds)', () => {
  it('a free lock is taken at once: the key name/<lease hex>, its create revision the fencing token; release deletes it', async () => {
    const s = new MemoryKv();
    await s.set('other', 'x');
    const held = await lock(s, 'locks/a', { ttlSec: 2 });
    // Revisions are log indexes: the put at 1, the lease grant at 2, the lock key's create at 3.
    expect(held.key).toBe(`locks/a/${held.leaseId.toString(16)}`);
    expect(held.fencingToken).toBe(3n);
    expect(s.kvs.get(held.key)).toMatchObject({ lease: held.leaseId, createRevision: 3 });
    expect(held.guard()).toMatchObject({ operand: 3 });
    // Uncontended: grant, SET, one RANGE page (it shows our key: no GET).
    expect(s.calls.map((c) => c.op)).toEqual(['set', 'leaseGrant', 'set', 'range']);
    await held.release();
    expect(s.kvs.has(held.key)).toBe(false);
    await expect(held.lost).resolves.toBeUndefined();
    expect(held.signal.aborted).toBe(true);
    await held.release(); // idempotent: the lease is already gone
  });

  it('waiters queue: each watches only the key just ahead of it, a release wakes one waiter, tokens grow', async () => {
    const s = new MemoryKv();
    const { a, b, c } = await queueOfThree(s);
    expect(s.watching.get(a.key)).toBe(1);
    const scans = s.count('range');
    await s.set('l2/x', 'v'); // other keys wake no one
    await a.release();
    const hb = await b.held;
    expect(s.count('range')).toBe(scans + 1); // only B looked again: no herd
    expect(c.done()).toBeNull();
    await hb.release();
    const hc = await c.held;
    expect([a.fencingToken < hb.fencingToken, hb.fencingToken < hc.fencingToken]).toEqual([true, true]);
  });

  it('a waiter that leaves the middle of the queue: the one behind it waits on the holder', async () => {
    const s = new MemoryKv();
    const leaveB = new AbortController();
    const { a, b, c, bKey } = await queueOfThree(s, leaveB.signal);
    leaveB.abort();
    await expect(b.held).rejects.toBeInstanceOf(AbortError);
    await watching(s, a.key); // C looked again and now waits on A
    expect(s.kvs.has(bKey)).toBe(false);
    expect(c.done()).toBeNull();
    await a.release();
    expect((await c.held).fencingToken).toBeGreaterThan(a.fencingToken);
  });

  it('the holder paused past its TTL: its lease expires, the next waiter holds with a greater token; the old holder learns it lost', async () => {
    const s = new MemoryKv();
    const a = await lock(s, 'l', { ttlSec: 1 });
    const b = contend(s, 'l');
    await watching(s, a.key);
    await s.expire(a.leaseId);
    const hb = await b.held;
    expect(hb.fencingToken).toBeGreaterThan(a.fencingToken);
    await expect(a.lost).rejects.toBeInstanceOf(LeaseLostError);
    expect(a.signal.aborted).toBe(true);
  });

  it("a waiter whose lease expires while it waits: LeaseLostError, and the one behind it moves up", async () => {
    const s = new MemoryKv();
    const { a, b, c } = await queueOfThree(s);
    await s.expire(a.leaseId + 1);
    await expect(b.held).rejects.toBeInstanceOf(LeaseLostError);
    await watching(s, a.key);
    await a.release();
    await expect(c.held).resolves.toMatchObject({ leaseId: a.leaseId + 2 });
  });

  it("a waiter whose key someone else deleted (its lease still live): LeaseLostError when its turn comes, never a hold without a key", async () => {
    const s = new MemoryKv();
    const { a, b, c, bKey } = await queueOfThree(s);
    await s.del(bKey);
    await watching(s, a.key, 2); // C moved up behind A
    await a.release();
    await expect(b.held).rejects.toBeInstanceOf(LeaseLostError);
    await expect(c.held).resolves.toMatchObject({ leaseId: a.leaseId + 2 });
  });

  it('aborting while waiting rejects with AbortError and revokes the waiter lease', async () => {
    const s = new MemoryKv();
    const a = await lock(s, 'l', { ttlSec: 1 });
    const ac = new AbortController();
    const b = lock(s, 'l', { ttlSec: 1, signal: ac.signal });
    await watching(s, a.key);
    ac.abort();
    await expect(b).rejects.toBeInstanceOf(AbortError);
    expect([...s.leasesLive]).toEqual([a.leaseId]);
    expect([...s.kvs.keys()]).toEqual([a.key]);
  });

  it('aborting a held lock stops its keep-alive only: the key stays until the lease expires', async () => {
    const s = new MemoryKv();
    const ac = new AbortController();
    const held = await lock(s, 'l', { ttlSec: 1, signal: ac.signal });
    ac.abort();
    await held.lost;
    expect(s.keepers.get(held.leaseId)?.stopped).toBe(true);
    expect(s.kvs.has(held.key)).toBe(true);
  });

  it('a queue longer than one RANGE page (the stand-in pages by 2): each waiter still waits on the one just ahead', async () => {
    const s = new MemoryKv();
    const a = await lock(s, 'l', { ttlSec: 1 });
    const waiters = [];
    for (let i = 1; i <= 4; i++) {
      waiters.push(contend(s, 'l'));
      await watching(s, `l/${(a.leaseId + i - 1).toString(16)}`);
    }
    let last = a;
    await a.release();
    for (const w of waiters) {
      const h = await w.held;
      expect(h.fencingToken).toBeGreaterThan(last.fencingToken);
      expect(waiters.filter((x) => x.done() !== null)).toHaveLength(waiters.indexOf(w) + 1);
      await h.release();
      last = h;
    }
  });

  it('rejects a ttlSec that is not a positive number of seconds', async () => {
    await expect(lock(new MemoryKv(), 'l', { ttlSec: 0 })).rejects.toBeInstanceOf(RangeError);
  });
});

describe('recipes: election (etcd concurrency.Election)', () => {
  const show = (o: LeaderObservation): string | null => (o ? `${o.value.toString()}@${o.fencingToken}` : null);

  it('campaign writes the candidate value; observeLeader sees the leader, the next one when it resigns, and null when none is left', async () => {
    const s = new MemoryKv();
    const seen: (string | null)[] = [];
    const a = await campaign(s, 'e', 'node-a', { ttlSec: 1 });
    const ac = new AbortController();
    const obs = (async () => {
      try {
        for await (const o of observeLeader(s, 'e', { signal: ac.signal })) {
          seen.push(show(o));
          if (seen.length === 3) ac.abort();
        }
      } catch (e) {
        if (!(e instanceof AbortError)) throw e;
      }
    })();
    const b = campaign(s, 'e', 'node-b', { ttlSec: 1 });
    await watching(s, a.key);
    await a.release();
    const hb = await b;
    await hb.release();
    await obs;
    expect(seen).toEqual([`node-a@${a.fencingToken}`, `node-b@${hb.fencingToken}`, null]);
  });

  it('observeLeader sees a leader created between its read and its watch (the watch starts at the read revision + 1)', async () => {
    const s = new MemoryKv();
    await s.set('unrelated', 'v');
    let created: Promise<Held> | null = null;
    // The leader comes right after the read was answered, before the watch is opened.
    s.afterRead = () => {
      s.afterRead = null;
      created = campaign(s, 'e', 'node-a', { ttlSec: 1 });
    };
    const seen: (string | null)[] = [];
    const observed = (async () => {
      for await (const o of observeLeader(s, 'e')) {
        seen.push(o ? o.value.toString() : null);
        if (seen.length === 2) return;
      }
    })();
    const a = await created!;
    await s.set(a.key, 'later', { lease: a.leaseId }); // an observer that missed node-a sees this one second
    await observed;
    expect(seen).toEqual([null, 'node-a']);
  });

  it('a scan of several RANGE pages is not one instant: the first observation waits for the watch to pass the last page (the stand-in pages by 2)', async () => {
    const s = new MemoryKv();
    await s.set('e/10', 'p1');
    await s.set('e/11', 'p2');
    await s.set('e/90', 'q');
    let pages = 0;
    // Between the first page (e/10, e/11 at revision 3) and the second: K (in the first page's span) then L come, every older key goes.
    s.afterRead = () => {
      if (++pages !== 1) return;
      void s.set('e/05', 'k');
      void s.set('e/95', 'l');
      void s.del('e/10');
      void s.del('e/11');
      void s.del('e/90');
    };
    let first: string | null | undefined;
    for await (const o of observeLeader(s, 'e')) {
      first = o ? o.value.toString() : null;
      break;
    }
    // The pages together show e/10, e/11 (gone since) and e/95; the leader at the last page's revision is K.
    expect(first).toBe('k');
  });

  it('observeLeader holds at most candidatesMax candidates and candidateBytesMax of their keys and values: beyond, CandidatesMaxError', async () => {
    const s = new MemoryKv();
    await campaign(s, 'e', 'node-a', { ttlSec: 1 });
    void campaign(s, 'e', 'node-b', { ttlSec: 1 });
    await watching(s, 'e/100');
    const first = async (o: { candidatesMax?: number; candidateBytesMax?: number }): Promise<string | null> => {
      for await (const x of observeLeader(s, 'e', o)) return x ? x.value.toString() : null;
      return 'ended';
    };
    expect(await first({ candidatesMax: 2, candidateBytesMax: 2 * (5 + 6) })).toBe('node-a'); // keys e/10x, values node-x
    await expect(first({ candidatesMax: 1 })).rejects.toBeInstanceOf(CandidatesMaxError);
    await expect(first({ candidateBytesMax: 2 * (5 + 6) - 1 })).rejects.toMatchObject({ code: 'CANDIDATES_MAX' });
  });
});
