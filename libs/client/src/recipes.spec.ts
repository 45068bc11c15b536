import { AbortError, LeaseLostError } from './errors';
import type { GetResult, SetOptions, SetResult } from './commands';
import type { KeepAliveOptions } from './lease-keeper';
import type { ClientWatchOptions, WatchItem } from './watch';
import { campaign, lock, observeLeader, type RecipeClient } from './recipes';

interface Kv {
  value: Buffer;
  lease: number;
  createRevision: number;
  modRevision: number;
}

/** An in-memory store with etcd's revision rules, leases (no clock: `expire` stands for a TTL passing) and key watches. */
class MemoryStore implements RecipeClient {
  revision = 0;
  readonly kvs = new Map<string, Kv>();
  readonly leasesLive = new Set<number>();
  readonly keepers = new Map<number, { lose: (e: Error) => void; stopped: boolean }>();
  private readonly history: WatchItem[] = [];
  private readonly waiters = new Set<() => void>();
  private nextLease = 100;

  async leaseGrant(ttlMs: number) {
    const leaseId = this.nextLease++;
    this.leasesLive.add(leaseId);
    return { leaseId, ttlMs, revision: this.revision };
  }

  async leaseRevoke(leaseId: number) {
    if (!this.leasesLive.delete(leaseId)) throw Object.assign(new Error('lease not found'), { code: 'LEASE_NOT_FOUND' });
    this.revision++;
    for (const [k, kv] of this.kvs) if (kv.lease === leaseId) this.remove(k);
    this.keepers.get(leaseId)?.lose(new LeaseLostError(leaseId, 'revoked'));
    return { revision: this.revision };
  }

  /** A TTL passed without a renewal. */
  async expire(leaseId: number): Promise<void> {
    await this.leaseRevoke(leaseId);
  }

  keepAlive(leaseId: number, opts: KeepAliveOptions = {}) {
    let lose!: (e: Error) => void;
    let stop!: () => void;
    const closed = new Promise<void>((resolve, reject) => {
      lose = reject;
      stop = resolve;
    });
    const k = { lose, stopped: false };
    this.keepers.set(leaseId, k);
    const stopIt = () => {
      k.stopped = true;
      stop();
    };
    opts.signal?.addEventListener('abort', stopIt, { once: true });
    return { closed, stop: stopIt };
  }

  async set(key: string | Uint8Array, value: string | Uint8Array, opts: SetOptions = {}): Promise<SetResult> {
    const k = key.toString();
    if (opts.ifAbsent && this.kvs.has(k)) return { revision: this.revision, applied: false };
    if (opts.lease !== undefined && !this.leasesLive.has(opts.lease)) throw new Error('lease not found');
    this.revision++;
    const prior = this.kvs.get(k);
    const kv = { value: Buffer.from(value), lease: opts.lease ?? 0, createRevision: prior?.createRevision ?? this.revision, modRevision: this.revision };
    this.kvs.set(k, kv);
    this.push({ type: 'put', key: Buffer.from(k), value: kv.value, modRevision: this.revision, createRevision: kv.createRevision, version: 1, prevValue: null, prevOmitted: false });
    return { revision: this.revision, applied: true };
  }

  async get(key: string | Uint8Array): Promise<GetResult | null> {
    const kv = this.kvs.get(key.toString());
    return kv ? { value: kv.value, revision: kv.modRevision, createRevision: kv.createRevision } : null;
  }

  async *watch(opts: ClientWatchOptions): AsyncGenerator<WatchItem, void, undefined> {
    const key = opts.key!.toString();
    let from = opts.startRevision ?? this.revision + 1;
    for (;;) {
      for (const ev of this.history) if (ev.type !== 'progress' && ev.modRevision >= from && ev.key.toString() === key) {
        from = ev.modRevision + 1;
        yield ev;
      }
      if (opts.signal?.aborted) throw new AbortError('aborted');
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          resolve();
        };
        this.waiters.add(wake);
        opts.signal?.addEventListener('abort', wake, { once: true });
      });
    }
  }

  private remove(k: string): void {
    this.kvs.delete(k);
    this.push({ type: 'delete', key: Buffer.from(k), value: Buffer.alloc(0), modRevision: this.revision, createRevision: 0, version: 0, prevValue: null, prevOmitted: false });
  }

  private push(ev: WatchItem): void {
    this.history.push(ev);
    for (const w of [...this.waiters]) w();
  }
}

describe('recipes: lock and election (etcd concurrency.Mutex / Election)', () => {
  it('a free lock is taken at once; its fencing token is the key create revision; release deletes it', async () => {
    const s = new MemoryStore();
    await s.set('other', 'x');
    const held = await lock(s, 'locks/a', { ttlSec: 2 });
    expect(held.fencingToken).toBe(2n);
    expect(s.kvs.get('locks/a')).toMatchObject({ lease: held.leaseId, createRevision: 2 });
    expect(held.guard()).toMatchObject({ operand: 2 });
    await held.release();
    expect(s.kvs.has('locks/a')).toBe(false);
    await expect(held.lost).resolves.toBeUndefined();
    expect(held.signal.aborted).toBe(true);
    await held.release(); // idempotent: the lease is already gone
  });

  it('a second contender waits for the holder key delete (its lease expired) and gets a strictly greater token', async () => {
    const s = new MemoryStore();
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
    const s = new MemoryStore();
    await lock(s, 'l', { ttlSec: 1 });
    const ac = new AbortController();
    const b = lock(s, 'l', { ttlSec: 1, signal: ac.signal });
    await s.set('tick', 'v');
    ac.abort();
    await expect(b).rejects.toBeInstanceOf(AbortError);
    expect([...s.leasesLive]).toEqual([100]);
  });

  it('aborting a held lock stops its keep-alive only: the key stays until the lease expires', async () => {
    const s = new MemoryStore();
    const ac = new AbortController();
    const held = await lock(s, 'l', { ttlSec: 1, signal: ac.signal });
    ac.abort();
    await held.lost;
    expect(s.keepers.get(held.leaseId)?.stopped).toBe(true);
    expect(s.kvs.has('l')).toBe(true);
  });

  it('rejects a ttlSec that is not a positive number of seconds', async () => {
    await expect(lock(new MemoryStore(), 'l', { ttlSec: 0 })).rejects.toBeInstanceOf(RangeError);
  });

  it('campaign writes the candidate value; observeLeader sees the leader, its loss and the next one', async () => {
    const s = new MemoryStore();
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
});
