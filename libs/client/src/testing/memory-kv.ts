// Test helper (not part of the build): an in-memory stand-in of the client surface the recipes use,
// with Cairn's revision and watch semantics (docs/protocol.md, docs/watch.md, docs/leases.md).
import { decodeRangeToken, encodeRangeToken, prefixEnd } from '@cairn/protocol';
import { AbortError, LeaseLostError, LeaseNotFoundError } from '../errors';
import type { GetResult, LeaseGrantResult, RangePage, RangeReadOptions, SetOptions, SetResult } from '../commands';
import type { KeepAliveOptions } from '../lease-keeper';
import type { ClientWatchOptions, WatchEventItem, WatchItem } from '../watch';
import type { RecipeClient } from '../recipes';

interface Kv {
  value: Buffer;
  lease: number;
  createRevision: number;
  modRevision: number;
  version: number;
}

/** What a test sees of a call: its name, its key (watch: key or prefix), the revision the store was at. */
export interface MemoryCall {
  op: 'leaseGrant' | 'leaseRevoke' | 'set' | 'del' | 'get' | 'range' | 'watch';
  key: string;
  revision: number;
}

/**
 * One Raft log as the recipes see it through a gateway:
 * - the revision is the log index: every write takes one, a SET whose condition (or lease) refused
 *   it included (CONDITION_FAILED at that index), as do LEASE_GRANT and LEASE_REVOKE;
 * - GET answers the mod revision, create revision and version (etcd mvccpb.KeyValue; a delete
 *   resets them) or null; RANGE pages are consistent at the index they were read at, `limit` keys
 *   each (default `rangeLimitDefault`, kept small so the recipes' paging is exercised);
 * - a revoke (or expiry: `expire`) deletes every key of the lease at its one revision;
 * - a watch delivers every event with a revision >= `startRevision` in revision order, or (no
 *   `startRevision`) those after the revision when it was opened; delete events carry create
 *   revision and version 0; with `progress`, a progress item once it has delivered every event
 *   up to the store's revision.
 * `afterRead` runs once a read's answer is fixed and before the caller gets it: a test writes
 * there what lands between a read and the caller's next request.
 */
export class MemoryKv implements RecipeClient {
  revision = 0;
  readonly kvs = new Map<string, Kv>();
  readonly leasesLive = new Set<number>();
  readonly keepers = new Map<number, { lose: (e: Error) => void; stopped: boolean }>();
  /** Every call, in order. */
  readonly calls: MemoryCall[] = [];
  /** Watches open now, by the key or prefix they watch. */
  readonly watching = new Map<string, number>();
  afterRead: ((op: 'get' | 'range', key: string) => void) | null = null;
  private readonly history: WatchEventItem[] = [];
  private readonly waiters = new Set<() => void>();
  private nextLease = 0x100;

  constructor(private readonly rangeLimitDefault = 2) {}

  async leaseGrant(ttlMs: number): Promise<LeaseGrantResult> {
    const leaseId = this.nextLease++;
    this.leasesLive.add(leaseId);
    this.log('leaseGrant', '');
    return { leaseId, ttlMs, revision: ++this.revision };
  }

  async leaseRevoke(leaseId: number): Promise<{ revision: number }> {
    this.log('leaseRevoke', String(leaseId));
    if (!this.leasesLive.delete(leaseId)) throw new LeaseNotFoundError(`lease ${leaseId} not found`);
    this.revision++;
    for (const [k, kv] of [...this.kvs]) if (kv.lease === leaseId) this.remove(k);
    this.keepers.get(leaseId)?.lose(new LeaseLostError(leaseId, 'revoked'));
    this.wake();
    return { revision: this.revision };
  }

  /** The lease's TTL passed without a renewal: the leader's revoke. */
  async expire(leaseId: number): Promise<void> {
    await this.leaseRevoke(leaseId);
  }

  keepAlive(leaseId: number, opts: KeepAliveOptions = {}): { readonly closed: Promise<void>; stop(): void } {
    let lose!: (e: Error) => void;
    let stop!: () => void;
    const closed = new Promise<void>((resolve, reject) => {
      lose = reject;
      stop = resolve;
    });
    const k = { lose, stopped: false };
    this.keepers.set(leaseId, k);
    const stopIt = (): void => {
      k.stopped = true;
      stop();
    };
    opts.signal?.addEventListener('abort', stopIt, { once: true });
    return { closed, stop: stopIt };
  }

  async set(key: string | Uint8Array, value: string | Uint8Array, opts: SetOptions = {}): Promise<SetResult> {
    const k = key.toString();
    this.log('set', k);
    const revision = ++this.revision;
    const prior = this.kvs.get(k);
    if ((opts.ifAbsent && prior) || (opts.ifPresent && !prior) || (opts.ifRevision !== undefined && (prior?.modRevision ?? 0) !== opts.ifRevision)) return { revision, applied: false };
    if (opts.lease !== undefined && !this.leasesLive.has(opts.lease)) throw new LeaseNotFoundError('lease not found');
    const kv = { value: Buffer.from(value), lease: opts.lease ?? 0, createRevision: prior?.createRevision ?? revision, modRevision: revision, version: (prior?.version ?? 0) + 1 };
    this.kvs.set(k, kv);
    this.push({ type: 'put', key: Buffer.from(k), value: kv.value, modRevision: revision, createRevision: kv.createRevision, version: kv.version, prevValue: null, prevOmitted: false });
    this.wake();
    return { revision, applied: true };
  }

  async get(key: string | Uint8Array): Promise<GetResult | null> {
    const k = key.toString();
    this.log('get', k);
    const kv = this.kvs.get(k);
    const r = kv ? { value: kv.value, revision: kv.modRevision, createRevision: kv.createRevision, version: kv.version } : null;
    this.afterRead?.('get', k);
    return r;
  }

  async range(opts: RangeReadOptions): Promise<RangePage> {
    const start = Buffer.from(opts.prefix ?? opts.start ?? '');
    this.log('range', start.toString());
    const end = opts.prefix !== undefined ? prefixEnd(start) : opts.end !== undefined ? Buffer.from(opts.end) : null;
    const after = opts.token ? decodeRangeToken(opts.token) : null;
    const keys = [...this.kvs.keys()].map((k) => Buffer.from(k)).filter((k) => Buffer.compare(k, start) >= 0 && (end === null || Buffer.compare(k, end) < 0));
    keys.sort(Buffer.compare);
    const rest = after ? keys.filter((k) => Buffer.compare(k, after) > 0) : keys;
    const page = rest.slice(0, opts.limit || this.rangeLimitDefault);
    const more = rest.length > page.length;
    const items = page.map((k) => {
      const kv = this.kvs.get(k.toString())!;
      return { key: k, value: opts.keysOnly ? Buffer.alloc(0) : kv.value, revision: kv.modRevision, createRevision: kv.createRevision, version: kv.version };
    });
    const r = { revision: this.revision, count: rest.length, more, token: more ? encodeRangeToken(page[page.length - 1]) : null, items };
    this.afterRead?.('range', start.toString());
    return r;
  }

  async *watch(opts: ClientWatchOptions): AsyncGenerator<WatchItem, void, undefined> {
    const key = (opts.key ?? opts.prefix)!.toString();
    const matches = (k: string): boolean => (opts.key !== undefined ? k === key : k.startsWith(key));
    this.log('watch', key);
    let from = opts.startRevision ?? this.revision + 1;
    this.watching.set(key, (this.watching.get(key) ?? 0) + 1);
    this.wake(); // a test may wait for this watch (changedOnce)
    try {
      for (;;) {
        for (const ev of this.history) {
          if (ev.modRevision < from || !matches(ev.key.toString())) continue;
          from = ev.modRevision + 1;
          yield ev;
        }
        if (opts.progress && from <= this.revision) {
          from = this.revision + 1;
          yield { type: 'progress', revision: this.revision };
        }
        if (opts.signal?.aborted) throw new AbortError('aborted');
        await this.changed(opts.signal);
      }
    } finally {
      this.watching.set(key, this.watching.get(key)! - 1);
    }
  }

  /** DEL: deletes `key` (if present) at a new revision. */
  async del(key: string | Uint8Array): Promise<{ revision: number }> {
    const k = key.toString();
    this.log('del', k);
    this.revision++;
    if (this.kvs.has(k)) this.remove(k);
    this.wake();
    return { revision: this.revision };
  }

  /** Resolves at the next write or watch opened. */
  changedOnce(): Promise<void> {
    return this.changed(undefined);
  }

  /** Calls of `op` (and `key`, when given) so far. */
  count(op: MemoryCall['op'], key?: string): number {
    return this.calls.filter((c) => c.op === op && (key === undefined || c.key === key)).length;
  }

  private changed(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        this.waiters.delete(wake);
        resolve();
      };
      this.waiters.add(wake);
      signal?.addEventListener('abort', wake, { once: true });
    });
  }

  private log(op: MemoryCall['op'], key: string): void {
    this.calls.push({ op, key, revision: this.revision });
  }

  private remove(k: string): void {
    this.kvs.delete(k);
    this.push({ type: 'delete', key: Buffer.from(k), value: Buffer.alloc(0), modRevision: this.revision, createRevision: 0, version: 0, prevValue: null, prevOmitted: false });
  }

  private push(ev: WatchEventItem): void {
    this.history.push(ev);
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
