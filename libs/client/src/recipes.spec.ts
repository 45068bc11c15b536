import { AbortError, LeaseLostError } from './errors';
import { campaign, lock, observeLeader } from './recipes';
import { MemoryKv } from './testing/memory-kv';

describe('recipes: lock and election (etcd concurrency.Mutex / Election)', () => {
  it('a free lock is taken at once; its fencing token is the key create revision; release deletes it', async () => {
    const s = new MemoryKv();
    await s.set('other', 'x');
    const held = await lock(s, 'locks/a', { ttlSec: 2 });
    // Revisions are log indexes: the put at 1, the lease grant at 2, the lock key's create at 3.
    expect(held.fencingToken).toBe(3n);
    expect(s.kvs.get('locks/a')).toMatchObject({ lease: held.leaseId, createRevision: 3 });
    expect(held.guard()).toMatchObject({ operand: 3 });
    await held.release();
    expect(s.kvs.has('locks/a')).toBe(false);
    await expect(held.lost).resolves.toBeUndefined();
    expect(held.signal.aborted).toBe(true);
    await held.release(); // idempotent: the lease is already gone
  });

  it('a second contender waits for the holder key delete (its lease expired) and gets a strictly greater token', async () => {
    const s = new MemoryKv();
    const a = await lock(s, 'l', { ttlSec: 1 });
    let bHeld = false;
    const b = lock(s, 'l', { ttlSec: 1 }).then((h) => ((bHeld = true), h));
    await s.set('unrelated', 'v');
    await s.set('l2', 'v'); // other keys do not wake it up
    expect(bHeld).toBe(false);
    await s.expire(a.leaseId); // A paused past its TTL
    const hb = await b;
    expect(hb.fencingToken).toBeGreaterThan(a.fencingToken);
    await expect(a.lost).rejects.toBeInstanceOf(LeaseLostError);
    expect(a.signal.aborted).toBe(true);
  });

  it('aborting while waiting rejects with AbortError and revokes the waiter lease', async () => {
    const s = new MemoryKv();
    const a = await lock(s, 'l', { ttlSec: 1 });
    const ac = new AbortController();
    const b = lock(s, 'l', { ttlSec: 1, signal: ac.signal });
    await s.set('tick', 'v');
    ac.abort();
    await expect(b).rejects.toBeInstanceOf(AbortError);
    expect([...s.leasesLive]).toEqual([a.leaseId]);
  });

  it('aborting a held lock stops its keep-alive only: the key stays until the lease expires', async () => {
    const s = new MemoryKv();
    const ac = new AbortController();
    const held = await lock(s, 'l', { ttlSec: 1, signal: ac.signal });
    ac.abort();
    await held.lost;
    expect(s.keepers.get(held.leaseId)?.stopped).toBe(true);
    expect(s.kvs.has('l')).toBe(true);
  });

  it('rejects a ttlSec that is not a positive number of seconds', async () => {
    await expect(lock(new MemoryKv(), 'l', { ttlSec: 0 })).rejects.toBeInstanceOf(RangeError);
  });

  it('campaign writes the candidate value; observeLeader sees the leader, its loss and the next one', async () => {
    const s = new MemoryKv();
    const ac = new AbortController();
    const seen: (string | null)[] = [];
    const a = await campaign(s, 'e', 'node-a', { ttlSec: 1 });
    let firstSeen!: () => void;
    const first = new Promise<void>((r) => (firstSeen = r));
    const obs = (async () => {
      try {
        for await (const o of observeLeader(s, 'e', { signal: ac.signal })) {
          seen.push(o ? `${o.value.toString()}@${o.fencingToken}` : null);
          firstSeen();
          if (seen.length === 3) ac.abort();
        }
      } catch (e) {
        if (!(e instanceof AbortError)) throw e;
      }
    })();
    await first;
    const b = campaign(s, 'e', 'node-b', { ttlSec: 1 });
    await a.release();
    const hb = await b;
    await obs;
    expect(seen).toEqual([`node-a@${a.fencingToken}`, null, `node-b@${hb.fencingToken}`]);
  });

  it('observeLeader sees a leader created between its read and its watch (the watch starts at the read revision + 1)', async () => {
    const s = new MemoryKv();
    await s.set('unrelated', 'v');
    let created: Promise<unknown> | null = null;
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
    await created;
    await s.set('e', 'later'); // an observer that missed node-a sees this one second
    await observed;
    expect(seen).toEqual([null, 'node-a']);
  });
});
